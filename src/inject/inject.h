/*
 * The injection of one workload: what `pilotfish inject` does to each document and what the
 * webhook will do to each pod. The documents stay libfyaml trees from input to output, and
 * the injector edits only what it owns (its containers, volumes it lists, the annotations and
 * labels it writes), so fields pilotfish does not model pass through as they were.
 */
#pragma once

#include <stdbool.h>

struct fy_document;
struct fy_node;
struct inject_config;
struct strbuf;

/* One pod to inject: the pod itself, or the pod template of a workload. */
struct inject_target {
        struct fy_document *doc;
        struct fy_node *meta, *spec;    /* the pod's metadata and spec (mappings) */
        const char *kind, *name, *api_version;  /* the object that holds it, for names and owner */
        const char *namespace;          /* the pod's namespace ("default" when none is given) */
};

enum inject_outcome {
        INJECT_OUTCOME_INJECTED = 0,
        INJECT_OUTCOME_SKIPPED,         /* msg says why, for the user */
        INJECT_OUTCOME_FAILED,          /* msg has the error; nothing was changed */
};

/*
 * Injects t, or says why not in msg. Whatever the outcome, what the user should know about
 * the pod (an inject switch that is neither "true" nor "false") is appended to warnings, one
 * line each, when it is not NULL: this is library code, the caller shows them.
 */
enum inject_outcome inject_pod(const struct inject_config *c, const struct inject_target *t, struct strbuf *msg,
                               struct strbuf *warnings);

/*
 * Injects one Pod object (the webhook's request.object), naming its workload after its
 * controller as SEMANTICS 12 says. The pod's metadata.namespace must be set already.
 * msg and warnings as for inject_pod.
 */
enum inject_outcome inject_pod_object(const struct inject_config *c, struct fy_document *d, struct fy_node *pod,
                                      struct strbuf *msg, struct strbuf *warnings);

/*
 * Injects every pod template found in the document (Pod, Deployment, ReplicaSet,
 * StatefulSet, DaemonSet, Job, CronJob, ReplicationController, any kind with a pod template
 * at spec.template, and the items of a List). Messages for skipped workloads, and warnings
 * about a workload ("<Kind> \"ns/name\": ..."), are appended to notes, one line each; errors
 * to err. Returns the number of workloads that failed.
 */
int inject_document(const struct inject_config *c, struct fy_document *d, struct strbuf *notes, struct strbuf *err);
