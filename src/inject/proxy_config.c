/*
 * proxy.istio.io/config; see proxy_config.h. Parsed with libfyaml into a scratch document;
 * the values pilotfish keeps are copied out before it is destroyed.
 */
#include <errno.h>
#include <stdint.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/go_value.h"
#include "common/strbuf.h"
#include "inject/proxy_config.h"
#include "inject/yaml.h"

#define KEY "proxy.istio.io/config"

/* Istio reads the annotation with protomarshal.ApplyYAML: YAML to JSON, then
 * github.com/golang/protobuf/jsonpb, whose decoder reads a google.protobuf.Duration string with
 * time.ParseDuration (decode.go). So the grammar is Go's whole, sign included ("-1s" is
 * accepted there, and kept as written here: pilotfish does not read these two fields). */
static bool go_duration(const char *s)
{
        int64_t ns;

        return s && go_value_duration(s, &ns, NULL) == 0;
}

/* Not ParseBool: holdApplicationUntilProxyStarts is a google.protobuf.BoolValue, which jsonpb
 * reads from a JSON boolean only, so of the spellings a YAML scalar can have, true and false. */
static bool is_bool(const char *s)
{
        return s && (!strcmp(s, "true") || !strcmp(s, "false"));
}

static bool is_uint(const char *s, unsigned long max)
{
        char *end;

        return s && *s && strspn(s, "0123456789") == strlen(s) && strtoul(s, &end, 10) <= max;
}

int proxy_config_parse(const char *text, struct proxy_config *ret, struct strbuf *err)
{
        struct fy_document *d;
        struct fy_node *root, *md;
        struct strbuf parse_err = STRBUF_NULL;
        const char *v, *why = NULL;
        int r = 0;

        *ret = (struct proxy_config){ .metadata = STRV_NULL };
        if (!text)
                return 0;
        /* An empty annotation sets nothing; text that does not parse is an error. */
        if (!*text)
                return 0;
        d = yaml_parse_quiet(text, strlen(text), &parse_err);
        root = d ? fy_document_root(d) : NULL;
        if (!root || fy_node_is_null(root)) {
                if (!d) {
                        strbuf_puts(&parse_err, parse_err.len ? "" : "not YAML or JSON");
                        why = strbuf_str(&parse_err);
                }
                goto out;
        }
        if (!yaml_is_map(root)) {
                why = "not a mapping of ProxyConfig fields";
                goto out;
        }
        if ((v = yaml_get_str(root, "holdApplicationUntilProxyStarts"))) {
                if (!is_bool(v)) {
                        why = "holdApplicationUntilProxyStarts: want true or false";
                        goto out;
                }
                ret->hold = strcmp(v, "true") == 0;
        }
        if ((v = yaml_get_str(root, "interceptionMode"))) {
                if (strcmp(v, "REDIRECT") && strcmp(v, "TPROXY") && strcmp(v, "NONE")) {
                        why = "interceptionMode: want REDIRECT, TPROXY or NONE";
                        goto out;
                }
                ret->interception_mode = strdup(v);
                if (!ret->interception_mode) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if ((yaml_get(root, "concurrency") && !is_uint(yaml_get_str(root, "concurrency"), 1u << 16)) ||
            (yaml_get(root, "statusPort") && !is_uint(yaml_get_str(root, "statusPort"), 65535)) ||
            (yaml_get(root, "proxyAdminPort") && !is_uint(yaml_get_str(root, "proxyAdminPort"), 65535))) {
                why = "concurrency, statusPort and proxyAdminPort are non-negative numbers (ports up to 65535)";
                goto out;
        }
        if ((yaml_get(root, "drainDuration") && !go_duration(yaml_get_str(root, "drainDuration"))) ||
            (yaml_get(root, "terminationDrainDuration") && !go_duration(yaml_get_str(root, "terminationDrainDuration")))) {
                why = "drainDuration and terminationDrainDuration are Go durations such as 5s or 1m30s";
                goto out;
        }
        if ((md = yaml_get(root, "proxyMetadata")) && !fy_node_is_null(md)) {
                struct fy_node_pair *p;
                void *iter = NULL;

                if (!yaml_is_map(md)) {
                        why = "proxyMetadata: want a mapping of environment variables";
                        goto out;
                }
                while ((p = fy_node_mapping_iterate(md, &iter))) {
                        const char *k = yaml_str(fy_node_pair_key(p)), *val = yaml_str(fy_node_pair_value(p));
                        char *kv;

                        if (!k || !*k || !val || strchr(k, '=')) {
                                why = "proxyMetadata: each entry is NAME: value";
                                goto out;
                        }
                        if (asprintf(&kv, "%s=%s", k, val) < 0 || strv_push_take(&ret->metadata, kv) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
out:
        if (why) {
                strbuf_printf(err, "invalid value '%s' for annotation '" KEY "': %s", text, why);
                r = -EINVAL;
        }
        if (d)
                fy_document_destroy(d);
        strbuf_deinit(&parse_err);
        if (r < 0)
                proxy_config_free(ret);
        return r;
}

void proxy_config_free(struct proxy_config *pc)
{
        free(pc->interception_mode);
        pc->interception_mode = NULL;
        strv_deinit(&pc->metadata);
}
