/*
 * Application probes; see app_probe.h. The probers' JSON is read with libfyaml (JSON is YAML);
 * the requests are written by hand: one request line, Host, User-Agent like kubelet's, the
 * probe's own headers, Connection: close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libfyaml.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/json_doc.h"
#include "common/strbuf.h"
#include "proxy/app_probe.h"
#include "common/loop.h"
#include "proxy/origdst.h"

#define APP_PROBE_REQUEST_MAX 4096

static const char *str(struct fy_node *map, const char *key)
{
        struct fy_node *n = map && fy_node_is_mapping(map) ? fy_node_mapping_lookup_value_by_simple_key(map, key, strlen(key)) : NULL;

        return n && fy_node_is_scalar(n) ? fy_node_get_scalar0(n) : NULL;
}

static struct fy_node *child(struct fy_node *map, const char *key)
{
        return map && fy_node_is_mapping(map) ? fy_node_mapping_lookup_value_by_simple_key(map, key, strlen(key)) : NULL;
}

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

static void spec_free(struct app_probe_spec *s)
{
        free(s->path);
        free(s->host);
        free(s->http_path);
        for (size_t i = 0; i < s->n_headers; i++) {
                free(s->headers[i].name);
                free(s->headers[i].value);
        }
        free(s->headers);
}

void app_probes_free(struct app_probes *t)
{
        for (size_t i = 0; i < t->n; i++)
                spec_free(&t->v[i]);
        free(t->v);
        t->v = NULL;
        t->n = 0;
}

static unsigned long number(const char *s, unsigned long max)
{
        char *end;
        unsigned long v;

        if (!s || !*s)
                return 0;
        v = strtoul(s, &end, 10);
        return *end || v > max ? 0 : v;
}

/* Characters that would let a header or path break out of its line. */
static bool line_safe(const char *s)
{
        return !s || !strpbrk(s, "\r\n");
}

