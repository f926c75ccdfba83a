/*
 * The injection pipeline for one pod (SEMANTICS.md section 3, for the parts pilotfish
 * models): decide, validate every annotation first (a failure changes nothing), strip an
 * earlier injection so that a second run gives the same result, then add the init container
 * that runs `pilotfish iptables`, the proxy container, the annotations and labels, and put the
 * containers in Istio's order. New containers are written as YAML flow text and parsed into
 * the document by libfyaml, so every string keeps its quoting (an argument "15001" must not
 * come back as a number).
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/go_value.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "inject/settings.h"
#include "inject/inject.h"
#include "inject/policy.h"
#include "inject/probes.h"
#include "inject/prometheus.h"
#include "inject/proxy_config.h"
#include "inject/quantity.h"
#include "inject/traffic.h"
#include "inject/yaml.h"

#define STATUS_ANNOTATION "sidecar.istio.io/status"
#define OVERRIDES_ANNOTATION "proxy.istio.io/overrides"
#define PROXY_NAME "istio-proxy"
#define INIT_NAME "istio-init"
#define HEALTH_PORT 15021
#define PROMETHEUS_PORT 15090

static const char *annotation_get(void *ctx, const char *key)
{
        return yaml_get_str(ctx, key);
}

static const char *const resource_annotations[4] = {
        "sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyCPULimit", "sidecar.istio.io/proxyMemoryLimit",
};

#define USER_VOLUME_ANNOTATION "sidecar.istio.io/userVolume"
#define USER_MOUNT_ANNOTATION "sidecar.istio.io/userVolumeMount"

/* userVolume and userVolumeMount: a JSON (or YAML) object of objects, keyed by volume name. */
static bool objects_by_name(struct fy_document *d, const char *text)
{
        struct fy_node *o = yaml_build(d, text), *v;
        struct fy_node_pair *p;
        void *iter = NULL;
        bool ok = yaml_is_map(o);

        while (ok && (p = fy_node_mapping_iterate(o, &iter))) {
                const char *k = yaml_str(fy_node_pair_key(p));
                v = fy_node_pair_value(p);
                ok = k && *k && yaml_is_map(v);
        }
        if (o)
                fy_node_free(o);
        return ok;
}

/* Every check of SEMANTICS 4.4 pilotfish knows; all failures in one message. */
static int validate(struct fy_document *d, struct fy_node *ann, struct strbuf *msg)
{
        struct inject_annotations a = { .get = annotation_get, .ctx = ann };
        int bad = inject_validate_traffic(&a, msg);

        for (int i = 0; i < 2; i++) {
                const char *key = i ? USER_MOUNT_ANNOTATION : USER_VOLUME_ANNOTATION, *v = yaml_get_str(ann, key);

                if (v && !objects_by_name(d, v)) {
                        strbuf_printf(msg, "%sinvalid value '%s' for annotation '%s': want a JSON object of %s by name",
                                      bad ? "; " : "", v, key, i ? "volume mounts" : "volumes");
                        bad++;
                }
        }
        for (int i = 0; i < 4; i++) {
                const char *v = yaml_get_str(ann, resource_annotations[i]), *why = NULL;
                char canon[64];

                if (!v)
                        continue;
                if (quantity_canonical(v, canon, sizeof(canon), &why) < 0) {
                        strbuf_printf(msg, "%sinvalid value '%s' for annotation '%s': %s", bad ? "; " : "", v,
                                      resource_annotations[i], why ? why : "not a Kubernetes quantity");
                        bad++;
                }
        }
        return bad;
}

/* ---- re-injection ---- */


/* The proxy container an earlier injection added, if the pod says it was injected. */
static struct fy_node *injected_proxy(const struct inject_target *t, struct fy_node *ann)
{
        struct fy_node *proxy;

        if (!yaml_get_str(ann, STATUS_ANNOTATION))
                return NULL;
        proxy = yaml_seq_find_named(yaml_get(t->spec, "containers"), PROXY_NAME);
        return proxy ? proxy : yaml_seq_find_named(yaml_get(t->spec, "initContainers"), PROXY_NAME);
}

/* ISTIO_PROMETHEUS_ANNOTATIONS as an earlier injection saved it (the user's own settings). */
static const char *previous_prometheus_env(const struct inject_target *t, struct fy_node *ann)
{
        struct fy_node *env = yaml_seq_find_named(yaml_get(injected_proxy(t, ann), "env"), "ISTIO_PROMETHEUS_ANNOTATIONS");

        return yaml_get_str(env, "value");
}

/* ISTIO_KUBE_APP_PROBERS as an earlier injection left it: the probes it already rewrote. */
static const char *previous_probers_env(const struct inject_target *t, struct fy_node *ann)
{
        struct fy_node *env = yaml_seq_find_named(yaml_get(injected_proxy(t, ann), "env"), "ISTIO_KUBE_APP_PROBERS");

        return yaml_get_str(env, "value");
}

/* sidecar.istio.io/rewriteAppHTTPProbers (Go's boolean syntax), else the config's. */
static bool rewrite_probes_wanted(const struct inject_config *c, struct fy_node *ann)
{
        bool b;

        return go_value_bool(yaml_get_str(ann, "sidecar.istio.io/rewriteAppHTTPProbers"), &b) == 0 ? b
                                                                                                       : c->rewrite_probes;
}

/*
 * The user's own istio-proxy and istio-init containers are recorded, on the first injection,
 * in proxy.istio.io/overrides (as Istio does), because the injected containers replace them
 * and a later run could not tell the user's fields from pilotfish's. Recorded as YAML rather
 * than Istio's JSON, so that restoring them keeps each scalar's quoting and a second injection
 * is byte for byte the first; Istio's JSON reads back just as well.
 */
