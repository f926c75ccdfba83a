/*
 * A few spare file descriptors (open on /dev/null) kept back for when the process runs out.
 * The health, metrics and admin endpoints must answer precisely when the relays have used
 * every fd the limit allows (that is when an operator looks); an endpoint that hits EMFILE
 * gives back spares and accepts again. libev's and nginx's "reserve fd" idea, for serving
 * rather than shedding. Not thread-safe: one owner per reserve (the admin's loop, and each
 * worker's, whose one spare gives an accepted connection its upstream socket).
 */
#pragma once

#include <stdbool.h>

#define FD_RESERVE_MAX 8

struct fd_reserve {
        int fds[FD_RESERVE_MAX];
        unsigned n;             /* held now */
        unsigned want;          /* held when nothing is borrowed */
};

/* Opens up to want (at most FD_RESERVE_MAX) spares; fewer when fds are short already. */
void fd_reserve_init(struct fd_reserve *r, unsigned want);
/* Closes k spares, making room for k new fds. False (and closes none) when fewer are held. */
bool fd_reserve_release(struct fd_reserve *r, unsigned k);
/* Takes spares back up to want; stops quietly at the first fd it cannot get. */
void fd_reserve_refill(struct fd_reserve *r);
void fd_reserve_deinit(struct fd_reserve *r);
