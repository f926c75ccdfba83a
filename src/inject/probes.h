/*
 * Application probe rewriting (SEMANTICS.md section 8): kubelet's HTTP, TCP and gRPC probes and
 * httpGet/tcpSocket lifecycle hooks of every container but the proxy are pointed at the proxy's
 * status port (/app-health/<container>/readyz|livez|startupz, /app-lifecycle/<container>/
 * prestopz|poststartz), and the originals go to the proxy in ISTIO_KUBE_APP_PROBERS, which runs
 * them from inside the pod. That is what keeps probes working once the pod's inbound traffic
 * is captured (and, with mTLS, encrypted).
 */
#pragma once

struct fy_document;
struct fy_node;

/*
 * Rewrites the probes and hooks in spec's containers and initContainers (all but istio-proxy)
 * to status_port. prev is the ISTIO_KUBE_APP_PROBERS an earlier injection left (or NULL); its
 * entries are kept and win over new ones for the same path. *ret is the new value (sorted
 * keys; NULL when there is nothing to probe). Returns 0 or -ENOMEM.
 */
int probes_rewrite(struct fy_document *d, struct fy_node *spec, unsigned status_port, const char *prev, char **ret);
