/*
 * One side of a relayed connection: a socket, the transport that moves bytes over it, and its
 * loop watch. The relay calls the transport's operations and never read(2), write(2),
 * splice(2) or shutdown(2) on the fd itself (HAProxy's xprt_ops, Redis's ConnectionType),
 * so that a transport that is not a plain socket fits under the same relay. Raw TCP is the
 * first transport (proxy/xprt_raw.c); TLS between sidecars is the next, and the contract is
 * written for it:
 *   - a short receive does not mean the socket is drained: a transport may hold bytes it
 *     already decoded (OpenSSL keeps whole records) that epoll will never report, so the
 *     relay asks conn_pending() before it waits for readiness;
 *   - splicing is the transport's to offer: conn_can_splice() is false for anything that
 *     transforms bytes, and then every byte is copied whatever the transfer's size;
 *   - closing the write side may take more than one call (a close_notify to send first):
 *     conn_shutw() can answer -EAGAIN, and the relay waits for writability and asks again.
 *
 * Every operation returns a count of bytes or 0 for success, and a negative errno otherwise;
 * -EAGAIN always means "not now, wait for the loop", never an error.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/loop.h"

struct conn;

struct xprt_ops {
        const char *name;
        /* Up to len bytes into buf: > 0 bytes, 0 at the peer's end of stream, or -errno. */
        ssize_t (*recv)(struct conn *c, void *buf, size_t len);
        /* Up to len bytes from buf: > 0 bytes taken, or -errno (-EAGAIN: the socket is full). */
        ssize_t (*send)(struct conn *c, const void *buf, size_t len);
        /* Bytes the transport holds for recv that the socket's readiness does not show. */
        size_t (*pending)(const struct conn *c);
        /* Ends the write side: 0, -EAGAIN (call again once writable), or -errno. */
        int (*shutw)(struct conn *c);
        /* Closes at once and tells the peer it was a reset (RST), not an end of stream. */
        void (*abort)(struct conn *c);
        /* Closes after what was sent (a FIN for what shutw did not end yet). */
        void (*close)(struct conn *c);
        /* Splice from the connection into a pipe's write end, and from a pipe's read end into
         * the connection: as recv/send. NULL when the transport cannot splice. */
        ssize_t (*splice_in)(struct conn *c, int pipe_w, size_t len);
        ssize_t (*splice_out)(struct conn *c, int pipe_r, size_t len);
};

struct conn {
        int fd;                         /* -1 once closed */
        const struct xprt_ops *xprt;
        void *xprt_ctx;                 /* the transport's own state; NULL for raw sockets */
        struct loop_watch watch;
};

#define CONN_NULL { .fd = -1, .xprt = NULL, .xprt_ctx = NULL, .watch = LOOP_WATCH_NULL }

/* The raw socket transport: a connected, non-blocking stream socket. */
extern const struct xprt_ops xprt_raw;

/* Sets c up over fd (which it then owns) with transport x. */
void conn_init(struct conn *c, int fd, const struct xprt_ops *x);

/* The raw transport's receive and send: read(2) and write(2), EINTR retried, -errno. */
static inline ssize_t xprt_raw_recv(struct conn *c, void *buf, size_t len)
{
        ssize_t n;

        do
                n = read(c->fd, buf, len);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

static inline ssize_t xprt_raw_send(struct conn *c, const void *buf, size_t len)
{
        ssize_t n;

        do
                n = write(c->fd, buf, len);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

/*
 * Every relayed message goes through one receive and one send, so the raw transport's are
 * inlined here rather than called through the table: the calls were most of what the
 * transport layer added to the relay's instructions per request (bench/relay.sh). Any other
 * transport goes through its table.
 */
static inline ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
        return c->xprt == &xprt_raw ? xprt_raw_recv(c, buf, len) : c->xprt->recv(c, buf, len);
}

static inline ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
        return c->xprt == &xprt_raw ? xprt_raw_send(c, buf, len) : c->xprt->send(c, buf, len);
}

static inline size_t conn_pending(const struct conn *c)
{
        return c->xprt->pending ? c->xprt->pending(c) : 0;
}

static inline int conn_shutw(struct conn *c)
{
        return c->xprt->shutw(c);
}

static inline bool conn_can_splice(const struct conn *c)
{
        return c->xprt->splice_in && c->xprt->splice_out;
}

static inline ssize_t conn_splice_in(struct conn *c, int pipe_w, size_t len)
{
        return c->xprt->splice_in(c, pipe_w, len);
}

static inline ssize_t conn_splice_out(struct conn *c, int pipe_r, size_t len)
{
        return c->xprt->splice_out(c, pipe_r, len);
}

/* Closes c (gracefully, or with a reset when abort is true) unless it is closed already. */
void conn_close(struct conn *c, bool abort);
