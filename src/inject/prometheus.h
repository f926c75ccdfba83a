/*
 * Istio's Prometheus metrics merge (SEMANTICS.md section 11): the pod's own scrape settings are
 * handed to the proxy in ISTIO_PROMETHEUS_ANNOTATIONS, and the pod's annotations are pointed
 * at the proxy's status port 15020, where pilotfish serves its metrics (and, later, merges the
 * application's). Every spelling that Prometheus' relabelling reads as the same annotation
 * (prometheus.io/scrape, prometheus.io.scrape, ...) counts.
 */
#pragma once

#include <stdbool.h>

struct fy_document;
struct fy_node;
struct strbuf;

#define PROMETHEUS_STATUS_PORT "15020"

struct prometheus_plan {
        bool rewrite;           /* point the annotations at 15020 */
        char *env;              /* ISTIO_PROMETHEUS_ANNOTATIONS, or NULL */
};

/*
 * Decides from the pod's annotations (ann may be NULL). prev is the value an earlier injection
 * saved (or NULL); it is kept when the pod already points at 15020. Returns 0, or -EINVAL
 * with a message in err when a scrape target is unusable (injection then fails).
 */
int prometheus_plan(struct fy_node *ann, const char *prev, struct prometheus_plan *ret, struct strbuf *err);
/* Replaces every spelling of the three annotations (and scrape-targets) with the proxy's. */
void prometheus_apply(struct fy_document *d, struct fy_node *ann, const struct prometheus_plan *p);
void prometheus_plan_free(struct prometheus_plan *p);
