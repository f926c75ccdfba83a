/*
 * The relay; see relay.h for the design. An event pumps only the flow it concerns (a readable
 * client the up flow, a writable client the down flow, an error both), then each socket's
 * epoll interest is set to exactly what the flows wait for. In a keep-alive exchange the
 * interest never changes, so there is no epoll_ctl per request.
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
#include "proxy/conn.h"
#include "proxy/fd_reserve.h"
#include "proxy/metrics.h"
#include "proxy/origdst.h"
#include "proxy/preread.h"
#include "proxy/proxy.h"
#include "proxy/relay.h"
#include "proxy/tracker.h"
#include "proxy/worker.h"

_Static_assert((int)TRACKER_FROM_CLIENT == (int)RELAY_FLOW_UP && (int)TRACKER_FROM_UPSTREAM == (int)RELAY_FLOW_DOWN,
               "a tracker side is the flow's id");

/* A flow's share of one round before other connections get theirs. */
#define RELAY_ROUND_BYTES (256 * 1024)

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

/*
 * A failed connect's errno and what it means. A reset during the handshake is a refusal
 * (a peer that answers SYN with RST, or a listener whose backlog overflowed): the access log
 * said connect_error and the metrics said refused before this was one table.
 */
static const struct {
        int err;
        enum relay_end end;
} relay_connect_errnos[] = {
        { ECONNREFUSED, RELAY_END_CONNECT_REFUSED },
        { ECONNRESET, RELAY_END_CONNECT_REFUSED },
        { ETIMEDOUT, RELAY_END_CONNECT_TIMEOUT },
        { EHOSTUNREACH, RELAY_END_CONNECT_UNREACHABLE },
        { ENETUNREACH, RELAY_END_CONNECT_UNREACHABLE },
        { EHOSTDOWN, RELAY_END_CONNECT_UNREACHABLE },
        { ENETDOWN, RELAY_END_CONNECT_UNREACHABLE },
};

enum relay_end relay_end_from_connect_errno(int err)
{
        if (err < 0)
                err = -err;
        for (size_t i = 0; i < sizeof(relay_connect_errnos) / sizeof(relay_connect_errnos[0]); i++)
                if (relay_connect_errnos[i].err == err)
                        return relay_connect_errnos[i].end;
        return RELAY_END_CONNECT_ERROR;
}

enum metrics_connect_failure relay_end_connect_failure(enum relay_end e)
{
        switch (e) {
        case RELAY_END_CONNECT_REFUSED:
                return METRICS_CONNECT_REFUSED;
        case RELAY_END_CONNECT_TIMEOUT:
                return METRICS_CONNECT_TIMEOUT;
        case RELAY_END_CONNECT_UNREACHABLE:
                return METRICS_CONNECT_UNREACHABLE;
        default:
                return METRICS_CONNECT_OTHER;
        }
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

        free(r->flow[0].pending);
        free(r->flow[1].pending);
        free(r->preread);
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
        loop_watch_del(w->loop, &r->client.watch);
        loop_watch_del(w->loop, &r->upstream.watch);
        loop_timer_cancel(w->loop, &r->connect_timer);
        loop_timer_cancel(w->loop, &r->idle_timer);
        loop_timer_cancel(w->loop, &r->resume_timer);
        for (int i = 0; i < 2; i++)
                pipe_pool_put(&w->pipes, r->flow[i].pipe, r->flow[i].in_pipe == 0);
        conn_close(&r->client, reset_client);
        conn_close(&r->upstream, reset_upstream);
        tracker_end(&r->tracker);

