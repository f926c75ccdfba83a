/*
 * AdmissionReview handling; see review.h. The request is parsed with libfyaml (JSON is YAML).
 * A pod the policy skips is answered straight after the parse; any other is copied before
 * injection so the patch can be the difference of the two trees. The answer is written by
 * hand: it has five fields.
 */
#include <libfyaml.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "inject/inject.h"
#include "inject/policy.h"
#include "inject/yaml.h"
#include "webhook/answer_cache.h"
#include "webhook/jsonpatch.h"
#include "webhook/review.h"

#define PROXY_NAME "istio-proxy"

/* An answer to a body that did not decode: no apiVersion, no kind, an empty uid (as Istio). */
static void undecodable(struct strbuf *out, const char *why)
{
        strbuf_puts(out, "{\"response\":{\"uid\":\"\",\"allowed\":false,\"status\":{\"metadata\":{},\"message\":");
        json_str(out, why);
        strbuf_puts(out, "}}}");
}

static void head(struct strbuf *out, const char *api_version, const char *uid)
{
        strbuf_puts(out, "{\"apiVersion\":");
        json_str(out, api_version);
        strbuf_puts(out, ",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
        json_str(out, uid ? uid : "");
}

static void allowed(struct strbuf *out, const char *api_version, const char *uid)
{
        head(out, api_version, uid);
        strbuf_puts(out, ",\"allowed\":true}}");
}

/* An answer with a patch: the head, then tail (what follows the uid, see patch_tail). */
static void patched(struct strbuf *out, const char *api_version, const char *uid, const struct strbuf *tail)
{
        head(out, api_version, uid);
        strbuf_append(out, tail->s ? tail->s : "", tail->len);
        if (tail->error)
                out->error = tail->error;
}

/* The answer cache's key: the body less the uid's text, as the parser found it. */
static void cache_key(const char *path, const char *body, size_t len, struct fy_node *uid_node,
                      unsigned char key[ANSWER_KEY_SIZE])
{
        struct fy_token *t = uid_node && fy_node_is_scalar(uid_node) ? fy_node_get_scalar_token(uid_node) : NULL;
        const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL, *b = t ? fy_token_end_mark(t) : NULL;

        if (!a || !b || !answer_cache_enabled()) {
                memset(key, 0, ANSWER_KEY_SIZE);        /* never stored, never found */
                return;
        }
        answer_cache_key(path ? path : "", body, len, a->input_pos, b->input_pos, key);
}

static void denied(struct strbuf *out, const char *api_version, const char *uid, const char *why)
{
        head(out, api_version, uid);
        strbuf_puts(out, ",\"allowed\":false,\"status\":{\"metadata\":{},\"message\":");
        json_str(out, why);
        strbuf_puts(out, "}}}");
}

/* "--slash--" in a path parameter stands for "/" (SEMANTICS 1.3). */
static char *unslash(const char *s, size_t n)
{
        struct strbuf b = STRBUF_NULL;
        char *r = NULL;

        for (size_t i = 0; i < n; i++) {
                if (n - i >= 9 && memcmp(s + i, "--slash--", 9) == 0) {
                        strbuf_puts(&b, "/");
                        i += 8;
                } else {
                        strbuf_append(&b, s + i, 1);
                }
        }
        if (!b.error)
                r = strbuf_steal(&b);
        strbuf_deinit(&b);
        return r ? r : strdup("");
}

struct env_override {
        char *name, *value;
};

static int cmp_override(const void *a, const void *b)
{
        return strcmp(((const struct env_override *)a)->name, ((const struct env_override *)b)->name);
}

/* The environment overrides in the request path: /inject/k1/v1/k2/v2 or /inject/:ENV:K=V:ENV:K2=V2. */
static size_t path_overrides(const char *path, struct env_override *v, size_t max)
{
        const char *p = path && strncmp(path, "/inject/", 8) == 0 ? path + 8 : NULL;
        size_t n = 0;

        if (!p || !*p)
                return 0;
        if (strncmp(p, ":ENV:", 5) == 0) {
                while (p && (p = strstr(p, ":ENV:")) && n < max) {
                        const char *kv = p + 5, *end = strstr(kv, ":ENV:"), *eq;
                        size_t len = end ? (size_t)(end - kv) : strlen(kv);

                        eq = memchr(kv, '=', len);
                        if (eq && eq > kv) {
                                v[n].name = unslash(kv, (size_t)(eq - kv));
                                v[n].value = unslash(eq + 1, len - (size_t)(eq - kv) - 1);
                                n++;
                        }
                        p = end;
                }
        } else {
                while (*p && n < max) {
                        const char *k = p, *ks = strchr(k, '/'), *val, *vs;
                        char *name;

                        if (!ks)
                                break;          /* a key without a value is ignored */
                        val = ks + 1;
                        vs = strchr(val, '/');
                        name = unslash(k, (size_t)(ks - k));
                        if (strcmp(name, "cluster") == 0) {
                                free(name);
                                name = strdup("ISTIO_META_CLUSTER_ID");
                        } else if (strcmp(name, "net") == 0) {
                                free(name);
                                name = strdup("ISTIO_META_NETWORK");
                        } else {
                                for (char *c = name; *c; c++)
                                        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
                        }
                        v[n].name = name;
                        v[n].value = unslash(val, vs ? (size_t)(vs - val) : strlen(val));
                        n++;
                        if (!vs)
                                break;
                        p = vs + 1;
                }
        }
        qsort(v, n, sizeof(*v), cmp_override);
        return n;
}

/* Replaces same-named entries of the proxy's env and appends the overrides, sorted by name. */
static void apply_overrides(struct fy_document *d, struct fy_node *pod, const struct env_override *v, size_t n)
{
        struct fy_node *spec = yaml_get(pod, "spec"), *proxy, *env;

        proxy = yaml_seq_find_named(yaml_get(spec, "initContainers"), PROXY_NAME);
        if (!proxy)
                proxy = yaml_seq_find_named(yaml_get(spec, "containers"), PROXY_NAME);
        if (!proxy || !n || !(env = yaml_seq_child(d, proxy, "env")))
                return;
        for (size_t i = 0; i < n; i++) {
                struct fy_node *old = yaml_seq_find_named(env, v[i].name), *e;
                struct strbuf b = STRBUF_NULL;

                if (old)
                        fy_node_free(fy_node_sequence_remove(env, old));
                strbuf_puts(&b, "{name: ");
                json_str(&b, v[i].name);
                strbuf_puts(&b, ", value: ");
                json_str(&b, v[i].value);
                strbuf_puts(&b, "}");
                e = b.error ? NULL : yaml_build(d, strbuf_str(&b));
                if (e)
                        fy_node_sequence_append(env, e);
                strbuf_deinit(&b);
        }
}

/* What follows the uid in an answer with a patch. */
static void patch_tail(struct strbuf *tail, const struct strbuf *patch)
{
        size_t n = 4 * ((patch->len + 2) / 3) + 1;
        unsigned char *b64 = malloc(n);

        if (!b64) {
                tail->error = -1;
                return;
        }
        EVP_EncodeBlock(b64, (const unsigned char *)patch->s, (int)patch->len);
        strbuf_puts(tail, ",\"allowed\":true,\"patchType\":\"JSONPatch\",\"patch\":\"");
        strbuf_puts(tail, (const char *)b64);
        strbuf_puts(tail, "\"}}");
        free(b64);
}

enum review_outcome review_handle(const struct inject_config *c, const char *body, size_t len, const char *path,
                                  struct strbuf *out)
{
        struct strbuf why = STRBUF_NULL, msg = STRBUF_NULL, patch = STRBUF_NULL, tail = STRBUF_NULL;
        struct strbuf warnings = STRBUF_NULL;
        enum inject_outcome o;
        unsigned char key[ANSWER_KEY_SIZE];
        struct env_override ov[32];
        struct fy_document *d;
        struct fy_node *root, *req, *pod, *before, *meta;
        const char *api, *kind, *uid, *ns;
        enum review_outcome r = REVIEW_FAILED;
        size_t n_ov = 0;

        d = yaml_parse_quiet(body, len, &why);
        root = d ? fy_document_root(d) : NULL;
        if (!root) {
                strbuf_puts(&why, why.len ? "" : "empty document");
                strbuf_printf(&msg, "couldn't decode the AdmissionReview: %s", strbuf_str(&why));
                undecodable(out, strbuf_str(&msg));
                goto out;
        }
        api = yaml_get_str(root, "apiVersion");
        kind = yaml_get_str(root, "kind");
        if (!api || !kind || !*api || !*kind) {
                undecodable(out, !api || !*api ? "Object 'apiVersion' is missing in the AdmissionReview"
                                               : "Object 'Kind' is missing in the AdmissionReview");
                goto out;
        }
        if (strcmp(kind, "AdmissionReview") != 0 ||
            (strcmp(api, "admission.k8s.io/v1") != 0 && strcmp(api, "admission.k8s.io/v1beta1") != 0)) {
                strbuf_printf(&msg, "no kind \"%s\" is registered for version \"%s\" (want AdmissionReview, "
                                    "admission.k8s.io/v1 or v1beta1)", kind, api);
                undecodable(out, strbuf_str(&msg));
                goto out;
        }
        req = yaml_get(root, "request");
        if (!yaml_is_map(req)) {
                denied(out, api, NULL, "the AdmissionReview has no request");
                goto out;
        }
        uid = yaml_get_str(req, "uid");
        pod = yaml_get(req, "object");
        if (!yaml_is_map(pod)) {
                denied(out, api, uid, "request.object is not a Pod (a JSON object is expected)");
                goto out;
        }
        /* A pod the policy skips needs no copy and no injection (the same decision inject_pod
         * makes first): the answer to a host-network or opted-out pod costs only the parse. */
        {
                struct fy_node *m0 = yaml_get(pod, "metadata"), *spec = yaml_get(pod, "spec");
                const char *ns0 = yaml_get_str(m0, "namespace");

                if (!ns0 || !*ns0)
                        ns0 = yaml_get_str(req, "namespace");
                if (yaml_is_map(spec) && inject_decide(c, m0, spec, ns0 && *ns0 ? ns0 : "default", NULL) != INJECT_YES) {
                        allowed(out, api, uid);
                        r = REVIEW_SKIPPED;
                        goto out;
                }
        }
        /* The same request but for its uid was answered before (the pods of one burst). */
        cache_key(path, body, len, yaml_get(req, "uid"), key);
        if (answer_cache_get(key, &tail)) {
                patched(out, api, uid, &tail);
                r = REVIEW_INJECTED;
                goto out;
        }
        /* managedFields never take part (SEMANTICS 1.1): gone before the copy, so not in the patch. */
        yaml_remove(d, yaml_get(pod, "metadata"), "managedFields");
        /* The copy is the pod exactly as sent (less managedFields): a metadata the injection
         * creates must show as one "add" in the patch, not as paths under a missing key. */
        before = fy_node_copy(d, pod);
        meta = yaml_map_child(d, pod, "metadata");
        if (!before || !meta) {
                if (before)
                        fy_node_free(before);
                denied(out, api, uid, "out of memory");
                goto out;
        }
        /* A controller's pod has no namespace yet: it is the request's. */
        ns = yaml_get_str(meta, "namespace");
        if ((!ns || !*ns) && yaml_get_str(req, "namespace"))
                yaml_set_str(d, meta, "namespace", yaml_get_str(req, "namespace"));

        o = inject_pod_object(c, d, pod, &msg, &warnings);
        /* The per-request edge: the webhook's log is where the pod's warnings go. */
        for (const char *w = strbuf_str(&warnings), *nl; (nl = strchr(w, '\n')); w = nl + 1)
                log_warn("%.*s", (int)(nl - w), w);
        switch (o) {
        case INJECT_OUTCOME_SKIPPED:
                allowed(out, api, uid);
                r = REVIEW_SKIPPED;
                break;
        case INJECT_OUTCOME_FAILED:
                denied(out, api, uid, strbuf_str(&msg));
                break;
        case INJECT_OUTCOME_INJECTED:
                n_ov = path_overrides(path, ov, sizeof(ov) / sizeof(ov[0]));
                apply_overrides(d, pod, ov, n_ov);
                /* The namespace was only borrowed for the injection. */
                if (!ns || !*ns)
                        yaml_remove(d, yaml_get(pod, "metadata"), "namespace");
                json_patch_diff(before, pod, &patch);
                patch_tail(&tail, &patch);
                patched(out, api, uid, &tail);
                if (!tail.error)
                        answer_cache_put(key, tail.s, tail.len);
                r = REVIEW_INJECTED;
                break;
        }
        fy_node_free(before);
out:
        for (size_t i = 0; i < n_ov; i++) {
                free(ov[i].name);
                free(ov[i].value);
        }
        strbuf_deinit(&why);
        strbuf_deinit(&msg);
        strbuf_deinit(&warnings);
        strbuf_deinit(&patch);
        strbuf_deinit(&tail);
        if (d)
                fy_document_destroy(d);
        return r;
}
