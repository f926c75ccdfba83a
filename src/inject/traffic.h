/*
 * Traffic capture for `pilotfish inject`: turns a pod's annotations into the arguments of the
 * istio-init (or, in CNI mode, istio-validation) container, and checks the capture-related
 * annotations first (../shared/conformance/istio-inject/SEMANTICS.md sections 4.1 and 4.4).
 *
 * Istio renders these arguments from a Go text template, so its rules are string rules:
 * an annotation that is present wins over the default even when empty, values are pasted
 * through untouched, and only -d is computed. The functions here keep those rules and work
 * on plain strings, so the result matches Istio's goldens argument for argument. They are
 * pure: annotations come in through a lookup callback, nothing is logged.
 *
 * Not done here: deciding that interceptionMode NONE means no init container at all (the
 * caller asks inject_traffic_mode()), and rewriting -u when a user-supplied istio-proxy
 * container sets runAsUser (SEMANTICS section 10, applied to the rendered container).
 */
#pragma once

#include <stdbool.h>

struct strbuf;
struct strv;

/* Pod annotations as the injector sees them: NULL when the key is absent, "" when present but empty. */
struct inject_annotations {
        const char *(*get)(void *ctx, const char *key);
        void *ctx;
};

/*
 * The values that apply when an annotation is absent (Istio's chart values / mesh config).
 * Strings, as Istio keeps them; a NULL string counts as "". The caller owns the strings and
 * keeps them alive while the functions below run.
 */
struct inject_traffic_defaults {
        unsigned outbound_port;                 /* 15001; 0 also means 15001 */
        unsigned inbound_port;                  /* 15006; 0 also means 15006 */
        const char *proxy_uid;                  /* "1337"; "" also means "1337" */
        const char *interception_mode;          /* "REDIRECT": the effective ProxyConfig value */
        const char *include_ip_ranges;          /* "*" */
        const char *exclude_ip_ranges;          /* "" */
        const char *include_inbound_ports;      /* "*" */
        const char *exclude_inbound_ports;      /* "" */
        const char *include_outbound_ports;     /* "" (emitted as -q only when non-empty or the annotation is present) */
        const char *exclude_outbound_ports;     /* "" (same rule for -o) */
        const char *status_port;                /* "15020"; "" or "0" adds nothing to -d */
        const char *log_level;                  /* "default:info" */
        bool log_as_json;                       /* values.global.logAsJson: --log_as_json */
        bool cni;                               /* values.pilot.cni.enabled: --run-validation --skip-rule-apply */
        bool force_apply;                       /* values.global.proxy_init.forceApplyIptables: --force-apply, not with cni */
        bool native_nftables;                   /* values.global.nativeNftables: --native-nftables */
};

/* The annotation keys read here. */
#define INJECT_ANN_INTERCEPTION_MODE    "sidecar.istio.io/interceptionMode"
#define INJECT_ANN_AGENT_LOG_LEVEL      "sidecar.istio.io/agentLogLevel"
#define INJECT_ANN_STATUS_PORT          "status.sidecar.istio.io/port"
#define INJECT_ANN_READINESS_DELAY      "readiness.status.sidecar.istio.io/initialDelaySeconds"
#define INJECT_ANN_READINESS_PERIOD     "readiness.status.sidecar.istio.io/periodSeconds"
#define INJECT_ANN_READINESS_FAILURES   "readiness.status.sidecar.istio.io/failureThreshold"
#define INJECT_ANN_INCLUDE_IP_RANGES    "traffic.sidecar.istio.io/includeOutboundIPRanges"
#define INJECT_ANN_EXCLUDE_IP_RANGES    "traffic.sidecar.istio.io/excludeOutboundIPRanges"
#define INJECT_ANN_INCLUDE_IN_PORTS     "traffic.sidecar.istio.io/includeInboundPorts"
#define INJECT_ANN_EXCLUDE_IN_PORTS     "traffic.sidecar.istio.io/excludeInboundPorts"
#define INJECT_ANN_INCLUDE_OUT_PORTS    "traffic.sidecar.istio.io/includeOutboundPorts"
#define INJECT_ANN_EXCLUDE_OUT_PORTS    "traffic.sidecar.istio.io/excludeOutboundPorts"
#define INJECT_ANN_EXCLUDE_INTERFACES   "traffic.sidecar.istio.io/excludeInterfaces"
#define INJECT_ANN_KUBEVIRT_INTERFACES  "traffic.sidecar.istio.io/kubevirtInterfaces"
#define INJECT_ANN_REROUTE_INTERFACES   "istio.io/reroute-virtual-interfaces"
#define INJECT_ANN_MERGE_METRICS        "prometheus.istio.io/merge-metrics"

