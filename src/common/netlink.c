/*
 * rtnetlink request/ACK and dump loops; see netlink.h. The receive loop is written out here
 * instead of using mnl_cb_run() because mnl_cb_run() turns an NLMSG_ERROR into a bare errno
 * and drops the extended ACK attributes that follow it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include "common/netlink.h"

/*
 * The kernel sizes dump skbs up to the largest receive buffer it has seen, capped at 32 KiB
 * (netlink_recvmsg()'s max_recvmsg_len); a smaller buffer would get MSG_TRUNC. This is
 * libmnl's MNL_SOCKET_DUMP_SIZE, which 1.0.4 does not define yet.
 */
#define NETLINK_RECV_SIZE 32768

int netlink_init(struct netlink *nl)
{
        int one = 1, r;

        *nl = (struct netlink)NETLINK_NULL;

        nl->rbuf = malloc(NETLINK_RECV_SIZE);
        if (!nl->rbuf) {
                r = -ENOMEM;
                goto fail;
        }
        nl->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl->nl) {
                r = -errno;
                goto fail;
        }
        if (mnl_socket_bind(nl->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                r = -errno;
                goto fail;
        }
        nl->portid = mnl_socket_get_portid(nl->nl);
        nl->seq = (unsigned)time(NULL);

        /*
         * Both are optional: extack exists since 4.12; without it errors carry only the errno.
         * CAP_ACK stops the kernel from echoing our whole request back inside each error.
         */
        (void)mnl_socket_setsockopt(nl->nl, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)mnl_socket_setsockopt(nl->nl, NETLINK_CAP_ACK, &one, sizeof(one));
        return 0;

fail:
        netlink_deinit(nl);
        return r;
}

void netlink_deinit(struct netlink *nl)
{
        if (nl->nl)
                mnl_socket_close(nl->nl);
        free(nl->rbuf);
        *nl = (struct netlink)NETLINK_NULL;
}

struct nlmsghdr *netlink_msg_start(void *buf, uint16_t type, uint16_t flags)
{
        struct nlmsghdr *nlh;

        memset(buf, 0, NETLINK_REQUEST_SIZE);
        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        return nlh;
}

int netlink_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
                       unsigned max)
{
        size_t plen = mnl_nlmsg_get_payload_len(nlh), start;
        const char *payload = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *attr;
        int left;

        memset(tb, 0, (max + 1) * sizeof(*tb));
        if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN || hdrlen > plen)
                return -EBADMSG;
        start = MNL_ALIGN(hdrlen);
        if (start >= plen)
                return 0;

        attr = (const struct nlattr *)(payload + start);
        left = (int)(plen - start);
        while (mnl_attr_ok(attr, left)) {
                uint16_t type = mnl_attr_get_type(attr);
                size_t step = MNL_ALIGN(attr->nla_len);

                if (type <= max)
                        tb[type] = attr;
                if (step >= (size_t)left) {
                        left = 0;
                        break;
                }
                left -= (int)step;
                attr = (const struct nlattr *)((const char *)attr + step);
        }
        /* Fewer bytes than an attribute header can only be trailing padding. */
        if (left >= (int)sizeof(struct nlattr))
                return -EBADMSG;
        return 0;
}

int netlink_attr_get_u32(const struct nlattr *attr, uint32_t *ret)
{
        if (mnl_attr_get_payload_len(attr) != sizeof(uint32_t))
                return -EBADMSG;
        memcpy(ret, mnl_attr_get_payload(attr), sizeof(uint32_t));
        return 0;
}

/*
 * Copies the extack text and offset of an NLMSG_ERROR (hdrlen: the nlmsgerr, plus the echoed
 * request unless capped) or NLMSG_DONE (hdrlen: the int error) into nl. A malformed TLV area
 * is ignored: the errno is what matters and the text is a bonus.
 */
static void netlink_read_extack(struct netlink *nl, const struct nlmsghdr *h, size_t hdrlen)
{
        const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
        uint32_t off;

        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        if (netlink_attr_parse(h, hdrlen, tb, NLMSGERR_ATTR_MAX) < 0)
                return;
        if (tb[NLMSGERR_ATTR_MSG]) {
                const char *s = mnl_attr_get_payload(tb[NLMSGERR_ATTR_MSG]);
                size_t n = strnlen(s, mnl_attr_get_payload_len(tb[NLMSGERR_ATTR_MSG]));

                if (n >= sizeof(nl->ext_msg))
                        n = sizeof(nl->ext_msg) - 1;
                memcpy(nl->ext_msg, s, n);
                nl->ext_msg[n] = '\0';
        }
        if (tb[NLMSGERR_ATTR_OFFS] && netlink_attr_get_u32(tb[NLMSGERR_ATTR_OFFS], &off) == 0)
                nl->ext_offset = off;
}

