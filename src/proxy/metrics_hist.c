/*
 * Histograms; see metrics_hist.h.
 */
#include <stdatomic.h>

#include "common/prom.h"
#include "proxy/metrics_hist.h"

const double metrics_hist_bounds[METRICS_HIST_BUCKETS] = {
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
        1800000, 3600000,
};

void metrics_hist_init(struct metrics_hist *h)
{
        for (size_t i = 0; i <= METRICS_HIST_BUCKETS; i++)
                atomic_init(&h->buckets[i], 0);
        atomic_init(&h->sum, 0);
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t v)
{
        size_t lo = 0, hi = METRICS_HIST_BUCKETS;

        /* The first bound >= v: a value equal to a bound is in that bound's bucket (le). */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if ((double)v <= metrics_hist_bounds[mid])
                        hi = mid;
                else
                        lo = mid + 1;
        }
        atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void metrics_hist_read(const struct metrics_hist *h, uint64_t cumulative[METRICS_HIST_BUCKETS],
                       uint64_t *ret_count, uint64_t *ret_sum)
{
        uint64_t total = 0;

        for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++) {
                total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
                cumulative[i] = total;
        }
        /* Count from the buckets, so +Inf and _count agree with the rest in one reading. */
        *ret_count = total + atomic_load_explicit(&h->buckets[METRICS_HIST_BUCKETS], memory_order_relaxed);
        *ret_sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

void metrics_hist_print(const struct metrics_hist *h, struct prom_printer *p, const struct prom_label *labels,
                        size_t n)
{
        uint64_t cumulative[METRICS_HIST_BUCKETS], count, sum;

        metrics_hist_read(h, cumulative, &count, &sum);
        prom_histogram(p, labels, n, metrics_hist_bounds, METRICS_HIST_BUCKETS, cumulative, count, PROM_U64(sum));
}
