/*
 * Unit tests for the proxy's metrics (proxy/metrics*.c, common/prom.c): the pod identity read
 * from the injector's environment, Istio's label set and order on the TCP metrics, Prometheus
 * and JSON escaping, the series key (IPv6 in brackets, IPv4-mapped folded into IPv4,
 * unreadable destinations), the cardinality bound rendered in full through the scrape cursor,
 * expiry (TTL, references held by connections and scrapes, room made at the limit), histograms
 * (bucket boundaries, +Inf, sum and count), and that counters updated and series looked up and
 * expired from several threads at once add up (run this one under TSan too). When promtool is
 * installed the rendered text must pass `promtool check metrics`; under CI=true a missing
 * promtool is a failure, not a skip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/prom.h"
#include "common/strbuf.h"
#include "proxy/metrics.h"
#include "proxy/metrics_hist.h"
#include "tap.h"

static struct sockaddr_in sin4(const char *ip, unsigned port)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

        inet_pton(AF_INET, ip, &a.sin_addr);
        return a;
}

static struct sockaddr_in6 sin6(const char *ip, unsigned port)
{
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };

        inet_pton(AF_INET6, ip, &a.sin6_addr);
        return a;
}

static struct metrics_identity test_identity(void)
{
        struct metrics_identity id;

        memset(&id, 0, sizeof(id));
        snprintf(id.workload, sizeof(id.workload), "reviews-v1");
        snprintf(id.namespace_, sizeof(id.namespace_), "default");
        snprintf(id.app, sizeof(id.app), "reviews");
        snprintf(id.version, sizeof(id.version), "v1");
        snprintf(id.cluster, sizeof(id.cluster), "Kubernetes");
        return id;
}

static struct metrics *test_metrics(const struct metrics_identity *id)
{
        struct metrics *m = NULL;

        if (metrics_new(&m, id) < 0) {
                printf("Bail out! metrics_new failed\n");
                exit(1);
        }
        return m;
}

/* Renders without process figures; the caller frees the text. */
static char *render(struct metrics *m, enum metrics_format fmt)
{
        struct strbuf b = STRBUF_NULL;

        if (metrics_render(m, NULL, fmt, &b) < 0) {
                strbuf_deinit(&b);
                return strdup("(render failed)");
        }
        return strbuf_steal(&b);
}

/* The first line of text starting with prefix, without its newline, or NULL. Caller frees. */
static char *find_line(const char *text, const char *prefix)
{
        size_t n = strlen(prefix);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, prefix, n) == 0) {
                        const char *e = strchr(p, '\n');
                        return strndup(p, e ? (size_t)(e - p) : strlen(p));
                }
        }
        return NULL;
}

static void test_identity_defaults(void)
{
        char *env[] = { "PATH=/bin", "POD_NAMESPACE=", NULL };
        struct metrics_identity id;
        int r = metrics_identity_from_env(env, &id);

        tap_ok(r == 0 && strcmp(id.workload, "unknown") == 0 && strcmp(id.namespace_, "unknown") == 0 &&
               strcmp(id.app, "unknown") == 0 && strcmp(id.version, "unknown") == 0 &&
               strcmp(id.cluster, "Kubernetes") == 0,
               "with nothing set (an empty variable counts as unset) every field is \"unknown\" and the cluster \"Kubernetes\"");
        r = metrics_identity_from_env(NULL, &id);
        tap_ok(r == 0 && strcmp(id.workload, "unknown") == 0, "a NULL environment is an empty one");
}

static void test_identity_from_injector_env(void)
{
        char *env[] = {
                "ISTIO_META_WORKLOAD_NAME=reviews-v1",
                "POD_NAME=reviews-v1-7d9f8c6b5d-x2x4q",
                "POD_NAMESPACE=bookinfo",
                "ISTIO_METAJSON_LABELS={\"app\":\"reviews\", \"pod-template-hash\":\"7d9f8c6b5d\",\"version\":\"v1\"}",
                "CANONICAL_SERVICE=reviews-canonical",
                "CANONICAL_REVISION=v1-canonical",
                "ISTIO_META_CLUSTER_ID=east",
                NULL,
        };
        struct metrics_identity id;
        int r = metrics_identity_from_env(env, &id);

        tap_ok(r == 0 && strcmp(id.workload, "reviews-v1") == 0 && strcmp(id.namespace_, "bookinfo") == 0 &&
               strcmp(id.app, "reviews") == 0 && strcmp(id.version, "v1") == 0 && strcmp(id.cluster, "east") == 0,
               "the injector's variables fill every field, and the app/version labels win over CANONICAL_* (Istio's *_app is the app label)");
}

static void test_identity_canonical_fallback(void)
{
        char *env[] = { "CANONICAL_SERVICE=ratings", "CANONICAL_REVISION=v2",
                        "ISTIO_METAJSON_LABELS={\"role\":\"db\"}", NULL };
        char *env2[] = { "ISTIO_METAJSON_LABELS={\"app.kubernetes.io/name\":\"web\",\"app.kubernetes.io/version\":\"3\"}",
                         "CANONICAL_SERVICE=other", NULL };
        struct metrics_identity id, id2;
        int r = metrics_identity_from_env(env, &id);
        int r2 = metrics_identity_from_env(env2, &id2);

        tap_ok(r == 0 && strcmp(id.app, "ratings") == 0 && strcmp(id.version, "v2") == 0,
               "without app/version labels, CANONICAL_SERVICE and CANONICAL_REVISION are used");
        tap_ok(r2 == 0 && strcmp(id2.app, "web") == 0 && strcmp(id2.version, "3") == 0,
               "app.kubernetes.io/name and /version stand in for missing app and version labels");
}

