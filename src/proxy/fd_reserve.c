/*
 * Spare file descriptors; see fd_reserve.h.
 */
#include <fcntl.h>
#include <unistd.h>

#include "proxy/fd_reserve.h"

void fd_reserve_init(struct fd_reserve *r, unsigned want)
{
        r->n = 0;
        r->want = want < FD_RESERVE_MAX ? want : FD_RESERVE_MAX;
        fd_reserve_refill(r);
}

bool fd_reserve_release(struct fd_reserve *r, unsigned k)
{
        if (r->n < k)
                return false;
        while (k--)
                close(r->fds[--r->n]);
        return true;
}

void fd_reserve_refill(struct fd_reserve *r)
{
        while (r->n < r->want) {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return;
                r->fds[r->n++] = fd;
        }
}

void fd_reserve_deinit(struct fd_reserve *r)
{
        fd_reserve_release(r, r->n);
        r->want = 0;
}