        /* Two fds came free: the worker's spare first, if an accept took it. */
        fd_reserve_refill(&w->spare);
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

/* e: a positive errno from a transport. */
static bool is_reset(int e)
{
        return e == ECONNRESET || e == EPIPE || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH;
}

static enum pump_result write_error(int e)
{
        return is_reset(e) ? PUMP_DST_RESET : PUMP_LOCAL_ERROR;
}

static void count_moved(struct relay *r, struct relay_flow *f, size_t n, bool spliced, uint64_t *moved)
{
        if (spliced)
                metrics_add_spliced(r->w->metrics, n);
        else
                metrics_add_copied(r->w->metrics, n);
        atomic_fetch_add_explicit(&f->bytes, n, memory_order_relaxed);
        *moved += n;
}

/*
 * Delivers what is in flight (the pipe, or copied bytes the destination refused earlier).
 * Returns PUMP_DONE when nothing is left, PUMP_WAIT with want_out when dst is full.
 */
static enum pump_result deliver(struct relay *r, struct relay_flow *f, struct conn *dst, uint64_t *moved)
{
        while (f->in_pipe > 0 || f->pending_off < f->pending_len) {
                bool spliced = f->in_pipe > 0;
                ssize_t n;

                if (spliced)
                        n = conn_splice_out(dst, f->pipe[0], f->in_pipe);
                else
                        n = conn_send(dst, f->pending + f->pending_off, f->pending_len - f->pending_off);
                if (n > 0) {
                        if (spliced)
                                f->in_pipe -= (size_t)n;
                        else
                                f->pending_off += (size_t)n;
                        count_moved(r, f, (size_t)n, spliced, moved);
                        continue;
                }
                if (n == -EAGAIN) {
                        f->want_out = true;
                        return PUMP_WAIT;
                }
                return write_error(n < 0 ? (int)-n : EPIPE);
        }
        /* Nothing in flight: the pending buffer goes, so idle connections hold no memory. */
        free(f->pending);
        f->pending = NULL;
        f->pending_off = f->pending_len = 0;
        return PUMP_DONE;
}

static enum tracker_side flow_side(const struct relay *r, const struct relay_flow *f)
{
        return f == &r->flow[RELAY_FLOW_UP] ? TRACKER_FROM_CLIENT : TRACKER_FROM_UPSTREAM;
}

/*
 * Copies one receive's worth through the worker's scratch buffer: receive, show the tracker,
 * send at once. What dst does not take is kept in a buffer of the flow's own, and the flow
 * waits for dst. Sets *drained when the receive came back short and the transport holds
 * nothing more: the socket had no more, and level-triggered epoll reports it again when more
 * arrives, so receiving again now would only cost an EAGAIN.
 */
static enum pump_result copy_once(struct relay *r, struct relay_flow *f, struct conn *src, struct conn *dst,
                                  uint64_t *moved, bool *drained)
{
        char *buf = r->w->scratch;
        ssize_t n, k;

        n = conn_recv(src, buf, RELAY_SCRATCH_SIZE);
        if (n == 0) {
                f->src_eof = true;
                return PUMP_DONE;
        }
        if (n < 0) {
                if (n == -EAGAIN) {
                        f->want_in = true;
                        *drained = true;
                        return PUMP_WAIT;
                }
                return is_reset((int)-n) ? PUMP_SRC_RESET : PUMP_LOCAL_ERROR;
        }
        tracker_observe(&r->tracker, flow_side(r, f), buf, (size_t)n);
        /* A full receive means more is queued: bulk transfer, splice from now on. */
        if ((size_t)n == RELAY_SCRATCH_SIZE && !f->no_splice)
                f->splice = true;
        *drained = (size_t)n < RELAY_SCRATCH_SIZE && conn_pending(src) == 0;
        k = conn_send(dst, buf, (size_t)n);
        if (k < 0 && k != -EAGAIN)
                return write_error((int)-k);
        if (k < 0)
                k = 0;
        if (k > 0)
                count_moved(r, f, (size_t)k, false, moved);
        if (k == n)
                return PUMP_DONE;
        f->pending = malloc((size_t)(n - k));
        if (!f->pending)
                return PUMP_LOCAL_ERROR;
        memcpy(f->pending, buf + k, (size_t)(n - k));
        f->pending_off = 0;
        f->pending_len = (size_t)(n - k);
        f->want_out = true;
        return PUMP_WAIT;
}

/*
 * Splices one pipe's worth from src into the flow's pipe, or less when the tracker must see
 * what comes after (it then gets those bytes copied).
 */
static enum pump_result splice_in(struct relay *r, struct relay_flow *f, struct conn *src, bool *drained)
{
        struct worker *w = r->w;
        size_t len = (size_t)w->pipes.pipe_size, blind = tracker_blind(&r->tracker, flow_side(r, f));
        ssize_t n;

