/*
 * Connections over a transport; see conn.h. The only code here is what every transport
 * shares: taking the fd, and closing exactly once.
 */
#include "proxy/conn.h"

void conn_init(struct conn *c, int fd, const struct xprt_ops *x)
{
        c->fd = fd;
        c->xprt = x;
        c->xprt_ctx = NULL;
        c->watch = (struct loop_watch)LOOP_WATCH_NULL;
}

void conn_close(struct conn *c, bool abort)
{
        if (c->fd < 0)
                return;
        if (abort)
                c->xprt->abort(c);
        else
                c->xprt->close(c);
        c->fd = -1;
}
