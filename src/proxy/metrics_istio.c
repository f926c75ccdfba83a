/*
 * Istio's TCP metrics and their labels; see metrics_istio.h.
 *
 * Label values, as Istio's stats filter (istio/proxy istio_stats.cc) sets them on a sidecar
 * without mTLS and without metadata exchange, except where noted:
 *   reporter                        "source" (outbound) / "destination" (inbound)
 *   this pod's side                 the identity: source_* outbound, destination_* inbound;
 *                                   its principal is "unknown" (no mTLS yet)
 *   the peer's side                 "unknown"
 *   destination_service(_name)      the original destination "10.0.0.1:80" / "[2001:db8::1]:80",
 *                                   where Envoy puts the service host from its cluster metadata
 *                                   (pilotfish has no registry); "unknown" when unreadable
 *   destination_service_namespace   inbound: this pod's namespace (as Istio); outbound: "unknown"
 *   request_protocol                "tcp"
 *   response_flags                  the caller's, "-" for none
 * Every value that depends on the connection comes from the series key's interned ids.
 *   connection_security_policy      outbound "unknown"; inbound "none" (Istio says "none" for a
 *                                   plaintext inbound connection, "mutual_tls" with mTLS)
 *   *_app, *_version, this side     "unknown" when not known; Istio would print "" there
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/prom.h"
#include "proxy/metrics-t.h"
#include "proxy/metrics_intern.h"
#include "proxy/metrics_istio.h"

/* Istio's label names, in the order Istio documents them. */
static const char *const metrics_istio_label_names[_ISTIO_LABEL_MAX] = {
        "reporter",
        "source_workload", "source_workload_namespace", "source_principal", "source_app",
        "source_version", "source_cluster",
        "destination_workload", "destination_workload_namespace", "destination_principal",
        "destination_app", "destination_version", "destination_service", "destination_service_name",
        "destination_service_namespace", "destination_cluster",
        "request_protocol", "response_flags", "connection_security_policy",
};

void metrics_istio_labels(const struct metrics *m, const struct metrics_series *s, struct prom_label *l)
{
        const struct metrics_identity *id = &m->id;
        bool out = s->key.direction == METRICS_OUTBOUND;
        const char *u = "unknown";

        for (size_t i = 0; i < _ISTIO_LABEL_MAX; i++) {
                l[i].name = metrics_istio_label_names[i];
                l[i].value = u;
        }
        l[ISTIO_REPORTER].value = out ? "source" : "destination";
        l[out ? ISTIO_SOURCE_WORKLOAD : ISTIO_DESTINATION_WORKLOAD].value = id->workload;
        l[out ? ISTIO_SOURCE_WORKLOAD_NAMESPACE : ISTIO_DESTINATION_WORKLOAD_NAMESPACE].value = id->namespace_;
        l[out ? ISTIO_SOURCE_APP : ISTIO_DESTINATION_APP].value = id->app;
        l[out ? ISTIO_SOURCE_VERSION : ISTIO_DESTINATION_VERSION].value = id->version;
        l[out ? ISTIO_SOURCE_CLUSTER : ISTIO_DESTINATION_CLUSTER].value = id->cluster;
        l[ISTIO_DESTINATION_SERVICE].value = s->service;
        l[ISTIO_DESTINATION_SERVICE_NAME].value = s->service;
        if (!out)
                l[ISTIO_DESTINATION_SERVICE_NAMESPACE].value = id->namespace_;
        l[ISTIO_REQUEST_PROTOCOL].value = metrics_intern_text(m->protocols, s->key.protocol);
        l[ISTIO_RESPONSE_FLAGS].value = metrics_intern_text(m->flags, s->key.flags);
        l[ISTIO_CONNECTION_SECURITY_POLICY].value = out ? "unknown" : "none";
}

const struct metrics_istio_family metrics_istio_families[_METRICS_ISTIO_COUNTER_MAX] = {
        [METRICS_ISTIO_OPENED] = { "istio_tcp_connections_opened_total",
                             "Total TCP connections opened" },
        [METRICS_ISTIO_CLOSED] = { "istio_tcp_connections_closed_total",
                             "Total TCP connections closed" },
        [METRICS_ISTIO_SENT] = { "istio_tcp_sent_bytes_total",
                           "Total bytes sent during response (upstream to downstream) on TCP connections" },
        [METRICS_ISTIO_RECEIVED] = { "istio_tcp_received_bytes_total",
                               "Total bytes received during request (downstream to upstream) on TCP connections" },
};

uint64_t metrics_istio_counter(const struct metrics_series *s, enum metrics_istio_counter c)
{
        switch (c) {
        case METRICS_ISTIO_OPENED:
                return atomic_load_explicit(&s->opened, memory_order_relaxed);
        case METRICS_ISTIO_CLOSED:
                return atomic_load_explicit(&s->closed, memory_order_relaxed);
        case METRICS_ISTIO_SENT:
                return atomic_load_explicit(&s->sent, memory_order_relaxed);
        default:
                return atomic_load_explicit(&s->received, memory_order_relaxed);
        }
}
