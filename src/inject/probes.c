/*
 * Probe rewriting; see probes.h. The original action is written out field by field, in the
 * order Kubernetes' types have them (path, port, host, scheme, httpHeaders; port, host;
 * port, service), with a named port resolved through the container's ports, because the proxy
 * that runs the probe has no other way to know what "http" meant. Entries are collected in an
 * array, sorted by path as Istio's JSON has them, and repeated paths dropped after the sort (a
 * check at each insertion was quadratic: 10,000 containers took seconds).
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/probes.h"
#include "inject/yaml.h"

struct prober {
        char *path;     /* /app-health/<c>/readyz ... */
        char *json;     /* {"httpGet":{...},"timeoutSeconds":N} */
        size_t seq;     /* order of insertion: of equal paths the first added wins */
};

struct probers {
        struct prober *v;
        size_t n, cap;
        int error;
};

static void add(struct probers *ps, char *path, char *json)
{
        if (ps->n == ps->cap) {
                size_t nc = ps->cap ? ps->cap * 2 : 8;
                struct prober *nv = realloc(ps->v, nc * sizeof(*nv));
                if (!nv) {
                        free(path);
                        free(json);
                        ps->error = -ENOMEM;
                        return;
                }
                ps->v = nv;
                ps->cap = nc;
        }
        ps->v[ps->n] = (struct prober){ .path = path, .json = json, .seq = ps->n };
        ps->n++;
}

static int cmp_path(const void *a, const void *b)
{
        const struct prober *x = a, *y = b;
        int r = strcmp(x->path, y->path);

        return r ? r : (x->seq > y->seq) - (x->seq < y->seq);
}

/* After the sort: keeps the first of each run of equal paths (an entry from an earlier
 * injection, added first, wins). */
static void drop_repeated(struct probers *ps)
{
        size_t kept = 0;

        for (size_t i = 0; i < ps->n; i++) {
                if (kept && strcmp(ps->v[kept - 1].path, ps->v[i].path) == 0) {
                        free(ps->v[i].path);
                        free(ps->v[i].json);
                        continue;
                }
                ps->v[kept++] = ps->v[i];
        }
        ps->n = kept;
}

static bool all_digits(const char *s)
{
        return s && *s && strspn(s, "0123456789") == strlen(s);
}

/* A probe's port as a number: an integer, or a name looked up in the container's ports. 0 if
 * unknown. */
static unsigned long resolve_port(struct fy_node *container, const char *port)
{
        struct fy_node *it;
        void *iter = NULL;

        if (!port)
                return 0;
        if (all_digits(port))
                return strtoul(port, NULL, 10);
        while ((it = fy_node_sequence_iterate(yaml_get(container, "ports"), &iter))) {
                const char *name = yaml_get_str(it, "name"), *num = yaml_get_str(it, "containerPort");
                if (name && strcmp(name, port) == 0 && all_digits(num))
                        return strtoul(num, NULL, 10);
        }
        return 0;
}

static void json_field(struct strbuf *b, bool *first, const char *key, const char *value)
{
        if (!value)
                return;
        strbuf_printf(b, "%s\"%s\":", *first ? "" : ",", key);
        json_str(b, value);
        *first = false;
}

/* The original action as JSON, or NULL when its port cannot be resolved (left out, as Istio). */
static char *action_json(struct fy_node *container, const char *kind, struct fy_node *action, const char *timeout)
{
        struct strbuf b = STRBUF_NULL;
        unsigned long port = resolve_port(container, yaml_get_str(action, "port"));
        bool first = true;

        if (!port)
                return NULL;
        strbuf_printf(&b, "{\"%s\":{", kind);
        if (strcmp(kind, "httpGet") == 0) {
                struct fy_node *headers = yaml_get(action, "httpHeaders");

                json_field(&b, &first, "path", yaml_get_str(action, "path"));
                strbuf_printf(&b, "%s\"port\":%lu", first ? "" : ",", port);
                first = false;
                json_field(&b, &first, "host", yaml_get_str(action, "host"));
                json_field(&b, &first, "scheme", yaml_get_str(action, "scheme"));
                if (yaml_is_seq(headers) && fy_node_sequence_item_count(headers) > 0) {
                        struct fy_node *h;
                        void *iter = NULL;
                        bool hfirst = true;

                        strbuf_puts(&b, ",\"httpHeaders\":[");
                        while ((h = fy_node_sequence_iterate(headers, &iter))) {
                                bool f = true;
                                strbuf_puts(&b, hfirst ? "{" : ",{");
                                json_field(&b, &f, "name", yaml_get_str(h, "name"));
                                json_field(&b, &f, "value", yaml_get_str(h, "value"));
                                strbuf_puts(&b, "}");
                                hfirst = false;
                        }
                        strbuf_puts(&b, "]");
                }
        } else {
                strbuf_printf(&b, "\"port\":%lu", port);
                first = false;
                json_field(&b, &first, strcmp(kind, "grpc") == 0 ? "service" : "host",
                           yaml_get_str(action, strcmp(kind, "grpc") == 0 ? "service" : "host"));
        }
        strbuf_puts(&b, "}");
        if (timeout && all_digits(timeout) && strtoul(timeout, NULL, 10) != 0)
                strbuf_printf(&b, ",\"timeoutSeconds\":%lu", strtoul(timeout, NULL, 10));
        strbuf_puts(&b, "}");
        if (b.error) {
                strbuf_deinit(&b);
                return NULL;
        }
        return strbuf_steal(&b);
}