/* The error code of an NLMSG_ERROR (0 for an ACK), with its extack stored in nl. */
static int netlink_read_error(struct netlink *nl, const struct nlmsghdr *h)
{
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
        size_t hdrlen = sizeof(*e);

        if (mnl_nlmsg_get_payload_len(h) < sizeof(*e))
                return -EBADMSG;
        if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
                if (e->msg.nlmsg_len < MNL_NLMSG_HDRLEN)
                        return -EBADMSG;
                hdrlen += e->msg.nlmsg_len - MNL_NLMSG_HDRLEN;
        }
        netlink_read_extack(nl, h, hdrlen);
        /* error is 0 for an ACK, else a negative errno; guard against a positive one. */
        if (e->error > 0)
                return -EBADMSG;
        return e->error;
}

/*
 * Reads replies to request `seq` until its ACK/error (request) or NLMSG_DONE (dump), handing
 * dump data to fn. Messages for other sequence numbers are stale and skipped.
 */
static int netlink_recv(struct netlink *nl, unsigned seq, bool dump, netlink_dump_fn fn,
                        void *userdata)
{
        int cb_r = 0;

        for (;;) {
                const struct nlmsghdr *h;
                ssize_t n;
                int len;

                n = mnl_socket_recvfrom(nl->nl, nl->rbuf, NETLINK_RECV_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                h = (const struct nlmsghdr *)nl->rbuf;
                len = (int)n;
                for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
                        if (!mnl_nlmsg_portid_ok(h, nl->portid) || h->nlmsg_seq != seq)
                                continue;

                        switch (h->nlmsg_type) {
                        case NLMSG_NOOP:
                        case NLMSG_OVERRUN:
                                break;
                        case NLMSG_ERROR: {
                                int r = netlink_read_error(nl, h);

                                /* An ACK (0) inside a dump is not its end; keep reading. */
                                if (dump && r == 0)
                                        break;
                                return dump && cb_r < 0 ? cb_r : r;
                        }
                        case NLMSG_DONE: {
                                int err = 0;

                                if (!dump)
                                        break;
                                if (mnl_nlmsg_get_payload_len(h) >= sizeof(int)) {
                                        memcpy(&err, mnl_nlmsg_get_payload(h), sizeof(int));
                                        netlink_read_extack(nl, h, sizeof(int));
                                }
                                if (cb_r < 0)
                                        return cb_r;
                                return err > 0 ? -EBADMSG : err;
                        }
                        default:
                                if (dump && cb_r == 0 && fn)
                                        cb_r = fn(h, userdata);
                                break;
                        }
                }
                /* A truncated message at the end of a datagram is malformed. */
                if (len >= (int)sizeof(struct nlmsghdr))
                        return -EBADMSG;
        }
}

static int netlink_send(struct netlink *nl, struct nlmsghdr *nlh, unsigned *ret_seq)
{
        if (!nl->nl)
                return -EBADF;
        nl->ext_msg[0] = '\0';
        nl->ext_offset = 0;
        nlh->nlmsg_seq = ++nl->seq;
        /* Sequence 0 would pass libmnl's "unset" checks on any message; never use it. */
        if (nlh->nlmsg_seq == 0)
                nlh->nlmsg_seq = ++nl->seq;
        nlh->nlmsg_pid = 0;
        if (mnl_socket_sendto(nl->nl, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        *ret_seq = nlh->nlmsg_seq;
        return 0;
}

int netlink_request(struct netlink *nl, struct nlmsghdr *nlh)
{
        unsigned seq = 0;
        int r;

        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        r = netlink_send(nl, nlh, &seq);
        if (r < 0)
                return r;
        return netlink_recv(nl, seq, false, NULL, NULL);
}

int netlink_dump(struct netlink *nl, struct nlmsghdr *nlh, netlink_dump_fn fn, void *userdata)
{
        unsigned seq = 0;
        int r;

        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
        r = netlink_send(nl, nlh, &seq);
        if (r < 0)
                return r;
        return netlink_recv(nl, seq, true, fn, userdata);
}