static void record_overrides(const struct inject_target *t, struct fy_node *ann)
{
        struct fy_node *up = yaml_seq_find_named(yaml_get(t->spec, "containers"), PROXY_NAME);
        struct fy_node *ui = yaml_seq_find_named(yaml_get(t->spec, "initContainers"), INIT_NAME);
        struct fy_node *rec, *seq;
        char *text;

        if (!up)
                up = yaml_seq_find_named(yaml_get(t->spec, "initContainers"), PROXY_NAME);
        if (!up && !ui)
                return;
        rec = fy_node_create_mapping(t->doc);
        if (!rec)
                return;
        if (up && (seq = yaml_seq_child(t->doc, rec, "containers")))
                fy_node_sequence_append(seq, fy_node_copy(t->doc, up));
        if (ui && (seq = yaml_seq_child(t->doc, rec, "initContainers")))
                fy_node_sequence_append(seq, fy_node_copy(t->doc, ui));
        /* Block YAML, which libfyaml quotes safely whatever the keys hold (its one-line flow
         * form does not quote flow indicators in plain scalars). */
        text = fy_emit_node_to_string(rec, FYECF_MODE_BLOCK | FYECF_INDENT_2 | FYECF_WIDTH_INF);
        if (text)
                yaml_set_str(t->doc, ann, OVERRIDES_ANNOTATION, text);
        free(text);
        fy_node_free(rec);
}

static void remove_named(struct fy_node *seq, struct fy_node *names)
{
        struct fy_node *it;
        void *iter = NULL;

        if (!yaml_is_seq(names))
                return;
        while ((it = fy_node_sequence_iterate(names, &iter))) {
                const char *name = yaml_str(it);
                struct fy_node *victim = name ? yaml_seq_find_named(seq, name) : NULL;
                if (victim)
                        fy_node_free(fy_node_sequence_remove(seq, victim));
        }
}

/* Appends copies of the items of from (a sequence of the overrides annotation) to spec[key]. */
static void restore_items(const struct inject_target *t, struct fy_node *from, const char *key)
{
        struct fy_node *it, *seq;
        void *iter = NULL;

        if (!yaml_is_seq(from) || !(seq = yaml_seq_child(t->doc, t->spec, key)))
                return;
        while ((it = fy_node_sequence_iterate(from, &iter)))
                fy_node_sequence_append(seq, fy_node_copy(t->doc, it));
}

/*
 * An injected pod carries the status annotation naming what was added: remove exactly that,
 * and put back the user's own istio-proxy/istio-init from the overrides annotation, so the
 * render below starts from the pod as the user wrote it (SEMANTICS 2.3, 10). A status that does
 * not parse is ignored, as Istio does.
 */
static void strip_injected(const struct inject_target *t, struct fy_node *ann)
{
        const char *status = yaml_get_str(ann, STATUS_ANNOTATION), *ov;
        struct fy_node *st = status ? yaml_build(t->doc, status) : NULL;

        if (yaml_is_map(st)) {
                remove_named(yaml_get(t->spec, "containers"), yaml_get(st, "containers"));
                remove_named(yaml_get(t->spec, "initContainers"), yaml_get(st, "initContainers"));
                remove_named(yaml_get(t->spec, "volumes"), yaml_get(st, "volumes"));
                remove_named(yaml_get(t->spec, "imagePullSecrets"), yaml_get(st, "imagePullSecrets"));
                yaml_remove(t->doc, ann, STATUS_ANNOTATION);
                if ((ov = yaml_get_str(ann, OVERRIDES_ANNOTATION))) {
                        struct fy_node *o = yaml_build(t->doc, ov);
                        if (yaml_is_map(o)) {
                                restore_items(t, yaml_get(o, "containers"), "containers");
                                restore_items(t, yaml_get(o, "initContainers"), "initContainers");
                        }
                        if (o)
                                fy_node_free(o);
                }
        }
        if (st)
                fy_node_free(st);
        /* Whatever istio-proxy/istio-init is still there now is the user's (never injected, or
         * not listed in the status): record it, so the next run can put it back. */
        record_overrides(t, ann);
}

/* ---- what the pod asks for ---- */

/* An integer field of a port as Go's encoding/json writes an int32: digits, no quotes. */
static bool port_int(struct fy_node *port, const char *key, const char **ret)
{
        const char *v = yaml_get_str(port, key);

        if (!v || !*v || strspn(v + (*v == '-'), "0123456789") != strlen(v + (*v == '-')) || !v[*v == '-'])
                return false;
        *ret = v;
        return true;
}

/*
 * One container port as Istio's template writes it with structToJSON: corev1.ContainerPort
 * through encoding/json, so its fields in the struct's order (name, hostPort, containerPort,
 * protocol, hostIP), the omitempty ones left out when empty or 0.
 */
static void pod_port_json(struct strbuf *b, struct fy_node *port)
{
        const char *name = yaml_get_str(port, "name"), *proto = yaml_get_str(port, "protocol");
        const char *ip = yaml_get_str(port, "hostIP"), *host = NULL, *cport = NULL;
        bool comma = false;

        strbuf_puts(b, "{");
        if (name && *name) {
                strbuf_puts(b, "\"name\":");
                json_str(b, name);
                comma = true;
        }
        if (port_int(port, "hostPort", &host) && strcmp(host, "0") != 0) {
                strbuf_printf(b, "%s\"hostPort\":%s", comma ? "," : "", host);
                comma = true;
        }
        strbuf_printf(b, "%s\"containerPort\":%s", comma ? "," : "", port_int(port, "containerPort", &cport) ? cport : "0");
        if (proto && *proto) {
                strbuf_puts(b, ",\"protocol\":");
                json_str(b, proto);
        }
        if (ip && *ip) {
                strbuf_puts(b, ",\"hostIP\":");
                json_str(b, ip);
        }
        strbuf_puts(b, "}");
}