static void test_identity_labels_json(void)
{
        char *env[] = { "ISTIO_METAJSON_LABELS={\"app\":\"caf\\u00e9 \\\"x\\\"\",\"version\":\"a\",\"version\":\"b\"}", NULL };
        char *bad[] = { "ISTIO_METAJSON_LABELS={\"app\":\"x\",", "CANONICAL_SERVICE=fallback", NULL };
        char *num[] = { "ISTIO_METAJSON_LABELS={\"app\":1}", NULL };
        struct metrics_identity id;
        int r;

        r = metrics_identity_from_env(env, &id);
        tap_ok(r == 0 && strcmp(id.app, "caf\xc3\xa9 \"x\"") == 0 && strcmp(id.version, "b") == 0,
               "label JSON escapes are decoded (\\u00e9 to UTF-8, \\\") and a repeated key keeps its last value, as in Go");
        r = metrics_identity_from_env(bad, &id);
        tap_ok(r == 0 && strcmp(id.app, "fallback") == 0,
               "a truncated label object is ignored as a whole and the fallback is used");
        r = metrics_identity_from_env(num, &id);
        tap_ok(r == 0 && strcmp(id.app, "unknown") == 0, "a label object with a non-string value is ignored");
}

static void test_identity_labels_strict(void)
{
        static const char *const bad[] = {
                "{\"app\":\"x\"} {}",               /* a second document */
                "{\"app\":\"x\"} trailing",         /* text after the object */
                "{app: x}",                             /* YAML flow, not JSON */
                "{\"app\":\"\\ud800\"}",          /* a lone surrogate */
                "{\"app\":\"\xff\"}",              /* not UTF-8 */
                "{\"app\":\"a\\u0000b\"}",        /* a NUL in the value */
                "[\"app\",\"x\"]",                  /* not an object */
                "{\"app\":{\"a\":\"b\"}}",        /* a value that is not a string */
        };
        const char *json;
        char buf[16];
        bool all = true;
        int r;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                r = metrics_identity_json_label(bad[i], strlen(bad[i]), "app", buf, sizeof(buf));
                if (r != -EBADMSG) {
                        printf("# %s: %d\n", bad[i], r);
                        all = false;
                }
        }
        tap_ok(all, "label JSON that is not one object of strings (two documents, trailing text, YAML, a lone surrogate, not UTF-8, a NUL) is malformed as a whole");
        r = metrics_identity_json_label("{\"app\":\"a long value\"}", 22, "app", buf, 8);
        tap_ok(r == -ENAMETOOLONG, "a value longer than the buffer is -ENAMETOOLONG (got %d)", r);
        json = " {\"x\":\"1\", \"app\":\"\\ud83d\\ude00\"} ";
        r = metrics_identity_json_label(json, strlen(json), "app", buf, sizeof(buf));
        tap_ok(r == 4 && strcmp(buf, "\xf0\x9f\x98\x80") == 0, "a surrogate pair becomes its UTF-8 (got %d)", r);
}

static const char *workload_of(const char *pod, struct metrics_identity *id)
{
        char var[300];
        char *env[] = { var, NULL };

        snprintf(var, sizeof(var), "POD_NAME=%s", pod);
        metrics_identity_from_env(env, id);
        return id->workload;
}

static void test_identity_workload_from_pod_name(void)
{
        struct metrics_identity id;

        TAP_STREQ(workload_of("reviews-v1-7d9f8c6b5d-x2x4q", &id), "reviews-v1",
                  "a Deployment's pod name loses the pod-template-hash and the generated suffix");
        TAP_STREQ(workload_of("pi-x2x4q", &id), "pi", "a Job's or DaemonSet's pod loses the generated suffix");
        TAP_STREQ(workload_of("hello-28112345-x2x4q", &id), "hello",
                  "a CronJob's pod loses the generated suffix and the scheduled minute");
        TAP_STREQ(workload_of("web-0", &id), "web", "a StatefulSet's pod loses its ordinal");
        TAP_STREQ(workload_of("my-api-server", &id), "my-api-server",
                  "a name with no generated suffix (vowels, wrong length) is kept whole");
        TAP_STREQ(workload_of("x2x4q", &id), "x2x4q", "a name that is only a suffix is kept");
}

static void test_identity_too_long(void)
{
        char ns[100], var[120];
        char *env[] = { var, "POD_NAME=web-0", NULL };
        struct metrics_identity id;
        int r;

        memset(ns, 'n', sizeof(ns) - 1);
        ns[sizeof(ns) - 1] = '\0';
        snprintf(var, sizeof(var), "POD_NAMESPACE=%s", ns);
        r = metrics_identity_from_env(env, &id);
        tap_ok(r == -ENAMETOOLONG && strcmp(id.namespace_, "unknown") == 0 && strcmp(id.workload, "web") == 0,
               "a value longer than its field is -ENAMETOOLONG, that field \"unknown\", the rest filled in");
}

static void test_label_order(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct sockaddr_in a = sin4("10.0.0.1", 80);
        struct metrics_series *s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, NULL);
        char *text, *line;

        metrics_series_opened(s);
        metrics_series_opened(s);
        text = render(m, METRICS_FORMAT_PROMETHEUS);
        line = find_line(text, "istio_tcp_connections_opened_total{");
        TAP_STREQ(line,
                  "istio_tcp_connections_opened_total{reporter=\"source\",source_workload=\"reviews-v1\","
                  "source_workload_namespace=\"default\",source_principal=\"unknown\",source_app=\"reviews\","
                  "source_version=\"v1\",source_cluster=\"Kubernetes\",destination_workload=\"unknown\","
                  "destination_workload_namespace=\"unknown\",destination_principal=\"unknown\","
                  "destination_app=\"unknown\",destination_version=\"unknown\",destination_service=\"10.0.0.1:80\","
                  "destination_service_name=\"10.0.0.1:80\",destination_service_namespace=\"unknown\","
                  "destination_cluster=\"unknown\",request_protocol=\"tcp\",response_flags=\"-\","
                  "connection_security_policy=\"unknown\"} 2",
                  "an outbound series carries Istio's 19 labels in Istio's order, this pod as the source, NULL flags as \"-\"");
        tap_ok(strstr(text, "# HELP istio_tcp_connections_opened_total ") &&
               strstr(text, "# TYPE istio_tcp_connections_opened_total counter\n") &&
               strstr(text, "# TYPE pilotfish_active_connections gauge\n") &&
               strstr(text, "# TYPE istio_tcp_sent_bytes_total counter\n"),
               "every family has # HELP and # TYPE lines");
        free(line);
        free(text);
        metrics_free(m);
}

