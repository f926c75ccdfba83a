/*
 * The injection decision; see policy.h. Selectors are Kubernetes' equality-based set
 * ("a=b", "a==b", "a!=b", "a", "!a"), which is what the never/always-inject lists hold in
 * practice; a selector pilotfish cannot read never matches, as Istio ignores an invalid one.
 */
#include <string.h>

#include "common/strbuf.h"
#include "inject/settings.h"
#include "inject/policy.h"
#include "inject/yaml.h"

static const char *const system_namespaces[] = { "kube-system", "kube-public", "kube-node-lease", "local-path-storage" };

static bool term_match(const char *term, size_t len, struct fy_node *labels)
{
        char buf[320];
        const char *op, *v;
        bool neg = false;

        while (len && *term == ' ') {
                term++;
                len--;
        }
        while (len && term[len - 1] == ' ')
                len--;
        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, term, len);
        buf[len] = '\0';
        if (buf[0] == '!') {
                v = yaml_get_str(labels, buf + 1);
                return v == NULL;
        }
        op = strstr(buf, "!=");
        if (op)
                neg = true;
        else
                op = strstr(buf, "==");
        if (!op)
                op = strchr(buf, '=');
        if (!op)
                return yaml_get_str(labels, buf) != NULL;
        {
                const char *want = op + (op[0] == '=' && op[1] != '=' ? 1 : 2);
                char key[320];

                memcpy(key, buf, (size_t)(op - buf));
                key[op - buf] = '\0';
                v = yaml_get_str(labels, key);
                if (neg)
                        return !v || strcmp(v, want) != 0;
                return v && strcmp(v, want) == 0;
        }
}

bool label_selector_match(const char *selector, struct fy_node *labels)
{
        const char *p = selector;

        if (!*selector)
                return false;   /* an empty selector is ignored, not "match everything" */
        for (;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);

                if (!term_match(p, len, labels))
                        return false;
                if (!comma)
                        return true;
                p = comma + 1;
        }
}

static bool any_match(const struct strv *sv, struct fy_node *labels)
{
        for (size_t i = 0; i < sv->n; i++)
                if (label_selector_match(sv->v[i], labels))
                        return true;
        return false;
}

enum inject_decision inject_decide(const struct inject_config *c, struct fy_node *meta, struct fy_node *spec,
                                   const char *namespace, struct strbuf *warnings)
{
        struct fy_node *labels = yaml_get(meta, "labels");
        const char *sw, *host = yaml_get_str(spec, "hostNetwork");

        if (host && strcmp(host, "true") == 0)
                return INJECT_SKIP_HOST_NETWORK;
        for (size_t i = 0; i < sizeof(system_namespaces) / sizeof(system_namespaces[0]); i++)
                if (namespace && strcmp(namespace, system_namespaces[i]) == 0)
                        return INJECT_SKIP_NAMESPACE;
        if (namespace && c->mesh_namespace && strcmp(namespace, c->mesh_namespace) == 0)
                return INJECT_SKIP_NAMESPACE;

        /* The label, when its key is there at all, beats the (deprecated) annotation. */
        if (yaml_get(labels, "sidecar.istio.io/inject"))
                sw = yaml_get_str(labels, "sidecar.istio.io/inject");
        else
                sw = yaml_get_str(yaml_get(meta, "annotations"), "sidecar.istio.io/inject");
        if (sw && strcmp(sw, "true") == 0)
                return INJECT_YES;
        if (sw && strcmp(sw, "false") == 0)
                return INJECT_SKIP_DISABLED;
        if (sw && *sw && warnings)
                strbuf_printf(warnings, "sidecar.istio.io/inject: '%s' is neither \"true\" nor \"false\"; ignored\n", sw);

        if (any_match(&c->never_inject, labels))
                return INJECT_SKIP_DISABLED;
        if (any_match(&c->always_inject, labels))
                return INJECT_YES;
        return strcmp(c->policy, "enabled") == 0 ? INJECT_YES : INJECT_SKIP_DISABLED;
}
