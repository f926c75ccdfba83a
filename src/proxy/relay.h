/*
 * One proxied connection: the accepted client socket, the upstream socket, and a flow of bytes
 * in each direction. Small messages (a request, a 1 KiB response) are copied: one read into
 * the worker's scratch buffer and one write, which costs the kernel less than two splices
 * through a pipe. Once a read fills the scratch buffer the flow is a bulk transfer and moves
 * with splice(2) through a pipe from the worker's pool (no copy into user space), until reads
 * get small again (HAProxy's splice-auto idea). A flow reads only when nothing of it is in
 * flight, so a slow reader stops the writer (backpressure: at most one pipe's worth, or one
 * scratch buffer's, per direction), and splice's EAGAIN always means "socket empty". Idle
 * flows hold neither a pipe nor a buffer.
 *
 * Lifecycle: relay_start() connects upstream (non-blocking, with the connect timeout); then
 * both flows run; a FIN becomes shutdown(SHUT_WR) on the other side while the other flow goes
 * on; a reset becomes a reset (SO_LINGER 0) on the other side; a failed connect resets the
 * client. The relay is freed after dispatch, never inside its own callback.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"

/* The worker's scratch buffer for copied reads; a full read switches a flow to splice. */
#define RELAY_SCRATCH_SIZE 16384

struct worker;
struct metrics_series;

enum relay_direction {
        RELAY_OUTBOUND = 0,     /* captured on 15001: the application calls out */
        RELAY_INBOUND,          /* captured on 15006: someone calls the application */
};

/* Why a relay ended: the same strings appear in logs, the access log and metrics. */
enum relay_end {
        RELAY_END_NONE = 0,
        RELAY_END_DONE,                 /* both sides closed cleanly */
        RELAY_END_CLIENT_RESET,
        RELAY_END_UPSTREAM_RESET,
        RELAY_END_CONNECT_REFUSED,
        RELAY_END_CONNECT_TIMEOUT,
        RELAY_END_CONNECT_UNREACHABLE,
        RELAY_END_CONNECT_ERROR,
        RELAY_END_IDLE_TIMEOUT,
        RELAY_END_LOOP,                 /* the destination is this proxy */
        RELAY_END_NO_ORIGINAL_DST,
        RELAY_END_OVERFLOW,             /* over --max-connections */
        RELAY_END_ERROR,                /* a local error (out of memory, fds) */
        RELAY_END_SHUTDOWN,             /* the proxy exited */
        _RELAY_END_MAX,
};

const char *relay_end_str(enum relay_end e);
/* Envoy's response flag for an end cause: "-", "UF", "UO", "NR", "UT"... */
const char *relay_end_flag(enum relay_end e);

enum relay_flow_id {
        RELAY_FLOW_UP = 0,      /* client -> upstream: "received" bytes in Istio's metrics */
        RELAY_FLOW_DOWN,        /* upstream -> client: "sent" bytes */
};

struct relay_flow {
        int pipe[2];            /* from the pool while spliced bytes are in flight, else -1 */
        size_t in_pipe;
        char *pending;          /* copied bytes dst did not take yet; NULL when none */
        size_t pending_off, pending_len;
        bool splice;            /* bulk: the last read filled the scratch buffer */
        bool no_splice;         /* splice refused these sockets: always copy */
        bool src_eof;
        bool shut;              /* the destination got SHUT_WR */
        bool want_in;           /* waits for the source to be readable */
        bool want_out;          /* waits for the destination to be writable */
        _Atomic uint64_t bytes;         /* read by /connections from another thread */
};

struct relay {
        struct worker *w;
        struct relay *prev, *next;      /* the worker's list, for /connections and shutdown */
        enum relay_direction direction;
        int client_fd, upstream_fd;
        struct loop_watch client_watch, upstream_watch;
        struct loop_timer connect_timer, idle_timer;
        bool connecting;
        bool counted_open;      /* counted in the metrics as opened (it connected) */
        bool closed;
        uint64_t started_ms, last_activity_ms;
        struct sockaddr_storage client_addr, orig_dst, upstream_addr;
        struct relay_flow flow[2];
        struct metrics_series *series;
        enum relay_end end;
        uint64_t id;
};

/*
 * Takes ownership of client_fd (an accepted, non-blocking socket) and starts relaying it to
 * the original destination. Errors are handled inside (the client is reset and the failure
 * counted); nothing to do for the caller.
 */
void relay_start(struct worker *w, enum relay_direction dir, int client_fd,
                 const struct sockaddr_storage *client_addr);

/*
 * The same with the destination given instead of read from the socket (SO_ORIGINAL_DST or the
 * TPROXY local address): for the relay's own tests, which run without a packet filter.
 */
void relay_start_to(struct worker *w, enum relay_direction dir, int client_fd,
                    const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst);

/* Ends a relay now (shutdown), resetting both sides. */
void relay_abort(struct relay *r, enum relay_end why);