static void test_inbound_labels(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct sockaddr_in a = sin4("10.1.2.3", 9080);
        char *text, *line;

        metrics_series_opened(metrics_series_get(m, METRICS_INBOUND, (struct sockaddr *)&a, "-"));
        text = render(m, METRICS_FORMAT_PROMETHEUS);
        line = find_line(text, "istio_tcp_connections_opened_total{");
        TAP_STREQ(line,
                  "istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"unknown\","
                  "source_workload_namespace=\"unknown\",source_principal=\"unknown\",source_app=\"unknown\","
                  "source_version=\"unknown\",source_cluster=\"unknown\",destination_workload=\"reviews-v1\","
                  "destination_workload_namespace=\"default\",destination_principal=\"unknown\","
                  "destination_app=\"reviews\",destination_version=\"v1\",destination_service=\"10.1.2.3:9080\","
                  "destination_service_name=\"10.1.2.3:9080\",destination_service_namespace=\"default\","
                  "destination_cluster=\"Kubernetes\",request_protocol=\"tcp\",response_flags=\"-\","
                  "connection_security_policy=\"none\"} 1",
                  "an inbound series has this pod as the destination, its namespace as the service's, and policy \"none\" as Istio without mTLS");
        free(line);
        free(text);
        metrics_free(m);
}

static void test_escaping(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m;
        struct sockaddr_in a = sin4("10.0.0.1", 80);
        char *text, *line, *json;

        snprintf(id.workload, sizeof(id.workload), "a\"b\\c\nd");
        snprintf(id.app, sizeof(id.app), "t\tab\x01");
        m = test_metrics(&id);
        metrics_series_opened(metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-"));
        text = render(m, METRICS_FORMAT_PROMETHEUS);
        line = find_line(text, "istio_tcp_connections_opened_total{");
        tap_ok(line && strstr(line, "source_workload=\"a\\\"b\\\\c\\nd\",") && strstr(line, "source_app=\"t\tab\x01\","),
               "label values escape backslash, double quote and newline (only those) in the text format");
        json = render(m, METRICS_FORMAT_JSON);
        tap_ok(strstr(json, "\"source_workload\":\"a\\\"b\\\\c\\nd\"") && strstr(json, "\"source_app\":\"t\\tab\\u0001\""),
               "JSON escapes quote, backslash and every control character");
        free(json);
        free(line);
        free(text);
        metrics_free(m);
}

static void test_counts(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct sockaddr_in a = sin4("10.0.0.1", 80), b = sin4("10.0.0.1", 443);
        struct metrics_series *s, *s2, *uf, *other;
        struct metrics_series_counts c;
        char *text, *line;

        s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
        metrics_series_opened(s);
        metrics_series_add_received(s, 50);
        metrics_series_add_sent(s, 100);
        s2 = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "");
        metrics_series_opened(s2);
        metrics_series_add_sent(s2, 20);
        metrics_series_closed(s);
        uf = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "UF");
        metrics_series_opened(uf);
        metrics_series_closed(uf);
        other = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&b, "-");

        metrics_series_read(s, &c);
        tap_ok(s == s2 && s != uf && s != other && c.opened == 2 && c.closed == 1 && c.sent == 120 && c.received == 50,
               "the same (direction, destination, flags) is one series; counts add up over a sequence of calls");
        metrics_series_read(uf, &c);
        tap_ok(c.opened == 1 && c.closed == 1 && c.sent == 0, "a failed connect counted under \"UF\" is a series of its own");

        text = render(m, METRICS_FORMAT_PROMETHEUS);
        line = find_line(text, "istio_tcp_sent_bytes_total{");
        tap_ok(line && strstr(line, "destination_service=\"10.0.0.1:80\"") && strstr(line, "response_flags=\"-\"") &&
               strstr(line, "} 120"),
               "istio_tcp_sent_bytes_total carries the upstream-to-client bytes, sorted first for the lowest destination");
        free(line);
        line = find_line(text, "istio_tcp_received_bytes_total{");
        tap_ok(line && strstr(line, "} 50"), "istio_tcp_received_bytes_total carries the client-to-upstream bytes");
        free(line);
        free(text);

        metrics_series_opened(NULL);
        metrics_series_add_sent(NULL, 5);
        metrics_series_read(NULL, &c);
        tap_ok(c.opened == 0 && strcmp(metrics_series_service(NULL), "") == 0,
               "every series call accepts NULL (the out-of-memory result of metrics_series_get)");
        metrics_free(m);
}

static void test_destinations(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct sockaddr_in6 v6 = sin6("2001:db8::1", 443), mapped = sin6("::ffff:10.0.0.7", 80);
        struct sockaddr_in v4 = sin4("10.0.0.7", 80);
        struct sockaddr_storage unspec = { .ss_family = AF_UNSPEC };
        struct metrics_series *s6, *sm, *s4, *su, *sn;

        s6 = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&v6, "-");
        sm = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&mapped, "-");
        s4 = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&v4, "-");
        su = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&unspec, "NR");
        sn = metrics_series_get(m, METRICS_OUTBOUND, NULL, "NR");
        TAP_STREQ(metrics_series_service(s6), "[2001:db8::1]:443", "an IPv6 destination is bracketed, with its port");
        tap_ok(sm == s4 && strcmp(metrics_series_service(sm), "10.0.0.7:80") == 0,
               "an IPv4-mapped IPv6 destination is the same series as the IPv4 address");
        tap_ok(su == sn && strcmp(metrics_series_service(su), "unknown") == 0,
               "a NULL or AF_UNSPEC destination (unreadable) is \"unknown\"");
        metrics_free(m);
}

/* What a full text rendering holds, line by line (see check_exposition). */
struct exposition {
        size_t lines, help, type, samples;
        size_t family_samples[32];      /* per family, in order of their # TYPE */
        const char *family_names[32];
        size_t families;
        bool order_ok;                  /* HELP then TYPE then samples of that family only */
        bool once;                      /* every family's HELP and TYPE appear once */
        size_t overflow;                /* samples of destination_service="overflow" */
        char overflow_opened[32];       /* the value of the outbound "-" one's opened count */
};