struct plan {
        const char *mode;               /* REDIRECT, TPROXY, NONE */
        const char *status_port;        /* "15020"; "0" or "" = none */
        bool native, hold;
        const char *image;
        char workload[256], owner[512], canonical_name[64], canonical_rev[256];
        struct strbuf app_containers;   /* "a,b" */
        struct strbuf pod_ports;        /* ISTIO_META_POD_PORTS */
        struct prometheus_plan prom;
        struct proxy_config pc;         /* proxy.istio.io/config */
        struct strv volumes;            /* the user volumes added (sidecar.istio.io/userVolume) */
        char *probers;                  /* ISTIO_KUBE_APP_PROBERS, or NULL */
        char uid[24];                   /* -u: the proxy UID, or a user istio-proxy's runAsUser */
        bool uid_from_user;
        struct inject_resources res;
        char res_buf[4][64];
};

static const char *plural(const char *kind, char *buf, size_t len)
{
        size_t n = 0;

        for (; kind[n] && n + 2 < len; n++)
                buf[n] = (char)(kind[n] >= 'A' && kind[n] <= 'Z' ? kind[n] - 'A' + 'a' : kind[n]);
        buf[n++] = 's';
        buf[n] = '\0';
        return buf;
}

/* service.istio.io/canonical-name: at most 63 characters, no leading or trailing -_. */
static void canonical_name(const char *src, char *buf, size_t len)
{
        size_t n = strlen(src), start = 0;

        if (n > 63)
                n = 63;
        while (n > 0 && strchr("-_.", src[n - 1]))
                n--;
        while (start < n && strchr("-_.", src[start]))
                start++;
        snprintf(buf, len, "%.*s", (int)(n - start), src + start);
}

static int plan_resources(const struct inject_config *c, struct fy_node *ann, struct plan *p)
{
        const char *v[4];
        bool any = false;

        for (int i = 0; i < 4; i++) {
                v[i] = yaml_get_str(ann, resource_annotations[i]);
                any |= v[i] != NULL;
        }
        /* Any of the four annotations replaces the defaults completely (SEMANTICS 5). */
        if (!any) {
                v[0] = c->resources.requests_cpu;
                v[1] = c->resources.requests_memory;
                v[2] = c->resources.limits_cpu;
                v[3] = c->resources.limits_memory;
        }
        for (int i = 0; i < 4; i++) {
                const char *why;
                const char **dst[4] = { &p->res.requests_cpu, &p->res.requests_memory, &p->res.limits_cpu,
                                        &p->res.limits_memory };

                *dst[i] = NULL;
                if (!v[i])
                        continue;
                if (quantity_canonical(v[i], p->res_buf[i], sizeof(p->res_buf[i]), &why) < 0)
                        return -EINVAL;
                *dst[i] = p->res_buf[i];
        }
        return 0;
}

/* ---- building the containers ---- */

static void flow_kv(struct strbuf *b, const char *key, const char *value)
{
        strbuf_printf(b, "%s: ", key);
        yaml_flow_str(b, value);
}

/* "NAME: {cpu: C, memory: M}" with what is set; nothing when neither is. */
static void resource_pair(struct strbuf *b, const char *name, const char *cpu, const char *memory, bool after)
{
        if (!cpu && !memory)
                return;
        strbuf_printf(b, "%s%s: {", after ? ", " : "", name);
        if (cpu)
                flow_kv(b, "cpu", cpu);
        if (memory) {
                strbuf_puts(b, cpu ? ", " : "");
                flow_kv(b, "memory", memory);
        }
        strbuf_puts(b, "}");
}

static void resources_text(struct strbuf *b, const struct inject_resources *r)
{
        strbuf_puts(b, "resources: {");
        resource_pair(b, "requests", r->requests_cpu, r->requests_memory, false);
        resource_pair(b, "limits", r->limits_cpu, r->limits_memory, r->requests_cpu || r->requests_memory);
        strbuf_puts(b, "}");
}

static void common_text(struct strbuf *b, const struct inject_config *c, const struct plan *p)
{
        flow_kv(b, "image", p->image);
        if (c->image_pull_policy) {
                strbuf_puts(b, ", ");
                flow_kv(b, "imagePullPolicy", c->image_pull_policy);
        }
        strbuf_puts(b, ", ");
        resources_text(b, &p->res);
}

/* proxy.istio.io/config's proxyMetadata: environment of both containers, as in Istio. With
 * own_list, as a whole "env: [...]" (the init container has no other variables). */
static void metadata_env(struct strbuf *b, const struct plan *p, bool own_list)
{
        if (!p->pc.metadata.n)
                return;
        strbuf_puts(b, own_list ? ", env: [" : "");
        for (size_t i = 0; i < p->pc.metadata.n; i++) {
                const char *kv = p->pc.metadata.v[i], *eq = strchr(kv, '=');
                strbuf_printf(b, "%s{name: ", own_list && i == 0 ? "" : ", ");
                {
                        char name[256];
                        snprintf(name, sizeof(name), "%.*s", (int)(eq - kv), kv);
                        json_str(b, name);
                }
                strbuf_puts(b, ", value: ");
                json_str(b, eq + 1);
                strbuf_puts(b, "}");
        }
        strbuf_puts(b, own_list ? "]" : "");
}

static int init_container(const struct inject_config *c, struct fy_node *ann, const struct plan *p,
                          struct strbuf *b)
{
        struct inject_annotations a = { .get = annotation_get, .ctx = ann };
        struct inject_traffic_defaults d = c->traffic;
        struct strv args = STRV_NULL;
        int r;