static int parse_one(const char *path, struct fy_node *v, struct app_probe_spec *s, char *err, size_t errlen)
{
        struct fy_node *a, *hs, *h;
        void *iter = NULL;

        memset(s, 0, sizeof(*s));
        s->path = strdup(path);
        s->timeout_s = (unsigned)number(str(v, "timeoutSeconds"), 3600);
        if (!s->timeout_s)
                s->timeout_s = 1;
        if ((a = child(v, "httpGet"))) {
                const char *scheme = str(a, "scheme");
                s->kind = APP_PROBE_HTTP;
                s->http_path = strdup(str(a, "path") ? str(a, "path") : "/");
                s->https = scheme && strcasecmp(scheme, "HTTPS") == 0;
                hs = child(a, "httpHeaders");
                while (hs && fy_node_is_sequence(hs) && (h = fy_node_sequence_iterate(hs, &iter))) {
                        struct app_probe_header *nv = realloc(s->headers, (s->n_headers + 1) * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        s->headers = nv;
                        s->headers[s->n_headers].name = dup_or_null(str(h, "name"));
                        s->headers[s->n_headers].value = dup_or_null(str(h, "value"));
                        s->n_headers++;
                        if (!line_safe(str(h, "name")) || !line_safe(str(h, "value"))) {
                                snprintf(err, errlen, "%s: a header holds a line break", path);
                                return -EINVAL;
                        }
                }
        } else if ((a = child(v, "tcpSocket"))) {
                s->kind = APP_PROBE_TCP;
        } else if ((a = child(v, "grpc"))) {
                s->kind = APP_PROBE_TCP;
                s->grpc = true;
        } else {
                snprintf(err, errlen, "%s: neither httpGet, tcpSocket nor grpc", path);
                return -EINVAL;
        }
        s->port = (unsigned)number(str(a, "port"), 65535);
        s->host = dup_or_null(str(a, "host"));
        if (!s->port) {
                snprintf(err, errlen, "%s: port '%s' is not a number in 1..65535", path, str(a, "port") ? str(a, "port") : "");
                return -EINVAL;
        }
        if (!s->path || (s->kind == APP_PROBE_HTTP && !s->http_path))
                return -ENOMEM;
        if (!line_safe(s->http_path) || !line_safe(s->host) || (s->http_path && strchr(s->http_path, ' '))) {
                snprintf(err, errlen, "%s: the path or host holds a space or line break", path);
                return -EINVAL;
        }
        return 0;
}

int app_probes_parse(const char *json, struct app_probes *ret, char *err, size_t errlen)
{
        struct strbuf why = STRBUF_NULL;
        struct fy_document *d;
        struct fy_node *root;
        struct fy_node_pair *p;
        void *iter = NULL;
        int r = 0;

        *ret = (struct app_probes){ 0 };
        if (!json || !*json)
                return 0;
        d = json_doc_parse(json, strlen(json), &why);
        root = d ? fy_document_root(d) : NULL;
        if (!root || !fy_node_is_mapping(root)) {
                snprintf(err, errlen, "not a JSON object%s%s", why.len ? ": " : "", strbuf_str(&why));
                r = -EINVAL;
                goto out;
        }
        ret->v = calloc((size_t)fy_node_mapping_item_count(root) + 1, sizeof(*ret->v));
        if (!ret->v) {
                r = -ENOMEM;
                goto out;
        }
        while ((p = fy_node_mapping_iterate(root, &iter))) {
                struct fy_node *k = fy_node_pair_key(p);
                const char *path = k && fy_node_is_scalar(k) ? fy_node_get_scalar0(k) : NULL;

                if (!path || path[0] != '/') {
                        snprintf(err, errlen, "'%s' is not a path", path ? path : "");
                        r = -EINVAL;
                        goto out;
                }
                r = parse_one(path, fy_node_pair_value(p), &ret->v[ret->n], err, errlen);
                ret->n++;
                if (r < 0)
                        goto out;
        }
out:
        if (d)
                fy_document_destroy(d);
        strbuf_deinit(&why);
        if (r < 0)
                app_probes_free(ret);
        return r;
}

const struct app_probe_spec *app_probes_find(const struct app_probes *t, const char *path, size_t len)
{
        for (size_t i = 0; i < t->n; i++)
                if (strlen(t->v[i].path) == len && memcmp(t->v[i].path, path, len) == 0)
                        return &t->v[i];
        return NULL;
}

/* ---- running one ---- */

enum run_state { RUN_CONNECTING, RUN_SENDING, RUN_READING };

struct app_probe_run {
        struct loop *loop;
        struct loop_watch watch;
        struct loop_timer timer;
        int fd;
        enum run_state state;
        bool http;
        char req[APP_PROBE_REQUEST_MAX];
        size_t req_len, req_off;
        char resp[64];
        size_t resp_len;
        app_probe_done_fn done;
        void *ctx;
};

static void run_free(struct app_probe_run *r)
{
        loop_watch_del(r->loop, &r->watch);
        loop_timer_cancel(r->loop, &r->timer);
        if (r->fd >= 0)
                close(r->fd);
        free(r);
}

static void finish(struct app_probe_run *r, int status, const char *why)
{
        app_probe_done_fn done = r->done;
        void *ctx = r->ctx;

        run_free(r);
        done(ctx, status, why);
}

void app_probe_cancel(struct app_probe_run *r)
{
        if (r)
                run_free(r);
}

static void timeout_cb(struct loop *l, struct loop_timer *t)
{
        struct app_probe_run *r = container_of(t, struct app_probe_run, timer);

        finish(r, 500, r->state == RUN_CONNECTING ? "connect timed out" : "no answer within the timeout");
}

static void io_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        struct app_probe_run *r = container_of(w, struct app_probe_run, watch);
        char why[96];
        ssize_t n;
        int e = 0;

        if (r->state == RUN_CONNECTING) {
                socklen_t len = sizeof(e);
                if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                        e = errno;
                if (e) {
                        snprintf(why, sizeof(why), "connect: %s", strerror(e));
                        return finish(r, 500, why);
                }
                if (!r->http)
                        return finish(r, 200, "connected");
                r->state = RUN_SENDING;
        }
        if (r->state == RUN_SENDING) {
                n = send(r->fd, r->req + r->req_off, r->req_len - r->req_off, MSG_NOSIGNAL);
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        snprintf(why, sizeof(why), "send: %s", strerror(errno));
                        return finish(r, 500, why);
                }
                r->req_off += (size_t)n;
                if (r->req_off < r->req_len)
                        return;
                r->state = RUN_READING;
                e = loop_watch_set(r->loop, &r->watch, EPOLLIN);
                if (e < 0) {
                        snprintf(why, sizeof(why), "waiting for the answer: epoll_ctl: %s", strerror(-e));
                        return finish(r, 500, why);
                }
                return;
        }
        n = recv(r->fd, r->resp + r->resp_len, sizeof(r->resp) - 1 - r->resp_len, 0);
        if (n < 0 && errno == EAGAIN)
                return;
        if (n <= 0) {
                snprintf(why, sizeof(why), "reading the answer: %s", n == 0 ? "closed before a status line" : strerror(errno));
                return finish(r, 500, why);
        }
        r->resp_len += (size_t)n;
        r->resp[r->resp_len] = '\0';
        if (r->resp_len < 12 && !strchr(r->resp, '\n'))
                return;
        /* "HTTP/1.x NNN ...": the application's status is the answer, as kubelet would judge it. */
        if (strncmp(r->resp, "HTTP/1.", 7) != 0 || r->resp[8] != ' ' || atoi(r->resp + 9) < 100 || atoi(r->resp + 9) > 599)
                return finish(r, 500, "not an HTTP/1 answer");
        /* kubelet counts 200-399 as success: answer 200 for those (a bare 3xx would send it
         * looking for a Location), the application's own 4xx/5xx otherwise. */
        {
                int st = atoi(r->resp + 9);
                snprintf(why, sizeof(why), "the application answered %d", st);
                finish(r, st >= 200 && st < 400 ? 200 : st >= 400 ? st : 500, why);
        }
}

