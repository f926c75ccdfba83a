/*
 * The proxy's metrics: Istio's standard TCP metrics (istio_tcp_*) with Istio's names and label
 * set, pilotfish's own figures (pilotfish_*), and the standard process_* figures, rendered as
 * Prometheus text for /stats/prometheus and as JSON for the admin /stats through one printer,
 * so the two cannot drift apart.
 *
 * One struct metrics is shared by all worker threads. Istio's labels depend on the connection
 * only through (direction, original destination, response flags), so a "series" is keyed by
 * those three and holds four relaxed atomic counters. A worker looks its series up once per
 * connection (lock-free for an existing series; a mutex only to insert a new one) and keeps
 * the pointer, which stays valid until metrics_free(): series are never removed. Updating a
 * counter is then one relaxed atomic add, with no lock on the hot path.
 *
 * Cardinality is bounded: after METRICS_MAX_SERIES distinct series, a new destination is
 * counted in the series whose destination_service is "overflow" (one per direction and flags),
 * so a port scan or a service with many IPs cannot grow memory or a scrape without limit.
 *
 * The label values, and where they differ from Envoy's, are listed at the top of metrics.c.
 */
#pragma once

#include <stdint.h>

struct metrics;
struct metrics_series;
struct sockaddr;
struct strbuf;

/* Distinct (direction, destination, flags) series before new ones go to "overflow". */
#define METRICS_MAX_SERIES 10000
/* Longest response_flags string accepted ("UF,URX" style lists fit). */
#define METRICS_FLAGS_MAX 15

/*
 * This pod's side of every series. Each field is NUL-terminated and "unknown" when not known
 * (cluster: "Kubernetes", Istio's default cluster ID).
 */
struct metrics_identity {
        char workload[256];     /* Kubernetes names are at most 253 bytes */
        char namespace_[64];    /* DNS label: at most 63 */
        char app[256];
        char version[256];
        char cluster[256];
};

enum metrics_direction {
        METRICS_OUTBOUND = 0,   /* captured on 15001: reporter="source" */
        METRICS_INBOUND,        /* captured on 15006: reporter="destination" */
        _METRICS_DIRECTION_MAX,
};

/* Why a connect to the upstream failed: the cause="..." label of pilotfish_connect_failures_total. */
enum metrics_connect_failure {
        METRICS_CONNECT_REFUSED = 0,    /* ECONNREFUSED, or a reset during the handshake */
        METRICS_CONNECT_TIMEOUT,        /* our connect timeout, or ETIMEDOUT */
        METRICS_CONNECT_UNREACHABLE,    /* EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN */
        METRICS_CONNECT_OTHER,
        _METRICS_CONNECT_FAILURE_MAX,
};

/*
 * Process figures, read at scrape time. A figure that could not be read is negative and is
 * left out of the output.
 */
struct metrics_process {
        double cpu_seconds;             /* user + system, all threads */
        double start_time_seconds;      /* since the Unix epoch */
        int64_t resident_bytes;
        int64_t virtual_bytes;
        int64_t open_fds;
        int64_t max_fds;                /* soft RLIMIT_NOFILE; negative when unlimited */
};

/* A series' counters at one moment (each read atomically, not all four together). */
struct metrics_series_counts {
        uint64_t opened, closed, sent, received;
};

enum metrics_format {
        METRICS_FORMAT_PROMETHEUS = 0,  /* text exposition format 0.0.4 */
        METRICS_FORMAT_JSON,
};

/*
 * Fills *ret from an envp-style array (NULL is an empty environment), the way the Istio
 * sidecar injector sets it up:
 *   workload   ISTIO_META_WORKLOAD_NAME, else POD_NAME with the generated suffixes stripped
 *              ("reviews-v1-7d9f8c6b5d-x2x4q" -> "reviews-v1"; see metrics.c), else "unknown"
 *   namespace  POD_NAMESPACE
 *   app        the "app" label (then "app.kubernetes.io/name") from ISTIO_METAJSON_LABELS, which
 *              is what Istio's stats use for *_app; else CANONICAL_SERVICE
 *   version    the "version" label (then "app.kubernetes.io/version"), else CANONICAL_REVISION
 *   cluster    ISTIO_META_CLUSTER_ID, else "Kubernetes"
 * An empty variable counts as unset; a malformed ISTIO_METAJSON_LABELS is ignored. Returns 0,
 * or -ENAMETOOLONG when a value does not fit its field (that field is then "unknown" and the
 * others are filled in).
 */