        if (blind < len)
                len = blind;
        n = conn_splice_in(src, f->pipe[1], len);
        if (n > 0) {
                f->in_pipe = (size_t)n;
                tracker_skipped(&r->tracker, flow_side(r, f), (size_t)n);
                /* Small again: copying is cheaper than two splices per message. */
                if ((size_t)n < RELAY_SCRATCH_SIZE)
                        f->splice = false;
                return PUMP_DONE;
        }
        if (n == 0) {
                f->src_eof = true;
                return PUMP_DONE;
        }
        if (n == -EAGAIN) {
                /* The pipe is empty, so EAGAIN means the socket is. */
                f->want_in = true;
                *drained = true;
                return PUMP_WAIT;
        }
        if (n == -EINVAL || n == -ENOSYS) {
                /* Not spliceable (never for TCP today): copy from now on. */
                f->splice = false;
                f->no_splice = true;
                return PUMP_DONE;
        }
        return is_reset((int)-n) ? PUMP_SRC_RESET : PUMP_LOCAL_ERROR;
}

/*
 * Moves bytes from src to dst until src has no more, dst is full, or the flow has had its
 * share of this round (level-triggered epoll brings it back). Small messages are copied
 * through the scratch buffer (one read, one write); once a read fills the buffer the flow
 * splices through a pipe from the pool, and goes back to copying when reads get small.
 */
static enum pump_result pump(struct relay *r, struct relay_flow *f, struct conn *src, struct conn *dst)
{
        struct worker *w = r->w;
        uint64_t moved = 0;
        enum pump_result res;
        bool drained = false;

