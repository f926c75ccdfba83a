/*
 * Small rtnetlink helpers on top of libmnl: one socket, one request at a time. A request is
 * sent with NLM_F_ACK and its ACK is read back, so every change reports the kernel's own
 * -errno instead of being fire-and-forget; a dump feeds each reply message to a callback
 * until NLMSG_DONE. Extended ACK (NETLINK_EXT_ACK) is switched on so the kernel can say *why*
 * it refused ("Nexthop device is not up"); the text of the last reply is kept in the socket
 * object for the caller's error message (iproute2 lib/libnetlink.c does the same).
 *
 * The socket is blocking and unicast only; messages carrying another sequence number (left
 * over from an aborted exchange) are skipped, not treated as errors.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;
struct nlattr;
struct nlmsghdr;

/* Room for one request built by a caller; rtnetlink requests here are a few hundred bytes. */
#define NETLINK_REQUEST_SIZE 1024

struct netlink {
        struct mnl_socket *nl;
        unsigned portid;
        unsigned seq;
        char *rbuf;             /* receive buffer for one recvmsg() of a dump, owned */
        char ext_msg[256];      /* extack text of the last reply, "" when the kernel gave none */
        uint32_t ext_offset;    /* extack offset of the bad attribute in the request, 0 if none */
};

#define NETLINK_NULL { .nl = NULL, .portid = 0, .seq = 0, .rbuf = NULL, .ext_msg = "", .ext_offset = 0 }

/*
 * Opens a NETLINK_ROUTE socket in the caller's current network namespace and turns on
 * extended ACK (ignored if the kernel lacks it). Returns 0 or a negative errno (-ENOMEM,
 * or socket()/bind() failing). On failure nl is left in the NETLINK_NULL state.
 */
int netlink_init(struct netlink *nl);
/* Closes the socket and frees the buffer. Accepts a NETLINK_NULL or half-built object. */
void netlink_deinit(struct netlink *nl);

/*
 * Starts a request in buf (at least NETLINK_REQUEST_SIZE bytes, zeroed here) with the given
 * message type and flags (NLM_F_REQUEST is added), and returns its header. Use libmnl's
 * mnl_nlmsg_put_extra_header()/mnl_attr_put_*() to fill it in.
 */
struct nlmsghdr *netlink_msg_start(void *buf, uint16_t type, uint16_t flags);

/*
 * Sends one request with NLM_F_ACK set and waits for its ACK. Returns 0 when the kernel
 * accepted it, the kernel's negative errno when it refused it (-EEXIST, -ENOENT, ...), or a
 * negative errno from the socket itself. nl->ext_msg is reset before sending and holds the
 * kernel's extack text afterwards, if it gave one.
 */
int netlink_request(struct netlink *nl, struct nlmsghdr *nlh);

/*
 * Called once per reply message of a dump. It must not keep nlh beyond the call. Returns 0
 * to go on, or a negative errno to stop: the rest of the dump is still drained from the
 * socket (without further calls) and netlink_dump() returns that value.
 */
typedef int (*netlink_dump_fn)(const struct nlmsghdr *nlh, void *userdata);

/*
 * Sends nlh as a dump request (NLM_F_DUMP is added) and calls fn for every reply message
 * until NLMSG_DONE. Returns 0, the callback's negative errno, the kernel's negative errno
 * (from an NLMSG_ERROR or a DONE carrying one; extack in nl->ext_msg), or -EBADMSG for a
 * malformed reply.
 */
int netlink_dump(struct netlink *nl, struct nlmsghdr *nlh, netlink_dump_fn fn, void *userdata);

/*
 * Indexes the attributes after a family header of hdrlen bytes into tb[0..max]; types above
 * max are ignored and a repeated type keeps its last value. Returns 0, or -EBADMSG when the
 * message is shorter than hdrlen or an attribute overruns it.
 */
int netlink_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
                       unsigned max);

/* Reads a u32 attribute; -EBADMSG unless its payload is exactly 4 bytes. */
int netlink_attr_get_u32(const struct nlattr *attr, uint32_t *ret);