/* Whether the len bytes at p hold needle. */
static bool line_has(const char *p, size_t len, const char *needle)
{
        return p && memmem(p, len, needle, strlen(needle)) != NULL;
}

static bool line_is(const char *p, const char *e, const char *prefix)
{
        size_t n = strlen(prefix);

        return (size_t)(e - p) >= n && memcmp(p, prefix, n) == 0;
}

/*
 * Reads a Prometheus text exposition: counts HELP, TYPE and sample lines, checks each family's
 * HELP comes once, right before its TYPE, and that a sample belongs to the family declared last
 * (its name, or name_bucket/_sum/_count for a histogram). Family names must outlive e.
 */
static void check_exposition(char *text, struct exposition *x)
{
        char current[128] = "";

        memset(x, 0, sizeof(*x));
        x->order_ok = x->once = true;
        for (char *p = text, *e; *p; p = e + 1) {
                e = strchr(p, '\n');
                if (!e)
                        break;
                x->lines++;
                if (line_is(p, e, "# HELP ")) {
                        char name[128];

                        x->help++;
                        sscanf(p + 7, "%127s", name);
                        for (size_t i = 0; i < x->families; i++)
                                if (strcmp(x->family_names[i], name) == 0)
                                        x->once = false;
                        snprintf(current, sizeof(current), "%s", name);
                } else if (line_is(p, e, "# TYPE ")) {
                        char name[128];

                        x->type++;
                        sscanf(p + 7, "%127s", name);
                        if (strcmp(name, current) != 0 || x->families >= 32)
                                x->order_ok = false;
                        else
                                x->family_names[x->families++] = strndup(name, strlen(name));
                } else {
                        size_t n = strcspn(p, "{ ");
                        size_t len = (size_t)(e - p);

                        /* Bounded to the line: a search from p to the text's end would make
                         * this quadratic under TSan, whose strstr measures the haystack. */
                        if (line_has(p, len, "destination_service=\"overflow\"")) {
                                x->overflow++;
                                if (line_is(p, e, "istio_tcp_connections_opened_total{") &&
                                    line_has(p, len, "reporter=\"source\"") && line_has(p, len, "response_flags=\"-\"")) {
                                        const char *v = memrchr(p, ' ', len);

                                        if (v)
                                                snprintf(x->overflow_opened, sizeof(x->overflow_opened), "%.*s",
                                                         (int)(e - v - 1), v + 1);
                                }
                        }
                        x->samples++;
                        if (!x->families || strncmp(p, current, strlen(current)) != 0 ||
                            (n != strlen(current) && !line_is(p + strlen(current), e, "_bucket") &&
                             !line_is(p + strlen(current), e, "_sum") && !line_is(p + strlen(current), e, "_count")))
                                x->order_ok = false;
                        else
                                x->family_samples[x->families - 1]++;
                }
        }
}

static void exposition_free(struct exposition *x)
{
        for (size_t i = 0; i < x->families; i++)
                free((char *)x->family_names[i]);
}

/*
 * Renders all of m through a cursor in pieces of at least want bytes, each into a buffer of its
 * own whose limit is want plus one sample line at most, as a scrape would send them; returns
 * the concatenation (or NULL if a piece failed) and the largest piece.
 */
static char *render_cursor(struct metrics *m, enum metrics_format fmt, bool with_process, size_t want,
                           size_t *ret_max_piece, size_t *ret_pieces)
{
        struct metrics_cursor *c;
        struct strbuf all = STRBUF_NULL;
        int r;

        *ret_max_piece = 0;
        *ret_pieces = 0;
        if (metrics_cursor_new(m, fmt, with_process, &c) < 0)
                return NULL;
        do {
                struct strbuf piece = STRBUF_NULL;

                piece.limit = want + 4096;
                r = metrics_cursor_next(c, &piece, want);
                if (r >= 0) {
                        strbuf_append(&all, strbuf_str(&piece), piece.len);
                        if (piece.len > *ret_max_piece)
                                *ret_max_piece = piece.len;
                        (*ret_pieces)++;
                }
                strbuf_deinit(&piece);
        } while (r > 0);
        metrics_cursor_free(c);
        if (r < 0 || all.error) {
                strbuf_deinit(&all);
                return NULL;
        }
        return strbuf_steal(&all);
}

static int promtool_check(const char *text, char *out, size_t outlen);
static bool promtool_present(void);