static int build_request(struct app_probe_run *r, const struct app_probe_spec *s, const char *host, bool v6)
{
        int n = snprintf(r->req, sizeof(r->req), "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: kube-probe/pilotfish\r\n",
                         s->http_path, v6 ? "[" : "", host, v6 ? "]" : "", s->port);

        for (size_t i = 0; i < s->n_headers && n > 0 && (size_t)n < sizeof(r->req); i++)
                n += snprintf(r->req + n, sizeof(r->req) - (size_t)n, "%s: %s\r\n",
                              s->headers[i].name ? s->headers[i].name : "", s->headers[i].value ? s->headers[i].value : "");
        if (n > 0 && (size_t)n < sizeof(r->req))
                n += snprintf(r->req + n, sizeof(r->req) - (size_t)n, "Accept: */*\r\nConnection: close\r\n\r\n");
        if (n <= 0 || (size_t)n >= sizeof(r->req))
                return -E2BIG;
        r->req_len = (size_t)n;
        return 0;
}

int app_probe_start(struct loop *l, const struct app_probe_spec *s, const char *pod_ip, app_probe_done_fn done,
                    void *ctx, struct app_probe_run **ret)
{
        const char *host = s->host && *s->host ? s->host : pod_ip && *pod_ip ? pod_ip : "127.0.0.1";
        struct sockaddr_storage ss = { 0 };
        struct app_probe_run *r;
        socklen_t len;
        bool v6 = strchr(host, ':') != NULL;
        int k;

        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)s->port);
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)s->port);
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;    /* a host name: kubelet resolves it; pilotfish does not */
                len = sizeof(*a);
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->loop = l;
        r->watch = (struct loop_watch)LOOP_WATCH_NULL;
        r->timer = (struct loop_timer)LOOP_TIMER_NULL;
        r->done = done;
        r->ctx = ctx;
        /* No TLS or HTTP/2 client in the proxy yet: HTTPS and gRPC probes check the port. */
        r->http = s->kind == APP_PROBE_HTTP && !s->https;
        if (r->http && build_request(r, s, host, v6) < 0) {
                free(r);
                return -E2BIG;
        }
        r->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r->fd < 0) {
                k = -errno;
                goto fail;
        }
        /* From 127.0.0.6 (::6), like inbound relays: the capture rules send the proxy's own
         * connections to a pod address back to 15006, except from this source. */
        if (passthrough_bind(r->fd, ss.ss_family) < 0)
                log_debug("app probe %s: binding the passthrough source: %s", s->path, strerror(errno));
        if (connect(r->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
                k = -errno;
                goto fail;
        }
        k = loop_watch_add(l, &r->watch, r->fd, EPOLLOUT, io_cb);
        if (k < 0)
                goto fail;
        k = loop_timer_arm(l, &r->timer, (uint64_t)s->timeout_s * 1000, timeout_cb);
        if (k < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        log_debug("app probe %s: %s", s->path, strerror(-k));
        run_free(r);
        return k;
}
