/*
 * Finding the pods in a document: the object itself for a Pod, spec.jobTemplate.spec.template
 * for a CronJob, spec.template for every other kind that has one (Deployment, ReplicaSet,
 * StatefulSet, DaemonSet, Job, ReplicationController, OpenShift's DeploymentConfig, custom
 * kinds), and the items of a List, recursively. Anything else passes through untouched.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/settings.h"
#include "inject/inject.h"
#include "inject/yaml.h"

#define LIST_DEPTH_MAX 8

static int inject_object(const struct inject_config *c, struct fy_document *d, struct fy_node *obj,
                         struct strbuf *notes, struct strbuf *err, int depth);

/* "name-1234567890": a Job named by its CronJob and a schedule timestamp (8 to 10 digits). */
static size_t cronjob_prefix(const char *job)
{
        const char *dash = strrchr(job, '-');
        size_t digits = dash ? strlen(dash + 1) : 0;

        if (!dash || dash == job || digits < 8 || digits > 10 || strspn(dash + 1, "0123456789") != digits)
                return 0;
        return (size_t)(dash - job);
}

/*
 * A pod created by a controller (generateName and a controller owner reference) is named after
 * its workload, as Istio's deployment metadata does (SEMANTICS 12): a ReplicaSet named
 * <deployment>-<pod-template-hash> stands for its Deployment, a Job <cronjob>-<timestamp> for
 * its CronJob, and so on. The workload names the proxy's metrics and the canonical service.
 */
static void pod_owner(struct fy_node *pod, struct inject_target *t, char *buf, size_t len)
{
        struct fy_node *meta = yaml_get(pod, "metadata"), *it, *owner = NULL;
        struct fy_node *labels = yaml_get(meta, "labels");
        const char *kind, *name, *hash;
        void *iter = NULL;
        size_t n;

        if (!yaml_get_str(meta, "generateName"))
                return;
        while ((it = fy_node_sequence_iterate(yaml_get(meta, "ownerReferences"), &iter))) {
                const char *ctl = yaml_get_str(it, "controller");
                if (ctl && strcmp(ctl, "true") == 0) {
                        owner = it;
                        break;
                }
        }
        kind = yaml_get_str(owner, "kind");
        name = yaml_get_str(owner, "name");
        if (!kind || !name)
                return;
        snprintf(buf, len, "%s", name);
        t->name = buf;
        t->kind = kind;
        t->api_version = yaml_get_str(owner, "apiVersion");
        n = strlen(buf);
        if (strcmp(kind, "ReplicaSet") == 0 && (hash = yaml_get_str(labels, "pod-template-hash")) &&
            n > strlen(hash) + 1 && strcmp(buf + n - strlen(hash), hash) == 0 && buf[n - strlen(hash) - 1] == '-') {
                buf[n - strlen(hash) - 1] = '\0';
                t->kind = "Deployment";
                t->api_version = "apps/v1";
        } else if (strcmp(kind, "ReplicaSet") == 0 && (hash = yaml_get_str(labels, "rollouts-pod-template-hash")) &&
                   n > strlen(hash) + 1 && strcmp(buf + n - strlen(hash), hash) == 0) {
                buf[n - strlen(hash) - 1] = '\0';
                t->kind = "Rollout";
                t->api_version = "argoproj.io/v1alpha1";
        } else if (strcmp(kind, "ReplicationController") == 0 && (hash = yaml_get_str(labels, "deploymentconfig"))) {
                snprintf(buf, len, "%s", hash);
                t->kind = "DeploymentConfig";
                t->api_version = "apps.openshift.io/v1";
        } else if (strcmp(kind, "Job") == 0 && (n = cronjob_prefix(buf)) > 0) {
                buf[n] = '\0';
                t->kind = "CronJob";
                t->api_version = "batch/v1";
        }
}

/*
 * Fills t for the pod of obj (tmpl is obj itself for a Pod, else its pod template). Returns 0,
 * or -EINVAL with the reason in msg when there is no pod spec to inject.
 */
