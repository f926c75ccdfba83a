/*
 * The webhook's HTTPS server; see server.h. The main thread accepts (poll on the listener and
 * a signalfd); each connection gets a detached thread that runs the TLS handshake and then
 * HTTP/1.1 requests until the client closes, a timeout, or shutdown. Request heads go through
 * common/http.c, the parser the proxy's endpoints use (fuzzed); bodies need a Content-Length.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/prom.h"
#include "common/strbuf.h"
#include "inject/build_cache.h"
#include "inject/settings.h"
#include "common/http.h"
#include "common/listen.h"
#include "webhook/answer_cache.h"
#include "webhook/review.h"
#include "webhook/server.h"
#include "webhook/tls.h"

#define BODY_MAX (6u << 20)     /* Istio's: twice the API server's 3 MiB */

/* Istio's injection metrics (SEMANTICS 1.4) and the request latency. */
static const double time_buckets[] = { 0.1, 1, 3, 5, 10, 20, 30, 60 };
#define N_BUCKETS (sizeof(time_buckets) / sizeof(time_buckets[0]))

static struct {
        _Atomic unsigned long requests, success, failure, skip;
        _Atomic unsigned long time_count, time_buckets[N_BUCKETS];
        _Atomic unsigned long long time_sum_us;
        atomic_uint connections;
        atomic_bool stopping;
} stats;

