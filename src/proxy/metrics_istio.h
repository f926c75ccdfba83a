/*
 * Istio's standard TCP metrics (istio_tcp_*): the families, their help texts, and the 19
 * labels of a series in Istio's order, filled from this pod's identity and the series' key at
 * scrape time (a series stores no label text). The values follow Istio's stats filter on a
 * sidecar without mTLS and without metadata exchange; metrics_istio.c lists them and where
 * they differ from Envoy's.
 */
#pragma once

#include <stdint.h>

struct metrics;
struct metrics_series;
struct prom_label;

enum metrics_istio_label {
        ISTIO_REPORTER = 0,
        ISTIO_SOURCE_WORKLOAD,
        ISTIO_SOURCE_WORKLOAD_NAMESPACE,
        ISTIO_SOURCE_PRINCIPAL,
        ISTIO_SOURCE_APP,
        ISTIO_SOURCE_VERSION,
        ISTIO_SOURCE_CLUSTER,
        ISTIO_DESTINATION_WORKLOAD,
        ISTIO_DESTINATION_WORKLOAD_NAMESPACE,
        ISTIO_DESTINATION_PRINCIPAL,
        ISTIO_DESTINATION_APP,
        ISTIO_DESTINATION_VERSION,
        ISTIO_DESTINATION_SERVICE,
        ISTIO_DESTINATION_SERVICE_NAME,
        ISTIO_DESTINATION_SERVICE_NAMESPACE,
        ISTIO_DESTINATION_CLUSTER,
        ISTIO_REQUEST_PROTOCOL,
        ISTIO_RESPONSE_FLAGS,
        ISTIO_CONNECTION_SECURITY_POLICY,
        _ISTIO_LABEL_MAX,
};

enum metrics_istio_counter {
        METRICS_ISTIO_OPENED = 0,
        METRICS_ISTIO_CLOSED,
        METRICS_ISTIO_SENT,
        METRICS_ISTIO_RECEIVED,
        _METRICS_ISTIO_COUNTER_MAX,
};

struct metrics_istio_family {
        const char *name;
        const char *help;
};

/* istio_tcp_connections_opened_total ... istio_tcp_received_bytes_total, all counters. */
extern const struct metrics_istio_family metrics_istio_families[_METRICS_ISTIO_COUNTER_MAX];

/* Fills l[0.._ISTIO_LABEL_MAX) for s; the values point into m and s and live as long as they do. */
void metrics_istio_labels(const struct metrics *m, const struct metrics_series *s, struct prom_label *l);
/* Counter c of s, read once (relaxed). */
uint64_t metrics_istio_counter(const struct metrics_series *s, enum metrics_istio_counter c);
