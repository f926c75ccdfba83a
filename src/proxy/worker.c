/*
 * Workers and capture listeners; see worker.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/listen.h"
#include "common/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100

static void resume_cb(struct loop *l, struct loop_timer *t)
{
        struct listener *ls = container_of(t, struct listener, resume_timer);

        /* Still no room in epoll: try again later rather than stop accepting for good. */
        if (ls->fd >= 0 && loop_watch_set(l, &ls->watch, EPOLLIN) < 0 &&
            loop_timer_arm(l, &ls->resume_timer, ACCEPT_PAUSE_MS, resume_cb) < 0)
                log_error("accept on port %s: cannot resume accepting (epoll_ctl and timer both failed)",
                          ls->direction == RELAY_OUTBOUND ? "outbound" : "inbound");
}

static void accept_cb(struct loop *l, struct loop_watch *wt, uint32_t revents)
{
        struct listener *ls = container_of(wt, struct listener, watch);

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_storage peer;
                socklen_t len = sizeof(peer);
                int fd = accept4(ls->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* Out of fds: stop accepting for a moment instead of spinning on a
                                 * listener that stays readable. Pending clients wait in the backlog. */
                                metrics_accept_paused(ls->w->metrics);
                                log_warn("accept on port %s: %s; pausing accepts for %d ms",
                                         ls->direction == RELAY_OUTBOUND ? "outbound" : "inbound", strerror(errno),
                                         ACCEPT_PAUSE_MS);
                                /* Without the timer the listener would stay paused for good:
                                 * keep accepting (and failing) rather than that. */
                                if (loop_timer_arm(l, &ls->resume_timer, ACCEPT_PAUSE_MS, resume_cb) == 0)
                                        loop_watch_set(l, &ls->watch, 0);
                        }
                        return;
                }
                relay_start(ls->w, ls->direction, fd, &peer);
        }
}

static int listener_open(struct worker *w, struct listener *ls, enum relay_direction dir, unsigned port,
                         bool transparent, char *err, size_t errlen)
{
        int r;

        ls->w = w;
        ls->direction = dir;
        ls->watch = (struct loop_watch)LOOP_WATCH_NULL;
        ls->resume_timer = (struct loop_timer)LOOP_TIMER_NULL;
        /* SO_REUSEPORT would let another process of the proxy UID listen on the same port
         * without an error and silently take a share of the pod's traffic: the first worker
         * makes sure nobody listens there yet. */
        if (w->index == 0) {
                r = port_check_unused(port, err, errlen);
                if (r < 0)
                        return r;
        }
        ls->fd = listen_tcp(NULL, port, true, transparent, err, errlen);
        if (ls->fd < 0)
                return ls->fd;
        r = loop_watch_add(w->loop, &ls->watch, ls->fd, EPOLLIN, accept_cb);
        if (r < 0)
                snprintf(err, errlen, "epoll_ctl for port %u: %s", port, strerror(-r));
        return r;
}

int worker_init(struct worker *w, struct proxy *p, unsigned index, char *err, size_t errlen)
{
        const struct proxy_settings *s = &p->settings;
        int r;

        memset(w, 0, sizeof(*w));
        w->proxy = p;
        w->settings = s;
        w->metrics = p->metrics;
        w->index = index;
        w->outbound.fd = w->inbound.fd = -1;
        pthread_mutex_init(&w->lock, NULL);
        /* Pipes in flight are bounded per worker; beyond, flows copy. */
        pipe_pool_init(&w->pipes, 256, 8192);
        fd_reserve_init(&w->spare, 1);
        w->scratch = malloc(RELAY_SCRATCH_SIZE);
        if (!w->scratch) {
                snprintf(err, errlen, "allocating the relay buffer: %s", strerror(ENOMEM));
                return -ENOMEM;
        }
        r = loop_new(&w->loop);
        if (r < 0) {
                snprintf(err, errlen, "creating the event loop: %s", strerror(-r));
                return r;
        }
        r = listener_open(w, &w->outbound, RELAY_OUTBOUND, s->outbound_port, false, err, errlen);
        if (r < 0)
                return r;
        return listener_open(w, &w->inbound, RELAY_INBOUND, s->inbound_port, s->tproxy, err, errlen);
}

static void listener_close(struct worker *w, struct listener *ls)
{
        loop_watch_del(w->loop, &ls->watch);
        if (w->loop)
                loop_timer_cancel(w->loop, &ls->resume_timer);
        if (ls->fd >= 0)
                close(ls->fd);
        ls->fd = -1;
}

void worker_close_inbound(struct worker *w)
{
        listener_close(w, &w->inbound);
}

void worker_deinit(struct worker *w)
{
        free(w->scratch);
        w->scratch = NULL;
        if (!w->loop)
                return;
        listener_close(w, &w->outbound);
        listener_close(w, &w->inbound);
        while (w->relays)
                relay_abort(w->relays, RELAY_END_SHUTDOWN);
        /* The relays' memory is freed by the reaps queued above. */
        loop_stop(w->loop);
        pipe_pool_deinit(&w->pipes);
        fd_reserve_deinit(&w->spare);
        w->loop = loop_free(w->loop);
        pthread_mutex_destroy(&w->lock);
}