/* Rewrites one probe or hook (a mapping holding httpGet, tcpSocket or grpc). */
static void rewrite_one(struct fy_document *d, struct fy_node *container, const char *cname, struct fy_node *probe,
                        const char *prefix, const char *what, bool hook, unsigned status_port, struct probers *ps)
{
        static const char *const kinds[] = { "httpGet", "tcpSocket", "grpc" };
        struct fy_node *action = NULL;
        const char *kind = NULL, *port;
        char path[512], text[600];

        if (!yaml_is_map(probe))
                return;
        for (int i = 0; i < (hook ? 2 : 3) && !action; i++) {
                if (yaml_is_map(yaml_get(probe, kinds[i]))) {
                        action = yaml_get(probe, kinds[i]);
                        kind = kinds[i];
                }
        }
        if (!action)
                return;         /* exec, or nothing pilotfish can run */
        port = yaml_get_str(action, "port");
        if (all_digits(port) && strtoul(port, NULL, 10) == status_port)
                return;         /* already rewritten (an injected pod) */
        snprintf(path, sizeof(path), "/%s/%s/%s", prefix, cname, what);
        {
                char *json = action_json(container, kind, action, hook ? NULL : yaml_get_str(probe, "timeoutSeconds"));
                char *p = strdup(path);

                if (json && p)
                        add(ps, p, json);
                else {
                        free(json);
                        free(p);
                }
        }
        if (strcmp(kind, "httpGet") == 0) {
                const char *scheme = yaml_get_str(action, "scheme");

                yaml_set_str(d, action, "path", path);
                snprintf(text, sizeof(text), "%u", status_port);
                yaml_set(d, action, "port", yaml_build(d, text));
                if (scheme && strcmp(scheme, "HTTPS") == 0)
                        yaml_set_str(d, action, "scheme", "HTTP");
                return;
        }
        /* tcpSocket and grpc become an httpGet to the proxy. */
        yaml_remove(d, probe, kind);
        snprintf(text, sizeof(text), "{path: %s, port: %u}", path, status_port);
        yaml_set(d, probe, "httpGet", yaml_build(d, text));
}

static void rewrite_containers(struct fy_document *d, struct fy_node *seq, unsigned status_port, struct probers *ps)
{
        static const struct {
                const char *key, *what;
        } probes[] = { { "readinessProbe", "readyz" }, { "livenessProbe", "livez" }, { "startupProbe", "startupz" } };
        struct fy_node *c;
        void *iter = NULL;

        while ((c = fy_node_sequence_iterate(seq, &iter))) {
                const char *name = yaml_get_str(c, "name");
                struct fy_node *lc = yaml_get(c, "lifecycle");

                if (!name || strcmp(name, "istio-proxy") == 0)
                        continue;
                for (int i = 0; i < 3; i++)
                        rewrite_one(d, c, name, yaml_get(c, probes[i].key), "app-health", probes[i].what, false,
                                    status_port, ps);
                rewrite_one(d, c, name, yaml_get(lc, "preStop"), "app-lifecycle", "prestopz", true, status_port, ps);
                rewrite_one(d, c, name, yaml_get(lc, "postStart"), "app-lifecycle", "poststartz", true, status_port, ps);
        }
}

/* Takes the entries of an earlier ISTIO_KUBE_APP_PROBERS (a JSON object) first. */
static void add_previous(struct fy_document *d, const char *prev, struct probers *ps)
{
        struct fy_node *o = prev ? yaml_build(d, prev) : NULL;
        struct fy_node_pair *p;
        void *iter = NULL;

        if (!yaml_is_map(o)) {
                if (o)
                        fy_node_free(o);
                return;
        }
        while ((p = fy_node_mapping_iterate(o, &iter))) {
                const char *k = yaml_str(fy_node_pair_key(p));
                struct strbuf b = STRBUF_NULL;
                char *j, *key = k ? strdup(k) : NULL;

                yaml_to_json(&b, fy_node_pair_value(p));
                j = b.error ? NULL : strbuf_steal(&b);
                strbuf_deinit(&b);

                if (key && j)
                        add(ps, key, j);
                else {
                        free(key);
                        free(j);
                }
        }
        fy_node_free(o);
}

int probes_rewrite(struct fy_document *d, struct fy_node *spec, unsigned status_port, const char *prev, char **ret)
{
        struct probers ps = { 0 };
        struct strbuf b = STRBUF_NULL;
        int r = 0;

        *ret = NULL;
        add_previous(d, prev, &ps);
        rewrite_containers(d, yaml_get(spec, "initContainers"), status_port, &ps);
        rewrite_containers(d, yaml_get(spec, "containers"), status_port, &ps);
        if (ps.error)
                r = ps.error;
        else if (ps.n) {
                qsort(ps.v, ps.n, sizeof(ps.v[0]), cmp_path);
                drop_repeated(&ps);
                strbuf_puts(&b, "{");
                for (size_t i = 0; i < ps.n; i++) {
                        strbuf_puts(&b, i ? "," : "");
                        json_str(&b, ps.v[i].path);
                        strbuf_printf(&b, ":%s", ps.v[i].json);
                }
                strbuf_puts(&b, "}");
                if (b.error)
                        r = -ENOMEM;
                else
                        *ret = strbuf_steal(&b);
                strbuf_deinit(&b);
        }
        for (size_t i = 0; i < ps.n; i++) {
                free(ps.v[i].path);
                free(ps.v[i].json);
        }
        free(ps.v);
        return r;
}
