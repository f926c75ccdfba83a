/*
 * The proxy's metrics: Istio's standard TCP metrics (istio_tcp_*) with Istio's names and label
 * set, pilotfish's own figures (pilotfish_*), and the standard process_* figures. One file per
 * job: this pod's identity (metrics_identity.h), the series table (here), the proxy's own
 * counters (metrics_counters.h), the /proc figures (metrics_process.h), Istio's families and
 * labels (metrics_istio.h) and the scrape (metrics_scrape.h), which prints through
 * common/prom.h. Callers include this header only.
 *
 * One struct metrics is shared by all worker threads. A series is keyed by small interned ids
 * (direction, peer identity, destination, protocol, response code, gRPC status, response
 * flags; proxy/metrics_intern.h), and the label text is rendered only at scrape time. Today
 * only TCP exists: protocol "tcp", peer "unknown", no response code or gRPC status. A series
 * holds four relaxed atomic counters. A worker looks its series up once per connection (no
 * lock for an existing series: a few loads inside a read section, see metrics.c; a mutex only
 * to insert a new one) and keeps the pointer, with a reference, from opened to closed.
 * Updating a counter is then one relaxed atomic add, with no lock on the hot path.
 *
 * Cardinality is bounded: with METRICS_MAX_SERIES series in the table, a new destination is
 * counted in the series whose destination_service is "overflow" (one per direction and flags),
 * so a port scan or a service with many IPs cannot grow memory or a scrape without limit.
 * Series expire, so the bound is on the live set: when the table is full and a new series is
 * needed (at most once a second), every series that no connection holds and that has not
 * changed for METRICS_SERIES_TTL_MS is removed first. Removal is safe against the lock-free
 * lookups and against scrapes in progress: see metrics.c.
 */
#pragma once

#include <stdint.h>

#include "proxy/metrics_counters.h"
#include "proxy/metrics_identity.h"
#include "proxy/metrics_process.h"
#include "proxy/metrics_scrape.h"

struct metrics;
struct metrics_series;
struct sockaddr;

/* Live series before new ones go to "overflow". */
#define METRICS_MAX_SERIES 10000
/*
 * How long a series no connection holds stays when room is needed: five minutes, a few
 * Prometheus scrape intervals (15 s to 1 min), so its last counts are scraped before it goes.
 * Below the limit nothing expires, as in Istio, whose series never do by default.
 */
#define METRICS_SERIES_TTL_MS (5 * 60 * 1000)
/* Longest response_flags string accepted ("UF,URX" style lists fit). */
#define METRICS_FLAGS_MAX 15

/* A series' counters at one moment (each read atomically, not all four together). */
struct metrics_series_counts {
        uint64_t opened, closed, sent, received;
};

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
 * Returns the series with a reference taken for the connection, which metrics_series_closed()
 * gives back; until then the pointer stays valid (afterwards only until the series expires).
 * NULL only when out of memory. Every metrics_series_*() call accepts NULL and does nothing,
 * so a caller need not check.
 */
struct metrics_series *metrics_series_get(struct metrics *m, enum metrics_direction dir,
                                          const struct sockaddr *orig_dst, const char *response_flags);

/* Hot-path counter updates: one relaxed atomic add each, any thread, NULL is a no-op. */
void metrics_series_opened(struct metrics_series *s);
/* Counts the close and gives back the reference metrics_series_get() took: call it once. */
void metrics_series_closed(struct metrics_series *s);
/* Istio's "sent": bytes written to the downstream (the client), i.e. upstream -> client. */
void metrics_series_add_sent(struct metrics_series *s, uint64_t n);
/* Istio's "received": bytes read from the downstream (the client), i.e. client -> upstream. */
void metrics_series_add_received(struct metrics_series *s, uint64_t n);
/* The current counts (zeros for NULL). */
void metrics_series_read(const struct metrics_series *s, struct metrics_series_counts *ret);
/* The destination_service label value of s, e.g. "[2001:db8::1]:443" ("" for NULL). */
const char *metrics_series_service(const struct metrics_series *s);

/* CLOCK_MONOTONIC_COARSE in milliseconds: the clock of idle times and metrics_expire(). */
int64_t metrics_now_ms(void);
/*
 * Removes every series that no connection or scrape holds and that has been idle for the TTL
 * at now_ms. Any thread that holds no series lookup in progress (not from inside a metrics
 * call); waits for lookups in flight to finish before freeing. Returns how many were removed.
 */
size_t metrics_expire(struct metrics *m, int64_t now_ms);
/* The TTL of metrics_expire() (METRICS_SERIES_TTL_MS until set; tests shorten it). */
void metrics_set_ttl(struct metrics *m, int64_t ttl_ms);
/* Series in the table now, the overflow series included. */
size_t metrics_series_count(struct metrics *m);
