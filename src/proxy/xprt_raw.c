/*
 * The raw socket transport: the kernel's TCP socket as it is. recv and send are read(2) and
 * write(2) with EINTR retried (inline in conn.h, where the relay calls them directly), splice
 * moves bytes between the socket and a pipe without a copy into user space, a reset is
 * SO_LINGER 0 and close(2), and nothing is ever held back (pending is 0: what the socket has,
 * epoll reports).
 *
 * splice(2)'s EAGAIN is ambiguous: with SPLICE_F_NONBLOCK it means either "the socket has
 * nothing" or "the pipe is full" (HAProxy's raw_sock.c has the same comment). The relay only
 * splices into an empty pipe, so from the socket EAGAIN means the socket; into the socket, the
 * socket is full.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/conn.h"

/* The table's entries for what conn.h inlines for the relay. */
static ssize_t raw_recv(struct conn *c, void *buf, size_t len)
{
        return xprt_raw_recv(c, buf, len);
}

static ssize_t raw_send(struct conn *c, const void *buf, size_t len)
{
        return xprt_raw_send(c, buf, len);
}

static int raw_shutw(struct conn *c)
{
        /* ENOTCONN: the peer is gone already, and so is the write side. */
        if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
                return -errno;
        return 0;
}

static void raw_abort(struct conn *c)
{
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        /* SO_LINGER 0 makes close() send RST: how a reset is carried to the other side. */
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
}

static void raw_close(struct conn *c)
{
        close(c->fd);
}

static ssize_t raw_splice_in(struct conn *c, int pipe_w, size_t len)
{
        ssize_t n;

        do
                n = splice(c->fd, NULL, pipe_w, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

static ssize_t raw_splice_out(struct conn *c, int pipe_r, size_t len)
{
        ssize_t n;

        do
                n = splice(pipe_r, NULL, c->fd, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

const struct xprt_ops xprt_raw = {
        .name = "raw",
        .recv = raw_recv,
        .send = raw_send,
        .pending = NULL,
        .shutw = raw_shutw,
        .abort = raw_abort,
        .close = raw_close,
        .splice_in = raw_splice_in,
        .splice_out = raw_splice_out,
};
