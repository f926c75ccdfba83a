/*
 * The proxy's life; see run.h. Worker 0 runs on the main thread, workers 1..N-1 on threads of
 * their own ("pf-worker-N"), and the admin on one more ("pf-admin"). The admin's loop serves
 * the health, metrics and admin endpoints and the application probes, reads the signalfd and
 * runs the drain timer, so that a scrape of 10,000 series (a few hundred milliseconds) or a
 * probe waiting on a slow application never stalls a relay. It reaches the workers only
 * through what is safe from another thread: loop_stop() to quit, loop_post() to close their
 * inbound listeners, the atomics in struct proxy, and each worker's relay lock for
 * /connections. Signals are blocked in every thread before any is created, so only the
 * signalfd sees them.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "proxy/admin.h"
#include "proxy/metrics.h"
#include "proxy/origdst.h"
#include "proxy/proxy.h"
#include "proxy/run.h"

#define DRAIN_POLL_MS 100

/* loop_stop() is safe from any thread and cannot fail; a worker whose loop was never created
 * (a start that failed half-way) is skipped. */
static void stop_workers(struct proxy *p)
{
        for (unsigned i = 0; p->workers && i < p->n_workers; i++)
                if (p->workers[i].loop)
                        loop_stop(p->workers[i].loop);
}

void proxy_quit(struct proxy *p, int code)
{
        atomic_store(&p->exit_code, code);
        stop_workers(p);
}

static void close_inbound(void *data)
{
        worker_close_inbound(data);
}

static void drain_cb(struct loop *l, struct loop_timer *t)
{
        struct proxy *p = container_of(t, struct proxy, drain_timer);
        unsigned active;
        int r;

        /* Each worker closes its own inbound listener, on its own thread; a worker the post
         * could not reach (no memory for it) is told again on the next round. */
        while (p->drain_told < p->n_workers &&
               loop_post(p->workers[p->drain_told].loop, close_inbound, &p->workers[p->drain_told]) == 0)
                p->drain_told++;
        active = atomic_load(&p->active);
        if (active == 0) {
                log_info("drain: no connection left; exiting");
                proxy_quit(p, 0);
                return;
        }
        if (loop_now_ms(l) - p->drain_started_ms >= p->settings.drain_ms) {
                log_info("drain: %u connections still open after %llu ms; exiting", active,
                         (unsigned long long)p->settings.drain_ms);
                proxy_quit(p, 0);
                return;
        }
        r = loop_timer_arm(l, t, DRAIN_POLL_MS, drain_cb);
        if (r < 0) {
                /* Without its timer the drain would never end. */
                log_error("drain: arming the %d ms poll: %s; exiting now with %u connections open", DRAIN_POLL_MS,
                          strerror(-r), active);
                proxy_quit(p, 1);
        }
}

void proxy_drain(struct proxy *p, const char *why)
{
        int r;

        if (atomic_exchange(&p->draining, true))
                return;
        log_info("drain started (%s): readiness is 503, inbound closed, outbound still served", why);
        p->drain_started_ms = loop_now_ms(p->admin_loop);
        r = loop_timer_arm(p->admin_loop, &p->drain_timer, 0, drain_cb);
        if (r < 0) {
                log_error("drain: arming its timer: %s; exiting now instead", strerror(-r));
                proxy_quit(p, 1);
        }
}

static void signal_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        struct proxy *p = container_of(w, struct proxy, signal_watch);
        struct signalfd_siginfo si;

        while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM)
                        proxy_drain(p, "SIGTERM");
                else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT)
                        proxy_quit(p, 0);
        }
}