static void test_series_bound(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct metrics_series *first = NULL, *s, *over, *over2, *over_in, *over_uf;
        struct sockaddr_in a;
        struct exposition x;
        bool distinct = true;
        size_t max_piece, pieces, want = 64 * 1024;
        const size_t series = METRICS_MAX_SERIES + 3;   /* the three overflow series below */
        char *text, out[4096];
        int r;

        for (unsigned i = 0; i < METRICS_MAX_SERIES; i++) {
                char ip[32], want_service[40];

                snprintf(ip, sizeof(ip), "10.%u.%u.1", i / 256, i % 256);
                snprintf(want_service, sizeof(want_service), "%s:80", ip);
                a = sin4(ip, 80);
                s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
                if (!s || strcmp(metrics_series_service(s), want_service) != 0)
                        distinct = false;
                metrics_series_opened(s);
                if (!first)
                        first = s;
        }
        tap_ok(distinct, "%d distinct destinations get series of their own", METRICS_MAX_SERIES);

        a = sin4("192.0.2.1", 80);
        over = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
        a = sin4("192.0.2.2", 80);
        over2 = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
        over_in = metrics_series_get(m, METRICS_INBOUND, (struct sockaddr *)&a, "-");
        over_uf = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "UF");
        tap_ok(over && over == over2 && strcmp(metrics_series_service(over), "overflow") == 0,
               "past the bound, new destinations share one destination_service=\"overflow\" series");
        tap_ok(over_in && over_uf && over_in != over && over_uf != over &&
               strcmp(metrics_series_service(over_in), "overflow") == 0,
               "the overflow series is still split by direction and response flags");
        a = sin4("10.0.0.1", 80);
        tap_ok(metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-") == first,
               "a destination seen before the bound keeps its own series");
        tap_ok(metrics_series_count(m) == series, "the table holds %zu series (got %zu)", series,
               metrics_series_count(m));

        metrics_series_opened(over);
        metrics_series_opened(over2);
        metrics_series_add_sent(over, 7);
        metrics_series_opened(over_uf);
        metrics_series_closed(over_uf);

        text = render_cursor(m, METRICS_FORMAT_PROMETHEUS, false, want, &max_piece, &pieces);
        tap_ok(text != NULL, "the cursor renders all of it (%zu pieces, the largest %zu bytes for %zu asked)",
               pieces, max_piece, want);
        if (!text)
                text = strdup("");
        tap_ok(max_piece < want + 4096 && pieces > 100,
               "each piece is the size asked for plus at most one sample line, so a scrape holds a piece, not the text");
        check_exposition(text, &x);
        tap_ok(x.families == 9 && x.help == 9 && x.type == 9 && x.once && x.order_ok,
               "every family has its # HELP and # TYPE once, in order, and every sample follows its own (%zu families)",
               x.families);
        tap_ok(x.samples == 4 * series + 9 && x.lines == x.samples + 2 * 9,
               "exactly %zu samples: %zu per Istio family and the proxy's 9 (got %zu in %zu lines)",
               4 * series + 9, series, x.samples, x.lines);
        tap_ok(x.families == 9 && x.family_samples[0] == series && x.family_samples[1] == series &&
               x.family_samples[2] == series && x.family_samples[3] == series,
               "each of the four istio_tcp_* families has one sample per series");
        tap_ok(x.overflow == 3 * 4 && strcmp(x.overflow_opened, "2") == 0,
               "the three overflow series appear in each family, the outbound one opened twice (%zu samples, opened %s)",
               x.overflow, x.overflow_opened);

        /* The same text: every render at the limit is 24 MB, slow under ThreadSanitizer. */
        if (promtool_present()) {
                r = promtool_check(text, out, sizeof(out));
                if (r != 0 || out[0])
                        printf("# promtool said (%d):\n# %s\n", r, out);
                tap_ok(r == 0 && out[0] == '\0', "`promtool check metrics` accepts the whole text at the series limit");
        } else {
                tap_skip("promtool is not installed (package prometheus)", "promtool check metrics at the series limit");
        }
        exposition_free(&x);
        free(text);
        metrics_free(m);
}

static void test_cursor_json(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        size_t max_piece, pieces;
        char *pieced, *whole;

        for (unsigned i = 0; i < 300; i++) {
                struct sockaddr_in a = sin4("10.3.0.1", 1000 + i);

                metrics_series_opened(metrics_series_get(m, i & 1 ? METRICS_INBOUND : METRICS_OUTBOUND,
                                                         (struct sockaddr *)&a, "-"));
        }
        pieced = render_cursor(m, METRICS_FORMAT_JSON, false, 1, &max_piece, &pieces);
        whole = render(m, METRICS_FORMAT_JSON);
        tap_ok(pieced && strcmp(pieced, whole) == 0 && pieces > 1200,
               "JSON through the cursor, one step per piece (%zu pieces), is the same document as in one piece", pieces);
        free(pieced);
        free(whole);
        pieced = render_cursor(m, METRICS_FORMAT_PROMETHEUS, false, 1000, &max_piece, &pieces);
        whole = render(m, METRICS_FORMAT_PROMETHEUS);
        tap_ok(pieced && strcmp(pieced, whole) == 0 && pieces > 100,
               "the text through the cursor in pieces of 1000 bytes (%zu pieces) is the text in one piece", pieces);
        free(pieced);
        free(whole);
        metrics_free(m);
}

static void test_expiry(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct metrics_series *held, *idle, *again, *s;
        struct metrics_cursor *c;
        struct sockaddr_in a = sin4("10.4.0.1", 80), b = sin4("10.4.0.2", 80), o;
        struct strbuf t = STRBUF_NULL;
        int64_t now = metrics_now_ms();
        size_t removed;

        metrics_set_ttl(m, 1000);
        held = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
        metrics_series_opened(held);
        idle = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&b, "-");
        metrics_series_opened(idle);
        metrics_series_add_sent(idle, 10);
        metrics_series_closed(idle);

        removed = metrics_expire(m, now + 500);
        tap_ok(removed == 0 && metrics_series_count(m) == 2, "nothing expires before the TTL (removed %zu)", removed);
        if (metrics_cursor_new(m, METRICS_FORMAT_PROMETHEUS, false, &c) == 0) {
                removed = metrics_expire(m, now + 5000);
                tap_ok(removed == 0, "a series a scrape in progress holds does not expire under it");
                metrics_cursor_next(c, &t, SIZE_MAX);
                tap_ok(strstr(strbuf_str(&t), "destination_service=\"10.4.0.2:80\"") != NULL,
                       "and the scrape still prints it");
                metrics_cursor_free(c);
        }
        strbuf_deinit(&t);
        removed = metrics_expire(m, now + 5000);
        tap_ok(removed == 1 && metrics_series_count(m) == 1,
               "past the TTL, the series no connection holds is removed and the held one stays (removed %zu)", removed);
        again = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&b, "-");
        {
                struct metrics_series_counts cnt;

                metrics_series_read(again, &cnt);
                tap_ok(again && cnt.opened == 0 && cnt.sent == 0 &&
                       strcmp(metrics_series_service(again), "10.4.0.2:80") == 0,
                       "the destination seen again gets a new series that starts from zero");
        }
        metrics_series_closed(again);
        metrics_series_closed(held);
        metrics_free(m);

        /* At the limit, expiry makes room for new destinations instead of "overflow". */
        m = test_metrics(&id);
        metrics_set_ttl(m, 0);
        for (unsigned i = 0; i < METRICS_MAX_SERIES; i++) {
                o = sin4("10.5.0.1", 0);
                o.sin_addr.s_addr = htonl(0x0a050000u + i);
                s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&o, "UF");
                metrics_series_opened(s);
                metrics_series_closed(s);
        }
        o = sin4("10.6.0.1", 80);
        s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&o, "-");
        tap_ok(s && strcmp(metrics_series_service(s), "10.6.0.1:80") == 0 && metrics_series_count(m) < 100,
               "at the limit with every series idle past the TTL, a new destination gets its own series, not \"overflow\" (%zu left)",
               metrics_series_count(m));
        metrics_series_closed(s);
        metrics_free(m);
}

