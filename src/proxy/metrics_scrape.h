/*
 * What /stats/prometheus (15090 and the merged 15020) and the admin's /stats serve: Istio's
 * series, the proxy's own figures and the process figures, in the Prometheus text format or as
 * JSON, through one printer (common/prom).
 *
 * A scrape is a cursor, so that it never has to fit one buffer: at the series limit the text
 * is about 24 MB (four families of 10,000 samples with 19 labels each), more than the admin's
 * 16 MiB, and a reply that did not fit was an empty one. The cursor takes a snapshot of the series set (each series referenced, so none expires
 * under it, and sorted) and of the process figures when it is made, then prints a piece at a
 * time into whatever buffer the caller gives it; the caller sends that piece and asks for the
 * next, so memory per scrape is the snapshot (a pointer per series) and a piece. Counter values
 * are read when their line is printed, each once: totals may be a few updates apart.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct metrics;
struct metrics_cursor;
struct metrics_process;
struct strbuf;

enum metrics_format {
        METRICS_FORMAT_PROMETHEUS = 0,  /* text exposition format 0.0.4 */
        METRICS_FORMAT_JSON,
};

/*
 * Takes a snapshot of the series (sorted by direction, then destination numerically, then
 * flags) and, with with_process, of the process figures. Any thread, concurrently with
 * updates. Returns 0 and *ret (freed with metrics_cursor_free()), or -ENOMEM. m must outlive
 * the cursor.
 */
int metrics_cursor_new(struct metrics *m, enum metrics_format fmt, bool with_process, struct metrics_cursor **ret);
/*
 * Appends at least want bytes to out (more: the piece ends at a line, or in JSON at a sample),
 * or what is left. Returns 1 when more remains, 0 when the document is complete, or out's
 * -ENOBUFS/-ENOMEM (out then holds a partial piece, and the cursor cannot go on).
 */
int metrics_cursor_next(struct metrics_cursor *c, struct strbuf *out, size_t want);
/* Gives the snapshot back; accepts NULL; returns NULL. */
struct metrics_cursor *metrics_cursor_free(struct metrics_cursor *c);

/*
 * The whole document into out, through a cursor: the golden tests' entry point. proc may be
 * NULL to leave the process figures out. Returns 0, or -ENOMEM/-ENOBUFS.
 */
int metrics_render(struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out);
/* The same with the process figures read now: /stats/prometheus (text) and /stats (JSON). */
int metrics_render_prometheus(struct metrics *m, struct strbuf *out);
int metrics_render_json(struct metrics *m, struct strbuf *out);
