/*
 * The proxy's life; see run.h. Worker 0 runs on the main thread and also owns the admin
 * endpoints, the signalfd and the drain timer; workers 1..N-1 run on their own threads.
 * Signals are blocked in every thread before any is created, so only the signalfd sees them.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "proxy/admin.h"
#include "proxy/metrics.h"
#include "proxy/origdst.h"
#include "proxy/proxy.h"
#include "proxy/run.h"

#define DRAIN_POLL_MS 100

static struct loop_watch signal_watch = LOOP_WATCH_NULL;
static struct loop_timer drain_timer = LOOP_TIMER_NULL;
static uint64_t drain_started_ms;
static atomic_int exit_code;

static void stop_worker(void *data)
{
        struct worker *w = data;

        loop_stop(w->loop);
}

void proxy_quit(struct proxy *p, int code)
{
        atomic_store(&exit_code, code);
        for (unsigned i = 0; i < p->n_workers; i++)
                loop_post(p->workers[i].loop, stop_worker, &p->workers[i]);
}

static void close_inbound(void *data)
{
        worker_close_inbound(data);
}

static struct proxy *drain_proxy;

static void drain_cb(struct loop *l, struct loop_timer *t)
{
        struct proxy *p = drain_proxy;
        unsigned active = atomic_load(&p->active);

        if (active == 0) {
                log_info("drain: no connection left; exiting");
                proxy_quit(p, 0);
                return;
        }
        if (loop_now_ms(l) - drain_started_ms >= p->settings.drain_ms) {
                log_info("drain: %u connections still open after %llu ms; exiting", active,
                         (unsigned long long)p->settings.drain_ms);
                proxy_quit(p, 0);
                return;
        }
        loop_timer_arm(l, t, DRAIN_POLL_MS, drain_cb);
}

void proxy_drain(struct proxy *p, const char *why)
{
        struct loop *l = p->workers[0].loop;

        if (atomic_exchange(&p->draining, true))
                return;
        log_info("drain started (%s): readiness is 503, inbound closed, outbound still served", why);
        drain_proxy = p;
        drain_started_ms = loop_now_ms(l);
        for (unsigned i = 0; i < p->n_workers; i++)
                loop_post(p->workers[i].loop, close_inbound, &p->workers[i]);
        loop_timer_arm(l, &drain_timer, 0, drain_cb);
}

static void signal_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        struct proxy *p = drain_proxy;
        struct signalfd_siginfo si;

        while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM)
                        proxy_drain(p, "SIGTERM");
                else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT)
                        proxy_quit(p, 0);
        }
}

void proxy_connections_json(struct proxy *p, struct strbuf *out)
{
        bool first = true;

        strbuf_puts(out, "{\"connections\":[");
        for (unsigned i = 0; i < p->n_workers; i++) {
                struct worker *w = &p->workers[i];
                /* The loop clock of another thread is only approximately now; good enough for an age. */
                uint64_t now = loop_now_ms(p->workers[0].loop);

                pthread_mutex_lock(&w->lock);
                for (const struct relay *r = w->relays; r; r = r->next) {
                        char client[64], dst[64];

                        sockaddr_format(&r->client_addr, client, sizeof(client));
                        sockaddr_format(&r->orig_dst, dst, sizeof(dst));
                        strbuf_printf(out,
                                      "%s{\"id\":%llu,\"worker\":%u,\"direction\":\"%s\",\"client\":\"%s\","
                                      "\"original_dst\":\"%s\",\"state\":\"%s\",\"bytes_received\":%llu,"
                                      "\"bytes_sent\":%llu,\"age_ms\":%llu}",
                                      first ? "" : ",", (unsigned long long)r->id, w->index,
                                      r->direction == RELAY_OUTBOUND ? "outbound" : "inbound", client, dst,
                                      r->connecting ? "connecting" : "established",
                                      (unsigned long long)atomic_load_explicit(&r->flow[RELAY_FLOW_UP].bytes, memory_order_relaxed),
                                      (unsigned long long)atomic_load_explicit(&r->flow[RELAY_FLOW_DOWN].bytes, memory_order_relaxed),
                                      (unsigned long long)(now > r->started_ms ? now - r->started_ms : 0));
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

        if (r < 0)
                log_error("worker %u: event loop failed: %s", w->index, strerror(-r));
        return NULL;
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
        struct proxy p = { .settings = *s };
        struct metrics_identity id;
        char err[512] = "";
        sigset_t mask;
        unsigned started = 0;
        int r, sfd = -1, ret = 1;

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
        atomic_store(&exit_code, 0);
        drain_proxy = &p;
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
        r = admin_start(&p, p.workers[0].loop, err, sizeof(err));
        if (r < 0) {
                log_error("opening the health, metrics and admin listeners: %s", err);
                goto out;
        }
        sigdelset(&mask, SIGPIPE);
        sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sfd < 0 || loop_watch_add(p.workers[0].loop, &signal_watch, sfd, EPOLLIN, signal_cb) < 0) {
                log_error("signalfd: %s", strerror(errno));
                goto out;
        }
        for (started = 1; started < p.n_workers; started++)
                if ((r = pthread_create(&p.workers[started].thread, NULL, worker_thread, &p.workers[started])) != 0) {
                        log_error("starting worker thread %u: %s", started, strerror(r));
                        proxy_quit(&p, 1);
                        break;
                }
        atomic_store(&p.ready, true);
        log_info("pilotfish proxy ready: workers %u, outbound :%u, inbound :%u (%s), health :%u, metrics :%u",
                 p.n_workers, s->outbound_port, s->inbound_port, s->tproxy ? "TPROXY" : "REDIRECT", s->health_port,
                 s->prometheus_port);
        r = loop_run(p.workers[0].loop);
        if (r < 0)
                log_error("worker 0: event loop failed: %s", strerror(-r));
        ret = atomic_load(&exit_code);
out:
        if (p.workers && ret != 0 && started == 0)
                started = 1;
        for (unsigned i = 1; i < started; i++)
                pthread_join(p.workers[i].thread, NULL);
        admin_stop(&p);
        if (p.workers && p.workers[0].loop)
                loop_watch_del(p.workers[0].loop, &signal_watch);
        if (sfd >= 0)
                close(sfd);
        for (unsigned i = 0; p.workers && i < p.n_workers; i++)
                worker_deinit(&p.workers[i]);
        free(p.workers);
        free(p.local_addrs);
        app_probes_free(&p.app_probes);
        metrics_free(p.metrics);
        return ret;
}
