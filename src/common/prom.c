/*
 * The metrics printer; see prom.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/prom.h"
#include "common/strbuf.h"

/* Text-format escaping: backslash and newline everywhere, double quote only in label values. */
static void prom_text_escape(struct strbuf *out, const char *s, bool quote)
{
        const char *run = s;

        for (; *s; s++) {
                const char *rep = NULL;

                if (*s == '\\')
                        rep = "\\\\";
                else if (*s == '\n')
                        rep = "\\n";
                else if (*s == '"' && quote)
                        rep = "\\\"";
                if (!rep)
                        continue;
                strbuf_append(out, run, (size_t)(s - run));
                strbuf_puts(out, rep);
                run = s + 1;
        }
        strbuf_append(out, run, (size_t)(s - run));
}

static void prom_value(struct strbuf *out, struct prom_value v)
{
        switch (v.kind) {
        case PROM_VALUE_U64:
                strbuf_printf(out, "%" PRIu64, v.u);
                break;
        case PROM_VALUE_I64:
                strbuf_printf(out, "%" PRId64, v.i);
                break;
        case PROM_VALUE_F64:
                strbuf_printf(out, "%.6f", v.f);
                break;
        }
}

#define PROM_BOUND_MAX 40

static const char *prom_bound_fmt(char buf[PROM_BOUND_MAX], double bound)
{
        /* %.15g is exact for every bound a person writes; 16 and 17 digits only when needed. */
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, PROM_BOUND_MAX, "%.*g", prec, bound);
                if (strtod(buf, NULL) == bound)
                        break;
        }
        return buf;
}

void prom_bound(struct strbuf *out, double bound)
{
        char buf[PROM_BOUND_MAX];

        strbuf_puts(out, prom_bound_fmt(buf, bound));
}

void prom_begin(struct prom_printer *p)
{
        if (p->fmt == PROM_FORMAT_JSON)
                strbuf_puts(p->out, "{\"metrics\":[");
}

void prom_family(struct prom_printer *p, const char *name, const char *type, const char *help)
{
        if (p->fmt == PROM_FORMAT_TEXT) {
                strbuf_printf(p->out, "# HELP %s ", name);
                prom_text_escape(p->out, help, false);
                strbuf_printf(p->out, "\n# TYPE %s %s\n", name, type);
        } else {
                if (p->n_families)
                        strbuf_puts(p->out, "]},");
                strbuf_puts(p->out, "{\"name\":");
                json_str(p->out, name);
                strbuf_puts(p->out, ",\"type\":");
                json_str(p->out, type);
                strbuf_puts(p->out, ",\"help\":");
                json_str(p->out, help);
                strbuf_puts(p->out, ",\"samples\":[");
        }
        p->name = name;
        p->n_families++;
        p->n_samples = 0;
}

/* name{labels[,le="bound"]} in text; extra may be NULL. */
static void prom_text_series(struct prom_printer *p, const char *suffix, const struct prom_label *labels,
                             size_t n, const struct prom_label *extra)
{
        size_t all = n + (extra ? 1 : 0);

        strbuf_puts(p->out, p->name);
        if (suffix)
                strbuf_puts(p->out, suffix);
        for (size_t i = 0; i < all; i++) {
                const struct prom_label *l = i < n ? &labels[i] : extra;

                strbuf_printf(p->out, "%s%s=\"", i ? "," : "{", l->name);
                prom_text_escape(p->out, l->value, true);
                strbuf_puts(p->out, "\"");
        }
        strbuf_puts(p->out, all ? "} " : " ");
}

static void prom_json_labels(struct prom_printer *p, const struct prom_label *labels, size_t n)
{
        strbuf_puts(p->out, p->n_samples ? ",{\"labels\":{" : "{\"labels\":{");
        for (size_t i = 0; i < n; i++) {
                if (i)
                        strbuf_puts(p->out, ",");
                json_str(p->out, labels[i].name);
                strbuf_puts(p->out, ":");
                json_str(p->out, labels[i].value);
        }
        strbuf_puts(p->out, "}");
}

void prom_sample(struct prom_printer *p, const struct prom_label *labels, size_t n, struct prom_value v)
{
        if (p->fmt == PROM_FORMAT_TEXT) {
                prom_text_series(p, NULL, labels, n, NULL);
                prom_value(p->out, v);
                strbuf_puts(p->out, "\n");
        } else {
                prom_json_labels(p, labels, n);
                strbuf_puts(p->out, ",\"value\":");
                prom_value(p->out, v);
                strbuf_puts(p->out, "}");
        }
        p->n_samples++;
}

void prom_histogram(struct prom_printer *p, const struct prom_label *labels, size_t n, const double *bounds,
                    size_t n_bounds, const uint64_t *cumulative, uint64_t count, struct prom_value sum)
{
        char le[PROM_BOUND_MAX];

        if (p->fmt == PROM_FORMAT_TEXT) {
                for (size_t i = 0; i <= n_bounds; i++) {
                        prom_text_series(p, "_bucket", labels, n,
                                         &(struct prom_label){ "le", i < n_bounds ? prom_bound_fmt(le, bounds[i]) : "+Inf" });
                        strbuf_printf(p->out, "%" PRIu64 "\n", i < n_bounds ? cumulative[i] : count);
                }
                prom_text_series(p, "_sum", labels, n, NULL);
                prom_value(p->out, sum);
                strbuf_puts(p->out, "\n");
                prom_text_series(p, "_count", labels, n, NULL);
                strbuf_printf(p->out, "%" PRIu64 "\n", count);
        } else {
                prom_json_labels(p, labels, n);
                strbuf_puts(p->out, ",\"buckets\":{");
                for (size_t i = 0; i < n_bounds; i++) {
                        json_str(p->out, prom_bound_fmt(le, bounds[i]));
                        strbuf_printf(p->out, ":%" PRIu64 ",", cumulative[i]);
                }
                strbuf_printf(p->out, "\"+Inf\":%" PRIu64 "},\"sum\":", count);
                prom_value(p->out, sum);
                strbuf_printf(p->out, ",\"count\":%" PRIu64 "}", count);
        }
        p->n_samples++;
}

int prom_end(struct prom_printer *p)
{
        if (p->fmt == PROM_FORMAT_JSON)
                strbuf_puts(p->out, p->n_families ? "]}]}\n" : "]}\n");
        return p->out->error;
}
