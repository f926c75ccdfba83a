/*
 * The relay; see relay.h for the design. Each event on either socket pumps both flows as
 * far as they go, then sets each socket's epoll interest to exactly what the flows wait for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/access_log.h"
#include "proxy/metrics.h"
#include "proxy/origdst.h"
#include "proxy/proxy.h"
#include "proxy/relay.h"
#include "proxy/worker.h"

#define RELAY_BUFFER_SIZE 16384

static const char *const relay_end_strs[_RELAY_END_MAX] = {
        [RELAY_END_NONE] = "none",
        [RELAY_END_DONE] = "done",
        [RELAY_END_CLIENT_RESET] = "downstream_reset",
        [RELAY_END_UPSTREAM_RESET] = "upstream_reset",
        [RELAY_END_CONNECT_REFUSED] = "connect_refused",
        [RELAY_END_CONNECT_TIMEOUT] = "connect_timeout",
        [RELAY_END_CONNECT_UNREACHABLE] = "connect_unreachable",
        [RELAY_END_CONNECT_ERROR] = "connect_error",
        [RELAY_END_IDLE_TIMEOUT] = "idle_timeout",
        [RELAY_END_LOOP] = "loop",
        [RELAY_END_NO_ORIGINAL_DST] = "no_original_dst",
        [RELAY_END_OVERFLOW] = "overflow",
        [RELAY_END_ERROR] = "local_error",
        [RELAY_END_SHUTDOWN] = "shutdown",
};

const char *relay_end_str(enum relay_end e)
{
        return e < _RELAY_END_MAX && relay_end_strs[e] ? relay_end_strs[e] : "unknown";
}

const char *relay_end_flag(enum relay_end e)
{
        switch (e) {
        case RELAY_END_CONNECT_REFUSED:
        case RELAY_END_CONNECT_UNREACHABLE:
        case RELAY_END_CONNECT_ERROR:
        case RELAY_END_CONNECT_TIMEOUT:
                /* Envoy reports a failed or timed-out upstream connect as UF. */
                return "UF";
        case RELAY_END_OVERFLOW:
                return "UO";
        case RELAY_END_LOOP:
        case RELAY_END_NO_ORIGINAL_DST:
                return "NR";
        case RELAY_END_UPSTREAM_RESET:
                return "UR";
        case RELAY_END_CLIENT_RESET:
                return "DR";
        case RELAY_END_IDLE_TIMEOUT:
                return "DI";
        default:
                return "-";
        }
}

static void reset_fd(int fd)
{
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        if (fd < 0)
                return;
        /* SO_LINGER 0 makes close() send RST: how a reset is carried to the other side. */
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
}

static enum metrics_direction metrics_dir(const struct relay *r)
{
        return r->direction == RELAY_OUTBOUND ? METRICS_OUTBOUND : METRICS_INBOUND;
}

/*
 * Istio's series are keyed by response flags, known once the upstream connect is decided:
 * a connected relay is counted opened then (flags "-"); one that never connected is counted
 * opened and closed together under its flag when it ends, as Envoy does.
 */
static void relay_count_open(struct relay *r)
{
        r->series = metrics_series_get(r->w->metrics, metrics_dir(r), (const struct sockaddr *)&r->orig_dst, "-");
        r->counted_open = true;
        metrics_series_opened(r->series);
        metrics_active_inc(r->w->metrics, metrics_dir(r));
}

static void relay_count_close(struct relay *r)
{
        if (!r->counted_open) {
                const struct sockaddr *dst = r->orig_dst.ss_family ? (const struct sockaddr *)&r->orig_dst : NULL;
                struct metrics_series *s = metrics_series_get(r->w->metrics, metrics_dir(r), dst,
                                                              relay_end_flag(r->end));
                metrics_series_opened(s);
                metrics_series_closed(s);
                return;
        }
        metrics_series_closed(r->series);
        metrics_active_dec(r->w->metrics, metrics_dir(r));
}

