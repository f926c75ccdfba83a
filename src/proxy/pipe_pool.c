/*
 * Pipe pool; see pipe_pool.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "proxy/pipe_pool.h"

void pipe_pool_init(struct pipe_pool *p, size_t max_free, size_t max_in_use)
{
        *p = (struct pipe_pool){ .max_free = max_free, .max_in_use = max_in_use, .pipe_size = 65536 };
        p->free_pipes = calloc(max_free ? max_free : 1, sizeof(*p->free_pipes));
        if (!p->free_pipes)
                p->max_free = 0;
}

void pipe_pool_deinit(struct pipe_pool *p)
{
        for (size_t i = 0; i < p->n_free; i++) {
                close(p->free_pipes[i][0]);
                close(p->free_pipes[i][1]);
        }
        free(p->free_pipes);
        p->free_pipes = NULL;
        p->n_free = 0;
}

int pipe_pool_get(struct pipe_pool *p, int ret[2])
{
        int size;

        if (p->in_use >= p->max_in_use)
                return -ENOBUFS;
        if (p->n_free) {
                p->n_free--;
                ret[0] = p->free_pipes[p->n_free][0];
                ret[1] = p->free_pipes[p->n_free][1];
                p->in_use++;
                return 0;
        }
        if (pipe2(ret, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        /* The relay counts bytes in the pipe against this capacity: it is what makes splice's
         * EAGAIN unambiguous (socket empty, not pipe full). */
        size = fcntl(ret[0], F_GETPIPE_SZ);
        if (size > 0)
                p->pipe_size = size;
        p->in_use++;
        return 0;
}

void pipe_pool_put(struct pipe_pool *p, int fds[2], bool empty)
{
        if (fds[0] < 0)
                return;
        p->in_use--;
        if (empty && p->n_free < p->max_free) {
                p->free_pipes[p->n_free][0] = fds[0];
                p->free_pipes[p->n_free][1] = fds[1];
                p->n_free++;
        } else {
                close(fds[0]);
                close(fds[1]);
        }
        fds[0] = fds[1] = -1;
}
