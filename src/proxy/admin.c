/*
 * The proxy's HTTP endpoints; see admin.h. Everything here runs on the admin's loop, one
 * thread: the connection list, its count and the fd reserve need no lock. A timer or an epoll
 * change that cannot be made ends the request that needed it (the connection is closed, a
 * probe fails with a message), so that nothing runs without its timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/listen.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "proxy/admin.h"
#include "proxy/fd_reserve.h"
#include "common/http.h"
#include "common/loop.h"
#include "common/prom.h"
#include "proxy/metrics.h"
#include "proxy/origdst.h"
#include "proxy/proxy.h"
#include "proxy/run.h"

#define ADMIN_READ_TIMEOUT_MS 10000
#define ADMIN_MAX_CONNS 64
/* Spares for when the relays have used every fd: two per connection (its socket, and the
 * /proc file the metrics read), so three requests at once still get answered. */
#define ADMIN_FD_RESERVE 6
#define ADMIN_FDS_PER_CONN 2
#define ADMIN_ACCEPT_PAUSE_MS 100
/*
 * A metrics scrape is streamed (proxy/metrics_scrape.h): the cursor prints about this much at a
 * time, which is written as the socket takes it, so a scrape holds one piece and its chunk, not
 * the whole text (24 MB at the series limit). After ADMIN_STREAM_BURST pieces in a row the
 * connection waits for the next EPOLLOUT, so a fast reader of a large scrape does not keep the
 * admin's loop from its other connections (readiness probes among them).
 */
#define ADMIN_STREAM_PIECE (64u * 1024)
#define ADMIN_STREAM_BURST 16

enum admin_port {
        ADMIN_PORT_HEALTH = 0,
        ADMIN_PORT_PROMETHEUS,
        ADMIN_PORT_STATUS,
        ADMIN_PORT_ADMIN,
        _ADMIN_PORT_MAX,
};

struct admin;

struct admin_listener {
        struct admin *a;
        struct proxy *p;
        struct loop *loop;
        struct loop_watch watch;
        struct loop_timer resume_timer;         /* accepting paused: no fd, even from the reserve */
        int fd;
        enum admin_port port;
};

struct admin_conn {
        struct admin_listener *ls;
        struct admin_conn *prev, *next;         /* the admin's open connections */
        struct loop_watch watch;
        struct loop_timer timer;
        int fd;
        char in[HTTP_HEAD_MAX];
        size_t in_len;
        struct strbuf out;
        size_t out_off;
        struct app_probe_run *probe;    /* an application probe runs for this request */
        struct metrics_cursor *cursor;  /* a scrape being streamed after out */
        struct strbuf piece;            /* the cursor's latest piece, framed into out */
        bool chunked;                   /* the body goes out in HTTP/1.1 chunks, else until close */
        bool closed;
};

struct admin {
        struct proxy *p;
        struct loop *loop;
        struct admin_listener listeners[_ADMIN_PORT_MAX];
        struct admin_conn *conns;               /* doubly linked, so admin_free closes them */
        unsigned n_conns;
        struct fd_reserve reserve;
};

static void conn_free(void *data)
{
        struct admin_conn *c = data;

        strbuf_deinit(&c->out);
        strbuf_deinit(&c->piece);
        metrics_cursor_free(c->cursor);
        free(c);
}

/* Everything but freeing c: out of the loop and the list, its probe cancelled, fd closed. */
static void conn_shut(struct admin_conn *c)
{
        struct admin *a = c->ls->a;
        struct loop *l = a->loop;

        c->closed = true;
        loop_watch_del(l, &c->watch);
        loop_timer_cancel(l, &c->timer);
        app_probe_cancel(c->probe);
        c->probe = NULL;
        close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                a->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        a->n_conns--;
        /* Take back what an earlier accept borrowed (a no-op when the reserve is full). */
        fd_reserve_refill(&a->reserve);
}

static void admin_conn_close(struct admin_conn *c)
{
        if (c->closed)
                return;
        conn_shut(c);
        if (loop_reap_later(c->ls->loop, conn_free, c) < 0)
                conn_free(c);
}

static void reply(struct admin_conn *c, int status, const char *type, const char *body, size_t len)
{
        strbuf_printf(&c->out,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, http_status_reason(status), type, len);
        strbuf_append(&c->out, body, len);
}

