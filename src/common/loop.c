/*
 * epoll + min-heap timers + deferred reaping; see loop.h. Level-triggered epoll: every watch
 * states exactly the readiness it can act on now (the relay drops EPOLLIN while the other
 * side is backed up), so a busy fd cannot starve others and nothing spins. Cross-thread
 * posts go through an eventfd and a mutex-protected queue.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"

#define LOOP_MAX_EVENTS 256

struct loop_deferred {
        loop_reap_fn fn;
        void *data;
};

struct loop {
        int epfd;
        int wakefd;
        struct loop_watch wake_watch;
        uint64_t now_ms;
        atomic_int stop;               /* set by loop_stop(), from any thread */

        struct loop_timer **heap;       /* 1-based; heap[0] unused */
        size_t heap_n, heap_cap;

        struct loop_deferred *reap;
        size_t reap_n, reap_cap;

        pthread_mutex_t post_lock;
        struct loop_deferred *posted;
        size_t posted_n, posted_cap;
};

static uint64_t monotonic_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now_ms(const struct loop *l)
{
        return l->now_ms;
}

static int deferred_push(struct loop_deferred **v, size_t *n, size_t *cap, loop_reap_fn fn, void *data)
{
        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                struct loop_deferred *nv = realloc(*v, nc * sizeof(**v));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = nc;
        }
        (*v)[(*n)++] = (struct loop_deferred){ .fn = fn, .data = data };
        return 0;
}

static void run_posted(struct loop *l)
{
        struct loop_deferred *v;
        size_t n;

        pthread_mutex_lock(&l->post_lock);
        v = l->posted;
        n = l->posted_n;
        l->posted = NULL;
        l->posted_n = l->posted_cap = 0;
        pthread_mutex_unlock(&l->post_lock);
        for (size_t i = 0; i < n; i++)
                v[i].fn(v[i].data);
        free(v);
}

static void wake_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        uint64_t v;

        while (read(w->fd, &v, sizeof(v)) > 0)
                ;
        run_posted(l);
}

int loop_new(struct loop **ret)
{
        struct loop *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        l->wakefd = -1;
        l->wake_watch = (struct loop_watch)LOOP_WATCH_NULL;
        pthread_mutex_init(&l->post_lock, NULL);
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                r = -errno;
                goto fail;
        }
        l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->wakefd < 0) {
                r = -errno;
                goto fail;
        }
        r = loop_watch_add(l, &l->wake_watch, l->wakefd, EPOLLIN, wake_cb);
        if (r < 0)
                goto fail;
        l->now_ms = monotonic_ms();
        *ret = l;
        return 0;
fail:
        loop_free(l);
        return r;
}

static void run_reaps(struct loop *l);

struct loop *loop_free(struct loop *l)
{
        if (!l)
                return NULL;
        /* Objects queued for reaping are freed, not leaked. */
        run_reaps(l);
        if (l->epfd >= 0)
                close(l->epfd);
        if (l->wakefd >= 0)
                close(l->wakefd);
        free(l->heap);
        free(l->reap);
        free(l->posted);
        pthread_mutex_destroy(&l->post_lock);
        free(l);
        return NULL;
}

int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_watch_fn cb)
{
        struct epoll_event ev = { .events = events, .data.ptr = w };

        w->fd = fd;
        w->cb = cb;
        w->events = events;
        w->in_epoll = false;
        if (events) {
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return -errno;
                w->in_epoll = true;
        }
        w->added = true;
        return 0;
}

int loop_watch_set(struct loop *l, struct loop_watch *w, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = w };

        if (!w->added || w->events == events)
                return 0;
        if (events == 0) {
                (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
                w->in_epoll = false;
        } else if (epoll_ctl(l->epfd, w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) < 0) {
                return -errno;
        } else {
                w->in_epoll = true;
        }
        w->events = events;
        return 0;
}

