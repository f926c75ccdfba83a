/*
 * The proxy process: its settings, the shared metrics, the workers, readiness and drain.
 * Worker 0's loop also serves the health, metrics and admin ports (proxy/admin.c).
 */
#pragma once

#include "proxy/app_probe.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "proxy/settings.h"
#include "proxy/worker.h"

struct metrics;

struct proxy {
        struct proxy_settings settings;
        struct metrics *metrics;
        struct worker *workers;
        unsigned n_workers;
        atomic_uint active;             /* relays across all workers, for --max-connections */
        atomic_bool ready;              /* every listener is up */
        atomic_bool draining;
        atomic_int workers_running;
        /* This pod's addresses, to refuse a destination that is the proxy itself. */
        struct sockaddr_storage *local_addrs;
        size_t n_local_addrs;
        /* The application's probes (ISTIO_KUBE_APP_PROBERS) and the pod IP they default to. */
        struct app_probes app_probes;
        char pod_ip[64];
};

/* True when dst is one of this proxy's listeners (a loop). */
bool proxy_is_self(const struct proxy *p, const struct sockaddr_storage *dst);