        f->want_in = f->want_out = false;
        if (f->shut)
                return PUMP_DONE;
        for (;;) {
                res = deliver(r, f, dst, &moved);
                if (res != PUMP_DONE)
                        break;
                if (f->src_eof) {
                        /* Everything delivered: pass the end of stream on. */
                        int k;

                        if (f->pipe[0] >= 0)
                                pipe_pool_put(&w->pipes, f->pipe, true);
                        k = conn_shutw(dst);
                        if (k == -EAGAIN) {
                                /* The transport has more to send first (a close_notify). */
                                f->want_out = true;
                                res = PUMP_WAIT;
                                break;
                        }
                        if (k < 0) {
                                res = PUMP_DST_RESET;
                                break;
                        }
                        f->shut = true;
                        res = PUMP_DONE;
                        break;
                }
                /* The tracker needs to see the next byte: copy it. */
                if (f->splice && tracker_blind(&r->tracker, flow_side(r, f)) == 0)
                        f->splice = false;
                if (drained || moved >= RELAY_ROUND_BYTES) {
                        f->want_in = true;
                        res = PUMP_WAIT;
                        break;
                }
                if (f->splice && f->pipe[0] < 0 && pipe_pool_get(&w->pipes, f->pipe) < 0)
                        f->splice = false;      /* the pool is exhausted: copy */
                if (!f->splice) {
                        /* An empty pipe goes back to the pool: idle flows hold none. */
                        if (f->pipe[0] >= 0)
                                pipe_pool_put(&w->pipes, f->pipe, true);
                        res = copy_once(r, f, src, dst, &moved, &drained);
                } else {
                        res = splice_in(r, f, src, &drained);
                }
                if (res != PUMP_DONE)
                        break;
        }
        if (res == PUMP_WAIT && f->in_pipe == 0 && f->pipe[0] >= 0 && !f->want_out)
                pipe_pool_put(&w->pipes, f->pipe, true);
        if (moved) {
                r->last_activity_ms = loop_now_ms(w->loop);
                if (f == &r->flow[RELAY_FLOW_UP])
                        metrics_series_add_received(r->series, moved);
                else
                        metrics_series_add_sent(r->series, moved);
        }
        return res;
}

static void relay_run(struct relay *r, bool run_up, bool run_down);

static void relay_resume_cb(struct loop *l, struct loop_timer *t)
{
        struct relay *r = container_of(t, struct relay, resume_timer);

        relay_run(r, true, true);
}

static void relay_update_interest(struct relay *r)
{
        struct relay_flow *up = &r->flow[RELAY_FLOW_UP], *down = &r->flow[RELAY_FLOW_DOWN];
        uint32_t c = (up->want_in ? EPOLLIN : 0) | (down->want_out ? EPOLLOUT : 0);
        uint32_t u = (down->want_in ? EPOLLIN : 0) | (up->want_out ? EPOLLOUT : 0);

        struct loop *l = r->w->loop;

        if (loop_watch_set(l, &r->client.watch, c) < 0 || loop_watch_set(l, &r->upstream.watch, u) < 0) {
                /* epoll_ctl failed (out of memory): a relay the loop cannot wake would hang. */
                relay_abort(r, RELAY_END_ERROR);
                return;
        }
        /* Bytes a transport holds are never reported by epoll: come back for them. */
        if (r->may_hold &&
            ((up->want_in && conn_pending(&r->client)) || (down->want_in && conn_pending(&r->upstream)))) {
                if (loop_timer_arm(l, &r->resume_timer, 0, relay_resume_cb) < 0)
                        relay_abort(r, RELAY_END_ERROR);
        }
}

/*
 * Pumps the flows an event concerns: a readable client moves the up flow, a writable client
 * the down flow, and so on; an error or hang-up runs both, to find out which side it was.
 */
static void relay_run(struct relay *r, bool run_up, bool run_down)
{
        struct relay_flow *up = &r->flow[RELAY_FLOW_UP], *down = &r->flow[RELAY_FLOW_DOWN];
        enum pump_result res;

        if (run_up) {
                res = pump(r, up, &r->client, &r->upstream);
                if (res == PUMP_SRC_RESET)
                        return relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
                if (res == PUMP_DST_RESET)
                        return relay_finish(r, RELAY_END_UPSTREAM_RESET, true, false);
                if (res == PUMP_LOCAL_ERROR)
                        return relay_abort(r, RELAY_END_ERROR);
        }
        if (run_down) {
                res = pump(r, down, &r->upstream, &r->client);
                if (res == PUMP_SRC_RESET)
                        return relay_finish(r, RELAY_END_UPSTREAM_RESET, true, false);
                if (res == PUMP_DST_RESET)
                        return relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
                if (res == PUMP_LOCAL_ERROR)
                        return relay_abort(r, RELAY_END_ERROR);
        }
        if (up->shut && down->shut)
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
        if (loop_timer_arm(l, t, idle - since, idle_cb) < 0)
                relay_abort(r, RELAY_END_ERROR);        /* a relay without its timeout could live forever */
}

static void relay_choose_tracker(struct relay *r, bool final)
{
        if (!r->tracker.ops)
                r->tracker.ops = preread_select(r->preread, r->preread_len, final);
}

static void relay_connected(struct relay *r)
{
        struct worker *w = r->w;
        struct relay_flow *up = &r->flow[RELAY_FLOW_UP];

        r->connecting = false;
        loop_timer_cancel(w->loop, &r->connect_timer);
        relay_choose_tracker(r, true);
        /* What was read ahead goes first, as bytes the upstream did not take yet; the tracker
         * sees them now, in order, before anything else of the client's. */
        if (r->preread_len) {
                tracker_observe(&r->tracker, TRACKER_FROM_CLIENT, r->preread, r->preread_len);
                up->pending = r->preread;
                up->pending_off = 0;
                up->pending_len = r->preread_len;
                r->preread = NULL;
                r->preread_len = 0;
        }
        free(r->preread);
        r->preread = NULL;
        relay_count_open(r);
        r->last_activity_ms = loop_now_ms(w->loop);
        if (w->settings->idle_timeout_ms &&
            loop_timer_arm(w->loop, &r->idle_timer, w->settings->idle_timeout_ms, idle_cb) < 0) {
                relay_abort(r, RELAY_END_ERROR);
                return;
        }
        /* The client has usually sent already; the upstream is only read once epoll says
         * it has something (a server that speaks first is reported like any other). */
        r->flow[RELAY_FLOW_DOWN].want_in = true;
        relay_run(r, true, false);
}

/*
 * The pre-read stage, while the upstream connect is under way: the client's first bytes go
 * into the relay's own buffer, and the tracker is chosen as soon as they decide it. Reading
 * goes on after the choice (the bytes would wait in the kernel otherwise, and the client's
 * interest then stays as the relay wants it after the connect: no epoll change); once the
 * buffer is full or the client ended its side, the client is not watched until the upstream
 * is there (a level-triggered watch that is not read would wake the loop in a spin).
 */
static void relay_preread(struct relay *r)
{
        struct relay_flow *up = &r->flow[RELAY_FLOW_UP];

        if (!r->preread && !(r->preread = malloc(PREREAD_MAX))) {
                relay_abort(r, RELAY_END_ERROR);
                return;
        }
        while (r->preread_len < PREREAD_MAX && !up->src_eof) {
                ssize_t n = conn_recv(&r->client, r->preread + r->preread_len, PREREAD_MAX - r->preread_len);

                if (n > 0) {
                        r->preread_len += (size_t)n;
                        continue;
                }
                if (n == 0) {
                        up->src_eof = true;
                        break;
                }
                if (n == -EAGAIN && !conn_pending(&r->client))
                        break;
                if (n != -EAGAIN) {
                        relay_finish(r, is_reset((int)-n) ? RELAY_END_CLIENT_RESET : RELAY_END_ERROR, false, true);
                        return;
                }
        }
        relay_choose_tracker(r, up->src_eof || r->preread_len == PREREAD_MAX);
        if ((up->src_eof || r->preread_len == PREREAD_MAX) && loop_watch_set(r->w->loop, &r->client.watch, 0) < 0)
                relay_abort(r, RELAY_END_ERROR);
}

static void upstream_cb(struct loop *l, struct loop_watch *wt, uint32_t revents)
{
        struct relay *r = container_of(wt, struct relay, upstream.watch);

        if (r->connecting) {
                int e = socket_error(r->upstream.fd);
                if (e) {
                        enum relay_end end = relay_end_from_connect_errno(e);

                        metrics_connect_failed(r->w->metrics, relay_end_connect_failure(end));
                        relay_finish(r, end, true, false);
                        return;
                }
                relay_connected(r);
                return;
        }
        relay_run(r, revents & (EPOLLOUT | EPOLLERR | EPOLLHUP),
                  revents & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP));
}