static int fill_target(struct fy_document *d, struct fy_node *obj, struct fy_node *tmpl, struct inject_target *t,
                       char *owner_name, size_t owner_len, struct strbuf *msg)
{
        struct fy_node *meta = yaml_get(obj, "metadata");

        *t = (struct inject_target){
                .doc = d,
                .kind = yaml_get_str(obj, "kind"),
                .api_version = yaml_get_str(obj, "apiVersion"),
                .name = yaml_get_str(meta, "name"),
        };
        t->meta = yaml_map_child(d, tmpl, "metadata");
        t->spec = yaml_get(tmpl, "spec");
        t->namespace = yaml_get_str(t->meta, "namespace");
        if (!t->namespace)
                t->namespace = yaml_get_str(meta, "namespace");
        if (!t->namespace)
                t->namespace = "default";
        if (!t->name)
                t->name = yaml_get_str(t->meta, "name");
        if (!t->name)
                t->name = yaml_get_str(t->meta, "generateName");
        if (!t->meta || !yaml_is_map(t->spec)) {
                strbuf_printf(msg, "%s \"%s/%s\": the pod has no spec (a mapping with containers)",
                              t->kind ? t->kind : "object", t->namespace, t->name ? t->name : "");
                return -EINVAL;
        }
        if (obj == tmpl)
                pod_owner(obj, t, owner_name, owner_len);
        return 0;
}

static int inject_template(const struct inject_config *c, struct fy_document *d, struct fy_node *obj,
                           struct fy_node *tmpl, struct strbuf *notes, struct strbuf *err)
{
        struct strbuf msg = STRBUF_NULL, warnings = STRBUF_NULL;
        struct inject_target t;
        enum inject_outcome o;
        char owner_name[256];

        if (fill_target(d, obj, tmpl, &t, owner_name, sizeof(owner_name), &msg) < 0)
                o = INJECT_OUTCOME_FAILED;
        else
                o = inject_pod(c, &t, &msg, &warnings);
        /* Each warning names its workload: a stream holds many. */
        for (const char *w = strbuf_str(&warnings), *nl; *w; w = nl + 1) {
                nl = strchr(w, '\n');
                if (!nl)
                        break;
                strbuf_printf(notes, "%s \"%s/%s\": %.*s\n", t.kind ? t.kind : "Pod", t.namespace,
                              t.name ? t.name : "", (int)(nl - w), w);
        }
        strbuf_deinit(&warnings);
        if (o == INJECT_OUTCOME_SKIPPED)
                strbuf_printf(notes, "===> Skipping injection because %s\n", strbuf_str(&msg));
        else if (o == INJECT_OUTCOME_FAILED)
                strbuf_printf(err, "%s\n", strbuf_str(&msg));
        strbuf_deinit(&msg);
        return o == INJECT_OUTCOME_FAILED;
}

enum inject_outcome inject_pod_object(const struct inject_config *c, struct fy_document *d, struct fy_node *pod,
                                      struct strbuf *msg, struct strbuf *warnings)
{
        struct inject_target t;
        char owner_name[256];

        if (!yaml_is_map(pod)) {
                strbuf_puts(msg, "the object is not a Pod (not a JSON object)");
                return INJECT_OUTCOME_FAILED;
        }
        if (fill_target(d, pod, pod, &t, owner_name, sizeof(owner_name), msg) < 0)
                return INJECT_OUTCOME_FAILED;
        return inject_pod(c, &t, msg, warnings);
}

static int inject_object(const struct inject_config *c, struct fy_document *d, struct fy_node *obj,
                         struct strbuf *notes, struct strbuf *err, int depth)
{
        const char *kind = yaml_get_str(obj, "kind");
        struct fy_node *spec = yaml_get(obj, "spec"), *tmpl;

        if (!yaml_is_map(obj) || !kind)
                return 0;
        if (strcmp(kind, "List") == 0 || (strlen(kind) > 4 && strcmp(kind + strlen(kind) - 4, "List") == 0 &&
                                          yaml_is_seq(yaml_get(obj, "items")))) {
                struct fy_node *it;
                void *iter = NULL;
                int failed = 0;

                if (depth >= LIST_DEPTH_MAX) {
                        strbuf_printf(err, "%s nested more than %d deep\n", kind, LIST_DEPTH_MAX);
                        return 1;
                }
                while ((it = fy_node_sequence_iterate(yaml_get(obj, "items"), &iter)))
                        failed += inject_object(c, d, it, notes, err, depth + 1);
                return failed;
        }
        if (strcmp(kind, "Pod") == 0)
                return inject_template(c, d, obj, obj, notes, err);
        if (strcmp(kind, "CronJob") == 0)
                tmpl = yaml_get(yaml_get(yaml_get(spec, "jobTemplate"), "spec"), "template");
        else
                tmpl = yaml_get(spec, "template");
        if (!yaml_is_map(tmpl))
                return 0;       /* not a workload: passes through */
        return inject_template(c, d, obj, tmpl, notes, err);
}

int inject_document(const struct inject_config *c, struct fy_document *d, struct strbuf *notes, struct strbuf *err)
{
        return inject_object(c, d, fy_document_root(d), notes, err, 0);
}
