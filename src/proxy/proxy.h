/*
 * The proxy process: its settings, the shared metrics, the workers, readiness and drain.
 * The health, metrics and admin ports (proxy/admin.c), the application probes, the signals
 * and the drain timer live on the admin's own thread and loop, so that none of them holds up a
 * worker. Everything the process needs is in this struct, nothing in file-scope statics, so
 * two proxies in one process would share nothing.
 */
#pragma once

#include "proxy/app_probe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "proxy/settings.h"
#include "proxy/worker.h"

struct admin;
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

        /* The admin thread ("pf-admin") and what runs on its loop; see proxy/run.c. */
        struct loop *admin_loop;
        struct admin *admin;
        pthread_t admin_thread;
        bool admin_running;             /* admin_thread was started and is not joined yet */
        bool admin_own_fds;             /* the admin thread has an fd table of its own (run.c) */
        int signal_fd;
        struct loop_watch signal_watch;
        struct loop_timer drain_timer;
        uint64_t drain_started_ms;
        unsigned drain_told;            /* workers told to close inbound so far */
        atomic_int exit_code;           /* what proxy_run() returns, set by proxy_quit() */
};

/* True when dst is one of this proxy's listeners (a loop). */
bool proxy_is_self(const struct proxy *p, const struct sockaddr_storage *dst);