        d.proxy_uid = p->uid;
        d.interception_mode = p->mode;
        r = inject_traffic_args(&a, &d, &args);
        if (r < 0)
                return r;
        /* The user's runAsUser wins even in TPROXY mode, where -u is otherwise 1337
         * (Istio rewrites the rendered argument after merging the user's container). */
        for (size_t i = 0; p->uid_from_user && i + 1 < args.n; i++) {
                if (strcmp(args.v[i], "-u") == 0) {
                        char *u = strdup(p->uid);
                        if (!u) {
                                strv_deinit(&args);
                                return -ENOMEM;
                        }
                        free(args.v[i + 1]);
                        args.v[i + 1] = u;
                        break;
                }
        }
        strbuf_puts(b, "{name: " INIT_NAME ", ");
        common_text(b, c, p);
        strbuf_puts(b, ", args: [istio-iptables");
        for (size_t i = 0; i < args.n; i++) {
                strbuf_puts(b, ", ");
                yaml_flow_str(b, args.v[i]);
        }
        strv_deinit(&args);
        /* Root, not privileged: NET_ADMIN and NET_RAW are what iptables-restore needs. */
        strbuf_puts(b, "]");
        metadata_env(b, p, true);
        strbuf_puts(b, ", securityContext: {allowPrivilegeEscalation: false, capabilities: {add: [NET_ADMIN, NET_RAW], "
                       "drop: [ALL]}, privileged: false, readOnlyRootFilesystem: false, runAsGroup: 0, "
                       "runAsNonRoot: false, runAsUser: 0}}");
        return 0;
}

static void env_field(struct strbuf *b, const char *name, const char *path)
{
        strbuf_printf(b, ", {name: %s, valueFrom: {fieldRef: {fieldPath: %s}}}", name, path);
}

static void env_value(struct strbuf *b, const char *name, const char *value)
{
        strbuf_printf(b, ", {name: %s, value: ", name);
        json_str(b, value);
        strbuf_puts(b, "}");
}

static void proxy_container(const struct inject_config *c, const struct inject_target *t, struct fy_node *ann,
                            const struct plan *p, struct strbuf *b)
{
        bool tproxy = strcmp(p->mode, "TPROXY") == 0;
        bool probes = p->status_port && *p->status_port && strcmp(p->status_port, "0") != 0;
        const char *v;
        unsigned delay = c->readiness_initial_delay, period = c->readiness_period, failures = c->readiness_failure_threshold;
        char domain[300];

        strbuf_puts(b, "{name: " PROXY_NAME ", ");
        common_text(b, c, p);
        snprintf(domain, sizeof(domain), "$(POD_NAMESPACE).svc.%s", c->cluster_domain);
        strbuf_puts(b, ", args: [proxy, sidecar, --domain, ");
        yaml_flow_str(b, domain);
        strbuf_puts(b, ", ");
        {
                char arg[160];
                const char *lvl = yaml_get_str(ann, "sidecar.istio.io/logLevel");
                const char *comp = yaml_get_str(ann, "sidecar.istio.io/componentLogLevel");
                const char *agent = yaml_get_str(ann, "sidecar.istio.io/agentLogLevel");

                snprintf(arg, sizeof(arg), "--proxyLogLevel=%s", lvl ? lvl : c->proxy_log_level);
                yaml_flow_str(b, arg);
                strbuf_puts(b, ", ");
                snprintf(arg, sizeof(arg), "--proxyComponentLogLevel=%s", comp ? comp : c->proxy_component_log_level);
                yaml_flow_str(b, arg);
                strbuf_puts(b, ", ");
                snprintf(arg, sizeof(arg), "--log_output_level=%s", agent ? agent : c->traffic.log_level);
                yaml_flow_str(b, arg);
        }
        strbuf_puts(b, "], env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}");
        env_field(b, "POD_NAMESPACE", "metadata.namespace");
        env_field(b, "INSTANCE_IP", "status.podIP");
        env_field(b, "SERVICE_ACCOUNT", "spec.serviceAccountName");
        /* The pod's ports, which tell the proxy the declared protocols of inbound ports. */
        env_value(b, "ISTIO_META_POD_PORTS", strbuf_str(&p->pod_ports));
        env_value(b, "ISTIO_META_APP_CONTAINERS", strbuf_str(&p->app_containers));
        env_value(b, "ISTIO_META_CLUSTER_ID", c->cluster_id);
        env_value(b, "ISTIO_META_INTERCEPTION_MODE", p->mode);
        env_value(b, "ISTIO_META_WORKLOAD_NAME", p->workload);
        env_value(b, "ISTIO_META_OWNER", p->owner);
        /* pilotfish's metrics label the pod's side with these (Istio's agent reads the labels). */
        env_value(b, "CANONICAL_SERVICE", p->canonical_name);
        env_value(b, "CANONICAL_REVISION", p->canonical_rev);
        if (tproxy) {
                env_value(b, "INBOUND_INTERCEPTION_MODE", "TPROXY");
                env_value(b, "PILOTFISH_PROXY_UID", "0");
        }
        if (p->prom.env)
                env_value(b, "ISTIO_PROMETHEUS_ANNOTATIONS", p->prom.env);
        if (p->probers)
                env_value(b, "ISTIO_KUBE_APP_PROBERS", p->probers);
        metadata_env(b, p, false);
        strbuf_printf(b, "], ports: [{containerPort: %d, name: http-envoy-prom, protocol: TCP}]", PROMETHEUS_PORT);
        if (probes) {
                if ((v = yaml_get_str(ann, "readiness.status.sidecar.istio.io/initialDelaySeconds")))
                        delay = (unsigned)strtoul(v, NULL, 10);
                if ((v = yaml_get_str(ann, "readiness.status.sidecar.istio.io/periodSeconds")))
                        period = (unsigned)strtoul(v, NULL, 10);
                if ((v = yaml_get_str(ann, "readiness.status.sidecar.istio.io/failureThreshold")))
                        failures = (unsigned)strtoul(v, NULL, 10);
                strbuf_printf(b, ", readinessProbe: {failureThreshold: %u, httpGet: {path: /healthz/ready, port: %d}, "
                                 "periodSeconds: %u, timeoutSeconds: 3", failures, HEALTH_PORT, period);
                if (delay)
                        strbuf_printf(b, ", initialDelaySeconds: %u", delay);
                strbuf_puts(b, "}");
                if (p->native)
                        strbuf_printf(b, ", startupProbe: {failureThreshold: 600, httpGet: {path: /healthz/ready, "
                                         "port: %d}, periodSeconds: 1, timeoutSeconds: 3}", HEALTH_PORT);
        }
        if (p->native)
                strbuf_puts(b, ", restartPolicy: Always");
        else if (p->hold)
                /* kubelet starts containers in order and waits for postStart: the application
                 * starts once the proxy is ready. */
                strbuf_puts(b, ", lifecycle: {postStart: {exec: {command: [pilotfish, wait]}}}");
        if (tproxy)
                /* TPROXY's transparent listener needs NET_ADMIN; GID 1337 keeps its traffic
                 * out of the capture, as in Istio. */
                strbuf_printf(b, ", securityContext: {allowPrivilegeEscalation: false, capabilities: {add: [NET_ADMIN], "
                                 "drop: [ALL]}, privileged: false, readOnlyRootFilesystem: true, runAsGroup: %u, "
                                 "runAsNonRoot: false, runAsUser: 0}}", c->proxy_gid);
        else
                strbuf_printf(b, ", securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, "
                                 "privileged: false, readOnlyRootFilesystem: true, runAsGroup: %u, runAsNonRoot: true, "
                                 "runAsUser: %u}}", c->proxy_gid, c->proxy_uid);
        (void)t;
}

