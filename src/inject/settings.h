/*
 * What the injector is configured with: the image, the policy, the layout (native sidecars,
 * holding the application), the proxy's identity, log levels, probes and resources, and the
 * capture defaults. Built-in defaults, overridden by a YAML file (--config, the file the
 * webhook reads from a ConfigMap) and by the environment variable ENABLE_NATIVE_SIDECARS,
 * Istio's name. Strings point into the config document, which lives as long as the config.
 * The file is read whole first (common/readfile.h), so a pipe or FIFO works as a file does.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/strv.h"
#include "inject/traffic.h"

struct fy_document;
struct strbuf;

/* The largest config file: 1 MiB, the most a ConfigMap (the webhook's source) can hold. */
#define INJECT_CONFIG_MAX (1u << 20)

struct inject_resources {
        const char *requests_cpu, *requests_memory, *limits_cpu, *limits_memory;  /* NULL: none */
};

struct inject_config {
        const char *image;                      /* both containers; pilotfish is one binary */
        const char *image_pull_policy;          /* NULL: not set */
        const char *policy;                     /* "enabled" or "disabled" */
        const char *mesh_namespace;             /* pods there are never injected */
        const char *revision;                   /* istio.io/rev and the status annotation */
        bool native_sidecars;
        bool hold_application;                  /* holdApplicationUntilProxyStarts */
        bool rewrite_probes;                    /* rewriteAppHTTPProbe */
        const char *proxy_log_level;            /* --proxyLogLevel */
        const char *proxy_component_log_level;  /* --proxyComponentLogLevel */
        const char *cluster_domain;             /* --domain $(POD_NAMESPACE).svc.<this> */
        const char *cluster_id;                 /* ISTIO_META_CLUSTER_ID */
        unsigned proxy_uid, proxy_gid;
        unsigned readiness_initial_delay, readiness_period, readiness_failure_threshold;
        struct inject_resources resources;
        struct inject_traffic_defaults traffic;
        struct strv never_inject, always_inject;        /* label selectors "k=v,k2" (equality only) */
        struct strv image_pull_secrets;         /* added to every injected pod (Istio's values) */
        struct fy_document *doc;                /* the --config file, owns the strings above */
        char *text;                             /* the file's bytes, which doc points into */
};

void inject_config_init(struct inject_config *c);
/*
 * Reads a YAML config file over the defaults, once per config: any file, pipe or FIFO of at
 * most INJECT_CONFIG_MAX bytes (empty, or only comments: the defaults). Unknown keys are an
 * error (a typo must not be silently ignored), so are duplicate keys and a second document
 * (only an empty one may follow the first). Returns 0, or a negative errno with what failed,
 * on which path and why in err ("reading PATH: why", "PATH: unknown key proxy.x", "PATH: not
 * valid YAML: why").
 */
int inject_config_load(struct inject_config *c, const char *path, char *err, size_t errlen);
/* The same for len bytes of text (copied; it may hold anything), named name in messages. */
int inject_config_parse(struct inject_config *c, const char *name, const char *text, size_t len, char *err,
                        size_t errlen);
/*
 * Appends every setting of c that the config file can set to out, as the YAML config file
 * that inject_config_parse() reads back to the same settings (block mappings, flow scalars
 * quoted where needed, a removed quantity as null, unset strings left out). Returns 0 or the
 * strbuf's error.
 */
int inject_config_write(const struct inject_config *c, struct strbuf *out);
/* Applies ENABLE_NATIVE_SIDECARS=true|false from envp. Returns 0 or -EINVAL with err. */
int inject_config_env(struct inject_config *c, char **envp, char *err, size_t errlen);
void inject_config_deinit(struct inject_config *c);
