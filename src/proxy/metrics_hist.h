/*
 * Histograms as Istio's HTTP metrics need them (istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes; SEMANTICS 2.1 of the istio-agent conformance
 * notes): Envoy's default bucket bounds, one relaxed atomic counter per bucket, so observing a
 * value is a short search and one add on the hot path, like a counter. A series of an HTTP
 * kind will hold these next to its counters; TCP has none (Istio emits no histogram for TCP).
 * Printed through common/prom as Prometheus' _bucket{le=...} (cumulative), _sum and _count.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct prom_label;
struct prom_printer;

/* Envoy's default histogram buckets (its "supported_buckets" when none are configured). */
#define METRICS_HIST_BUCKETS 19
extern const double metrics_hist_bounds[METRICS_HIST_BUCKETS];

/* Embedded; zeroed memory is an empty histogram (or metrics_hist_init()). */
struct metrics_hist {
        /* buckets[i]: values v with bounds[i-1] < v <= bounds[i]; the last one v > every bound. */
        _Atomic uint64_t buckets[METRICS_HIST_BUCKETS + 1];
        _Atomic uint64_t sum;
};

void metrics_hist_init(struct metrics_hist *h);
/* Counts v (milliseconds, bytes: Envoy records integers). Any thread, relaxed atomics. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t v);
/* Reads h once: cumulative[i] = values <= bounds[i]; *ret_count all of them; *ret_sum. */
void metrics_hist_read(const struct metrics_hist *h, uint64_t cumulative[METRICS_HIST_BUCKETS],
                       uint64_t *ret_count, uint64_t *ret_sum);
/* Prints h as one histogram sample of the printer's current family, with the given labels. */
void metrics_hist_print(const struct metrics_hist *h, struct prom_printer *p, const struct prom_label *labels,
                        size_t n);