/* ---- putting it together ---- */

static struct fy_node *build(const struct inject_target *t, struct strbuf *b)
{
        struct fy_node *n = b->error ? NULL : yaml_build(t->doc, strbuf_str(b));

        strbuf_deinit(b);
        return n;
}

/* Inserts n at index pos of seq (pos past the end appends). */
static int seq_insert_at(struct fy_node *seq, int pos, struct fy_node *n)
{
        struct fy_node *at = fy_node_sequence_get_by_index(seq, pos);

        if (!at)
                return fy_node_sequence_append(seq, n) == 0 ? 0 : -ENOMEM;
        return fy_node_sequence_insert_before(seq, at, n) == 0 ? 0 : -ENOMEM;
}

static void set_if_absent(const struct inject_target *t, struct fy_node *map, const char *key, const char *value)
{
        if (!yaml_get(map, key))
                yaml_set_str(t->doc, map, key, value);
}

/* ["a","b"], or null for none (Istio's encoding of an empty list). */
static void json_list(struct strbuf *b, const struct strv *sv)
{
        if (!sv->n) {
                strbuf_puts(b, "null");
                return;
        }
        strbuf_puts(b, "[");
        for (size_t i = 0; i < sv->n; i++) {
                strbuf_puts(b, i ? "," : "");
                json_str(b, sv->v[i]);
        }
        strbuf_puts(b, "]");
}

static void status_annotation(const struct inject_target *t, struct fy_node *ann, const struct plan *p,
                              const struct inject_config *c)
{
        struct strbuf b = STRBUF_NULL;
        bool init = strcmp(p->mode, "NONE") != 0;

        /* Istio's layout and key order; the lists name what this injection added. */
        strbuf_puts(&b, "{\"initContainers\":");
        if (p->native)
                strbuf_puts(&b, init ? "[\"" INIT_NAME "\",\"" PROXY_NAME "\"]" : "[\"" PROXY_NAME "\"]");
        else
                strbuf_puts(&b, init ? "[\"" INIT_NAME "\"]" : "null");
        strbuf_puts(&b, ",\"containers\":");
        strbuf_puts(&b, p->native ? "null" : "[\"" PROXY_NAME "\"]");
        strbuf_puts(&b, ",\"volumes\":");
        json_list(&b, &p->volumes);
        strbuf_puts(&b, ",\"imagePullSecrets\":");
        json_list(&b, &c->image_pull_secrets);
        strbuf_puts(&b, ",\"revision\":");
        json_str(&b, c->revision);
        strbuf_puts(&b, "}");
        /* Always last among the annotations: a status that did not parse (kept until here, as if
         * absent) would otherwise keep its place on this run and move on the next. */
        yaml_remove(t->doc, ann, STATUS_ANNOTATION);
        if (!b.error)
                yaml_set_str(t->doc, ann, STATUS_ANNOTATION, strbuf_str(&b));
        strbuf_deinit(&b);
}

static int plan_pod(const struct inject_config *c, const struct inject_target *t, struct fy_node *ann,
                    struct fy_node *labels, struct plan *p)
{
        const char *v, *img;
        char pl[64];
        struct fy_node *it;
        void *iter = NULL;

        p->mode = (v = yaml_get_str(ann, "sidecar.istio.io/interceptionMode")) ? v :
                  p->pc.interception_mode ? p->pc.interception_mode : c->traffic.interception_mode;
        p->status_port = (v = yaml_get_str(ann, "status.sidecar.istio.io/port")) ? v : c->traffic.status_port;
        p->native = c->native_sidecars;
        if ((v = yaml_get_str(ann, "sidecar.istio.io/nativeSidecar")) && (!strcmp(v, "true") || !strcmp(v, "false")))
                p->native = strcmp(v, "true") == 0;
        /* A pod annotation cannot turn off a global hold (Istio ORs the two). */
        p->hold = !p->native && (c->hold_application || p->pc.hold);
        img = yaml_get_str(ann, "sidecar.istio.io/proxyImage");
        p->image = img && strchr(img, '/') ? img : c->image;