struct conn {
        int fd;
        const struct webhook_settings *s;
        const struct inject_config *c;
};

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void set_timeout(int fd, unsigned seconds)
{
        struct timeval tv = { .tv_sec = seconds };

        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_all(SSL *ssl, const char *p, size_t n)
{
        while (n) {
                int k = SSL_write(ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Head and body in one write: one TLS record, so Nagle and delayed ACKs never hold the
 * answer back waiting for the second half (a 40 ms stall per request otherwise). */
static int respond(SSL *ssl, int status, const char *type, const char *body, size_t len, bool keep)
{
        struct strbuf b = STRBUF_NULL;
        int r;

        b.limit = len + 512;
        strbuf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                      status, http_status_reason(status), type, len, keep ? "keep-alive" : "close");
        strbuf_append(&b, body, len);
        r = b.error ? -1 : send_all(ssl, b.s, b.len);
        strbuf_deinit(&b);
        return r;
}

static void counter(struct prom_printer *p, const char *name, const char *help, unsigned long value)
{
        prom_family(p, name, "counter", help);
        prom_sample(p, NULL, 0, PROM_U64(value));
}

/* Istio's injection metrics in the text format, through common/prom like the proxy's. */
static void metrics_text(struct strbuf *b)
{
        struct prom_printer p = PROM_PRINTER_INIT(b, PROM_FORMAT_TEXT);
        uint64_t cum[N_BUCKETS];
        unsigned long hits, misses;

        prom_begin(&p);
        counter(&p, "sidecar_injection_requests_total", "Total number of injection requests.",
                atomic_load(&stats.requests));
        counter(&p, "sidecar_injection_success_total", "Total number of successful injection requests.",
                atomic_load(&stats.success));
        counter(&p, "sidecar_injection_failure_total", "Total number of failed injection requests.",
                atomic_load(&stats.failure));
        counter(&p, "sidecar_injection_skip_total", "Total number of skipped injection requests.",
                atomic_load(&stats.skip));
        answer_cache_stats(&hits, &misses);
        counter(&p, "pilotfish_webhook_answer_cache_hits_total", "Injections answered from the answer cache.", hits);
        counter(&p, "pilotfish_webhook_answer_cache_misses_total", "Injection requests the answer cache did not hold.",
                misses);
        prom_family(&p, "sidecar_injection_time_seconds", "histogram", "Total time taken for injection in seconds.");
        for (size_t i = 0; i < N_BUCKETS; i++)
                cum[i] = atomic_load(&stats.time_buckets[i]);   /* observe() counts cumulatively */
        prom_histogram(&p, NULL, 0, time_buckets, N_BUCKETS, cum, atomic_load(&stats.time_count),
                       PROM_F64((double)atomic_load(&stats.time_sum_us) / 1e6));
        prom_family(&p, "pilotfish_webhook_connections", "gauge", "Connections open now.");
        prom_sample(&p, NULL, 0, PROM_U64(atomic_load(&stats.connections)));
        prom_end(&p);
}

static void observe(uint64_t us)
{
        double s = (double)us / 1e6;

        for (size_t i = 0; i < N_BUCKETS; i++)
                if (s <= time_buckets[i])
                        atomic_fetch_add(&stats.time_buckets[i], 1);
        atomic_fetch_add(&stats.time_count, 1);
        atomic_fetch_add(&stats.time_sum_us, us);
}

static bool header_is(const struct http_request *r, const char *name, const char *value)
{
        const struct http_header *h = http_header_find(r, name);

        return h && h->value_len == strlen(value) && memcmp(h->value, value, h->value_len) == 0;
}

/* One request whose head is buf[0, head); reads the body, answers. Returns the bytes used of
 * buf, or -1 to close the connection. */
static ssize_t serve_one(struct conn *cn, SSL *ssl, struct strbuf *buf, size_t head, const struct http_request *r)
{
        const char *json = "application/json", *text = "text/plain; charset=utf-8";
        bool keep = r->keep_alive && !atomic_load(&stats.stopping);
        size_t body_len = r->has_content_length ? (size_t)r->content_length : 0;
        char path[1024];

        snprintf(path, sizeof(path), "%.*s", (int)r->path_len, r->path);
        if (r->path_len == 8 && memcmp(r->path, "/healthz", 8) == 0)
                return respond(ssl, 200, text, "ok\n", 3, keep) < 0 ? -1 : (ssize_t)head;
        if (r->path_len == 7 && memcmp(r->path, "/readyz", 7) == 0) {
                bool ok = !atomic_load(&stats.stopping);
                return respond(ssl, ok ? 200 : 503, text, ok ? "ok\n" : "shutting down\n", ok ? 3 : 14, keep) < 0 ? -1
                                                                                                              : (ssize_t)head;
        }
        if (r->path_len == 8 && memcmp(r->path, "/metrics", 8) == 0) {
                struct strbuf m = STRBUF_NULL;
                int k;
                metrics_text(&m);
                k = respond(ssl, 200, PROM_TEXT_CONTENT_TYPE, strbuf_str(&m), m.len, keep);
                strbuf_deinit(&m);
                return k < 0 ? -1 : (ssize_t)head;
        }
        if (!(strcmp(path, "/inject") == 0 || strncmp(path, "/inject/", 8) == 0)) {
                respond(ssl, 404, text, "not found\n", 10, false);
                return -1;
        }
        /* SEMANTICS 1: the body first (so a keep-alive connection stays in step), then the checks. */
        if (r->chunked || body_len > BODY_MAX) {
                const char *m = r->chunked ? "a Content-Length is required\n" : "request entity too large (over 6 MiB)\n";
                respond(ssl, 400, text, m, strlen(m), false);
                return -1;
        }
        while (buf->len < head + body_len) {
                char chunk[65536];
                int k = SSL_read(ssl, chunk, (int)sizeof(chunk));
                if (k <= 0)
                        return -1;      /* the client stopped sending: its timeout, its loss */
                if (strbuf_append(buf, chunk, (size_t)k) < 0)
                        return -1;
        }
        atomic_fetch_add(&stats.requests, 1);
        if (!header_is(r, "Content-Type", "application/json")) {
                const char *m = "invalid Content-Type, want `application/json`\n";
                return respond(ssl, 415, text, m, strlen(m), keep) < 0 ? -1 : (ssize_t)(head + body_len);
        }
        if (body_len == 0) {
                atomic_fetch_add(&stats.failure, 1);
                return respond(ssl, 400, text, "no body found\n", 14, keep) < 0 ? -1 : (ssize_t)(head + body_len);
        }
        {
                struct strbuf out = STRBUF_NULL;
                uint64_t t0 = now_us();
                enum review_outcome o = review_handle(cn->c, buf->s + head, body_len, path, &out);
                int k;

                observe(now_us() - t0);
                atomic_fetch_add(o == REVIEW_INJECTED ? &stats.success : o == REVIEW_SKIPPED ? &stats.skip : &stats.failure, 1);
                k = out.error ? respond(ssl, 500, text, "out of memory\n", 14, false)
                              : respond(ssl, 200, json, strbuf_str(&out), out.len, keep);
                strbuf_deinit(&out);
                return k < 0 ? -1 : (ssize_t)(head + body_len);
        }
}

static void *conn_thread(void *data)
{
        struct conn *cn = data;
        enum tls_reload reload;
        char why[8600];
        SSL_CTX *ctx = tls_context(&reload, why, sizeof(why));
        SSL *ssl = ctx ? SSL_new(ctx) : NULL;
        struct strbuf buf = STRBUF_NULL;

        if (reload == TLS_RELOAD_DONE)
                log_info("TLS certificate reloaded from %s", cn->s->tls_cert);
        else if (reload == TLS_RELOAD_FAILED)
                log_warn("TLS certificate not reloaded, keeping the previous one: %s", why);
        SSL_CTX_free(ctx);      /* the SSL holds its own reference */
        /* Pods of one burst build the same containers: the memo lives as long as the connection. */
        build_cache_begin(32);
        buf.limit = BODY_MAX + HTTP_HEAD_MAX + 65536;
        set_timeout(cn->fd, cn->s->read_timeout_s);
        if (!ssl || SSL_set_fd(ssl, cn->fd) != 1 || SSL_accept(ssl) != 1)
                goto out;
        for (;;) {
                struct http_request r;
                int k = buf.len ? http_parse_request(buf.s, buf.len, &r) : -EAGAIN;
                ssize_t used;

                if (k == -EAGAIN) {
                        char chunk[16384];
                        int n;

                        if (buf.len >= HTTP_HEAD_MAX) {
                                respond(ssl, 431, "text/plain", "request head too large\n", 23, false);
                                break;
                        }
                        /* Between requests the idle timeout applies, inside one the read timeout. */
                        set_timeout(cn->fd, buf.len ? cn->s->read_timeout_s : cn->s->idle_timeout_s);
                        n = SSL_read(ssl, chunk, (int)sizeof(chunk));
                        if (n <= 0 || strbuf_append(&buf, chunk, (size_t)n) < 0)
                                break;
                        continue;
                }
                if (k < 0) {
                        respond(ssl, k == -E2BIG ? 431 : 400, "text/plain", "malformed request\n", 18, false);
                        break;
                }
                set_timeout(cn->fd, cn->s->read_timeout_s);
                used = serve_one(cn, ssl, &buf, (size_t)k, &r);
                if (used < 0 || !r.keep_alive || atomic_load(&stats.stopping))
                        break;
                /* Keep what a pipelining client sent after this request. */
                memmove(buf.s, buf.s + used, buf.len - (size_t)used);
                buf.len -= (size_t)used;
                buf.s[buf.len] = '\0';
        }
        SSL_shutdown(ssl);
out:
        build_cache_end();
        SSL_free(ssl);
        ERR_clear_error();
        strbuf_deinit(&buf);
        close(cn->fd);
        free(cn);
        atomic_fetch_sub(&stats.connections, 1);
        return NULL;
}

int webhook_serve(const struct webhook_settings *s, const struct inject_config *c)
{
        char err[512];
        sigset_t mask;
        int lfd, sfd, rc = 0;
        pthread_attr_t attr;

        rc = tls_init(s->tls_cert, s->tls_key, err, sizeof(err));
        if (rc < 0) {
                log_error("TLS: %s", err);
                return 1;
        }
        if (rc == 1)
                log_info("TLS certificate %s or key %s is not a regular file (a pipe?): read once, never reloaded",
                         s->tls_cert, s->tls_key);
        rc = 0;
        lfd = listen_tcp(NULL, s->port, false, false, err, sizeof(err));
        if (lfd < 0) {
                log_error("listening on port %u: %s", s->port, err);
                tls_deinit();
                return 1;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        sigdelset(&mask, SIGPIPE);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        answer_cache_init(s->answer_cache);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        log_info("pilotfish webhook ready on :%u (TLS, certificate %s)", s->port, s->tls_cert);
        for (;;) {
                struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
                struct conn *cn;
                pthread_t t;
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("poll: %s", strerror(errno));
                        rc = 1;
                        break;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                                log_info("signal %u: finishing the requests in flight", si.ssi_signo);
                        break;
                }
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE)
                                usleep(100000);   /* out of fds: pause, do not spin */
                        continue;
                }
                /* Linux does not pass the listener's O_NONBLOCK on: the connection threads use
                 * blocking I/O with timeouts. */
                if (atomic_load(&stats.connections) >= s->max_connections || !(cn = malloc(sizeof(*cn)))) {
                        close(fd);
                        continue;
                }
                /* Answers are written whole; nothing is gained by waiting to coalesce them. */
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
                *cn = (struct conn){ .fd = fd, .s = s, .c = c };
                atomic_fetch_add(&stats.connections, 1);
                if (pthread_create(&t, &attr, conn_thread, cn) != 0) {
                        atomic_fetch_sub(&stats.connections, 1);
                        close(fd);
                        free(cn);
                }
        }
        /* Graceful: no new connections; those open finish their request (keep-alive ends). */
        atomic_store(&stats.stopping, true);
        close(lfd);
        for (unsigned i = 0; i < s->shutdown_grace_s * 10 && atomic_load(&stats.connections) > 0; i++)
                usleep(100000);
        if (atomic_load(&stats.connections) > 0)
                log_warn("%u connections still open after %u s; exiting", atomic_load(&stats.connections), s->shutdown_grace_s);
        pthread_attr_destroy(&attr);
        if (atomic_load(&stats.connections) == 0)
                answer_cache_deinit();  /* else a thread still running may look an answer up */
        tls_deinit();
        if (sfd >= 0)
                close(sfd);
        return rc;
}