void loop_watch_del(struct loop *l, struct loop_watch *w)
{
        if (!w->added)
                return;
        if (w->in_epoll)
                (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
        w->added = false;
        w->in_epoll = false;
        w->events = 0;
}

/* ---- timers: a binary min-heap on when_ms ---- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
        struct loop_timer *t = l->heap[a];

        l->heap[a] = l->heap[b];
        l->heap[b] = t;
        l->heap[a]->heap_index = a;
        l->heap[b]->heap_index = b;
}

static void heap_up(struct loop *l, size_t i)
{
        while (i > 1 && l->heap[i / 2]->when_ms > l->heap[i]->when_ms) {
                heap_swap(l, i, i / 2);
                i /= 2;
        }
}

static void heap_down(struct loop *l, size_t i)
{
        for (;;) {
                size_t m = i, c = 2 * i;

                if (c <= l->heap_n && l->heap[c]->when_ms < l->heap[m]->when_ms)
                        m = c;
                if (c + 1 <= l->heap_n && l->heap[c + 1]->when_ms < l->heap[m]->when_ms)
                        m = c + 1;
                if (m == i)
                        return;
                heap_swap(l, i, m);
                i = m;
        }
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
        size_t i = t->heap_index;

        if (!i)
                return;
        heap_swap(l, i, l->heap_n);
        l->heap_n--;
        t->heap_index = 0;
        if (i <= l->heap_n) {
                heap_up(l, i);
                heap_down(l, i);
        }
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms, loop_timer_fn cb)
{
        loop_timer_cancel(l, t);
        if (l->heap_n + 1 >= l->heap_cap) {
                size_t nc = l->heap_cap ? l->heap_cap * 2 : 256;
                struct loop_timer **nh = realloc(l->heap, nc * sizeof(*nh));
                if (!nh)
                        return -ENOMEM;
                l->heap = nh;
                l->heap_cap = nc;
        }
        t->when_ms = l->now_ms + delay_ms;
        t->cb = cb;
        l->heap[++l->heap_n] = t;
        t->heap_index = l->heap_n;
        heap_up(l, l->heap_n);
        return 0;
}

int loop_reap_later(struct loop *l, loop_reap_fn fn, void *data)
{
        return deferred_push(&l->reap, &l->reap_n, &l->reap_cap, fn, data);
}

int loop_post(struct loop *l, loop_reap_fn fn, void *data)
{
        uint64_t one = 1;
        int r;

        pthread_mutex_lock(&l->post_lock);
        r = deferred_push(&l->posted, &l->posted_n, &l->posted_cap, fn, data);
        pthread_mutex_unlock(&l->post_lock);
        if (r == 0 && write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                r = -errno;
        return r;
}

void loop_stop(struct loop *l)
{
        uint64_t one = 1;

        atomic_store(&l->stop, 1);
        if (write(l->wakefd, &one, sizeof(one)) < 0)
                return;
}

static void run_reaps(struct loop *l)
{
        /* A reap may queue another; take the list each round. */
        while (l->reap_n) {
                struct loop_deferred *v = l->reap;
                size_t n = l->reap_n;

                l->reap = NULL;
                l->reap_n = l->reap_cap = 0;
                for (size_t i = 0; i < n; i++)
                        v[i].fn(v[i].data);
                free(v);
        }
}

/*
 * One round: due timers, reaps, one epoll_wait (for at most max_wait_ms, -1: until the next
 * timer), the callbacks, reaps. Returns 0 or a negative errno from epoll_wait.
 */
static int loop_round(struct loop *l, int max_wait_ms)
{
        struct epoll_event ev[LOOP_MAX_EVENTS];
        int timeout = max_wait_ms, n;

        l->now_ms = monotonic_ms();
        while (l->heap_n && l->heap[1]->when_ms <= l->now_ms) {
                struct loop_timer *t = l->heap[1];
                loop_timer_cancel(l, t);
                t->cb(l, t);
        }
        run_reaps(l);
        if (l->heap_n) {
                uint64_t d = l->heap[1]->when_ms - l->now_ms;
                int due = d > 60000 ? 60000 : (int)d;
                if (timeout < 0 || due < timeout)
                        timeout = due;
        }
        n = epoll_wait(l->epfd, ev, LOOP_MAX_EVENTS, timeout);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        l->now_ms = monotonic_ms();
        for (int i = 0; i < n; i++) {
                struct loop_watch *w = ev[i].data.ptr;
                /* A watch deleted or parked earlier in this round is skipped. */
                if (w->added && w->in_epoll)
                        w->cb(l, w, ev[i].events);
        }
        run_reaps(l);
        return 0;
}

int loop_run(struct loop *l)
{
        while (!atomic_load(&l->stop)) {
                int r = loop_round(l, -1);
                if (r < 0)
                        return r;
        }
        /* A stop ends this run only; the loop can be run again. */
        atomic_store(&l->stop, 0);
        return 0;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
        return loop_round(l, max_wait_ms < 0 ? 0 : max_wait_ms);
}
