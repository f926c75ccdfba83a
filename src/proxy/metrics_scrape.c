/*
 * The scrape cursor; see metrics_scrape.h. The document is a fixed sequence of steps (begin,
 * each Istio family's header then its samples, the proxy's own figures, the process figures,
 * end); the cursor remembers the step and the sample and prints steps until the piece is big
 * enough. The printer's state (which family, how many samples) lives in the cursor too, so a
 * JSON document split anywhere between two steps is the same document.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "common/strbuf.h"
#include "proxy/metrics-t.h"
#include "proxy/metrics_intern.h"
#include "proxy/metrics_istio.h"
#include "proxy/metrics_scrape.h"

enum metrics_cursor_step {
        METRICS_CURSOR_BEGIN = 0,
        METRICS_CURSOR_FAMILY,          /* the header of Istio family c->family */
        METRICS_CURSOR_SAMPLE,          /* sample c->index of it */
        METRICS_CURSOR_COUNTERS,
        METRICS_CURSOR_PROCESS,
        METRICS_CURSOR_END,
        METRICS_CURSOR_DONE,
};

struct metrics_cursor {
        struct metrics *m;
        struct metrics_series **v;
        size_t n;
        struct metrics_process proc;
        bool with_process;
        struct prom_printer p;
        enum metrics_cursor_step step;
        size_t family;
        size_t index;
};

static int metrics_scrape_strcmp(const struct metrics_intern *t, uint32_t a, uint32_t b)
{
        return a == b ? 0 : strcmp(metrics_intern_text(t, a), metrics_intern_text(t, b));
}

/* Direction, then destination (its key: addresses by family, bytes and port, then "unknown",
 * then "overflow"), then flags; the dimensions HTTP will use after those. */
static int metrics_scrape_cmp(const void *a, const void *b, void *data)
{
        const struct metrics *m = data;
        const struct metrics_key *x = &(*(struct metrics_series *const *)a)->key;
        const struct metrics_key *y = &(*(struct metrics_series *const *)b)->key;
        const uint8_t *kx, *ky;
        size_t lx, ly;
        int r;

        if (x->direction != y->direction)
                return x->direction < y->direction ? -1 : 1;
        if (x->destination != y->destination) {
                kx = metrics_intern_key(m->destinations, x->destination, &lx);
                ky = metrics_intern_key(m->destinations, y->destination, &ly);
                r = memcmp(kx, ky, lx < ly ? lx : ly);
                if (r || lx != ly)
                        return r ? r : (lx < ly ? -1 : 1);
        }
        if ((r = metrics_scrape_strcmp(m->flags, x->flags, y->flags)) ||
            (r = metrics_scrape_strcmp(m->protocols, x->protocol, y->protocol)) ||
            (r = metrics_scrape_strcmp(m->peers, x->peer, y->peer)) ||
            (r = metrics_scrape_strcmp(m->codes, x->response_code, y->response_code)))
                return r;
        return metrics_scrape_strcmp(m->grpc, x->grpc_status, y->grpc_status);
}

static int metrics_cursor_make(struct metrics *m, enum metrics_format fmt, const struct metrics_process *proc,
                               struct metrics_cursor **ret)
{
        struct metrics_cursor *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->m = m;
        r = metrics_snapshot_take(m, &c->v, &c->n);
        if (r < 0) {
                free(c);
                return r;
        }
        if (c->n)
                qsort_r(c->v, c->n, sizeof(*c->v), metrics_scrape_cmp, m);
        if (proc) {
                c->proc = *proc;
                c->with_process = true;
        }
        c->p = (struct prom_printer)PROM_PRINTER_INIT(NULL, fmt == METRICS_FORMAT_JSON ? PROM_FORMAT_JSON
                                                                                        : PROM_FORMAT_TEXT);
        c->step = METRICS_CURSOR_BEGIN;
        *ret = c;
        return 0;
}

int metrics_cursor_new(struct metrics *m, enum metrics_format fmt, bool with_process, struct metrics_cursor **ret)
{
        struct metrics_process proc;

        if (with_process)
                metrics_process_read(&proc);
        return metrics_cursor_make(m, fmt, with_process ? &proc : NULL, ret);
}

struct metrics_cursor *metrics_cursor_free(struct metrics_cursor *c)
{
        if (!c)
                return NULL;
        metrics_snapshot_release(c->m, c->v, c->n);
        free(c);
        return NULL;
}

/* Prints one step and moves on. */
static void metrics_cursor_step(struct metrics_cursor *c)
{
        struct prom_label labels[_ISTIO_LABEL_MAX];
        const struct metrics_istio_family *f;

        switch (c->step) {
        case METRICS_CURSOR_BEGIN:
                prom_begin(&c->p);
                c->family = 0;
                c->step = METRICS_CURSOR_FAMILY;
                break;
        case METRICS_CURSOR_FAMILY:
                f = &metrics_istio_families[c->family];
                prom_family(&c->p, f->name, "counter", f->help);
                c->index = 0;
                c->step = METRICS_CURSOR_SAMPLE;
                break;
        case METRICS_CURSOR_SAMPLE:
                if (c->index < c->n) {
                        metrics_istio_labels(c->m, c->v[c->index], labels);
                        prom_sample(&c->p, labels, _ISTIO_LABEL_MAX,
                                    PROM_U64(metrics_istio_counter(c->v[c->index],
                                                                   (enum metrics_istio_counter)c->family)));
                        c->index++;
                } else if (++c->family < _METRICS_ISTIO_COUNTER_MAX) {
                        c->step = METRICS_CURSOR_FAMILY;
                } else {
                        c->step = METRICS_CURSOR_COUNTERS;
                }
                break;
        case METRICS_CURSOR_COUNTERS:
                metrics_counters_print(c->m, &c->p);
                c->step = METRICS_CURSOR_PROCESS;
                break;
        case METRICS_CURSOR_PROCESS:
                if (c->with_process)
                        metrics_process_print(&c->proc, &c->p);
                c->step = METRICS_CURSOR_END;
                break;
        case METRICS_CURSOR_END:
                prom_end(&c->p);
                c->step = METRICS_CURSOR_DONE;
                break;
        case METRICS_CURSOR_DONE:
                break;
        }
}

int metrics_cursor_next(struct metrics_cursor *c, struct strbuf *out, size_t want)
{
        size_t start = out->len;

        c->p.out = out;
        while (c->step != METRICS_CURSOR_DONE && out->len - start < want && !out->error)
                metrics_cursor_step(c);
        c->p.out = NULL;
        if (out->error)
                return out->error;
        return c->step != METRICS_CURSOR_DONE;
}

int metrics_render(struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out)
{
        struct metrics_cursor *c;
        int r;

        r = metrics_cursor_make(m, fmt, proc, &c);
        if (r < 0)
                return r;
        while ((r = metrics_cursor_next(c, out, SIZE_MAX)) > 0)
                ;
        metrics_cursor_free(c);
        return r;
}

int metrics_render_prometheus(struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_PROMETHEUS, out);
}

int metrics_render_json(struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_JSON, out);
}
