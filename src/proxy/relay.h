/*
 * One proxied connection: the accepted client and the upstream, each a struct conn (a socket
 * under a transport, proxy/conn.h), and a flow of bytes in each direction. The relay moves
 * bytes only through the transports' operations. Small messages (a request, a 1 KiB response)
 * are copied: one receive into the worker's scratch buffer and one send, which costs the
 * kernel less than two splices through a pipe. Once a receive fills the scratch buffer, and
 * when both transports can splice, the flow is a bulk transfer and moves with splice(2)
 * through a pipe from the worker's pool (no copy into user space), until receives get small
 * again (HAProxy's splice-auto idea). A flow receives only when nothing of it is in flight,
 * so a slow reader stops the writer (backpressure: at most one pipe's worth, or one scratch
 * buffer's, per direction). Idle flows hold neither a pipe nor a buffer.
 *
 * Lifecycle: relay_start() connects upstream at once (non-blocking, with the connect
 * timeout); meanwhile the pre-read stage (proxy/preread.h) reads the client's first bytes and
 * chooses the connection's protocol tracker (proxy/tracker.h), which then sees every copied
 * byte. Then both flows run; an end of stream becomes the transport's shutw on the other side
 * while the other flow goes on; a reset becomes a reset on the other side; a failed connect
 * resets the client. The relay is freed after dispatch, never inside its own callback.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "proxy/conn.h"
#include "proxy/metrics.h"
#include "proxy/tracker.h"

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
/*
 * The one mapping of a failed upstream connect's errno (either sign; SO_ERROR or connect(2))
 * to an end cause, used for the access log, the series' flags and the connect-failure
 * counter alike.
 */
enum relay_end relay_end_from_connect_errno(int err);
/* The cause="..." of pilotfish_connect_failures_total for a connect's end cause. */
enum metrics_connect_failure relay_end_connect_failure(enum relay_end e);

enum relay_flow_id {
        RELAY_FLOW_UP = 0,      /* client -> upstream: "received" bytes in Istio's metrics */
        RELAY_FLOW_DOWN,        /* upstream -> client: "sent" bytes */
};

struct relay_flow {
        int pipe[2];            /* from the pool while spliced bytes are in flight, else -1 */
        size_t in_pipe;
        char *pending;          /* copied bytes dst did not take yet; NULL when none */
        size_t pending_off, pending_len;
        bool splice;            /* bulk: the last receive filled the scratch buffer */
        bool no_splice;         /* a transport cannot splice, or splice refused: always copy */
        bool src_eof;
        bool shut;              /* the destination's write side is closed */
        bool want_in;           /* waits for the source to be readable */
        bool want_out;          /* waits for the destination to be writable */
        _Atomic uint64_t bytes;         /* read by /connections from another thread */
};

struct relay {
        struct worker *w;
        struct relay *prev, *next;      /* the worker's list, for /connections and shutdown */
        enum relay_direction direction;
        struct conn client, upstream;
        struct loop_timer connect_timer, idle_timer;
        /* Runs the flows again when a transport holds bytes that epoll will not report. */
        struct loop_timer resume_timer;
        bool may_hold;                  /* a transport can hold such bytes (has a pending op) */
        struct tracker tracker;         /* chosen by the pre-read stage; ops NULL until then */
        char *preread;                  /* the client's bytes read while connecting; NULL when none */
        size_t preread_len;
        atomic_bool connecting;         /* read by /connections under w->lock, which the worker does not take to write it */
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

/*
 * Relays between two connections that are there already (both connected, non-blocking, owned
 * by the relay from now on, closed with a reset if it cannot start): dst is what the
 * connection is counted under. For the relay's tests over socketpairs and test transports,
 * and for an upstream that another layer connected.
 */
void relay_attach(struct worker *w, enum relay_direction dir, const struct conn *client, const struct conn *upstream,
                  const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst);

/* Ends a relay now (shutdown), resetting both sides. */
void relay_abort(struct relay *r, enum relay_end why);
