/*
 * A worker: one thread, one event loop, its own capture listeners (SO_REUSEPORT, so the
 * kernel spreads connections over workers without a shared accept lock) and the relays it
 * accepted. Nothing in a worker is touched by another thread except through loop_post() and
 * the metrics' atomic counters.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "proxy/fd_reserve.h"
#include "proxy/pipe_pool.h"
#include "proxy/relay.h"

struct proxy_settings;
struct metrics;
struct proxy;

struct listener {
        struct worker *w;
        struct loop_watch watch;
        struct loop_timer resume_timer;         /* accept paused on EMFILE/ENFILE */
        int fd;
        enum relay_direction direction;
};

struct worker {
        struct proxy *proxy;
        const struct proxy_settings *settings;
        struct metrics *metrics;
        unsigned index;
        pthread_t thread;
        struct loop *loop;
        struct pipe_pool pipes;
        char *scratch;                          /* RELAY_SCRATCH_SIZE bytes, for copied reads */
        /* One spare fd: a connection accepted with the last free fd still gets its upstream
         * socket (the spare is given up for it, and taken back when a relay closes), instead
         * of a reset. Accepting then meets EMFILE and pauses, as it should. */
        struct fd_reserve spare;
        struct listener outbound, inbound;
        pthread_mutex_t lock;                   /* guards the list below against /connections */
        struct relay *relays;                   /* doubly linked */
        uint64_t next_id;
};

/*
 * Creates the worker's loop and its capture listeners. Returns 0, or a negative errno with
 * what failed (bind, listen) in err.
 */
int worker_init(struct worker *w, struct proxy *p, unsigned index, char *err, size_t errlen);
void worker_deinit(struct worker *w);

/* Stops accepting on the inbound listener (drain); outbound keeps working. Worker thread. */
void worker_close_inbound(struct worker *w);