void proxy_connections_json(struct proxy *p, uint64_t now_ms, struct strbuf *out)
{
        bool first = true;

        strbuf_puts(out, "{\"connections\":[");
        for (unsigned i = 0; i < p->n_workers; i++) {
                struct worker *w = &p->workers[i];

                pthread_mutex_lock(&w->lock);
                for (const struct relay *r = w->relays; r; r = r->next) {
                        char client[64], dst[64];

                        sockaddr_format(&r->client_addr, client, sizeof(client));
                        sockaddr_format(&r->orig_dst, dst, sizeof(dst));
                        /* Every string goes through the one escaper, whatever it holds today. */
                        strbuf_printf(out, "%s{\"id\":%llu,\"worker\":%u,\"direction\":", first ? "" : ",",
                                      (unsigned long long)r->id, w->index);
                        json_str(out, r->direction == RELAY_OUTBOUND ? "outbound" : "inbound");
                        strbuf_puts(out, ",\"client\":");
                        json_str(out, client);
                        strbuf_puts(out, ",\"original_dst\":");
                        json_str(out, dst);
                        strbuf_puts(out, ",\"state\":");
                        json_str(out, r->connecting ? "connecting" : "established");
                        strbuf_printf(out, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"age_ms\":%llu}",
                                      (unsigned long long)atomic_load_explicit(&r->flow[RELAY_FLOW_UP].bytes, memory_order_relaxed),
                                      (unsigned long long)atomic_load_explicit(&r->flow[RELAY_FLOW_DOWN].bytes, memory_order_relaxed),
                                      (unsigned long long)(now_ms > r->started_ms ? now_ms - r->started_ms : 0));
                        first = false;
                }
                pthread_mutex_unlock(&w->lock);
        }
        strbuf_puts(out, "]}\n");
}

static void *worker_thread(void *data)
{
        struct worker *w = data;
        int r = loop_run(w->loop);

        if (r < 0) {
                log_error("worker %u: event loop failed: %s; exiting", w->index, strerror(-r));
                proxy_quit(w->proxy, 1);
        }
        return NULL;
}

/*
 * The admin thread's own fd table. While a second thread shares the process's fd table, the
 * kernel takes a reference to the file in every syscall a worker makes on an fd (fdget() skips
 * it only for a table nobody shares): 2 % more CPU per relayed request with one worker
 * (bench/README.md, run 3). So the admin thread unshares the table as it starts, before any
 * worker runs: it keeps copies of what was open then, closes its copies of the workers'
 * listeners (a drain closes them in the workers' table, and a copy here would keep them
 * listening), and from then on opens and closes its own fds in its own table, where its
 * connections and probes live; it frees the admin itself before it ends, for that reason.
 * The main thread closes its copies of the admin's listeners and spare fds in return. The
 * loops' epoll and wake fds stay open in both, so each side still wakes the other's loop.
 * With several workers the workers share the table among themselves, as before.
 */
/* The admin's listeners and spare fds (proxy/fd_reserve.h) fit. */
#define _ADMIN_START_FDS 16

struct admin_start {
        struct proxy *p;
        sem_t done;             /* posted once the table is the admin's own (or stays shared) */
        int fds[_ADMIN_START_FDS];
        size_t n_fds;           /* the admin's fds, for the main thread to close its copies of */
        bool unshared;
};

static void *admin_thread(void *data)
{
        struct admin_start *st = data;
        struct proxy *p = st->p;
        int r;

        st->n_fds = admin_fds(p->admin, st->fds, sizeof(st->fds) / sizeof(st->fds[0]));
        if (unshare(CLONE_FILES) == 0) {
                st->unshared = true;
                p->admin_own_fds = true;
                for (unsigned i = 0; i < p->n_workers; i++) {
                        if (p->workers[i].outbound.fd >= 0)
                                close(p->workers[i].outbound.fd);
                        if (p->workers[i].inbound.fd >= 0)
                                close(p->workers[i].inbound.fd);
                }
        } else {
                log_debug("admin thread: unshare(CLONE_FILES): %s; the fd table stays shared", strerror(errno));
        }
        sem_post(&st->done);    /* st is the starter's: not touched after this */
        r = loop_run(p->admin_loop);
        if (r < 0) {
                /* Without its loop nothing answers the probes or reads the signals. */
                log_error("admin thread: event loop failed: %s; exiting", strerror(-r));
                proxy_quit(p, 1);
        }
        /* Its connections' fds are in this thread's table only: they are closed from here. */
        if (p->admin_own_fds)
                p->admin = admin_free(p->admin);
        return NULL;
}

