/*
 * A bounded pool of pipes for splice(2). A relay direction holds a pipe only while bytes are
 * in flight, so idle connections hold none; returned empty pipes are kept for reuse up to the
 * pool's limit (HAProxy's pipe.c idea), the rest are closed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct pipe_pool {
        int (*free_pipes)[2];
        size_t n_free;
        size_t max_free;
        size_t in_use;
        size_t max_in_use;      /* beyond this, callers fall back to buffers */
        int pipe_size;          /* capacity of every pipe, bytes */
};

void pipe_pool_init(struct pipe_pool *p, size_t max_free, size_t max_in_use);
void pipe_pool_deinit(struct pipe_pool *p);
/* Returns 0 with a pipe in ret (read end, write end), -ENOBUFS over the limit, or -errno. */
int pipe_pool_get(struct pipe_pool *p, int ret[2]);
/* Gives a pipe back. A pipe that may hold data (empty == false) is closed, never reused. */
void pipe_pool_put(struct pipe_pool *p, int fds[2], bool empty);
