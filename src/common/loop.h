/*
 * The per-worker event loop: epoll for fds, a binary min-heap for timers, and a reap list so
 * that objects are freed after dispatch, never inside their own callback (Redis's
 * freeClientAsync). One loop per worker thread; nothing here is shared between threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_watch;
struct loop_timer;

typedef void (*loop_watch_fn)(struct loop *l, struct loop_watch *w, uint32_t revents);
typedef void (*loop_timer_fn)(struct loop *l, struct loop_timer *t);
typedef void (*loop_reap_fn)(void *data);

/* Embedded in the owner's struct; the callback finds the owner with container_of. */
struct loop_watch {
        int fd;
        uint32_t events;        /* EPOLLIN / EPOLLOUT / ... wanted now; 0 when idle */
        bool added;             /* the owner registered it (loop_watch_add, not yet _del) */
        bool in_epoll;          /* in the epoll set: false while events == 0 */
        loop_watch_fn cb;
};

struct loop_timer {
        uint64_t when_ms;
        size_t heap_index;      /* 0: not armed; else 1-based position in the heap */
        loop_timer_fn cb;
};

#define LOOP_WATCH_NULL { .fd = -1, .events = 0, .added = false, .in_epoll = false, .cb = NULL }
#define LOOP_TIMER_NULL { .when_ms = 0, .heap_index = 0, .cb = NULL }

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

int loop_new(struct loop **ret);
struct loop *loop_free(struct loop *l);

/* Registers fd with the given interest (may be 0). Returns 0 or a negative errno. */
int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_watch_fn cb);
/*
 * Changes the interest; a no-op when unchanged. An fd with no interest leaves the epoll set,
 * because epoll reports EPOLLHUP and EPOLLERR whatever the interest, and a hung-up socket the
 * owner cannot act on yet would otherwise wake the loop in a spin.
 */
int loop_watch_set(struct loop *l, struct loop_watch *w, uint32_t events);
/* Unregisters (does not close the fd). Safe on a watch never added. */
void loop_watch_del(struct loop *l, struct loop_watch *w);

/* Arms (or re-arms) t to fire once after delay_ms. */
int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms, loop_timer_fn cb);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->heap_index != 0; }

/* Monotonic milliseconds, cached once per iteration. */
uint64_t loop_now_ms(const struct loop *l);

/* Calls fn(data) after the current dispatch round. Returns 0 or -ENOMEM. */
int loop_reap_later(struct loop *l, loop_reap_fn fn, void *data);

/* Runs until loop_stop(); returns 0 or a negative errno from epoll_wait. */
int loop_run(struct loop *l);
/*
 * Runs one round (due timers, one epoll_wait of at most max_wait_ms, the callbacks, the reaps)
 * and returns 0 or a negative errno: for tests that drive a loop step by step.
 */
int loop_run_once(struct loop *l, int max_wait_ms);
/* Makes loop_run() return after the current iteration; callable from any thread. */
void loop_stop(struct loop *l);
/* Wakes the loop from another thread and runs fn(data) in it (for drain, quit). */
int loop_post(struct loop *l, loop_reap_fn fn, void *data);
