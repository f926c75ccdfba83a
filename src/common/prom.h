/*
 * One printer for metrics, in two formats: the Prometheus text exposition format 0.0.4 (what
 * /stats/prometheus and the webhook's /metrics serve) and the same figures as JSON (what the
 * proxy's admin /stats serves). The caller walks its figures once and says "family", "sample",
 * "histogram"; each call writes text or JSON, so the two formats cannot drift apart (iproute2's
 * json_print idea). The printer keeps no copy of what it wrote, only where it is in the
 * document, so a long exposition can be written in pieces: point p->out at a new buffer
 * between two calls and go on (the proxy's scrape cursor streams that way).
 *
 * Text: "# HELP name help" (backslash and newline escaped), "# TYPE name type", then one line
 * per sample, labels in the caller's order with backslash, double quote and newline escaped.
 * A histogram is Prometheus' _bucket{...,le="B"} lines (cumulative, then le="+Inf"), _sum and
 * _count; bounds are printed in their shortest exact form ("0.5", "3600000", as Envoy prints
 * its default buckets).
 * JSON: {"metrics":[{"name","type","help","samples":[{"labels":{...},"value":N}]}]}; a
 * histogram sample is {"labels":{...},"buckets":{"0.5":N,...,"+Inf":N},"sum":S,"count":N}.
 * Every JSON string goes through common/json's json_str.
 *
 * Errors are the strbuf's (sticky -ENOBUFS/-ENOMEM); prom_end() returns them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct strbuf;

enum prom_format {
        PROM_FORMAT_TEXT = 0,   /* text exposition format 0.0.4 */
        PROM_FORMAT_JSON,
};

/* The "Content-Type" of the text format. */
#define PROM_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_label {
        const char *name;
        const char *value;
};

enum prom_value_kind {
        PROM_VALUE_U64 = 0,
        PROM_VALUE_I64,
        PROM_VALUE_F64,         /* printed with six decimals */
};

struct prom_value {
        enum prom_value_kind kind;
        union {
                uint64_t u;
                int64_t i;
                double f;
        };
};

#define PROM_U64(x) ((struct prom_value){ .kind = PROM_VALUE_U64, .u = (x) })
#define PROM_I64(x) ((struct prom_value){ .kind = PROM_VALUE_I64, .i = (x) })
#define PROM_F64(x) ((struct prom_value){ .kind = PROM_VALUE_F64, .f = (x) })

/* Where the printer is in the document. Embedded; PROM_PRINTER_INIT(out, fmt) sets it up. */
struct prom_printer {
        struct strbuf *out;     /* may be changed between calls */
        enum prom_format fmt;
        const char *name;       /* the current family's name (the caller's string) */
        size_t n_families;
        size_t n_samples;       /* in the current family */
};

#define PROM_PRINTER_INIT(o, f) { .out = (o), .fmt = (f), .name = NULL, .n_families = 0, .n_samples = 0 }

/* The document's start (JSON: {"metrics":[); nothing in text. */
void prom_begin(struct prom_printer *p);
/* A family: name and type ("counter", "gauge", "histogram") as given, help escaped. */
void prom_family(struct prom_printer *p, const char *name, const char *type, const char *help);
/* A sample of the current family with n labels (labels may be NULL when n is 0). */
void prom_sample(struct prom_printer *p, const struct prom_label *labels, size_t n, struct prom_value v);
/*
 * A histogram sample of the current family: n_bounds finite upper bounds in increasing order,
 * cumulative[i] the observations <= bounds[i] (so non-decreasing), count the observations in
 * all (the +Inf bucket), sum their sum.
 */
void prom_histogram(struct prom_printer *p, const struct prom_label *labels, size_t n, const double *bounds,
                    size_t n_bounds, const uint64_t *cumulative, uint64_t count, struct prom_value sum);
/* The document's end (JSON: the closing brackets and a newline). Returns 0 or out's error. */
int prom_end(struct prom_printer *p);
/* Appends a bound in its shortest form that reads back as the same double ("0.5", "3600000"). */
void prom_bound(struct strbuf *out, double bound);