        snprintf(p->workload, sizeof(p->workload), "%s", t->name ? t->name : "");
        if ((v = yaml_get_str(labels, "service.istio.io/workload-name")))
                snprintf(p->workload, sizeof(p->workload), "%s", v);
        snprintf(p->owner, sizeof(p->owner), "kubernetes://apis/%s/namespaces/%s/%s/%s",
                 t->api_version ? t->api_version : "v1", t->namespace, plural(t->kind ? t->kind : "Pod", pl, sizeof(pl)),
                 t->name ? t->name : "");
        v = yaml_get_str(labels, "service.istio.io/canonical-name");
        if (!v)
                v = yaml_get_str(labels, "app.kubernetes.io/name");
        if (!v)
                v = yaml_get_str(labels, "app");
        canonical_name(v ? v : p->workload, p->canonical_name, sizeof(p->canonical_name));
        v = yaml_get_str(labels, "service.istio.io/canonical-revision");
        if (!v)
                v = yaml_get_str(labels, "app.kubernetes.io/version");
        if (!v)
                v = yaml_get_str(labels, "version");
        snprintf(p->canonical_rev, sizeof(p->canonical_rev), "%s", v ? v : "latest");

        p->app_containers = (struct strbuf)STRBUF_NULL;
        p->pod_ports = (struct strbuf)STRBUF_NULL;
        /* Istio's template: "[", then each port on a line of its own, indented by four, every
         * one but the first led by a comma, then "]" on its own line. */
        strbuf_puts(&p->pod_ports, "[");
        while ((it = fy_node_sequence_iterate(yaml_get(t->spec, "containers"), &iter))) {
                const char *name = yaml_get_str(it, "name");
                struct fy_node *port;
                void *piter = NULL;

                if (!name || strcmp(name, PROXY_NAME) == 0)
                        continue;
                strbuf_printf(&p->app_containers, "%s%s", p->app_containers.len ? "," : "", name);
                while ((port = fy_node_sequence_iterate(yaml_get(it, "ports"), &piter))) {
                        if (!yaml_is_map(port))
                                continue;
                        strbuf_puts(&p->pod_ports, p->pod_ports.len > 1 ? "\n    ," : "\n    ");
                        pod_port_json(&p->pod_ports, port);
                }
        }
        strbuf_puts(&p->pod_ports, "\n]");
        if (!p->app_containers.len)
                strbuf_puts(&p->app_containers, "");
        return plan_resources(c, ann, p);
}

/*
 * Strategic merge, the part containers need: mappings merge key by key, lists of named items
 * (env, ports, volumeMounts) merge item by item by name, anything else is replaced by the
 * user's value.
 */
static void merge_into(const struct inject_target *t, struct fy_node *dst, struct fy_node *src);

static void merge_named_list(const struct inject_target *t, struct fy_node *dst, struct fy_node *src)
{
        struct fy_node *it;
        void *iter = NULL;

        while ((it = fy_node_sequence_iterate(src, &iter))) {
                const char *name = yaml_get_str(it, "name");
                struct fy_node *same = name ? yaml_seq_find_named(dst, name) : NULL;

                if (same)
                        merge_into(t, same, it);
                else
                        fy_node_sequence_append(dst, fy_node_copy(t->doc, it));
        }
}

static bool named_list(struct fy_node *n)
{
        struct fy_node *first = yaml_is_seq(n) ? fy_node_sequence_get_by_index(n, 0) : NULL;

        return first && yaml_get_str(first, "name");
}

static void merge_into(const struct inject_target *t, struct fy_node *dst, struct fy_node *src)
{
        struct fy_node_pair *pr;
        void *iter = NULL;

        while ((pr = fy_node_mapping_iterate(src, &iter))) {
                const char *k = yaml_str(fy_node_pair_key(pr));
                struct fy_node *v = fy_node_pair_value(pr), *mine = k ? yaml_get(dst, k) : NULL;

                if (!k)
                        continue;
                if (yaml_is_map(mine) && yaml_is_map(v))
                        merge_into(t, mine, v);
                else if (named_list(mine) && named_list(v))
                        merge_named_list(t, mine, v);
                else
                        yaml_set(t->doc, dst, k, fy_node_copy(t->doc, v));
        }
}

/*
 * A container the user already named istio-proxy or istio-init is merged over the injected
 * one, the user's fields winning (SEMANTICS 10); `image: auto` keeps the injected image.
 */
static struct fy_node *merge_user(const struct inject_target *t, struct fy_node *injected, struct fy_node *user)
{
        const char *image;

        if (!user)
                return injected;
        image = yaml_get_str(user, "image");
        if (image && strcmp(image, "auto") == 0)
                yaml_remove(t->doc, user, "image");
        merge_into(t, injected, user);
        fy_node_free(user);     /* taken out of the pod; its fields live on in copies */
        return injected;
}

/*
 * sidecar.istio.io/userVolume: volumes added to the pod (their names go in the status, so a
 * re-injection removes them first). Validated before.
 */
