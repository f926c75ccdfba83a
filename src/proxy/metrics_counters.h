/*
 * The proxy's own figures (pilotfish_*): connections being relayed, upstream connects that
 * failed and why, bytes moved by splice(2) and by the copy fallback, and listener pauses for
 * lack of file descriptors. They live in struct metrics next to Istio's series and are
 * updated with relaxed atomics from any thread. The byte counters change on every transfer of
 * every connection, so they are split into cache-line-sized shards (a thread picks one on first
 * use) and summed at scrape time; everything else changes once per connection.
 */
#pragma once

#include <stdint.h>

struct metrics;
struct prom_printer;

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

/* Any thread; relaxed atomics. */
void metrics_active_inc(struct metrics *m, enum metrics_direction dir);
void metrics_active_dec(struct metrics *m, enum metrics_direction dir);
void metrics_connect_failed(struct metrics *m, enum metrics_connect_failure cause);
/* Bytes moved by splice(2), and by the read/write buffer fallback, in either direction. */
void metrics_add_spliced(struct metrics *m, uint64_t n);
void metrics_add_copied(struct metrics *m, uint64_t n);
/* accept(2) failed with EMFILE/ENFILE and the listener was paused. */
void metrics_accept_paused(struct metrics *m);

/* A connect's errno is mapped to its cause by the relay's one table (relay_end_from_connect_errno,
 * then relay_end_connect_failure), so the access log and these counters agree. */
/* "refused", "timeout", "unreachable", "other": the label value, also for logs. */
const char *metrics_connect_failure_str(enum metrics_connect_failure c);

/* Prints the pilotfish_* families, each counter read once. */
void metrics_counters_print(const struct metrics *m, struct prom_printer *p);