/* Names a thread for ps -L, top -H and /proc/PID/task/TID/comm (at most 15 characters). */
static void name_thread(pthread_t t, const char *name)
{
        int r = pthread_setname_np(t, name);

        if (r != 0)
                log_debug("naming thread %s: %s", name, strerror(r));
}

static unsigned cpus_allowed(void)
{
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        return 1;
}

static void local_addresses(struct proxy *p)
{
        struct ifaddrs *list, *ifa;
        size_t n = 0;

        if (getifaddrs(&list) < 0)
                return;
        for (ifa = list; ifa; ifa = ifa->ifa_next)
                if (ifa->ifa_addr && (ifa->ifa_addr->sa_family == AF_INET || ifa->ifa_addr->sa_family == AF_INET6))
                        n++;
        p->local_addrs = calloc(n ? n : 1, sizeof(*p->local_addrs));
        if (p->local_addrs)
                for (ifa = list; ifa; ifa = ifa->ifa_next)
                        if (ifa->ifa_addr && (ifa->ifa_addr->sa_family == AF_INET || ifa->ifa_addr->sa_family == AF_INET6))
                                memcpy(&p->local_addrs[p->n_local_addrs++], ifa->ifa_addr,
                                       ifa->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                           : sizeof(struct sockaddr_in6));
        freeifaddrs(list);
}

