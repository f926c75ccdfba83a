/*
 * Injector configuration; see settings.h. The file is read whole into memory (common/readfile:
 * a pipe or FIFO works like a file), parsed from there with libfyaml into a document kept for
 * the config's lifetime, and walked against a table of known keys, so that every setting has
 * one place where its name, type and destination are written down; the same table writes the
 * settings back out (inject_config_write), so the two cannot drift apart.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "common/go_value.h"
#include "common/readfile.h"
#include "common/strbuf.h"
#include "common/utf8.h"
#include "inject/settings.h"
#include "inject/quantity.h"
#include "inject/yaml.h"

/* The image the project builds (deploy/); a registry is set with `image:` in the config. */
#define PILOTFISH_IMAGE_DEFAULT "pilotfish:" PILOTFISH_VERSION

void inject_config_init(struct inject_config *c)
{
        *c = (struct inject_config){
                .image = PILOTFISH_IMAGE_DEFAULT,
                .policy = "enabled",
                .mesh_namespace = "istio-system",
                .revision = "default",
                .native_sidecars = true,
                .rewrite_probes = true,
                .proxy_log_level = "warning",
                .proxy_component_log_level = "misc:error",
                .cluster_domain = "cluster.local",
                .cluster_id = "Kubernetes",
                .proxy_uid = 1337,
                .proxy_gid = 1337,
                .readiness_period = 15,
                .readiness_failure_threshold = 4,
                /* pilotfish idles at about 2 MiB and a few KiB per connection; the kernel's
                 * socket buffers are charged to the pod's memory cgroup too, hence the limit. */
                .resources = { .requests_cpu = "10m", .requests_memory = "16Mi", .limits_cpu = "1",
                               .limits_memory = "256Mi" },
        };
        inject_traffic_defaults_init(&c->traffic);
}

void inject_config_deinit(struct inject_config *c)
{
        strv_deinit(&c->never_inject);
        strv_deinit(&c->always_inject);
        strv_deinit(&c->image_pull_secrets);
        if (c->doc)
                fy_document_destroy(c->doc);
        c->doc = NULL;
        free(c->text);
        c->text = NULL;
}

enum key_type { K_STRING, K_BOOL, K_UINT, K_PORT, K_QUANTITY, K_STRINGS, K_MAP };

struct key {
        const char *path;       /* dotted, from the top of the file */
        enum key_type type;
        size_t off;
};

#define O(f) offsetof(struct inject_config, f)
static const struct key keys[] = {
        { "image", K_STRING, O(image) },
        { "imagePullPolicy", K_STRING, O(image_pull_policy) },
        { "policy", K_STRING, O(policy) },
        { "meshNamespace", K_STRING, O(mesh_namespace) },
        { "revision", K_STRING, O(revision) },
        { "nativeSidecars", K_BOOL, O(native_sidecars) },
        { "holdApplicationUntilProxyStarts", K_BOOL, O(hold_application) },
        { "rewriteAppHTTPProbe", K_BOOL, O(rewrite_probes) },
        { "clusterDomain", K_STRING, O(cluster_domain) },
        { "clusterID", K_STRING, O(cluster_id) },
        { "neverInjectSelector", K_STRINGS, O(never_inject) },
        { "alwaysInjectSelector", K_STRINGS, O(always_inject) },
        { "imagePullSecrets", K_STRINGS, O(image_pull_secrets) },
        { "proxy", K_MAP, 0 },
        { "proxy.logLevel", K_STRING, O(proxy_log_level) },
        { "proxy.componentLogLevel", K_STRING, O(proxy_component_log_level) },
        { "proxy.uid", K_UINT, O(proxy_uid) },
        { "proxy.gid", K_UINT, O(proxy_gid) },
        { "proxy.readinessInitialDelaySeconds", K_UINT, O(readiness_initial_delay) },
        { "proxy.readinessPeriodSeconds", K_UINT, O(readiness_period) },
        { "proxy.readinessFailureThreshold", K_UINT, O(readiness_failure_threshold) },
        { "proxy.resources", K_MAP, 0 },
        { "proxy.resources.requests", K_MAP, 0 },
        { "proxy.resources.limits", K_MAP, 0 },
        { "proxy.resources.requests.cpu", K_QUANTITY, O(resources.requests_cpu) },
        { "proxy.resources.requests.memory", K_QUANTITY, O(resources.requests_memory) },
        { "proxy.resources.limits.cpu", K_QUANTITY, O(resources.limits_cpu) },
        { "proxy.resources.limits.memory", K_QUANTITY, O(resources.limits_memory) },
        { "proxy.statusPort", K_STRING, O(traffic.status_port) },
        { "proxy.interceptionMode", K_STRING, O(traffic.interception_mode) },
        { "proxy.includeIPRanges", K_STRING, O(traffic.include_ip_ranges) },
        { "proxy.excludeIPRanges", K_STRING, O(traffic.exclude_ip_ranges) },
        { "proxy.includeInboundPorts", K_STRING, O(traffic.include_inbound_ports) },
        { "proxy.excludeInboundPorts", K_STRING, O(traffic.exclude_inbound_ports) },
        { "proxy.includeOutboundPorts", K_STRING, O(traffic.include_outbound_ports) },
        { "proxy.excludeOutboundPorts", K_STRING, O(traffic.exclude_outbound_ports) },
        { "proxy.logOutputLevel", K_STRING, O(traffic.log_level) },
};
#undef O

