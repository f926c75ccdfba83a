/*
 * This pod's side of Istio's metrics (workload, namespace, app, version, cluster), read once at
 * start from the environment the sidecar injector sets up. Istio takes them from the node
 * metadata that pilot-agent builds from the same variables; a sidecar cannot ask the API
 * server, so a workload name is derived from the pod name when the injector did not set one.
 * ISTIO_METAJSON_LABELS (the pod's labels as a JSON object) is parsed with libfyaml in JSON
 * mode, as the application probes are, and fuzzed (tests/fuzz/fuzz-metajson-labels.c).
 */
#pragma once

#include <stddef.h>

/*
 * This pod's side of every series. Each field is NUL-terminated and "unknown" when not known
 * (cluster: "Kubernetes", Istio's default cluster ID).
 */
struct metrics_identity {
        char workload[256];     /* Kubernetes names are at most 253 bytes */
        char namespace_[64];    /* DNS label: at most 63 */
        char app[256];
        char version[256];
        char cluster[256];
};

/*
 * Fills *ret from an envp-style array (NULL is an empty environment), the way the Istio
 * sidecar injector sets it up:
 *   workload   ISTIO_META_WORKLOAD_NAME, else POD_NAME with the generated suffixes stripped
 *              ("reviews-v1-7d9f8c6b5d-x2x4q" -> "reviews-v1"; see metrics_identity.c), else
 *              "unknown"
 *   namespace  POD_NAMESPACE
 *   app        the "app" label (then "app.kubernetes.io/name") from ISTIO_METAJSON_LABELS, which
 *              is what Istio's stats use for *_app; else CANONICAL_SERVICE
 *   version    the "version" label (then "app.kubernetes.io/version"), else CANONICAL_REVISION
 *   cluster    ISTIO_META_CLUSTER_ID, else "Kubernetes"
 * An empty variable counts as unset; a malformed ISTIO_METAJSON_LABELS (see
 * metrics_identity_json_label) is ignored as a whole. Returns 0, or -ENAMETOOLONG when a value
 * does not fit its field (that field is then "unknown" and the others are filled in).
 */
int metrics_identity_from_env(char *const *envp, struct metrics_identity *ret);

/*
 * Looks key up in json, which must be one JSON object whose values are all strings (what
 * ISTIO_METAJSON_LABELS holds); a repeated key yields its last value, as Go's encoding/json
 * does. Refused as malformed (-EBADMSG): anything that is not JSON (YAML flow style, trailing
 * text, a second document), invalid UTF-8 or escapes (a lone surrogate), a value that is not a
 * string, a key or value holding a NUL. Returns the value's length with the value
 * NUL-terminated in buf, -ENOENT, -EBADMSG, -ENAMETOOLONG (the value does not fit size) or
 * -ENOMEM.
 */
int metrics_identity_json_label(const char *json, size_t len, const char *key, char *buf, size_t size);
