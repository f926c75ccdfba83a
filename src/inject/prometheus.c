/*
 * Prometheus annotation merge; see prometheus.h.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/go_value.h"
#include "common/strbuf.h"
#include "inject/prometheus.h"
#include "inject/traffic.h"
#include "inject/yaml.h"

#define TARGETS_ANNOTATION "prometheus.istio.io/scrape-targets"

/* Ports a scrape target must not use: the proxy's own (SEMANTICS 11). */
static const unsigned reserved_ports[] = { 15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090 };

/* "prometheus.io/scrape" and "prometheus.io.scrape" both read as prometheus_io_scrape. */
static bool key_is(const char *key, const char *normal)
{
        for (; *key && *normal; key++, normal++) {
                char c = *key;
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if ((alnum ? c : '_') != *normal)
                        return false;
        }
        return !*key && !*normal;
}

/* The value of the annotation whose normalised key is normal, in any spelling. */
static const char *lookup(struct fy_node *ann, const char *normal)
{
        struct fy_node_pair *p;
        void *iter = NULL;

        if (!yaml_is_map(ann))
                return NULL;
        while ((p = fy_node_mapping_iterate(ann, &iter))) {
                const char *k = yaml_str(fy_node_pair_key(p));
                if (k && key_is(k, normal))
                        return yaml_str(fy_node_pair_value(p));
        }
        return NULL;
}

/* Explicitly false, in Go's boolean syntax (anything unparseable counts as not set). */
static bool go_false(const char *s)
{
        bool b;

        return go_value_bool(s, &b) == 0 && !b;
}

/* A scrape port: 1..65535 and none of the proxy's. key and value name the annotation. */
static int check_port(const char *port, const char *key, const char *value, struct strbuf *err)
{
        char *end;
        unsigned long v = strtoul(port, &end, 10);

        if (!*port || *end || v < 1 || v > 65535) {
                strbuf_printf(err, "invalid value '%s' for annotation '%s': port '%s' is not in 1..65535", value, key, port);
                return -EINVAL;
        }
        for (size_t i = 0; i < sizeof(reserved_ports) / sizeof(reserved_ports[0]); i++)
                if (v == reserved_ports[i]) {
                        strbuf_printf(err, "invalid value '%s' for annotation '%s': port %lu is one the proxy uses", value,
                                      key, v);
                        return -EINVAL;
                }
        return 0;
}

/* ISTIO_PROMETHEUS_ANNOTATIONS with a "targets" list from "port:path,port:path". */
static int targets_json(struct strbuf *b, const char *targets, const char *scrape, struct strbuf *err)
{
        struct strbuf list = STRBUF_NULL;
        char first_port[16] = "", first_path[512] = "";
        const char *p = targets;
        int n = 0;

        while (*p) {
                const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p), *colon;
                char port[16], path[512];

                while (p < end && *p == ' ')
                        p++;
                colon = memchr(p, ':', (size_t)(end - p));
                snprintf(port, sizeof(port), "%.*s", (int)((colon ? colon : end) - p), p);
                snprintf(path, sizeof(path), "%.*s", colon ? (int)(end - colon - 1) : 0, colon ? colon + 1 : "");
                if (!*path)
                        strcpy(path, "/metrics");
                if (check_port(port, TARGETS_ANNOTATION, targets, err) < 0) {
                        strbuf_deinit(&list);
                        return -EINVAL;
                }
                if (n++ == 0) {
                        snprintf(first_port, sizeof(first_port), "%s", port);
                        snprintf(first_path, sizeof(first_path), "%s", path);
                }
                strbuf_puts(&list, n > 1 ? ",{\"port\":" : "{\"port\":");
                json_str(&list, port);
                strbuf_puts(&list, ",\"path\":");
                json_str(&list, path);
                strbuf_puts(&list, "}");
                p = comma ? comma + 1 : end;
        }
        strbuf_puts(b, "{\"scrape\":");
        json_str(b, scrape ? scrape : "");
        strbuf_puts(b, ",\"path\":");
        json_str(b, first_path);
        strbuf_puts(b, ",\"port\":");
        json_str(b, first_port);
        strbuf_printf(b, ",\"targets\":[%s]}", strbuf_str(&list));
        strbuf_deinit(&list);
        return 0;
}

int prometheus_plan(struct fy_node *ann, const char *prev, struct prometheus_plan *ret, struct strbuf *err)
{
        const char *scrape = lookup(ann, "prometheus_io_scrape");
        const char *port = lookup(ann, "prometheus_io_port"), *path = lookup(ann, "prometheus_io_path");
        const char *targets = yaml_get_str(ann, TARGETS_ANNOTATION), *merge = yaml_get_str(ann, "prometheus.istio.io/merge-metrics");
        struct strbuf b = STRBUF_NULL;

        *ret = (struct prometheus_plan){ 0 };
        /* A pod that opted out of scraping, or out of the merge, is left alone. */
        if (go_false(scrape) || go_false(merge))
                return 0;
        ret->rewrite = true;
        if (port && strcmp(port, PROMETHEUS_STATUS_PORT) == 0) {
                /* Already pointing at the proxy (an injected pod): keep what was saved. */
                ret->env = prev ? strdup(prev) : NULL;
                return 0;
        }
        if (!scrape && !port && !path && !targets)
                return 0;
        if (targets && *targets) {
                if (targets_json(&b, targets, scrape, err) < 0) {
                        strbuf_deinit(&b);
                        return -EINVAL;
                }
        } else {
                if (port && *port && check_port(port, "prometheus.io/port", port, err) < 0)
                        return -EINVAL;
                strbuf_puts(&b, "{\"scrape\":");
                json_str(&b, scrape ? scrape : "");
                strbuf_puts(&b, ",\"path\":");
                json_str(&b, path ? path : "");
                strbuf_puts(&b, ",\"port\":");
                json_str(&b, port ? port : "");
                strbuf_puts(&b, "}");
        }
        if (b.error) {
                strbuf_deinit(&b);
                return -ENOMEM;
        }
        ret->env = strbuf_steal(&b);
        return 0;
}

void prometheus_apply(struct fy_document *d, struct fy_node *ann, const struct prometheus_plan *p)
{
        static const char *const normal[] = { "prometheus_io_scrape", "prometheus_io_port", "prometheus_io_path" };
        bool removed;

        if (!p->rewrite)
                return;
        /* Remove every spelling; one at a time, since removing ends the iteration. */
        do {
                struct fy_node_pair *pr;
                void *iter = NULL;

                removed = false;
                while (!removed && (pr = fy_node_mapping_iterate(ann, &iter))) {
                        const char *k = yaml_str(fy_node_pair_key(pr));
                        for (size_t i = 0; k && i < 3 && !removed; i++) {
                                if (key_is(k, normal[i])) {
                                        char key[256];
                                        snprintf(key, sizeof(key), "%s", k);
                                        yaml_remove(d, ann, key);
                                        removed = true;
                                }
                        }
                }
        } while (removed);
        yaml_remove(d, ann, TARGETS_ANNOTATION);
        yaml_set_str(d, ann, "prometheus.io/path", "/stats/prometheus");
        yaml_set_str(d, ann, "prometheus.io/port", PROMETHEUS_STATUS_PORT);
        yaml_set_str(d, ann, "prometheus.io/scrape", "true");
}

void prometheus_plan_free(struct prometheus_plan *p)
{
        free(p->env);
        p->env = NULL;
}
