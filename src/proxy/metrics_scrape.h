/*
 * What /stats/prometheus (15090 and the merged 15020) and the admin's /stats serve: Istio's
 * series, the proxy's own figures and the process figures, in the Prometheus text format or as
 * JSON, through one printer (common/prom).
 */
#pragma once

struct metrics;
struct metrics_process;
struct strbuf;

enum metrics_format {
        METRICS_FORMAT_PROMETHEUS = 0,  /* text exposition format 0.0.4 */
        METRICS_FORMAT_JSON,
};

/*
 * Appends every metric to out in the given format, with # HELP and # TYPE lines (text) or as
 * {"metrics":[{"name","type","help","samples":[{"labels":{...},"value":N}]}]} (JSON). proc may
 * be NULL to leave out the process figures (what golden tests do). Series come out sorted by
 * direction, then destination (numerically), then flags. Any thread, concurrently with
 * updates: each counter is read once, so totals may be a few updates apart from each other.
 * Returns 0, or the strbuf's -ENOBUFS/-ENOMEM (out then holds a partial text).
 */
int metrics_render(const struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out);
/* metrics_process_read() followed by metrics_render(): what /stats/prometheus serves. */
int metrics_render_prometheus(const struct metrics *m, struct strbuf *out);
/* The same for the admin's /stats (JSON). */
int metrics_render_json(const struct metrics *m, struct strbuf *out);