int metrics_identity_from_env(char *const *envp, struct metrics_identity *ret);

/*
 * Creates the shared metrics, copying id. Returns 0 and *ret (the caller frees it with
 * metrics_free() after every worker has stopped), or -ENOMEM.
 */
int metrics_new(struct metrics **ret, const struct metrics_identity *id);
/* Frees m and every series; accepts NULL; returns NULL. No thread may still use m. */
struct metrics *metrics_free(struct metrics *m);

/*
 * Returns the series of a connection, creating it on first use. Any thread.
 *   orig_dst        the original destination: AF_INET or AF_INET6 (an IPv4-mapped IPv6 address
 *                   counts as its IPv4 address; the scope id is ignored); NULL or another family
 *                   (a connection whose destination could not be read) is "unknown"
 *   response_flags  Envoy's short flags: NULL or "" means "-"; at most METRICS_FLAGS_MAX bytes
 *                   (longer is a programmer error and aborts). Envoy sets "UF" for a refused,
 *                   unreachable *and* timed-out upstream connect (its "UT" is HTTP's upstream
 *                   request timeout), "UO" for overflow, "NR" for no route.
 * Take the series once the flags are known, i.e. when the upstream connect succeeded ("-") or
 * failed ("UF": then call opened and closed at once, as Envoy counts a failed connection).
 * Returns a pointer valid until metrics_free(), or NULL only when out of memory. Every
 * metrics_series_*() call accepts NULL and does nothing, so a caller need not check.
 */
struct metrics_series *metrics_series_get(struct metrics *m, enum metrics_direction dir,
                                          const struct sockaddr *orig_dst, const char *response_flags);

/* Hot-path counter updates: one relaxed atomic add each, any thread, NULL is a no-op. */
void metrics_series_opened(struct metrics_series *s);
void metrics_series_closed(struct metrics_series *s);
/* Istio's "sent": bytes written to the downstream (the client), i.e. upstream -> client. */
void metrics_series_add_sent(struct metrics_series *s, uint64_t n);
/* Istio's "received": bytes read from the downstream (the client), i.e. client -> upstream. */
void metrics_series_add_received(struct metrics_series *s, uint64_t n);
/* The current counts (zeros for NULL). */
void metrics_series_read(const struct metrics_series *s, struct metrics_series_counts *ret);
/* The destination_service label value of s, e.g. "[2001:db8::1]:443" ("" for NULL). */
const char *metrics_series_service(const struct metrics_series *s);

/* The proxy's own figures. Any thread; relaxed atomics. */
void metrics_active_inc(struct metrics *m, enum metrics_direction dir);
void metrics_active_dec(struct metrics *m, enum metrics_direction dir);
void metrics_connect_failed(struct metrics *m, enum metrics_connect_failure cause);
/* Bytes moved by splice(2), and by the read/write buffer fallback, in either direction. */
void metrics_add_spliced(struct metrics *m, uint64_t n);
void metrics_add_copied(struct metrics *m, uint64_t n);
/* accept(2) failed with EMFILE/ENFILE and the listener was paused. */
void metrics_accept_paused(struct metrics *m);

/* The cause for a connect(2)/SO_ERROR errno (either sign): refused, timeout, unreachable, other. */
enum metrics_connect_failure metrics_connect_failure_from_errno(int err);
/* "refused", "timeout", "unreachable", "other": the label value, also for logs. */
const char *metrics_connect_failure_str(enum metrics_connect_failure c);

/*
 * Reads this process's figures from /proc/self and getrusage()/getrlimit(). Always returns 0;
 * a figure that cannot be read is set negative.
 */
int metrics_process_read(struct metrics_process *ret);

/*
 * Appends every metric to out in the given format, with # HELP and # TYPE lines (text) or as
 * {"metrics":[{"name","type","help","samples":[{"labels":{...},"value":N}]}]} (JSON). proc may
 * be NULL to leave out the process figures (what golden tests do). Series come out sorted by
 * direction, then destination (numerically), then flags. Any thread, concurrently with
 * updates: each counter is read once, so totals may be a few updates apart from each other.
 * Returns 0, or the strbuf's -ENOBUFS/-ENOMEM (out then holds a partial text).
 */
int metrics_render(const struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out);
/* metrics_process_read() followed by metrics_render(): what /stats/prometheus serves. */
int metrics_render_prometheus(const struct metrics *m, struct strbuf *out);
/* The same for the admin's /stats (JSON). */
int metrics_render_json(const struct metrics *m, struct strbuf *out);