static void relay_free(void *data)
{
        struct relay *r = data;

        free(r->flow[0].buf);
        free(r->flow[1].buf);
        free(r);
}

/* Counts, unlinks and closes. `reset_client`/`reset_upstream` send RST instead of FIN. */
static void relay_finish(struct relay *r, enum relay_end why, bool reset_client, bool reset_upstream)
{
        struct worker *w = r->w;

        if (r->closed)
                return;
        r->closed = true;
        r->end = why;
        loop_watch_del(w->loop, &r->client_watch);
        loop_watch_del(w->loop, &r->upstream_watch);
        loop_timer_cancel(w->loop, &r->connect_timer);
        loop_timer_cancel(w->loop, &r->idle_timer);
        for (int i = 0; i < 2; i++)
                pipe_pool_put(&w->pipes, r->flow[i].pipe, r->flow[i].in_pipe == 0);
        if (reset_client)
                reset_fd(r->client_fd);
        else
                close(r->client_fd);
        if (r->upstream_fd >= 0) {
                if (reset_upstream)
                        reset_fd(r->upstream_fd);
                else
                        close(r->upstream_fd);
        }
        r->client_fd = r->upstream_fd = -1;

        relay_count_close(r);
        if (w->settings->access_log != PROXY_ACCESS_LOG_OFF)
                access_log_write(r, w->settings->access_log == PROXY_ACCESS_LOG_JSON, loop_now_ms(w->loop));

        pthread_mutex_lock(&w->lock);
        if (r->prev)
                r->prev->next = r->next;
        else
                w->relays = r->next;
        if (r->next)
                r->next->prev = r->prev;
        pthread_mutex_unlock(&w->lock);
        atomic_fetch_sub(&w->proxy->active, 1);
        if (loop_reap_later(w->loop, relay_free, r) < 0)
                relay_free(r);  /* nothing refers to r any more */
}

void relay_abort(struct relay *r, enum relay_end why)
{
        relay_finish(r, why, true, true);
}

enum pump_result {
        PUMP_WAIT = 0,          /* blocked; want_in/want_out say on what */
        PUMP_DONE,              /* source at EOF and everything delivered, SHUT_WR sent */
        PUMP_SRC_RESET,
        PUMP_DST_RESET,
        PUMP_LOCAL_ERROR,
};

static bool is_reset(int e)
{
        return e == ECONNRESET || e == EPIPE || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH;
}

/* Moves bytes from src to dst until one of them would block. */
static enum pump_result pump(struct relay *r, struct relay_flow *f, int src, int dst)
{
        struct worker *w = r->w;
        uint64_t moved = 0;
        enum pump_result res;

