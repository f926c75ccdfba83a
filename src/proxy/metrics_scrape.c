/*
 * A scrape: the series are copied out of the table and sorted, then every family is printed
 * through common/prom; see metrics_scrape.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "proxy/metrics-t.h"
#include "proxy/metrics_istio.h"
#include "proxy/metrics_scrape.h"

static int metrics_scrape_cmp(const void *a, const void *b)
{
        const struct metrics_key *x = &(*(struct metrics_series *const *)a)->key;
        const struct metrics_key *y = &(*(struct metrics_series *const *)b)->key;
        int r;

        if (x->direction != y->direction)
                return x->direction < y->direction ? -1 : 1;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->family != y->family)
                return x->family < y->family ? -1 : 1;
        r = memcmp(x->addr, y->addr, sizeof(x->addr));
        if (r)
                return r;
        if (x->port != y->port)
                return x->port < y->port ? -1 : 1;
        return strcmp(x->flags, y->flags);
}

/* The series published so far, sorted. Returns 0 (*ret NULL when there are none) or -ENOMEM. */
static int metrics_scrape_snapshot(const struct metrics *m, struct metrics_series ***ret, size_t *ret_n)
{
        struct metrics_series *head, *s, **v;
        size_t n, i = 0;

        *ret = NULL;
        *ret_n = 0;
        head = atomic_load_explicit(&m->all, memory_order_acquire);
        if (!head)
                return 0;
        n = head->index + 1;
        v = malloc(n * sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (s = head; s && i < n; s = s->all_next)
                v[i++] = s;
        qsort(v, i, sizeof(*v), metrics_scrape_cmp);
        *ret = v;
        *ret_n = i;
        return 0;
}

int metrics_render(const struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out)
{
        struct prom_printer p = PROM_PRINTER_INIT(out, fmt == METRICS_FORMAT_JSON ? PROM_FORMAT_JSON : PROM_FORMAT_TEXT);
        struct prom_label labels[_ISTIO_LABEL_MAX];
        struct metrics_series **v;
        size_t n;
        int r;

        r = metrics_scrape_snapshot(m, &v, &n);
        if (r < 0)
                return r;

        prom_begin(&p);
        for (size_t c = 0; c < _METRICS_ISTIO_COUNTER_MAX; c++) {
                prom_family(&p, metrics_istio_families[c].name, "counter", metrics_istio_families[c].help);
                for (size_t i = 0; i < n; i++) {
                        metrics_istio_labels(m, v[i], labels);
                        prom_sample(&p, labels, _ISTIO_LABEL_MAX,
                                             PROM_U64(metrics_istio_counter(v[i], (enum metrics_istio_counter)c)));
                }
        }
        metrics_counters_print(m, &p);
        if (proc)
                metrics_process_print(proc, &p);
        r = prom_end(&p);
        free(v);
        return r;
}

int metrics_render_prometheus(const struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_PROMETHEUS, out);
}

int metrics_render_json(const struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_JSON, out);
}