static int user_volumes(const struct inject_target *t, struct fy_node *ann, struct plan *p)
{
        const char *v = yaml_get_str(ann, USER_VOLUME_ANNOTATION);
        struct fy_node_pair *pr;
        void *iter = NULL;

        if (v) {
                struct fy_node *o = yaml_build(t->doc, v), *vols = yaml_seq_child(t->doc, t->spec, "volumes");

                while (o && vols && (pr = fy_node_mapping_iterate(o, &iter))) {
                        const char *name = yaml_str(fy_node_pair_key(pr));
                        struct fy_node *vol = fy_node_copy(t->doc, fy_node_pair_value(pr));

                        if (!vol || yaml_set_str(t->doc, vol, "name", name) < 0 || fy_node_sequence_append(vols, vol) != 0 ||
                            strv_push(&p->volumes, name) < 0) {
                                fy_node_free(o);
                                return -ENOMEM;
                        }
                }
                if (o)
                        fy_node_free(o);
        }
        return 0;
}

/* The config's imagePullSecrets go first in the pod's list, unless the pod names them already. */
static int pull_secrets(const struct inject_config *c, const struct inject_target *t)
{
        struct fy_node *list;
        int pos = 0;

        if (!c->image_pull_secrets.n)
                return 0;
        list = yaml_seq_child(t->doc, t->spec, "imagePullSecrets");
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < c->image_pull_secrets.n; i++) {
                struct strbuf b = STRBUF_NULL;
                struct fy_node *n;

                if (yaml_seq_find_named(list, c->image_pull_secrets.v[i]))
                        continue;
                strbuf_puts(&b, "{name: ");
                yaml_flow_str(&b, c->image_pull_secrets.v[i]);
                strbuf_puts(&b, "}");
                n = build(t, &b);
                if (!n || seq_insert_at(list, pos++, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* sidecar.istio.io/userVolumeMount: the proxy's mounts of those volumes. Validated before. */
static int user_mounts(const struct inject_target *t, struct fy_node *ann, struct fy_node *proxy)
{
        const char *m = yaml_get_str(ann, USER_MOUNT_ANNOTATION);
        struct fy_node *o, *mounts;
        struct fy_node_pair *pr;
        void *iter = NULL;
        int r = 0;

        if (!m)
                return 0;
        o = yaml_build(t->doc, m);
        mounts = yaml_seq_child(t->doc, proxy, "volumeMounts");
        while (o && mounts && r == 0 && (pr = fy_node_mapping_iterate(o, &iter))) {
                struct fy_node *mnt = fy_node_copy(t->doc, fy_node_pair_value(pr));

                if (!mnt || yaml_set_str(t->doc, mnt, "name", yaml_str(fy_node_pair_key(pr))) < 0 ||
                    fy_node_sequence_append(mounts, mnt) != 0)
                        r = -ENOMEM;
        }
        if (o)
                fy_node_free(o);
        return o && mounts ? r : -ENOMEM;
}

static struct fy_node *take_named(struct fy_node *seq, const char *name)
{
        struct fy_node *n = yaml_seq_find_named(seq, name);

        return n ? fy_node_sequence_remove(seq, n) : NULL;
}

enum inject_outcome inject_pod(const struct inject_config *c, const struct inject_target *t, struct strbuf *msg,
                               struct strbuf *warnings)
{
        struct fy_node *ann, *labels, *containers, *inits, *init = NULL, *proxy, *user_proxy, *user_init;
        struct strbuf b = STRBUF_NULL;
        struct plan p = { 0 };
        char *prev_probers = NULL;
        enum inject_decision d;
        int bad;

        d = inject_decide(c, t->meta, t->spec, t->namespace, warnings);
        if (d != INJECT_YES) {
                strbuf_printf(msg, "%s \"%s/%s\" %s", t->kind ? t->kind : "Pod", t->namespace, t->name ? t->name : "",
                              d == INJECT_SKIP_HOST_NETWORK ? "has host networking enabled" :
                              d == INJECT_SKIP_NAMESPACE ? "is in a namespace that is never injected" :
                              "has sidecar injection disabled");
                return INJECT_OUTCOME_SKIPPED;
        }
        /* An injected pod whose only container was the user's istio-proxy has none left in
         * containers (it moved to initContainers); its status annotation says so. */
        if (!yaml_is_seq(yaml_get(t->spec, "containers")) ||
            (fy_node_sequence_item_count(yaml_get(t->spec, "containers")) == 0 &&
             !yaml_get_str(yaml_get(t->meta, "annotations"), STATUS_ANNOTATION))) {
                strbuf_printf(msg, "%s \"%s/%s\": the pod has no containers (spec.containers must be a non-empty list)",
                              t->kind ? t->kind : "Pod", t->namespace, t->name ? t->name : "");
                return INJECT_OUTCOME_FAILED;
        }
        ann = yaml_get(t->meta, "annotations");
        bad = validate(t->doc, yaml_is_map(ann) ? ann : NULL, msg);
        /* ProxyConfig and the Prometheus scrape targets can be bad too: same message. */
        {
                struct strbuf perr = STRBUF_NULL;
                if (proxy_config_parse(yaml_get_str(ann, "proxy.istio.io/config"), &p.pc, &perr) < 0) {
                        strbuf_printf(msg, "%s%s", bad ? "; " : "", strbuf_str(&perr));
                        bad++;
                }
                strbuf_deinit(&perr);
        }
        {
                struct strbuf perr = STRBUF_NULL;
                if (prometheus_plan(yaml_is_map(ann) ? ann : NULL, previous_prometheus_env(t, ann), &p.prom, &perr) < 0) {
                        strbuf_printf(msg, "%s%s", bad ? "; " : "", strbuf_str(&perr));
                        bad++;
                }
                strbuf_deinit(&perr);
        }
        if (bad) {
                struct strbuf full = STRBUF_NULL;
                prometheus_plan_free(&p.prom);
                proxy_config_free(&p.pc);
                strbuf_printf(&full, "%s \"%s/%s\": %s", t->kind ? t->kind : "Pod", t->namespace, t->name ? t->name : "",
                              strbuf_str(msg));
                strbuf_deinit(msg);
                *msg = full;
                return INJECT_OUTCOME_FAILED;
        }

        /* From here on the pod changes. */
        ann = yaml_map_child(t->doc, t->meta, "annotations");
        labels = yaml_map_child(t->doc, t->meta, "labels");
        containers = yaml_seq_child(t->doc, t->spec, "containers");
        if (!ann || !labels || !containers)
                goto oom;
        {
                /* Read before the strip below removes the proxy that holds it. */
                const char *pv = previous_probers_env(t, ann);
                prev_probers = pv ? strdup(pv) : NULL;
        }
        strip_injected(t, ann);
        if (plan_pod(c, t, ann, labels, &p) < 0)
                goto oom;
        if (rewrite_probes_wanted(c, ann) && strcmp(p.status_port, "0") != 0 && *p.status_port &&
            probes_rewrite(t->doc, t->spec, (unsigned)strtoul(p.status_port, NULL, 10), prev_probers, &p.probers) < 0)
                goto oom;

        if (user_volumes(t, ann, &p) < 0 || pull_secrets(c, t) < 0)
                goto oom;
        /* A user istio-proxy that runs as another UID moves the capture exemption with it. */
        snprintf(p.uid, sizeof(p.uid), "%u", c->proxy_uid);
        {
                struct fy_node *up = yaml_seq_find_named(containers, PROXY_NAME);
                const char *ru;

                if (!up)
                        up = yaml_seq_find_named(yaml_get(t->spec, "initContainers"), PROXY_NAME);
                ru = yaml_get_str(yaml_get(up, "securityContext"), "runAsUser");
                if (ru && strspn(ru, "0123456789") == strlen(ru) && strtoul(ru, NULL, 10) != 0) {
                        snprintf(p.uid, sizeof(p.uid), "%s", ru);
                        p.uid_from_user = true;
                }
        }
        if (strcmp(p.mode, "NONE") != 0) {
                if (init_container(c, ann, &p, &b) < 0)
                        goto oom;
                init = build(t, &b);
                if (!init)
                        goto oom;
        }
        proxy_container(c, t, ann, &p, &b);
        proxy = build(t, &b);
        if (!proxy || user_mounts(t, ann, proxy) < 0)
                goto oom;

        user_proxy = take_named(containers, PROXY_NAME);
        if (!user_proxy)
                user_proxy = take_named(yaml_get(t->spec, "initContainers"), PROXY_NAME);
        proxy = merge_user(t, proxy, user_proxy);
        if (strcmp(p.mode, "TPROXY") == 0) {
                /* TPROXY needs the proxy as root (GID 1337 keeps it out of the capture),
                 * whatever UID the user's container asked for. */
                struct fy_node *sc = yaml_map_child(t->doc, proxy, "securityContext");
                if (!sc || yaml_set(t->doc, sc, "runAsUser", yaml_build(t->doc, "0")) < 0)
                        goto oom;
        }
        user_init = take_named(yaml_get(t->spec, "initContainers"), INIT_NAME);
        if (init)
                init = merge_user(t, init, user_init);
        else if (user_init)
                fy_node_free(user_init);

        /* SEMANTICS 9.3: native: istio-init, istio-proxy, then the user's init containers;
         * classic: the user's init containers, then istio-init, and istio-proxy last among
         * the containers (first when the application waits for it). */
        if (p.native || init) {
                inits = yaml_seq_child(t->doc, t->spec, "initContainers");
                if (!inits)
                        goto oom;
                if (p.native) {
                        if (init && seq_insert_at(inits, 0, init) < 0)
                                goto oom;
                        if (seq_insert_at(inits, init ? 1 : 0, proxy) < 0)
                                goto oom;
                } else if (fy_node_sequence_append(inits, init) != 0) {
                        goto oom;
                }
        }
        if (!p.native && seq_insert_at(containers, p.hold ? 0 : 1 << 30, proxy) < 0)
                goto oom;

        /* Annotations and labels (SEMANTICS 4.2 "W" rows, 6, 11). */
        yaml_set_str(t->doc, ann, "istio.io/rev", c->revision);
        {
                struct fy_node *it;
                void *iter = NULL;
                while ((it = fy_node_sequence_iterate(containers, &iter))) {
                        const char *name = yaml_get_str(it, "name");
                        if (name && strcmp(name, PROXY_NAME) != 0) {
                                set_if_absent(t, ann, "kubectl.kubernetes.io/default-container", name);
                                set_if_absent(t, ann, "kubectl.kubernetes.io/default-logs-container", name);
                                break;
                        }
                }
        }
        prometheus_apply(t->doc, ann, &p.prom);
        status_annotation(t, ann, &p, c);
        set_if_absent(t, labels, "security.istio.io/tlsMode", "istio");
        set_if_absent(t, labels, "service.istio.io/canonical-name", p.canonical_name);
        set_if_absent(t, labels, "service.istio.io/canonical-revision", p.canonical_rev);

        strbuf_deinit(&p.app_containers);
        strbuf_deinit(&p.pod_ports);
        prometheus_plan_free(&p.prom);
        proxy_config_free(&p.pc);
        free(p.probers);
        strv_deinit(&p.volumes);
        free(prev_probers);
        return INJECT_OUTCOME_INJECTED;
oom:
        strbuf_deinit(&b);
        strbuf_deinit(&p.app_containers);
        strbuf_deinit(&p.pod_ports);
        prometheus_plan_free(&p.prom);
        proxy_config_free(&p.pc);
        free(p.probers);
        strv_deinit(&p.volumes);
        free(prev_probers);
        strbuf_printf(msg, "%s \"%s/%s\": out of memory while injecting", t->kind ? t->kind : "Pod", t->namespace,
                      t->name ? t->name : "");
        return INJECT_OUTCOME_FAILED;
}