        f->want_in = f->want_out = false;
        if (f->shut)
                return PUMP_DONE;
        for (;;) {
                /* 1. Deliver what is in flight. */
                while (f->in_pipe > 0 || f->buf_off < f->buf_len) {
                        ssize_t n;

                        if (f->in_pipe > 0)
                                n = splice(f->pipe[0], NULL, dst, NULL, f->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                        else
                                n = write(dst, f->buf + f->buf_off, f->buf_len - f->buf_off);
                        if (n > 0) {
                                if (f->in_pipe > 0) {
                                        f->in_pipe -= (size_t)n;
                                        metrics_add_spliced(w->metrics, (uint64_t)n);
                                } else {
                                        f->buf_off += (size_t)n;
                                        metrics_add_copied(w->metrics, (uint64_t)n);
                                }
                                atomic_fetch_add_explicit(&f->bytes, (uint64_t)n, memory_order_relaxed);
                                moved += (uint64_t)n;
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN) {
                                f->want_out = true;
                                res = PUMP_WAIT;
                                goto out;
                        }
                        res = n < 0 && !is_reset(errno) ? PUMP_LOCAL_ERROR : PUMP_DST_RESET;
                        goto out;
                }
                f->buf_off = f->buf_len = 0;
                /* An empty pipe goes back to the pool: idle connections hold none. */
                if (f->pipe[0] >= 0)
                        pipe_pool_put(&w->pipes, f->pipe, true);

                /* 2. Source finished: pass the FIN on. */
                if (f->src_eof) {
                        if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) {
                                res = PUMP_DST_RESET;
                                goto out;
                        }
                        f->shut = true;
                        res = PUMP_DONE;
                        goto out;
                }

                /* 3. Read more; the pipe is empty here, so EAGAIN means the socket is. */
                if (!f->use_buffer && f->pipe[0] < 0 && pipe_pool_get(&w->pipes, f->pipe) < 0)
                        f->use_buffer = true;
                if (f->use_buffer && !f->buf) {
                        f->buf = malloc(RELAY_BUFFER_SIZE);
                        if (!f->buf) {
                                res = PUMP_LOCAL_ERROR;
                                goto out;
                        }
                }
                for (;;) {
                        ssize_t n;

                        if (!f->use_buffer)
                                n = splice(src, NULL, f->pipe[1], NULL, (size_t)w->pipes.pipe_size,
                                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                        else
                                n = read(src, f->buf, RELAY_BUFFER_SIZE);
                        if (n > 0) {
                                if (!f->use_buffer)
                                        f->in_pipe = (size_t)n;
                                else
                                        f->buf_len = (size_t)n;
                                break;
                        }
                        if (n == 0) {
                                f->src_eof = true;
                                break;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* Nothing to read: the empty pipe goes back, so an idle flow
                                 * holds no pipe (two fds per connection, not six). */
                                if (f->pipe[0] >= 0)
                                        pipe_pool_put(&w->pipes, f->pipe, true);
                                f->want_in = true;
                                res = PUMP_WAIT;
                                goto out;
                        }
                        if (!f->use_buffer && (errno == EINVAL || errno == ENOSYS)) {
                                /* Not spliceable (never for TCP today): buffers from now on. */
                                pipe_pool_put(&w->pipes, f->pipe, true);
                                f->use_buffer = true;
                                f->buf = f->buf ? f->buf : malloc(RELAY_BUFFER_SIZE);
                                if (!f->buf) {
                                        res = PUMP_LOCAL_ERROR;
                                        goto out;
                                }
                                continue;
                        }
                        res = is_reset(errno) ? PUMP_SRC_RESET : PUMP_LOCAL_ERROR;
                        goto out;
                }
        }
out:
        if (moved) {
                r->last_activity_ms = loop_now_ms(w->loop);
                if (f == &r->flow[RELAY_FLOW_UP])
                        metrics_series_add_received(r->series, moved);
                else
                        metrics_series_add_sent(r->series, moved);
        }
        return res;
}

static void relay_update_interest(struct relay *r)
{
        struct relay_flow *up = &r->flow[RELAY_FLOW_UP], *down = &r->flow[RELAY_FLOW_DOWN];
        uint32_t c = (up->want_in ? EPOLLIN : 0) | (down->want_out ? EPOLLOUT : 0);
        uint32_t u = (down->want_in ? EPOLLIN : 0) | (up->want_out ? EPOLLOUT : 0);

        loop_watch_set(r->w->loop, &r->client_watch, c);
        loop_watch_set(r->w->loop, &r->upstream_watch, u);
}

static void relay_run(struct relay *r)
{
        enum pump_result a, b;

        a = pump(r, &r->flow[RELAY_FLOW_UP], r->client_fd, r->upstream_fd);
        if (a == PUMP_SRC_RESET)
                return relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
        if (a == PUMP_DST_RESET)
                return relay_finish(r, RELAY_END_UPSTREAM_RESET, true, false);
        if (a == PUMP_LOCAL_ERROR)
                return relay_abort(r, RELAY_END_ERROR);
        b = pump(r, &r->flow[RELAY_FLOW_DOWN], r->upstream_fd, r->client_fd);
        if (b == PUMP_SRC_RESET)
                return relay_finish(r, RELAY_END_UPSTREAM_RESET, true, false);
        if (b == PUMP_DST_RESET)
                return relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
        if (b == PUMP_LOCAL_ERROR)
                return relay_abort(r, RELAY_END_ERROR);
        if (a == PUMP_DONE && b == PUMP_DONE)
                return relay_finish(r, RELAY_END_DONE, false, false);
        relay_update_interest(r);
}

static int socket_error(int fd)
{
        int e = 0;
        socklen_t len = sizeof(e);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                return errno;
        return e;
}

static void idle_cb(struct loop *l, struct loop_timer *t)
{
        struct relay *r = container_of(t, struct relay, idle_timer);
        uint64_t idle = r->w->settings->idle_timeout_ms, since = loop_now_ms(l) - r->last_activity_ms;

        if (since >= idle) {
                relay_finish(r, RELAY_END_IDLE_TIMEOUT, false, false);
                return;
        }
        /* Re-armed lazily: activity only stamps last_activity_ms, it never touches the heap. */
        loop_timer_arm(l, t, idle - since, idle_cb);
}

static void relay_connected(struct relay *r)
{
        struct worker *w = r->w;

        r->connecting = false;
        loop_timer_cancel(w->loop, &r->connect_timer);
        relay_count_open(r);
        r->last_activity_ms = loop_now_ms(w->loop);
        if (w->settings->idle_timeout_ms)
                loop_timer_arm(w->loop, &r->idle_timer, w->settings->idle_timeout_ms, idle_cb);
        relay_run(r);
}

static enum relay_end connect_end(int e)
{
        switch (e) {
        case ECONNREFUSED:
                return RELAY_END_CONNECT_REFUSED;
        case ETIMEDOUT:
                return RELAY_END_CONNECT_TIMEOUT;
        case ENETUNREACH:
        case EHOSTUNREACH:
                return RELAY_END_CONNECT_UNREACHABLE;
        default:
                return RELAY_END_CONNECT_ERROR;
        }
}

static void upstream_cb(struct loop *l, struct loop_watch *wt, uint32_t revents)
{
        struct relay *r = container_of(wt, struct relay, upstream_watch);

        if (r->connecting) {
                int e = socket_error(r->upstream_fd);
                if (e) {
                        metrics_connect_failed(r->w->metrics, metrics_connect_failure_from_errno(e));
                        relay_finish(r, connect_end(e), true, false);
                        return;
                }
                relay_connected(r);
                return;
        }
        relay_run(r);
}

static void client_cb(struct loop *l, struct loop_watch *wt, uint32_t revents)
{
        struct relay *r = container_of(wt, struct relay, client_watch);

        if (r->connecting) {
                /* Only a reset or hang-up is of interest before the upstream is there. */
                if (revents & (EPOLLERR | EPOLLHUP))
                        relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
                else
                        loop_watch_set(l, &r->client_watch, 0);
                return;
        }
        relay_run(r);
}

static void connect_timeout_cb(struct loop *l, struct loop_timer *t)
{
        struct relay *r = container_of(t, struct relay, connect_timer);

        metrics_connect_failed(r->w->metrics, METRICS_CONNECT_TIMEOUT);
        relay_finish(r, RELAY_END_CONNECT_TIMEOUT, true, true);
}

static void tune_socket(int fd)
{
        int one = 1;

        /* Bytes are relayed as they come; Nagle would only add latency on top of the peers'. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The inbound passthrough source: 127.0.0.6 (::6), which the capture rules let through. */
static void passthrough_source(int family, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        memset(ret, 0, sizeof(*ret));
        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
                s6->sin6_family = AF_INET6;
                s6->sin6_addr.s6_addr[15] = 6;
                *ret_len = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
                s4->sin_family = AF_INET;
                s4->sin_addr.s_addr = htonl(0x7f000006);
                *ret_len = sizeof(*s4);
        }
}

static socklen_t sockaddr_len(const struct sockaddr_storage *sa)
{
        return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

void relay_start(struct worker *w, enum relay_direction dir, int client_fd, const struct sockaddr_storage *client_addr)
{
        struct relay *r = calloc(1, sizeof(*r));
        enum relay_end fail = RELAY_END_NONE;
        int k;

        atomic_fetch_add(&w->proxy->active, 1);
        if (!r) {
                reset_fd(client_fd);
                atomic_fetch_sub(&w->proxy->active, 1);
                return;
        }
        r->w = w;
        r->id = ++w->next_id;
        r->direction = dir;
        r->client_fd = client_fd;
        r->upstream_fd = -1;
        r->client_addr = *client_addr;
        r->client_watch = (struct loop_watch)LOOP_WATCH_NULL;
        r->upstream_watch = (struct loop_watch)LOOP_WATCH_NULL;
        r->connect_timer = (struct loop_timer)LOOP_TIMER_NULL;
        r->idle_timer = (struct loop_timer)LOOP_TIMER_NULL;
        for (int i = 0; i < 2; i++)
                r->flow[i].pipe[0] = r->flow[i].pipe[1] = -1;
        r->started_ms = r->last_activity_ms = loop_now_ms(w->loop);
        pthread_mutex_lock(&w->lock);
        r->next = w->relays;
        if (w->relays)
                w->relays->prev = r;
        w->relays = r;
        pthread_mutex_unlock(&w->lock);

        if (loop_watch_add(w->loop, &r->client_watch, client_fd, 0, client_cb) < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        k = origdst_get(client_fd, dir == RELAY_INBOUND && w->settings->tproxy, &r->orig_dst);
        if (k < 0) {
                fail = RELAY_END_NO_ORIGINAL_DST;
                goto fail;
        }
        if (atomic_load(&w->proxy->active) > w->settings->max_connections) {
                fail = RELAY_END_OVERFLOW;
                goto fail;
        }
        if (proxy_is_self(w->proxy, &r->orig_dst)) {
                fail = RELAY_END_LOOP;
                goto fail;
        }

        r->upstream_addr = r->orig_dst;
        r->upstream_fd = socket(r->orig_dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r->upstream_fd < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        tune_socket(client_fd);
        tune_socket(r->upstream_fd);
        if (dir == RELAY_INBOUND) {
                struct sockaddr_storage src;
                socklen_t len;

                passthrough_source(r->orig_dst.ss_family, &src, &len);
                /* Let connect() pick the source port knowing the destination, as Envoy does;
                 * a port chosen at bind() is held in TIME_WAIT against every destination, and
                 * a busy pod runs out of them. */
                (void)setsockopt(r->upstream_fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &(int){ 1 }, sizeof(int));
                if (bind(r->upstream_fd, (struct sockaddr *)&src, len) < 0) {
                        log_debug("relay %lu: binding the passthrough source: %s", (unsigned long)r->id, strerror(errno));
                        fail = RELAY_END_CONNECT_ERROR;
                        goto fail;
                }
        }
        if (loop_watch_add(w->loop, &r->upstream_watch, r->upstream_fd, EPOLLOUT, upstream_cb) < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        r->connecting = true;
        if (connect(r->upstream_fd, (struct sockaddr *)&r->orig_dst, sockaddr_len(&r->orig_dst)) < 0 &&
            errno != EINPROGRESS) {
                fail = connect_end(errno);
                metrics_connect_failed(w->metrics, metrics_connect_failure_from_errno(errno));
                goto fail;
        }
        /* Watch the client for a reset while connecting. */
        loop_watch_set(w->loop, &r->client_watch, EPOLLRDHUP);
        loop_timer_arm(w->loop, &r->connect_timer, w->settings->connect_timeout_ms, connect_timeout_cb);
        return;
fail:
        relay_finish(r, fail, true, true);
}