static void reply_text(struct admin_conn *c, int status, const char *text)
{
        reply(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static bool is(const struct http_request *r, const char *method, const char *path)
{
        return r->method_len == strlen(method) && memcmp(r->method, method, r->method_len) == 0 &&
               r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static bool path_is(const struct http_request *r, const char *path)
{
        return r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static void serve_ready(struct admin_conn *c)
{
        struct proxy *p = c->ls->p;

        if (atomic_load(&p->draining))
                reply_text(c, 503, "draining\n");
        else if (!atomic_load(&p->ready))
                reply_text(c, 503, "not ready\n");
        else
                reply_text(c, 200, "ok\n");
}

/*
 * /stats/prometheus and /stats: the head now, the body streamed from a cursor by conn_flush.
 * HTTP/1.1 clients get chunks (a client can tell a complete body from a cut one); HTTP/1.0
 * clients get the body up to the close, as HTTP/1.0 servers did.
 */
static void serve_metrics(struct admin_conn *c, const struct http_request *r, bool json)
{
        if (metrics_cursor_new(c->ls->p->metrics, json ? METRICS_FORMAT_JSON : METRICS_FORMAT_PROMETHEUS, true,
                               &c->cursor) < 0) {
                reply_text(c, 500, "rendering the metrics failed\n");
                return;
        }
        c->chunked = r->minor_version >= 1;
        strbuf_printf(&c->out, "HTTP/1.%d 200 OK\r\nContent-Type: %s\r\n%sConnection: close\r\n\r\n",
                      r->minor_version, json ? "application/json" : PROM_TEXT_CONTENT_TYPE,
                      c->chunked ? "Transfer-Encoding: chunked\r\n" : "");
}

/* out is all written: empties it (keeping its memory for the next piece). */
static void conn_out_reset(struct admin_conn *c)
{
        c->out.len = 0;
        c->out_off = 0;
        if (c->out.s)
                c->out.s[0] = '\0';
}

/*
 * Puts the cursor's next piece in out, framed as a chunk when chunked, and the last chunk
 * after the end. Returns 1 with something to write, 0 at the end, -1 when rendering failed
 * (the connection is then closed mid-body: a chunked client sees the body cut short).
 */
static int conn_refill(struct admin_conn *c)
{
        int r;

        if (!c->cursor)
                return 0;
        conn_out_reset(c);
        c->piece.len = 0;
        r = metrics_cursor_next(c->cursor, &c->piece, ADMIN_STREAM_PIECE);
        if (r < 0) {
                c->cursor = metrics_cursor_free(c->cursor);
                return -1;
        }
        if (c->piece.len) {
                if (c->chunked)
                        strbuf_printf(&c->out, "%zx\r\n", c->piece.len);
                strbuf_append(&c->out, c->piece.s, c->piece.len);
                if (c->chunked)
                        strbuf_puts(&c->out, "\r\n");
        }
        if (r == 0) {
                c->cursor = metrics_cursor_free(c->cursor);
                if (c->chunked)
                        strbuf_puts(&c->out, "0\r\n\r\n");
        }
        if (c->out.error)
                return -1;
        return c->out.len > 0;
}

static void serve_connections(struct admin_conn *c)
{
        struct strbuf body = STRBUF_NULL;

        proxy_connections_json(c->ls->p, loop_now_ms(c->ls->loop), &body);
        if (body.error)
                reply_text(c, 500, "listing the connections failed\n");
        else
                reply(c, 200, "application/json", strbuf_str(&body), body.len);
        strbuf_deinit(&body);
}

static void serve_logging(struct admin_conn *c, const struct http_request *r)
{
        const char *v;
        size_t n;
        char level[16], spec[32];
        enum log_level lvl;

        if (!http_query_get(r, "level", &v, &n) || n == 0 || n >= sizeof(level)) {
                reply_text(c, 400, "usage: POST /logging?level=debug|info|warn|error\n");
                return;
        }
        memcpy(level, v, n);
        level[n] = '\0';
        snprintf(spec, sizeof(spec), "default:%s", level);
        if (log_parse_output_level(spec, &lvl) < 0) {
                reply_text(c, 400, "unknown level; want debug, info, warn, error or none\n");
                return;
        }
        log_set_level(lvl);
        log_info("log level set to %s through the admin port", level);
        reply_text(c, 200, "ok\n");
}

static void conn_flush(struct admin_conn *c);
static void conn_timeout_cb(struct loop *l, struct loop_timer *t);

static void probe_done(void *ctx, int status, const char *why)
{
        struct admin_conn *c = ctx;
        char text[160];

        c->probe = NULL;
        snprintf(text, sizeof(text), "%s\n", why);
        reply_text(c, status, text);
        /* The answer gets the read timeout's bound for its write (serve_app_probe took it). */
        if (c->out.error || loop_timer_arm(c->ls->loop, &c->timer, ADMIN_READ_TIMEOUT_MS, conn_timeout_cb) < 0) {
                admin_conn_close(c);
                return;
        }
        conn_flush(c);
}

static bool has_prefix(const struct http_request *r, const char *prefix)
{
        return r->path_len > strlen(prefix) && memcmp(r->path, prefix, strlen(prefix)) == 0;
}

/* GET /app-health/<container>/readyz and friends: the application's own probe, run now. */
static void serve_app_probe(struct admin_conn *c, const struct http_request *r)
{
        struct proxy *p = c->ls->p;
        const struct app_probe_spec *s = app_probes_find(&p->app_probes, r->path, r->path_len);
        char text[160];
        int k;

        if (!s) {
                reply_text(c, 404, "no such application probe (see ISTIO_KUBE_APP_PROBERS)\n");
                return;
        }
        k = app_probe_start(c->ls->loop, s, p->pod_ip, probe_done, c, &c->probe);
        if (k == 0) {
                /* The probe's own timeout (timeoutSeconds, which may be longer than the read
                 * timeout) bounds the wait now: the read timeout would cut a slow probe short. */
                loop_timer_cancel(c->ls->loop, &c->timer);
                return;
        }
        if (k == -EINVAL)
                reply_text(c, 500, "the probe could not start: its host is not an IP address (names are not resolved)\n");
        else if (k < 0) {
                snprintf(text, sizeof(text), "the probe could not start: %s\n", strerror(-k));
                reply_text(c, 500, text);
        }
}

/* Whether the admin connection comes from this pod's loopback (127.0.0.0/8 or ::1). */
static bool peer_is_loopback(int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
                return false;
        if (ss.ss_family == AF_INET)
                return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
        if (ss.ss_family == AF_INET6) {
                const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a))
                        return a->s6_addr[12] == 127;
                return IN6_IS_ADDR_LOOPBACK(a);
        }
        return false;
}

/*
 * POST /quitquitquit on 15020: what a Job's application calls when it is done (pilot-agent's
 * status server answers it there, Envoy's admin on 15000). The status port listens on the pod
 * address for kubelet, so, as pilot-agent does, only the pod's own loopback may stop the proxy.
 */
static void serve_status_quit(struct admin_conn *c, const struct http_request *r)
{
        if (!is(r, "POST", "/quitquitquit")) {
                reply_text(c, 405, "method not allowed\n");
                return;
        }
        if (!peer_is_loopback(c->fd)) {
                reply_text(c, 403, "only requests from localhost are allowed\n");
                return;
        }
        reply_text(c, 200, "OK\n");
        proxy_quit(c->ls->p, 0);
}

static void route(struct admin_conn *c, const struct http_request *r)
{
        enum admin_port port = c->ls->port;

        if (port == ADMIN_PORT_STATUS && (has_prefix(r, "/app-health/") || has_prefix(r, "/app-lifecycle/"))) {
                serve_app_probe(c, r);
                return;
        }

        if (port == ADMIN_PORT_STATUS && path_is(r, "/quitquitquit")) {
                serve_status_quit(c, r);
                return;
        }

        if (path_is(r, "/healthz/ready") && port != ADMIN_PORT_PROMETHEUS) {
                serve_ready(c);
                return;
        }
        if (path_is(r, "/stats/prometheus") && port != ADMIN_PORT_HEALTH) {
                serve_metrics(c, r, false);
                return;
        }
        if (port != ADMIN_PORT_ADMIN) {
                reply_text(c, 404, "not found\n");
                return;
        }
        if (is(r, "GET", "/stats")) {
                const char *f;
                size_t n;
                bool prom = http_query_get(r, "format", &f, &n) && n == 10 && memcmp(f, "prometheus", 10) == 0;
                serve_metrics(c, r, !prom);
        } else if (is(r, "GET", "/connections")) {
                serve_connections(c);
        } else if (path_is(r, "/logging") && (is(r, "POST", "/logging") || is(r, "GET", "/logging"))) {
                serve_logging(c, r);
        } else if (is(r, "POST", "/drain")) {
                proxy_drain(c->ls->p, "POST /drain");
                reply_text(c, 200, "draining\n");
        } else if (is(r, "POST", "/quitquitquit")) {
                reply_text(c, 200, "OK\n");
                proxy_quit(c->ls->p, 0);
        } else if (path_is(r, "/stats") || path_is(r, "/connections") || path_is(r, "/drain") ||
                   path_is(r, "/quitquitquit")) {
                reply_text(c, 405, "method not allowed\n");
        } else {
                reply_text(c, 404, "not found\n");
        }
}

/* Writes out, then the streamed pieces, as the socket takes them; closes when all is sent. */
static void conn_flush(struct admin_conn *c)
{
        unsigned pieces = 0;
        bool wrote = false;

        for (;;) {
                while (c->out_off < c->out.len) {
                        ssize_t n = write(c->fd, c->out.s + c->out_off, c->out.len - c->out_off);
                        if (n > 0) {
                                c->out_off += (size_t)n;
                                wrote = true;
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                goto wait;
                        goto close;
                }
                if (!c->cursor || ++pieces > ADMIN_STREAM_BURST)
                        break;
                if (conn_refill(c) <= 0)
                        break;
        }
        if (!c->cursor && c->out_off >= c->out.len)
                goto close;
wait:
        /* A stream may take longer than the read timeout: what bounds it is progress. */
        if (wrote && c->cursor && loop_timer_arm(c->ls->loop, &c->timer, ADMIN_READ_TIMEOUT_MS, conn_timeout_cb) < 0)
                goto close;
        if (loop_watch_set(c->ls->loop, &c->watch, EPOLLOUT) < 0)
                goto close;     /* never told when it can write: give up on it */
        return;
close:
        admin_conn_close(c);
}

static void conn_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        struct admin_conn *c = container_of(w, struct admin_conn, watch);
        struct http_request req;
        int k;

        if (c->out.len || c->cursor) {
                conn_flush(c);
                return;
        }
        for (;;) {
                ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
                if (n > 0) {
                        c->in_len += (size_t)n;
                        if (c->in_len < sizeof(c->in))
                                continue;
                        break;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                /* EOF or error before a whole request: nothing to answer. */
                admin_conn_close(c);
                return;
        }
        k = http_parse_request(c->in, c->in_len, &req);
        if (k == -EAGAIN && c->in_len < sizeof(c->in))
                return;
        if (k == -EAGAIN || k == -E2BIG)
                reply_text(c, 431, "request head too large\n");
        else if (k < 0)
                reply_text(c, 400, "malformed request\n");
        else
                route(c, &req);
        if (c->probe) {
                /* The answer comes from probe_done; nothing more to read meanwhile. */
                if (loop_watch_set(c->ls->loop, &c->watch, 0) < 0)
                        admin_conn_close(c);
                return;
        }
        if (c->out.error) {
                admin_conn_close(c);
                return;
        }
        conn_flush(c);
}

static void conn_timeout_cb(struct loop *l, struct loop_timer *t)
{
        admin_conn_close(container_of(t, struct admin_conn, timer));
}

static void resume_cb(struct loop *l, struct loop_timer *t)
{
        struct admin_listener *ls = container_of(t, struct admin_listener, resume_timer);

        /* A worker may have won the spares an accept gave up (the relays run on other
         * threads): take back what is free again. */
        fd_reserve_refill(&ls->a->reserve);
        if (ls->fd < 0 || loop_watch_set(l, &ls->watch, EPOLLIN) == 0)
                return;
        if (loop_timer_arm(l, t, ADMIN_ACCEPT_PAUSE_MS, resume_cb) < 0)
                log_error("health/metrics/admin: cannot resume accepting on fd %d (epoll_ctl and the "
                          "timer failed); that port no longer answers", ls->fd);
}

/* accept4, falling back on the reserve when the process is out of fds. */
static int admin_accept(struct admin_listener *ls)
{
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && fd_reserve_release(&ls->a->reserve, ADMIN_FDS_PER_CONN)) {
                log_debug("%s", "health/metrics/admin: out of fds, accepting with a spare from the reserve");
                fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        return fd;
}

static void accept_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        struct admin_listener *ls = container_of(w, struct admin_listener, watch);
        struct admin *a = ls->a;

        for (;;) {
                int fd = admin_accept(ls);
                struct admin_conn *c;

                if (fd < 0) {
                        /* No fd even from the reserve: the listener stays readable, so pause
                         * rather than spin; the client waits in the backlog. Without a timer
                         * to resume it, the listener stays on and the next round tries again. */
                        if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
                            loop_timer_arm(l, &ls->resume_timer, ADMIN_ACCEPT_PAUSE_MS, resume_cb) == 0 &&
                            loop_watch_set(l, &ls->watch, 0) < 0)
                                loop_timer_cancel(l, &ls->resume_timer);
                        return;
                }
                if (a->n_conns >= ADMIN_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
                        close(fd);
                        continue;
                }
                c->ls = ls;
                c->fd = fd;
                c->out = (struct strbuf)STRBUF_NULL;
                c->out.limit = 16u * 1024 * 1024;
                c->piece = (struct strbuf)STRBUF_NULL;
                c->piece.limit = 2 * ADMIN_STREAM_PIECE;
                c->watch = (struct loop_watch)LOOP_WATCH_NULL;
                c->timer = (struct loop_timer)LOOP_TIMER_NULL;
                c->next = a->conns;
                if (a->conns)
                        a->conns->prev = c;
                a->conns = c;
                a->n_conns++;
                /* A request that cannot have its read timeout is not served at all. */
                if (loop_watch_add(l, &c->watch, fd, EPOLLIN, conn_cb) < 0 ||
                    loop_timer_arm(l, &c->timer, ADMIN_READ_TIMEOUT_MS, conn_timeout_cb) < 0)
                        admin_conn_close(c);
        }
}

int admin_new(struct admin **ret, struct proxy *p, struct loop *loop, char *err, size_t errlen)
{
        const struct proxy_settings *s = &p->settings;
        const unsigned ports[_ADMIN_PORT_MAX] = { s->health_port, s->prometheus_port, s->status_port, s->admin_port };
        struct admin *a = calloc(1, sizeof(*a));
        int r = -ENOMEM;

        if (!a) {
                snprintf(err, errlen, "%s", strerror(ENOMEM));
                return -ENOMEM;
        }
        a->p = p;
        a->loop = loop;
        for (int i = 0; i < _ADMIN_PORT_MAX; i++) {
                struct admin_listener *ls = &a->listeners[i];

                ls->a = a;
                ls->p = p;
                ls->loop = loop;
                ls->port = (enum admin_port)i;
                ls->watch = (struct loop_watch)LOOP_WATCH_NULL;
                ls->resume_timer = (struct loop_timer)LOOP_TIMER_NULL;
                ls->fd = -1;
        }
        for (int i = 0; i < _ADMIN_PORT_MAX; i++) {
                struct admin_listener *ls = &a->listeners[i];

                ls->fd = listen_tcp(i == ADMIN_PORT_ADMIN ? "127.0.0.1" : NULL, ports[i], false, false, err, errlen);
                if (ls->fd < 0) {
                        r = ls->fd;
                        goto fail;
                }
                r = loop_watch_add(loop, &ls->watch, ls->fd, EPOLLIN, accept_cb);
                if (r < 0) {
                        snprintf(err, errlen, "epoll_ctl for port %u: %s", ports[i], strerror(-r));
                        goto fail;
                }
        }
        fd_reserve_init(&a->reserve, ADMIN_FD_RESERVE);
        *ret = a;
        return 0;
fail:
        admin_free(a);
        return r;
}

struct admin *admin_free(struct admin *a)
{
        if (!a)
                return NULL;
        while (a->conns) {
                struct admin_conn *c = a->conns;

                conn_shut(c);
                conn_free(c);
        }
        for (int i = 0; i < _ADMIN_PORT_MAX; i++) {
                struct admin_listener *ls = &a->listeners[i];

                loop_watch_del(a->loop, &ls->watch);
                loop_timer_cancel(a->loop, &ls->resume_timer);
                if (ls->fd >= 0)
                        close(ls->fd);
                ls->fd = -1;
        }
        fd_reserve_deinit(&a->reserve);
        free(a);
        return NULL;
}

size_t admin_fds(const struct admin *a, int *fds, size_t max)
{
        size_t n = 0;

        for (int i = 0; i < _ADMIN_PORT_MAX && n < max; i++)
                if (a->listeners[i].fd >= 0)
                        fds[n++] = a->listeners[i].fd;
        for (unsigned i = 0; i < a->reserve.n && n < max; i++)
                fds[n++] = a->reserve.fds[i];
        return n;
}
