/*
 * Settings of `pilotfish proxy`: the flags Istio's injector passes to the proxy container
 * ("proxy sidecar --domain D --proxyLogLevel=L --proxyComponentLogLevel=C
 * --log_output_level=O"), accepted as they are, and pilotfish's own, each also read from an
 * environment variable (PILOTFISH_<NAME>), flag over variable over default.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum proxy_access_log {
        PROXY_ACCESS_LOG_OFF = 0,
        PROXY_ACCESS_LOG_TEXT,
        PROXY_ACCESS_LOG_JSON,
};

struct proxy_settings {
        unsigned outbound_port;         /* 15001 */
        unsigned inbound_port;          /* 15006 */
        unsigned health_port;           /* 15021 */
        unsigned prometheus_port;       /* 15090 */
        unsigned status_port;           /* 15020 */
        unsigned admin_port;            /* 15000, 127.0.0.1 only */
        unsigned workers;               /* 0: one per CPU the process may use */
        uint64_t connect_timeout_ms;
        uint64_t idle_timeout_ms;       /* 0: none */
        uint64_t drain_ms;
        unsigned max_connections;
        unsigned proxy_uid, proxy_gid;
        bool allow_any_uid;             /* run outside a pod: skip the UID/GID check */
        bool tproxy;                    /* inbound interception mode TPROXY */
        enum proxy_access_log access_log;
        char log_level[32];
        /* Istio's, accepted: */
        char domain[256];
        char proxy_log_level[32];
        char proxy_component_log_level[256];
        bool help;
};

/* Parses env (envp style) then argv (argv[0] is the subcommand). Returns 0, 1 for --help, or
 * -EINVAL with every bad value named in err. */
int proxy_settings_parse(struct proxy_settings *s, int argc, char *const *argv, char *const *env, char *err,
                         size_t errlen);
void proxy_settings_usage(FILE *f);