static void client_cb(struct loop *l, struct loop_watch *wt, uint32_t revents)
{
        struct relay *r = container_of(wt, struct relay, client.watch);

        if (r->connecting) {
                /* A reset or hang-up before the upstream is there ends the relay. */
                if (revents & (EPOLLERR | EPOLLHUP))
                        relay_finish(r, RELAY_END_CLIENT_RESET, false, true);
                else
                        relay_preread(r);
                return;
        }
        relay_run(r, revents & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP),
                  revents & (EPOLLOUT | EPOLLERR | EPOLLHUP));
}

static void connect_timeout_cb(struct loop *l, struct loop_timer *t)
{
        struct relay *r = container_of(t, struct relay, connect_timer);

        metrics_connect_failed(r->w->metrics, relay_end_connect_failure(RELAY_END_CONNECT_TIMEOUT));
        relay_finish(r, RELAY_END_CONNECT_TIMEOUT, true, true);
}

static void tune_socket(int fd)
{
        int one = 1;

        /* Bytes are relayed as they come; Nagle would only add latency on top of the peers'. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static socklen_t sockaddr_len(const struct sockaddr_storage *sa)
{
        return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/*
 * A relay on w's list, owning client, with its original destination (NULL: not known). What
 * /connections reads from another thread is written before the relay is linked. NULL
 * (client reset) when out of memory.
 */
static struct relay *relay_new(struct worker *w, enum relay_direction dir, const struct conn *client,
                               const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst)
{
        struct relay *r = calloc(1, sizeof(*r));

        atomic_fetch_add(&w->proxy->active, 1);
        if (!r) {
                struct conn c = *client;

                conn_close(&c, true);
                atomic_fetch_sub(&w->proxy->active, 1);
                return NULL;
        }
        r->w = w;
        r->id = ++w->next_id;
        r->direction = dir;
        r->client = *client;
        r->client.watch = (struct loop_watch)LOOP_WATCH_NULL;
        r->upstream = (struct conn)CONN_NULL;
        r->client_addr = *client_addr;
        if (dst)
                r->orig_dst = r->upstream_addr = *dst;
        r->connect_timer = (struct loop_timer)LOOP_TIMER_NULL;
        r->idle_timer = (struct loop_timer)LOOP_TIMER_NULL;
        r->resume_timer = (struct loop_timer)LOOP_TIMER_NULL;
        for (int i = 0; i < 2; i++)
                r->flow[i].pipe[0] = r->flow[i].pipe[1] = -1;
        r->started_ms = r->last_activity_ms = loop_now_ms(w->loop);
        pthread_mutex_lock(&w->lock);
        r->next = w->relays;
        if (w->relays)
                w->relays->prev = r;
        w->relays = r;
        pthread_mutex_unlock(&w->lock);
        return r;
}

static void relay_begin(struct worker *w, enum relay_direction dir, int client_fd,
                        const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst)
{
        struct sockaddr_storage found;
        struct conn client;
        struct relay *r;
        enum relay_end fail = RELAY_END_NONE;
        int k = 0, fd;

        if (!dst) {
                k = origdst_get(client_fd, dir == RELAY_INBOUND && w->settings->tproxy, &found);
                dst = k < 0 ? NULL : &found;
        }
        conn_init(&client, client_fd, &xprt_raw);
        r = relay_new(w, dir, &client, client_addr, dst);
        if (!r)
                return;
        if (loop_watch_add(w->loop, &r->client.watch, client_fd, 0, client_cb) < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
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

        fd = socket(r->orig_dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && fd_reserve_release(&w->spare, 1))
                fd = socket(r->orig_dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        conn_init(&r->upstream, fd, &xprt_raw);
        if (!conn_can_splice(&r->client) || !conn_can_splice(&r->upstream))
                r->flow[RELAY_FLOW_UP].no_splice = r->flow[RELAY_FLOW_DOWN].no_splice = true;
        r->may_hold = r->client.xprt->pending || r->upstream.xprt->pending;
        tune_socket(client_fd);
        tune_socket(fd);
        if (dir == RELAY_INBOUND) {
                if (passthrough_bind(fd, r->orig_dst.ss_family) < 0) {
                        log_debug("relay %lu: binding the passthrough source: %s", (unsigned long)r->id, strerror(errno));
                        fail = RELAY_END_CONNECT_ERROR;
                        goto fail;
                }
        }
        if (loop_watch_add(w->loop, &r->upstream.watch, fd, EPOLLOUT, upstream_cb) < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        r->connecting = true;
        if (connect(fd, (struct sockaddr *)&r->orig_dst, sockaddr_len(&r->orig_dst)) < 0 && errno != EINPROGRESS) {
                fail = relay_end_from_connect_errno(errno);
                metrics_connect_failed(w->metrics, relay_end_connect_failure(fail));
                goto fail;
        }
        /* The pre-read stage reads the client's first bytes while the connect goes on; a
         * connect without its timeout could hang for the kernel's two minutes. */
        if (loop_watch_set(w->loop, &r->client.watch, EPOLLIN) < 0 ||
            loop_timer_arm(w->loop, &r->connect_timer, w->settings->connect_timeout_ms, connect_timeout_cb) < 0) {
                fail = RELAY_END_ERROR;
                goto fail;
        }
        return;
fail:
        relay_finish(r, fail, true, true);
}

void relay_start(struct worker *w, enum relay_direction dir, int client_fd, const struct sockaddr_storage *client_addr)
{
        relay_begin(w, dir, client_fd, client_addr, NULL);
}

void relay_start_to(struct worker *w, enum relay_direction dir, int client_fd,
                    const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst)
{
        relay_begin(w, dir, client_fd, client_addr, dst);
}

void relay_attach(struct worker *w, enum relay_direction dir, const struct conn *client, const struct conn *upstream,
                  const struct sockaddr_storage *client_addr, const struct sockaddr_storage *dst)
{
        struct relay *r = relay_new(w, dir, client, client_addr, dst);

        if (!r) {
                struct conn u = *upstream;

                conn_close(&u, true);
                return;
        }
        r->upstream = *upstream;
        r->upstream.watch = (struct loop_watch)LOOP_WATCH_NULL;
        if (!conn_can_splice(&r->client) || !conn_can_splice(&r->upstream))
                r->flow[RELAY_FLOW_UP].no_splice = r->flow[RELAY_FLOW_DOWN].no_splice = true;
        r->may_hold = r->client.xprt->pending || r->upstream.xprt->pending;
        if (loop_watch_add(w->loop, &r->client.watch, r->client.fd, 0, client_cb) < 0 ||
            loop_watch_add(w->loop, &r->upstream.watch, r->upstream.fd, 0, upstream_cb) < 0) {
                relay_finish(r, RELAY_END_ERROR, true, true);
                return;
        }
        relay_connected(r);
}