int proxy_run(const struct proxy_settings *s, char *const *env)
{
        struct proxy p = {
                .settings = *s,
                .signal_fd = -1,
                .signal_watch = LOOP_WATCH_NULL,
                .drain_timer = LOOP_TIMER_NULL,
        };
        struct metrics_identity id;
        char err[512] = "", name[16];
        sigset_t mask;
        unsigned started = 0;
        struct admin_start st = { 0 };
        bool ran = false;
        int r, ret = 1;

        if (!s->allow_any_uid && (getuid() != s->proxy_uid || getgid() != s->proxy_gid)) {
                log_error("running as UID %u GID %u, not the proxy's %u/%u: the capture rules exempt only the "
                          "proxy's UID/GID, so this process's own connections would be captured again and loop; "
                          "run it as %u:%u (or pass --allow-any-uid outside a pod)",
                          (unsigned)getuid(), (unsigned)getgid(), s->proxy_uid, s->proxy_gid, s->proxy_uid,
                          s->proxy_gid);
                return 1;
        }
        {
                /* Each relay holds two sockets (and a pipe while bytes are in flight): take the
                 * whole hard limit for fds, as Envoy does, instead of the default soft 1024. */
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        (void)setrlimit(RLIMIT_NOFILE, &rl);
                }
        }
        p.n_workers = s->workers ? s->workers : cpus_allowed();
        atomic_store(&p.exit_code, 0);
        metrics_identity_from_env(env, &id);
        r = metrics_new(&p.metrics, &id);
        if (r < 0) {
                log_error("creating the metrics: %s", strerror(-r));
                return 1;
        }
        local_addresses(&p);
        {
                const char *probers = NULL, *ip = NULL;
                for (char *const *e = env; e && *e; e++) {
                        if (strncmp(*e, "ISTIO_KUBE_APP_PROBERS=", 23) == 0)
                                probers = *e + 23;
                        else if (strncmp(*e, "INSTANCE_IP=", 12) == 0)
                                ip = *e + 12;
                }
                snprintf(p.pod_ip, sizeof(p.pod_ip), "%s", ip ? ip : "");
                if (app_probes_parse(probers, &p.app_probes, err, sizeof(err)) < 0) {
                        log_error("ISTIO_KUBE_APP_PROBERS: %s", err);
                        metrics_free(p.metrics);
                        free(p.local_addrs);
                        return 1;
                }
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGQUIT);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);

        p.workers = calloc(p.n_workers, sizeof(*p.workers));
        if (!p.workers) {
                log_error("out of memory");
                goto out;
        }
        for (unsigned i = 0; i < p.n_workers; i++) {
                r = worker_init(&p.workers[i], &p, i, err, sizeof(err));
                if (r < 0) {
                        log_error("starting worker %u: %s", i, err);
                        goto out;
                }
        }
        r = loop_new(&p.admin_loop);
        if (r < 0) {
                log_error("creating the admin's event loop: %s", strerror(-r));
                goto out;
        }
        r = admin_new(&p.admin, &p, p.admin_loop, err, sizeof(err));
        if (r < 0) {
                log_error("opening the health, metrics and admin listeners: %s", err);
                goto out;
        }
        sigdelset(&mask, SIGPIPE);
        p.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (p.signal_fd < 0) {
                log_error("signalfd: %s", strerror(errno));
                goto out;
        }
        r = loop_watch_add(p.admin_loop, &p.signal_watch, p.signal_fd, EPOLLIN, signal_cb);
        if (r < 0) {
                log_error("epoll_ctl for the signalfd: %s", strerror(-r));
                goto out;
        }
        /* The admin thread first, and its fd table its own before any worker accepts (see
         * admin_thread): a relay's fd copied into the admin's table would stay open there. */
        st.p = &p;
        if (sem_init(&st.done, 0, 0) < 0) {
                log_error("sem_init: %s", strerror(errno));
                goto out;
        }
        r = pthread_create(&p.admin_thread, NULL, admin_thread, &st);
        if (r != 0) {
                log_error("starting the admin thread: %s", strerror(r));
                sem_destroy(&st.done);
                goto out;
        }
        p.admin_running = true;
        name_thread(p.admin_thread, "pf-admin");
        while (sem_wait(&st.done) < 0 && errno == EINTR)
                ;
        sem_destroy(&st.done);
        for (size_t i = 0; st.unshared && i < st.n_fds; i++)
                close(st.fds[i]);
        for (started = 1; started < p.n_workers; started++) {
                r = pthread_create(&p.workers[started].thread, NULL, worker_thread, &p.workers[started]);
                if (r != 0) {
                        log_error("starting worker thread %u: %s", started, strerror(r));
                        goto out;
                }
                /* A thread name holds 15 characters: five digits fit. */
                snprintf(name, sizeof(name), "pf-worker-%u", started % 100000u);
                name_thread(p.workers[started].thread, name);
        }
        atomic_store(&p.ready, true);
        log_info("pilotfish proxy ready: workers %u, outbound :%u, inbound :%u (%s), health :%u, metrics :%u",
                 p.n_workers, s->outbound_port, s->inbound_port, s->tproxy ? "TPROXY" : "REDIRECT", s->health_port,
                 s->prometheus_port);
        r = loop_run(p.workers[0].loop);
        if (r < 0) {
                log_error("worker 0: event loop failed: %s; exiting", strerror(-r));
                proxy_quit(&p, 1);
        }
        ran = true;
out:
        /* Whatever runs stops here: the workers started so far (a no-op after a quit), then the
         * admin, which may read the workers' relay lists until it is joined. */
        stop_workers(&p);
        for (unsigned i = 1; i < started; i++)
                pthread_join(p.workers[i].thread, NULL);
        if (p.admin_running) {
                loop_stop(p.admin_loop);
                pthread_join(p.admin_thread, NULL);
                p.admin_running = false;
        }
        /* Read once no thread can call proxy_quit() any more. */
        if (ran)
                ret = atomic_load(&p.exit_code);
        if (p.admin_loop) {
                loop_watch_del(p.admin_loop, &p.signal_watch);
                loop_timer_cancel(p.admin_loop, &p.drain_timer);
        }
        p.admin = admin_free(p.admin);
        p.admin_loop = loop_free(p.admin_loop);
        if (p.signal_fd >= 0)
                close(p.signal_fd);
        for (unsigned i = 0; p.workers && i < p.n_workers; i++)
                worker_deinit(&p.workers[i]);
        free(p.workers);
        free(p.local_addrs);
        app_probes_free(&p.app_probes);
        metrics_free(p.metrics);
        return ret;
}
