/*
 * This pod's identity from the injector's environment; see metrics_identity.h.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/json_doc.h"
#include "proxy/metrics_identity.h"

/* getenv() over an envp array: the first NAME=, and an empty value counts as unset. */
static const char *metrics_identity_env(char *const *envp, const char *name)
{
        size_t n = strlen(name);

        if (!envp)
                return NULL;
        for (; *envp; envp++) {
                if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
                        return (*envp)[n + 1] ? *envp + n + 1 : NULL;
        }
        return NULL;
}

static int metrics_identity_field_set(char *field, size_t size, const char *value, size_t len)
{
        if (len >= size) {
                snprintf(field, size, "unknown");
                return -ENAMETOOLONG;
        }
        memcpy(field, value, len);
        field[len] = '\0';
        return 0;
}

/* Kubernetes' rand.String alphabet (no vowels, no 0/1/3), used for generated name suffixes. */
#define METRICS_IDENTITY_K8S_SAFE "bcdfghjklmnpqrstvwxz2456789"
#define METRICS_IDENTITY_DIGITS "0123456789"

/* The length of name[0..len) without its last "-segment" when that segment fits the rule. */
static size_t metrics_identity_strip_segment(const char *name, size_t len, size_t min, size_t max, const char *set)
{
        size_t i = len, n;

        while (i > 0 && name[i - 1] != '-')
                i--;
        if (i <= 1)
                return len;
        n = len - i;
        if (n < min || n > max)
                return len;
        for (size_t j = i; j < len; j++) {
                if (!strchr(set, name[j]))
                        return len;
        }
        return i - 1;
}

/*
 * A workload name from the pod name alone, for when the injector did not set
 * ISTIO_META_WORKLOAD_NAME (Istio itself follows the owner references, which a sidecar cannot
 * read). A generated 5-character suffix is dropped, then the ReplicaSet's pod-template-hash
 * (6-10 safe characters: Deployment) or a CronJob's scheduled minute (8-11 digits); without a
 * generated suffix, a StatefulSet ordinal. Returns the length of the workload name.
 */
static size_t metrics_identity_workload_from_pod(const char *pod)
{
        size_t len = strlen(pod), base, l;

        base = metrics_identity_strip_segment(pod, len, 5, 5, METRICS_IDENTITY_K8S_SAFE);
        if (base != len) {
                l = metrics_identity_strip_segment(pod, base, 6, 10, METRICS_IDENTITY_K8S_SAFE);
                if (l == base)
                        l = metrics_identity_strip_segment(pod, base, 8, 11, METRICS_IDENTITY_DIGITS);
                return l;
        }
        return metrics_identity_strip_segment(pod, len, 1, 5, METRICS_IDENTITY_DIGITS);
}

/* A JSON string's text: a double-quoted scalar with no NUL in it; NULL for anything else. */
static const char *metrics_identity_json_str(struct fy_node *n, size_t *ret_len)
{
        const char *s;

        if (!n || !fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_DOUBLE_QUOTED)
                return NULL;
        s = fy_node_get_scalar(n, ret_len);
        if (!s || memchr(s, '\0', *ret_len))
                return NULL;
        return s;
}

int metrics_identity_json_label(const char *json, size_t len, const char *key, char *buf, size_t size)
{
        struct fy_document *d;
        struct fy_node *root;
        struct fy_node_pair *pair;
        const char *found = NULL;
        size_t found_len = 0, klen = strlen(key);
        void *iter = NULL;
        int r = -EBADMSG;

        /* libfyaml reads a NUL as the end of its input; the caller's length says otherwise. */
        if (len == 0 || memchr(json, '\0', len))
                return -EBADMSG;
        d = json_doc_parse(json, len, NULL);
        if (!d)
                return -EBADMSG;
        root = fy_document_root(d);
        if (!root || !fy_node_is_mapping(root))
                goto out;
        /* Every pair is checked, not only the one looked for: a bad object is ignored whole. */
        while ((pair = fy_node_mapping_iterate(root, &iter))) {
                size_t kl, vl;
                const char *k = metrics_identity_json_str(fy_node_pair_key(pair), &kl);
                const char *v = metrics_identity_json_str(fy_node_pair_value(pair), &vl);

                if (!k || !v)
                        goto out;
                if (kl == klen && memcmp(k, key, klen) == 0) {
                        found = v;
                        found_len = vl;
                }
        }
        if (!found) {
                r = -ENOENT;
        } else if (found_len >= size) {
                r = -ENAMETOOLONG;
        } else {
                memcpy(buf, found, found_len);
                buf[found_len] = '\0';
                r = (int)found_len;
        }
out:
        fy_document_destroy(d);
        return r;
}

/* Fills field from the first label found, then the fallback variable; 0, or -ENAMETOOLONG. */
static int metrics_identity_labels_lookup(char *field, size_t size, const char *labels, const char *label1,
                                           const char *label2, const char *fallback)
{
        const char *names[] = { label1, label2 };
        int r;

        for (size_t i = 0; labels && i < 2; i++) {
                r = metrics_identity_json_label(labels, strlen(labels), names[i], field, size);
                if (r > 0)
                        return 0;
                if (r == -ENAMETOOLONG) {
                        snprintf(field, size, "unknown");
                        return r;
                }
                if (r == -EBADMSG)
                        break;
        }
        if (fallback)
                return metrics_identity_field_set(field, size, fallback, strlen(fallback));
        snprintf(field, size, "unknown");
        return 0;
}

int metrics_identity_from_env(char *const *envp, struct metrics_identity *ret)
{
        const char *labels = metrics_identity_env(envp, "ISTIO_METAJSON_LABELS");
        const char *v;
        int r = 0, k;

        memset(ret, 0, sizeof(*ret));

        if ((v = metrics_identity_env(envp, "ISTIO_META_WORKLOAD_NAME")))
                k = metrics_identity_field_set(ret->workload, sizeof(ret->workload), v, strlen(v));
        else if ((v = metrics_identity_env(envp, "POD_NAME")))
                k = metrics_identity_field_set(ret->workload, sizeof(ret->workload), v, metrics_identity_workload_from_pod(v));
        else
                k = metrics_identity_field_set(ret->workload, sizeof(ret->workload), "unknown", 7);
        r = r < 0 ? r : k;

        v = metrics_identity_env(envp, "POD_NAMESPACE");
        if (!v)
                v = "unknown";
        k = metrics_identity_field_set(ret->namespace_, sizeof(ret->namespace_), v, strlen(v));
        r = r < 0 ? r : k;

        k = metrics_identity_labels_lookup(ret->app, sizeof(ret->app), labels, "app", "app.kubernetes.io/name",
                                   metrics_identity_env(envp, "CANONICAL_SERVICE"));
        r = r < 0 ? r : k;
        k = metrics_identity_labels_lookup(ret->version, sizeof(ret->version), labels, "version",
                                   "app.kubernetes.io/version", metrics_identity_env(envp, "CANONICAL_REVISION"));
        r = r < 0 ? r : k;

        v = metrics_identity_env(envp, "ISTIO_META_CLUSTER_ID");
        if (!v)
                v = "Kubernetes";
        k = metrics_identity_field_set(ret->cluster, sizeof(ret->cluster), v, strlen(v));
        return r < 0 ? r : k;
}
