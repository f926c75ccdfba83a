/*
 * Unit tests for proxy/metrics.c: the pod identity read from the injector's environment, Istio's
 * label set and order on the TCP metrics, Prometheus and JSON escaping, the series key (IPv6 in
 * brackets, IPv4-mapped folded into IPv4, unreadable destinations), the cardinality bound, and
 * that counters updated from several threads at once add up (run this one under TSan too).
 * When promtool is installed the rendered text must pass `promtool check metrics`; under
 * CI=true a missing promtool is a failure, not a skip.
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

#include "common/strbuf.h"
#include "proxy/metrics.h"
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
static char *render(const struct metrics *m, enum metrics_format fmt)
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

static void test_series_bound(void)
{
        struct metrics_identity id = test_identity();
        struct metrics *m = test_metrics(&id);
        struct metrics_series *first = NULL, *s, *over, *over2, *over_in, *over_uf;
        struct sockaddr_in a;
        bool distinct = true;
        char *text;

        for (unsigned i = 0; i < METRICS_MAX_SERIES; i++) {
                char ip[32], want[40];

                snprintf(ip, sizeof(ip), "10.%u.%u.1", i / 256, i % 256);
                snprintf(want, sizeof(want), "%s:80", ip);
                a = sin4(ip, 80);
                s = metrics_series_get(m, METRICS_OUTBOUND, (struct sockaddr *)&a, "-");
                if (!s || strcmp(metrics_series_service(s), want) != 0)
                        distinct = false;
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

        metrics_series_opened(over);
        text = render(m, METRICS_FORMAT_PROMETHEUS);
        tap_ok(strstr(text, "destination_service=\"overflow\"") != NULL, "the overflow series is rendered");
        free(text);
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

static void test_connect_failure_causes(void)
{
        tap_ok(metrics_connect_failure_from_errno(-ECONNREFUSED) == METRICS_CONNECT_REFUSED &&
               metrics_connect_failure_from_errno(ETIMEDOUT) == METRICS_CONNECT_TIMEOUT &&
               metrics_connect_failure_from_errno(-EHOSTUNREACH) == METRICS_CONNECT_UNREACHABLE &&
               metrics_connect_failure_from_errno(-ENETUNREACH) == METRICS_CONNECT_UNREACHABLE &&
               metrics_connect_failure_from_errno(-EACCES) == METRICS_CONNECT_OTHER &&
               strcmp(metrics_connect_failure_str(METRICS_CONNECT_UNREACHABLE), "unreachable") == 0,
               "connect errnos of either sign map to refused/timeout/unreachable/other");
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
        test_identity_workload_from_pod_name();
        test_identity_too_long();
        test_label_order();
        test_inbound_labels();
        test_escaping();
        test_counts();
        test_destinations();
        test_series_bound();
        test_concurrent_updates();
        test_connect_failure_causes();
        test_json_empty();
        test_render_bounded();
        test_process_figures();
        test_promtool();
        return tap_done();
}