#define THREADS 8
#define ITERATIONS 20000
#define DESTINATIONS 64

struct worker_arg {
        struct metrics *m;
        unsigned index;
        _Atomic int *go;
};

static void *worker(void *data)
{
        struct worker_arg *w = data;

        /* Start once the scraper runs, so scrapes overlap inserts and updates. */
        while (!atomic_load(w->go))
                sched_yield();
        for (unsigned i = 0; i < ITERATIONS; i++) {
                unsigned d = (i * 7 + w->index) % DESTINATIONS;
                struct sockaddr_in a = sin4("10.9.0.1", 1000 + d);
                struct metrics_series *s;

                s = metrics_series_get(w->m, (d & 1) ? METRICS_INBOUND : METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
                metrics_active_inc(w->m, METRICS_OUTBOUND);
                metrics_series_opened(s);
                metrics_series_add_received(s, 5);
                metrics_series_add_sent(s, 3);
                metrics_add_spliced(w->m, 7);
                metrics_add_copied(w->m, 1);
                metrics_connect_failed(w->m, (enum metrics_connect_failure)(i % 4));
                metrics_series_closed(s);
                metrics_active_dec(w->m, METRICS_OUTBOUND);
        }
        metrics_accept_paused(w->m);
        return NULL;
}

struct scraper_arg {
        struct metrics *m;
        _Atomic int go;
        _Atomic int stop;
        int renders;
};

static void *scraper(void *data)
{
        struct scraper_arg *sc = data;

        atomic_store(&sc->go, 1);
        while (!atomic_load(&sc->stop)) {
                struct strbuf b = STRBUF_NULL;

                if (metrics_render_json(sc->m, &b) == 0)
                        sc->renders++;
                strbuf_deinit(&b);
        }
        return NULL;
}

static uint64_t value_after(const char *text, const char *prefix)
{
        char *line = find_line(text, prefix);
        uint64_t v = line ? strtoull(line + strlen(prefix), NULL, 10) : UINT64_MAX;

        free(line);
        return v;
}

static void test_concurrent_updates(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct worker_arg args[THREADS];
        struct scraper_arg sc = { .m = m };
        pthread_t t[THREADS], st;
        uint64_t opened = 0, closed = 0, sent = 0, received = 0;
        const uint64_t total = (uint64_t)THREADS * ITERATIONS;
        char *text;

        pthread_create(&st, NULL, scraper, &sc);
        for (unsigned i = 0; i < THREADS; i++) {
                args[i] = (struct worker_arg){ .m = m, .index = i, .go = &sc.go };
                pthread_create(&t[i], NULL, worker, &args[i]);
        }
        for (unsigned i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        atomic_store(&sc.stop, 1);
        pthread_join(st, NULL);

        for (unsigned d = 0; d < DESTINATIONS; d++) {
                struct sockaddr_in a = sin4("10.9.0.1", 1000 + d);
                struct metrics_series_counts c;

                metrics_series_read(metrics_series_get(m, (d & 1) ? METRICS_INBOUND : METRICS_OUTBOUND,
                                                       (struct sockaddr *)&a, "-"), &c);
                opened += c.opened;
                closed += c.closed;
                sent += c.sent;
                received += c.received;
        }
        tap_ok(opened == total && closed == total && sent == 3 * total && received == 5 * total,
               "%d threads creating and updating %d series at once lose no update (opened %llu of %llu)",
               THREADS, DESTINATIONS, (unsigned long long)opened, (unsigned long long)total);

        text = render(m, METRICS_FORMAT_PROMETHEUS);
        tap_ok(value_after(text, "pilotfish_bytes_spliced_total ") == 7 * total &&
               value_after(text, "pilotfish_bytes_copied_total ") == total &&
               value_after(text, "pilotfish_connect_failures_total{cause=\"timeout\"} ") == total / 4 &&
               value_after(text, "pilotfish_accept_paused_total ") == THREADS &&
               value_after(text, "pilotfish_active_connections{listener=\"outbound\"} ") == 0,
               "the proxy's own figures (sharded byte counters included) add up across threads");
        printf("# %d scrapes ran while the threads were updating\n", sc.renders);
        free(text);
        metrics_free(m);
}

struct expiry_arg {
        struct metrics *m;
        unsigned index;
        _Atomic int *stop;
        _Atomic size_t *removed;        /* by the reaper so far */
        bool intact;
};

/* Looks series up, holds each for a moment and checks it stays whole while held. */
static void *expiry_worker(void *data)
{
        struct expiry_arg *w = data;

        w->intact = true;
        /* Until the reaper has removed some, so lookups and removals did overlap. */
        for (unsigned i = 0; i < ITERATIONS / 4 || atomic_load(w->removed) < 100; i++) {
                unsigned d = (i * 13 + w->index) % DESTINATIONS;
                struct sockaddr_in a = sin4("10.8.0.1", 2000 + d);
                char want[32];
                struct metrics_series *s;
                struct metrics_series_counts c;

                snprintf(want, sizeof(want), "10.8.0.1:%u", 2000 + d);
                s = metrics_series_get(w->m, METRICS_OUTBOUND, (struct sockaddr *)&a, i % 3 ? "-" : "UF");
                metrics_series_opened(s);
                metrics_series_add_sent(s, 1);
                metrics_series_read(s, &c);
                if (!s || strcmp(metrics_series_service(s), want) != 0 || c.opened == 0)
                        w->intact = false;
                metrics_series_closed(s);
        }
        return NULL;
}

static void *expiry_reaper(void *data)
{
        struct expiry_arg *w = data;

        while (!atomic_load(w->stop)) {
                atomic_fetch_add(w->removed, metrics_expire(w->m, metrics_now_ms()));
                sched_yield();
        }
        return NULL;
}

/* A few whole scrapes while the others run: each holds every series it prints. */
static void *expiry_scraper(void *data)
{
        struct expiry_arg *w = data;

        for (int i = 0; i < 5; i++) {
                struct strbuf b = STRBUF_NULL;

                if (metrics_render_json(w->m, &b) != 0 || !strstr(strbuf_str(&b), "]}]}"))
                        w->intact = false;
                strbuf_deinit(&b);
        }
        return NULL;
}

static void test_concurrent_expiry(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct expiry_arg args[THREADS], reaper, sc;
        pthread_t t[THREADS], rt, st;
        _Atomic int stop = 0;
        _Atomic size_t removed = 0;
        bool intact = true;

        metrics_set_ttl(m, 0);
        reaper = (struct expiry_arg){ .m = m, .stop = &stop, .removed = &removed };
        sc = (struct expiry_arg){ .m = m, .intact = true };
        pthread_create(&rt, NULL, expiry_reaper, &reaper);
        pthread_create(&st, NULL, expiry_scraper, &sc);
        for (unsigned i = 0; i < THREADS; i++) {
                args[i] = (struct expiry_arg){ .m = m, .index = i, .removed = &removed };
                pthread_create(&t[i], NULL, expiry_worker, &args[i]);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                pthread_join(t[i], NULL);
                intact = intact && args[i].intact;
        }
        pthread_join(st, NULL);
        atomic_store(&stop, 1);
        pthread_join(rt, NULL);
        tap_ok(intact && sc.intact,
               "%d threads looking series up and letting go while another expires them (%zu removed) and scrapes run: every held series stays whole",
               THREADS, atomic_load(&removed));
        metrics_expire(m, metrics_now_ms());
        tap_ok(metrics_series_count(m) == 0, "once all are let go, expiry removes every series (left %zu)",
               metrics_series_count(m));
        metrics_free(m);
}

static void test_histogram(void)
{
        struct metrics_hist h;
        struct strbuf t = STRBUF_NULL, j = STRBUF_NULL;
        struct prom_printer p = PROM_PRINTER_INIT(&t, PROM_FORMAT_TEXT), pj = PROM_PRINTER_INIT(&j, PROM_FORMAT_JSON);
        const struct prom_label l[] = { { "reporter", "source" } };
        uint64_t cum[METRICS_HIST_BUCKETS], count, sum;

        metrics_hist_init(&h);
        metrics_hist_observe(&h, 0);            /* <= 0.5 */
        metrics_hist_observe(&h, 1);            /* equal to a bound: in that bucket */
        metrics_hist_observe(&h, 2);            /* between 1 and 5 */
        metrics_hist_observe(&h, 5);
        metrics_hist_observe(&h, 3600000);      /* the last bound */
        metrics_hist_observe(&h, 3600001);      /* past every bound: +Inf only */
        metrics_hist_read(&h, cum, &count, &sum);
        tap_ok(cum[0] == 1 && cum[1] == 2 && cum[2] == 4 && cum[3] == 4 && cum[17] == 4 && cum[18] == 5 &&
               count == 6 && sum == 7200009,
               "a value equal to a bound is counted in that bound's bucket, buckets are cumulative, +Inf is the count, the sum adds up");

        prom_begin(&p);
        prom_family(&p, "istio_request_duration_milliseconds", "histogram", "Request duration");
        metrics_hist_print(&h, &p, l, 1);
        prom_end(&p);
        TAP_STREQ(strbuf_str(&t),
                  "# HELP istio_request_duration_milliseconds Request duration\n"
                  "# TYPE istio_request_duration_milliseconds histogram\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"0.5\"} 1\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"1\"} 2\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"5\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"10\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"25\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"50\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"100\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"250\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"500\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"1000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"2500\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"5000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"10000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"30000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"60000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"300000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"600000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"1800000\"} 4\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"3600000\"} 5\n"
                  "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"+Inf\"} 6\n"
                  "istio_request_duration_milliseconds_sum{reporter=\"source\"} 7200009\n"
                  "istio_request_duration_milliseconds_count{reporter=\"source\"} 6\n",
                  "a histogram prints Envoy's bounds as Envoy does (le=\"0.5\", le=\"3600000\"), then +Inf, _sum and _count");
        if (promtool_present()) {
                /* Under a name in seconds: promtool's lint refuses Istio's "milliseconds". */
                struct strbuf pt = STRBUF_NULL;
                struct prom_printer pp = PROM_PRINTER_INIT(&pt, PROM_FORMAT_TEXT);
                char out[4096];
                int r;

                prom_begin(&pp);
                prom_family(&pp, "test_request_duration_seconds", "histogram", "Request duration");
                metrics_hist_print(&h, &pp, l, 1);
                prom_end(&pp);
                r = promtool_check(strbuf_str(&pt), out, sizeof(out));
                strbuf_deinit(&pt);
                tap_ok(r == 0 && out[0] == '\0', "`promtool check metrics` accepts the histogram (%d: %s)", r, out);
        } else {
                tap_skip("promtool is not installed (package prometheus)", "promtool check metrics on a histogram");
        }

        metrics_hist_init(&h);
        metrics_hist_observe(&h, 30);
        prom_begin(&pj);
        prom_family(&pj, "h", "histogram", "x");
        metrics_hist_print(&h, &pj, l, 1);
        prom_end(&pj);
        TAP_STREQ(strbuf_str(&j),
                  "{\"metrics\":[{\"name\":\"h\",\"type\":\"histogram\",\"help\":\"x\",\"samples\":[{\"labels\":{\"reporter\":\"source\"},"
                  "\"buckets\":{\"0.5\":0,\"1\":0,\"5\":0,\"10\":0,\"25\":0,\"50\":1,\"100\":1,\"250\":1,\"500\":1,\"1000\":1,"
                  "\"2500\":1,\"5000\":1,\"10000\":1,\"30000\":1,\"60000\":1,\"300000\":1,\"600000\":1,\"1800000\":1,"
                  "\"3600000\":1,\"+Inf\":1},\"sum\":30,\"count\":1}]}]}\n",
                  "the same histogram in the JSON of /stats carries its cumulative buckets, sum and count");
        strbuf_deinit(&t);
        strbuf_deinit(&j);
}

static void test_json_empty(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        char *json = render(m, METRICS_FORMAT_JSON);

        TAP_STREQ(json,
                  "{\"metrics\":["
                  "{\"name\":\"istio_tcp_connections_opened_total\",\"type\":\"counter\",\"help\":\"Total TCP connections opened\",\"samples\":[]},"
                  "{\"name\":\"istio_tcp_connections_closed_total\",\"type\":\"counter\",\"help\":\"Total TCP connections closed\",\"samples\":[]},"
                  "{\"name\":\"istio_tcp_sent_bytes_total\",\"type\":\"counter\",\"help\":\"Total bytes sent during response (upstream to downstream) on TCP connections\",\"samples\":[]},"
                  "{\"name\":\"istio_tcp_received_bytes_total\",\"type\":\"counter\",\"help\":\"Total bytes received during request (downstream to upstream) on TCP connections\",\"samples\":[]},"
                  "{\"name\":\"pilotfish_active_connections\",\"type\":\"gauge\",\"help\":\"Connections being relayed now, by capture listener\",\"samples\":["
                  "{\"labels\":{\"listener\":\"outbound\"},\"value\":0},{\"labels\":{\"listener\":\"inbound\"},\"value\":0}]},"
                  "{\"name\":\"pilotfish_connect_failures_total\",\"type\":\"counter\",\"help\":\"Upstream connects that failed, by cause\",\"samples\":["
                  "{\"labels\":{\"cause\":\"refused\"},\"value\":0},{\"labels\":{\"cause\":\"timeout\"},\"value\":0},"
                  "{\"labels\":{\"cause\":\"unreachable\"},\"value\":0},{\"labels\":{\"cause\":\"other\"},\"value\":0}]},"
                  "{\"name\":\"pilotfish_bytes_spliced_total\",\"type\":\"counter\",\"help\":\"Bytes relayed with splice(2), both directions\",\"samples\":[{\"labels\":{},\"value\":0}]},"
                  "{\"name\":\"pilotfish_bytes_copied_total\",\"type\":\"counter\",\"help\":\"Bytes relayed through the read/write buffer fallback, both directions\",\"samples\":[{\"labels\":{},\"value\":0}]},"
                  "{\"name\":\"pilotfish_accept_paused_total\",\"type\":\"counter\",\"help\":\"Times a listener stopped accepting for lack of file descriptors (EMFILE/ENFILE)\",\"samples\":[{\"labels\":{},\"value\":0}]}"
                  "]}\n",
                  "the JSON for the admin /stats holds the same families, help and samples as the text");
        free(json);
        metrics_free(m);
}

static void test_render_bounded(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct strbuf b = STRBUF_NULL;
        int r;

        b.limit = 100;
        r = metrics_render(m, NULL, METRICS_FORMAT_PROMETHEUS, &b);
        tap_ok(r == -ENOBUFS, "a render that does not fit the buffer's limit fails with -ENOBUFS (got %d)", r);
        strbuf_deinit(&b);
        metrics_free(m);
}

static void test_process_figures(void)
{
        struct metrics_process p;
        time_t now = time(NULL);

        metrics_process_read(&p);
        tap_ok(p.cpu_seconds >= 0 && p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes &&
               p.open_fds >= 3 && p.start_time_seconds > (double)now - 3600 && p.start_time_seconds <= (double)now + 1,
               "process figures read from /proc are plausible (rss %lld, fds %lld, start %.0f, now %lld)",
               (long long)p.resident_bytes, (long long)p.open_fds, p.start_time_seconds, (long long)now);
}

/* Runs `promtool check metrics` on text; returns its exit status, with its output in out. */
static int promtool_check(const char *text, char *out, size_t outlen)
{
        char path[] = "/tmp/test-proxy-metrics-XXXXXX", cmd[128];
        size_t n, len = strlen(text);
        FILE *p;
        int fd, status;

        fd = mkstemp(path);
        if (fd < 0)
                return -1;
        if (write(fd, text, len) != (ssize_t)len) {
                close(fd);
                unlink(path);
                return -1;
        }
        close(fd);
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
        p = popen(cmd, "r");
        if (!p) {
                unlink(path);
                return -1;
        }
        n = fread(out, 1, outlen - 1, p);
        out[n] = '\0';
        status = pclose(p);
        unlink(path);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool promtool_present(void)
{
        return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void test_promtool(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m;
        struct sockaddr_in a = sin4("10.0.0.1", 80);
        struct sockaddr_in6 b = sin6("2001:db8::1", 443);
        struct strbuf text = STRBUF_NULL;
        const char *ci = getenv("CI");
        char out[4096];
        int r;

        if (system("command -v promtool >/dev/null 2>&1") != 0) {
                if (ci && strcmp(ci, "true") == 0)
                        tap_ok(false, "promtool check metrics: promtool is not installed, and CI=true requires it");
                else
                        tap_ok(true, "promtool check metrics # SKIP promtool is not installed (package prometheus)");
                return;
        }
        snprintf(id.workload, sizeof(id.workload), "we\"ird\\name\nx");
        m = test_metrics(&id);
        metrics_series_opened(metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-"));
        metrics_series_add_sent(metrics_series_get(m, METRICS_INBOUND, (struct sockaddr *)&b, "UF"), 10);
        metrics_active_inc(m, METRICS_INBOUND);
        metrics_add_spliced(m, 1000);
        r = metrics_render_prometheus(m, &text);
        if (r == 0)
                r = promtool_check(strbuf_str(&text), out, sizeof(out));
        if (r != 0 || out[0])
                printf("# promtool said (%d):\n# %s\n", r, out);
        tap_ok(r == 0 && out[0] == '\0', "`promtool check metrics` accepts the text, process figures included, with no lint");
        strbuf_deinit(&text);
        metrics_free(m);
}

int main(void)
{
        test_identity_defaults();
        test_identity_from_injector_env();
        test_identity_canonical_fallback();
        test_identity_labels_json();
        test_identity_labels_strict();
        test_identity_workload_from_pod_name();
        test_identity_too_long();
        test_label_order();
        test_inbound_labels();
        test_escaping();
        test_counts();
        test_destinations();
        test_series_bound();
        test_cursor_json();
        test_expiry();
        test_concurrent_updates();
        test_concurrent_expiry();
        test_histogram();
        test_json_empty();
        test_render_bounded();
        test_process_figures();
        test_promtool();
        return tap_done();
}
