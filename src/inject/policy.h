/*
 * Whether a pod is to be injected: Istio's in-process policy (SEMANTICS.md section 2.2), in
 * its order. The namespace selectors of the webhook registration are the API server's job.
 */
#pragma once

#include <stdbool.h>

struct fy_node;
struct inject_config;
struct strbuf;

enum inject_decision {
        INJECT_YES = 0,
        INJECT_SKIP_HOST_NETWORK,
        INJECT_SKIP_NAMESPACE,          /* a system namespace, or the mesh's own */
        INJECT_SKIP_DISABLED,           /* sidecar.istio.io/inject=false, a never-inject selector, policy disabled */
};

/*
 * meta and spec are the pod's (or the pod template's); namespace is the pod's namespace.
 * Warnings (an inject switch that is neither "true" nor "false") are appended to warnings,
 * one line each, for the caller to show; NULL drops them (a first look whose YES is
 * followed by another call).
 */
enum inject_decision inject_decide(const struct inject_config *c, struct fy_node *meta, struct fy_node *spec,
                                   const char *namespace, struct strbuf *warnings);

/* True when labels (a mapping, may be NULL) match selector: "k=v,k2!=v2,k3,!k4". */
bool label_selector_match(const char *selector, struct fy_node *labels);
