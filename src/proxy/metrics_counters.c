/*
 * The proxy's own figures; see metrics_counters.h.
 */
#include <limits.h>
#include <stdatomic.h>

#include "common/prom.h"
#include "proxy/metrics-t.h"
#include "proxy/metrics_counters.h"

static const char *const metrics_connect_failure_table[_METRICS_CONNECT_FAILURE_MAX] = {
        [METRICS_CONNECT_REFUSED] = "refused",
        [METRICS_CONNECT_TIMEOUT] = "timeout",
        [METRICS_CONNECT_UNREACHABLE] = "unreachable",
        [METRICS_CONNECT_OTHER] = "other",
};

static const char *const metrics_direction_table[_METRICS_DIRECTION_MAX] = {
        [METRICS_OUTBOUND] = "outbound",
        [METRICS_INBOUND] = "inbound",
};

static _Atomic unsigned metrics_counters_next_shard;
static _Thread_local unsigned metrics_counters_shard = UINT_MAX;

/* Each thread sticks to one shard, so its adds stay on a cache line it mostly owns. */
unsigned metrics_thread_shard(void)
{
        if (metrics_counters_shard == UINT_MAX)
                metrics_counters_shard = atomic_fetch_add_explicit(&metrics_counters_next_shard, 1,
                                                                   memory_order_relaxed) % METRICS_SHARDS;
        return metrics_counters_shard;
}

static struct metrics_shard *metrics_counters_my_shard(struct metrics *m)
{
        return &m->counters.shards[metrics_thread_shard()];
}

void metrics_active_inc(struct metrics *m, enum metrics_direction dir)
{
        atomic_fetch_add_explicit(&m->counters.active[dir], 1, memory_order_relaxed);
}

void metrics_active_dec(struct metrics *m, enum metrics_direction dir)
{
        atomic_fetch_sub_explicit(&m->counters.active[dir], 1, memory_order_relaxed);
}

void metrics_connect_failed(struct metrics *m, enum metrics_connect_failure cause)
{
        if ((unsigned)cause >= _METRICS_CONNECT_FAILURE_MAX)
                cause = METRICS_CONNECT_OTHER;
        atomic_fetch_add_explicit(&m->counters.connect_failures[cause], 1, memory_order_relaxed);
}

void metrics_add_spliced(struct metrics *m, uint64_t n)
{
        if (n)
                atomic_fetch_add_explicit(&metrics_counters_my_shard(m)->spliced, n, memory_order_relaxed);
}

void metrics_add_copied(struct metrics *m, uint64_t n)
{
        if (n)
                atomic_fetch_add_explicit(&metrics_counters_my_shard(m)->copied, n, memory_order_relaxed);
}

void metrics_accept_paused(struct metrics *m)
{
        atomic_fetch_add_explicit(&m->counters.accept_paused, 1, memory_order_relaxed);
}

const char *metrics_connect_failure_str(enum metrics_connect_failure c)
{
        if ((unsigned)c >= _METRICS_CONNECT_FAILURE_MAX)
                return "other";
        return metrics_connect_failure_table[c];
}

void metrics_counters_print(const struct metrics *m, struct prom_printer *p)
{
        uint64_t spliced = 0, copied = 0;
        struct prom_label l;

        prom_family(p, "pilotfish_active_connections", "gauge",
                             "Connections being relayed now, by capture listener");
        for (size_t d = 0; d < _METRICS_DIRECTION_MAX; d++) {
                l = (struct prom_label){ "listener", metrics_direction_table[d] };
                prom_sample(p, &l, 1, PROM_I64(atomic_load_explicit(&m->counters.active[d], memory_order_relaxed)));
        }

        prom_family(p, "pilotfish_connect_failures_total", "counter",
                             "Upstream connects that failed, by cause");
        for (size_t c = 0; c < _METRICS_CONNECT_FAILURE_MAX; c++) {
                l = (struct prom_label){ "cause", metrics_connect_failure_table[c] };
                prom_sample(p, &l, 1,
                                     PROM_U64(atomic_load_explicit(&m->counters.connect_failures[c], memory_order_relaxed)));
        }

        for (size_t i = 0; i < METRICS_SHARDS; i++) {
                spliced += atomic_load_explicit(&m->counters.shards[i].spliced, memory_order_relaxed);
                copied += atomic_load_explicit(&m->counters.shards[i].copied, memory_order_relaxed);
        }
        prom_family(p, "pilotfish_bytes_spliced_total", "counter",
                             "Bytes relayed with splice(2), both directions");
        prom_sample(p, NULL, 0, PROM_U64(spliced));
        prom_family(p, "pilotfish_bytes_copied_total", "counter",
                             "Bytes relayed through the read/write buffer fallback, both directions");
        prom_sample(p, NULL, 0, PROM_U64(copied));

        prom_family(p, "pilotfish_accept_paused_total", "counter",
                             "Times a listener stopped accepting for lack of file descriptors (EMFILE/ENFILE)");
        prom_sample(p, NULL, 0, PROM_U64(atomic_load_explicit(&m->counters.accept_paused, memory_order_relaxed)));
}