/* Fills d with Istio's chart defaults (the values in the comments above). Strings are static. */

void inject_traffic_defaults_init(struct inject_traffic_defaults *d);

/*
 * The effective interception mode: the interceptionMode annotation when present, else
 * d->interception_mode ("REDIRECT" when that is NULL or ""). The result points into the
 * annotations or the defaults. "NONE" means the caller emits no init container.
 */
const char *inject_traffic_mode(const struct inject_annotations *a, const struct inject_traffic_defaults *d);

/*
 * Appends to out the inbound ports excluded from capture besides Envoy's own 15090 and
 * 15021: the excludeInboundPorts annotation (else the default) with the status port added
 * when it is not "", not "0" and not already listed. Listed means equal to an entry as
 * written, before trimming, as Istio compares; the list is then returned untouched.
 * Otherwise entries are trimmed, empty ones dropped and the port appended. With no status
 * port the list is returned untouched. This is -d without its "15090,15021," prefix, and
 * the value CNI mode copies into the excludeInboundPorts annotation.
 * Returns 0, or the strbuf's error (-ENOMEM, -ENOBUFS).
 */
int inject_traffic_exclude_inbound(const struct inject_annotations *a, const struct inject_traffic_defaults *d,
                                   struct strbuf *out);

/*
 * Appends the arguments from "-p" to the end, in Istio's order, to argv (the caller pushes
 * "istio-iptables" first and frees argv):
 *
 *   -p PORT -z PORT -u UID -m MODE -i CIDRS -x CIDRS -b PORTS -d 15090,15021[,PORTS]
 *   [-q PORTS] [-o PORTS] [-k IFACES] [-c IFACES] --log_output_level=LEVEL
 *   [--log_as_json] [--run-validation --skip-rule-apply | --force-apply] [--native-nftables]
 *
 * -x is always there, possibly as an empty argument. -q and -o appear when their annotation
 * is present or their default is non-empty; -k when reroute-virtual-interfaces (which wins)
 * or kubevirtInterfaces is present; -c when excludeInterfaces is present. -u is "1337" in
 * TPROXY mode whatever d->proxy_uid says. Values are passed through as written.
 * Assumes the annotations passed inject_validate_traffic(). Returns 0 or -ENOMEM; on
 * failure argv may hold some of the arguments.
 */
int inject_traffic_args(const struct inject_annotations *a, const struct inject_traffic_defaults *d,
                        struct strv *argv);

/*
 * Checks every capture-related annotation of SEMANTICS 4.4 that is present:
 * interceptionMode, status port, the three readiness.status.sidecar.istio.io annotations (uint32),
 * include/excludeOutboundIPRanges, include/excludeInboundPorts, excludeOutboundPorts,
 * excludeInterfaces, kubevirtInterfaces, istio.io/reroute-virtual-interfaces and
 * prometheus.istio.io/merge-metrics (Go strconv.ParseBool syntax). includeOutboundPorts is
 * not checked, as Istio does not check it. Appends one message per bad annotation to err,
 * each of the form
 *   invalid value '<value>' for annotation '<key>': <why>
 * separated by "; " from each other and from any text err already holds. <why> names the
 * rule ("includeIPRanges invalid: ...") and then the first bad element. Annotations are
 * checked in a fixed order (the order above), so the message is reproducible.
 * Returns the number of bad annotations (0 = all fine). The count does not depend on err:
 * when a message does not fit, err->error says so and the count is still right.
 */
int inject_validate_traffic(const struct inject_annotations *a, struct strbuf *err);