/* The config file's booleans are YAML's (the 1.2 core schema: true, True, TRUE and the same
 * for false), not Go's ParseBool: the file is pilotfish's own, and a YAML reader of it (kubectl,
 * yq) must see the same value. ENABLE_NATIVE_SIDECARS is Istio's and is read as Istio reads it. */
static int parse_bool(const char *s, bool *ret)
{
        if (!s)
                return -EINVAL;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
                *ret = true;
                return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static int parse_uint(const char *s, unsigned long max, unsigned *ret)
{
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static int load_value(struct inject_config *c, const struct key *k, struct fy_node *v, const char *path,
                      char *err, size_t errlen)
{
        char *dst = (char *)c + k->off;
        const char *s = yaml_str(v);
        const char *why = NULL;
        char canon[64];

        switch (k->type) {
        case K_STRING:
                if (!s)
                        goto type;
                *(const char **)dst = s;
                return 0;
        case K_BOOL:
                if (parse_bool(s, (bool *)dst) < 0)
                        goto type;
                return 0;
        case K_UINT:
                if (parse_uint(s, 0xffffffffUL, (unsigned *)dst) < 0)
                        goto type;
                return 0;
        case K_PORT:
                if (parse_uint(s, 65535, (unsigned *)dst) < 0)
                        goto type;
                return 0;
        case K_QUANTITY:
                if (yaml_is_null(v) || (s && !*s)) {
                        /* null removes the default, as Istio's values do */
                        *(const char **)dst = NULL;
                        return 0;
                }
                if (!s || quantity_canonical(s, canon, sizeof(canon), &why) < 0) {
                        snprintf(err, errlen, "%s: '%s' is not a Kubernetes quantity: %s", path, s ? s : "(not a scalar)",
                                 why ? why : "not a scalar");
                        return -EINVAL;
                }
                *(const char **)dst = s;
                return 0;
        case K_STRINGS: {
                struct strv *sv = (struct strv *)dst;
                struct fy_node *it;
                void *iter = NULL;

                if (!yaml_is_seq(v))
                        goto type;
                while ((it = fy_node_sequence_iterate(v, &iter))) {
                        const char *sel = yaml_str(it);
                        if (!sel) {
                                snprintf(err, errlen, "%s: each item must be a string", path);
                                return -EINVAL;
                        }
                        if (strv_push(sv, sel) < 0)
                                return -ENOMEM;
                }
                return 0;
        }
        case K_MAP:
                return 0;
        }
type:
        snprintf(err, errlen, "%s: bad value '%s' (want %s)", path, s ? s : "(not a scalar)",
                 k->type == K_BOOL ? "true or false" : k->type == K_STRING ? "a string" : "a number");
        return -EINVAL;
}

static int load_map(struct inject_config *c, struct fy_node *map, const char *prefix, char *err, size_t errlen)
{
        struct fy_node_pair *p;
        void *iter = NULL;

        if (!yaml_is_map(map)) {
                snprintf(err, errlen, "%s: want a mapping", *prefix ? prefix : "the config");
                return -EINVAL;
        }
        while ((p = fy_node_mapping_iterate(map, &iter))) {
                const char *name = yaml_str(fy_node_pair_key(p));
                struct fy_node *v = fy_node_pair_value(p);
                const struct key *k = NULL;
                char path[256];
                int r;

                snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name ? name : "?");
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        if (strcmp(keys[i].path, path) == 0)
                                k = &keys[i];
                if (!k) {
                        snprintf(err, errlen, "unknown key %s", path);
                        return -EINVAL;
                }
                r = k->type == K_MAP ? load_map(c, v, path, err, errlen) : load_value(c, k, v, path, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether k sits directly under prefix ("" for the top of the file). */
static bool key_is_child(const struct key *k, const char *prefix)
{
        size_t n = strlen(prefix);

        if (n == 0)
                return !strchr(k->path, '.');
        return strncmp(k->path, prefix, n) == 0 && k->path[n] == '.' && !strchr(k->path + n + 1, '.');
}

static void write_map(const struct inject_config *c, const char *prefix, int indent, struct strbuf *out)
{
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const struct key *k = &keys[i];
                const char *src = (const char *)c + k->off;
                const char *name = k->path + (*prefix ? strlen(prefix) + 1 : 0);
                const struct strv *sv = (const struct strv *)src;
                struct strbuf sub = STRBUF_NULL;

                if (!key_is_child(k, prefix) || (k->type == K_STRING && !*(const char *const *)src))
                        continue;
                strbuf_printf(out, "%*s%s:", indent, "", name);
                switch (k->type) {
                case K_STRING:
                        strbuf_puts(out, " ");
                        yaml_flow_str(out, *(const char *const *)src);
                        break;
                case K_QUANTITY:
                        strbuf_puts(out, " ");
                        if (*(const char *const *)src)
                                yaml_flow_str(out, *(const char *const *)src);
                        else
                                strbuf_puts(out, "null");
                        break;
                case K_BOOL:
                        strbuf_puts(out, *(const bool *)src ? " true" : " false");
                        break;
                case K_UINT:
                case K_PORT:
                        strbuf_printf(out, " %u", *(const unsigned *)src);
                        break;
                case K_STRINGS:
                        strbuf_puts(out, " [");
                        for (size_t j = 0; j < sv->n; j++) {
                                strbuf_puts(out, j ? ", " : "");
                                yaml_flow_str(out, sv->v[j]);
                        }
                        strbuf_puts(out, "]");
                        break;
                case K_MAP:
                        write_map(c, k->path, indent + 2, &sub);
                        if (sub.error)
                                out->error = out->error ? out->error : sub.error;
                        if (sub.len) {
                                strbuf_puts(out, "\n");
                                strbuf_append(out, sub.s, sub.len - 1);      /* its last newline is ours */
                        } else {
                                strbuf_puts(out, " {}");
                        }
                        strbuf_deinit(&sub);
                        break;
                }
                strbuf_puts(out, "\n");
        }
}

int inject_config_write(const struct inject_config *c, struct strbuf *out)
{
        write_map(c, "", 0, out);
        return out->error;
}

/* Whether text is blank lines and comments only: libfyaml finds no document there, and such
 * a file (an empty ConfigMap key, a commented-out config) means the defaults. A NUL byte or
 * text that is not UTF-8 is left for the parser to refuse. */
static bool only_comments(const char *text, size_t len)
{
        if (memchr(text, '\0', len) || utf8_invalid_at(text, len) < len)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (text[i] == '#')
                        while (i < len && text[i] != '\n')
                                i++;
                else if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
                        return false;
        }
        return true;
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

/* Whether text, which parses, holds a second document after the first that is not empty
 * (a trailing "---" is harmless), or broken YAML after it: libfyaml's document builder reads
 * the first and ignores the rest, which would drop settings without a word. */
static bool second_document(const char *text, size_t len)
{
        struct fy_diag_cfg dcfg;
        struct fy_diag *diag;
        struct fy_parser *fyp = NULL;
        struct fy_document *d;
        int n = 0;

        fy_diag_cfg_default(&dcfg);
        dcfg.fp = NULL;
        dcfg.output_fn = diag_discard;
        diag = fy_diag_create(&dcfg);
        if (diag)
                fyp = fy_parser_create(&(struct fy_parse_cfg){ .flags = YAML_PARSE_FLAGS, .diag = diag });
        if (fyp && fy_parser_set_string(fyp, text, len) == 0) {
                while (n < 2 && (d = fy_parse_load_document(fyp))) {
                        if (n == 0 || !yaml_is_null(fy_document_root(d)))
                                n++;
                        fy_parse_document_destroy(fyp, d);
                }
                if (fy_parser_get_stream_error(fyp))
                        n = 2;
        }
        if (fyp)
                fy_parser_destroy(fyp);
        if (diag)
                fy_diag_unref(diag);
        return n > 1;
}

/* Parses text (len bytes, owned by c from here on, also on failure) into c; see settings.h. */
static int config_parse(struct inject_config *c, const char *name, char *text, size_t len, char *err, size_t errlen)
{
        struct strbuf why = STRBUF_NULL;
        char msg[512];
        int r;

        c->text = text;
        if (only_comments(text, len))
                return 0;
        c->doc = yaml_parse_quiet(text, len, &why);
        if (!c->doc) {
                snprintf(err, errlen, "%s: not valid YAML: %s", name, why.error ? "out of memory" : strbuf_str(&why));
                strbuf_deinit(&why);
                return -EINVAL;
        }
        strbuf_deinit(&why);
        if (second_document(text, len)) {
                snprintf(err, errlen, "%s: more after the first YAML document: the config is one mapping", name);
                return -EINVAL;
        }
        if (!fy_document_root(c->doc))
                return 0;
        r = load_map(c, fy_document_root(c->doc), "", msg, sizeof(msg));
        if (r < 0)
                snprintf(err, errlen, "%s: %s", name, msg);
        if (r == 0 && strcmp(c->policy, "enabled") != 0 && strcmp(c->policy, "disabled") != 0) {
                snprintf(err, errlen, "%s: policy: '%s' (want enabled or disabled)", name, c->policy);
                r = -EINVAL;
        }
        return r;
}

int inject_config_parse(struct inject_config *c, const char *name, const char *text, size_t len, char *err,
                        size_t errlen)
{
        char *copy = malloc(len + 1);

        if (!copy) {
                snprintf(err, errlen, "%s: out of memory", name);
                return -ENOMEM;
        }
        if (len)
                memcpy(copy, text, len);
        copy[len] = '\0';
        return config_parse(c, name, copy, len, err, errlen);
}

int inject_config_load(struct inject_config *c, const char *path, char *err, size_t errlen)
{
        char *text, why[128];
        size_t len;
        int r = readfile_path(path, INJECT_CONFIG_MAX, &text, &len, NULL);

        if (r < 0) {
                snprintf(err, errlen, "reading %s: %s", path, readfile_strerror(r, INJECT_CONFIG_MAX, why, sizeof(why)));
                return r;
        }
        return config_parse(c, path, text, len, err, errlen);
}

int inject_config_env(struct inject_config *c, char **envp, char *err, size_t errlen)
{
        static const char name[] = "ENABLE_NATIVE_SIDECARS=";

        for (char **e = envp; e && *e; e++) {
                if (strncmp(*e, name, sizeof(name) - 1) != 0)
                        continue;
                /* Istio registers it with pkg/env's RegisterBoolVar, which reads it with
                 * strconv.ParseBool. */
                if (go_value_bool(*e + sizeof(name) - 1, &c->native_sidecars) < 0) {
                        snprintf(err, errlen, "ENABLE_NATIVE_SIDECARS: '%s' (want true or false, 1 or 0, t or f)",
                                 *e + sizeof(name) - 1);
                        return -EINVAL;
                }
        }
        return 0;
}
