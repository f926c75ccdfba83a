/*
 * bench-relay: the relay's own cost per request, without the network, the kernel's noise or
 * other processes in the figure. One thread runs a worker's loop and both ends of a loopback
 * TCP connection through the relay (relay_start_to: the destination is given, no packet
 * filter), and does N request/response exchanges of a small request and a 1 KiB response,
 * as the keep-alive benchmark does, and prints the CPU time the exchanges took (user and
 * system, getrusage). Under valgrind's cachegrind (bench/relay.sh runs it so, for two builds
 * side by side) the user-space instructions per exchange are the relay's work plus the ends'
 * (the same in every build), counted exactly: two builds of the relay then compare to a
 * fraction of a percent on a machine whose wall-clock figures move by tens of percent, and
 * whose virtual CPU has no hardware counters for perf.
 *
 *   bench-relay [EXCHANGES [idle-thread]]   (default 200000)
 *
 * With idle-thread, a second thread that only sleeps is started first: the proxy has one
 * (the admin's), and a process whose file table is shared between threads pays for it on every
 * syscall that takes an fd (the kernel's fdget takes a reference then, which it skips for a
 * single-threaded process).
 *
 * It builds against the relay's seams as they were before the transport layer (8af29e3) and
 * after, so both sides of a refactor run the same program.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/loop.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/relay.h"
#include "proxy/settings.h"
#include "proxy/worker.h"

#define REQUEST_SIZE 80
#define RESPONSE_SIZE 1024

static void die(const char *what)
{
        fprintf(stderr, "bench-relay: %s: %s\n", what, strerror(errno));
        exit(1);
}

static int listen_loopback(struct sockaddr_in *ret)
{
        socklen_t len = sizeof(*ret);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        memset(ret, 0, sizeof(*ret));
        ret->sin_family = AF_INET;
        ret->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)ret, sizeof(*ret)) < 0 || listen(fd, 4) < 0 ||
            getsockname(fd, (struct sockaddr *)ret, &len) < 0)
                die("listening on loopback");
        return fd;
}

/* Reads exactly len bytes from fd (non-blocking), running the loop while nothing is there. */
static void read_exact(struct loop *l, int fd, char *buf, size_t len)
{
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, buf + got, len - got);
                if (n > 0) {
                        got += (size_t)n;
                        continue;
                }
                if (n == 0 || errno != EAGAIN)
                        die("reading an end");
                if (loop_run_once(l, 100) < 0)
                        die("running the loop");
        }
}

static void *idle_thread(void *arg)
{
        (void)arg;
        for (;;)
                pause();
        return NULL;
}

int main(int argc, char **argv)
{
        char *const pargv[] = { "proxy", NULL };
        struct metrics_identity id = { "bench", "ns", "bench", "v1", "Kubernetes" };
        struct proxy p;
        struct worker w;
        struct sockaddr_in front, back;
        struct sockaddr_storage peer, dst;
        socklen_t len = sizeof(peer);
        char err[256], req[REQUEST_SIZE], resp[RESPONSE_SIZE], buf[RESPONSE_SIZE];
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
        int lf, lb, client, accepted, server, one = 1;
        struct rusage u0, u1;

        if (argc > 2 && strcmp(argv[2], "idle-thread") == 0) {
                pthread_t t;

                if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
                        die("starting the idle thread");
        }
        memset(&p, 0, sizeof(p));
        memset(&w, 0, sizeof(w));
        if (proxy_settings_parse(&p.settings, 1, pargv, NULL, err, sizeof(err)) < 0 || metrics_new(&p.metrics, &id) < 0)
                die("settings or metrics");
        p.workers = &w;
        p.n_workers = 1;
        w.proxy = &p;
        w.settings = &p.settings;
        w.metrics = p.metrics;
        w.outbound.fd = w.inbound.fd = -1;
        pthread_mutex_init(&w.lock, NULL);
        pipe_pool_init(&w.pipes, 16, 64);
        w.scratch = malloc(RELAY_SCRATCH_SIZE);
        if (!w.scratch || loop_new(&w.loop) < 0)
                die("the worker");

        lf = listen_loopback(&front);
        lb = listen_loopback(&back);
        client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client < 0 || connect(client, (struct sockaddr *)&front, sizeof(front)) < 0)
                die("connecting the client");
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(client, F_SETFL, O_NONBLOCK);
        accepted = accept4(lf, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (accepted < 0)
                die("accepting the client");
        memset(&dst, 0, sizeof(dst));
        memcpy(&dst, &back, sizeof(back));
        relay_start_to(&w, RELAY_OUTBOUND, accepted, &peer, &dst);
        for (server = -1; server < 0;) {
                struct pollfd pfd = { .fd = lb, .events = POLLIN };
                loop_run_once(w.loop, 10);
                if (poll(&pfd, 1, 0) == 1)
                        server = accept4(lb, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        memset(req, 'q', sizeof(req));
        memset(resp, 'r', sizeof(resp));

        getrusage(RUSAGE_SELF, &u0);
        for (long i = 0; i < n; i++) {
                if (write(client, req, sizeof(req)) != (ssize_t)sizeof(req))
                        die("the client's request");
                read_exact(w.loop, server, buf, sizeof(req));
                if (write(server, resp, sizeof(resp)) != (ssize_t)sizeof(resp))
                        die("the server's response");
                read_exact(w.loop, client, buf, sizeof(resp));
        }
        getrusage(RUSAGE_SELF, &u1);
        printf("exchanges=%ld user_ns_per_exchange=%.1f sys_ns_per_exchange=%.1f\n", n,
               ((double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) * 1e9 +
                (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) * 1e3) / (double)n,
               ((double)(u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) * 1e9 +
                (double)(u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) * 1e3) / (double)n);
        close(client);
        close(server);
        worker_deinit(&w);
        metrics_free(p.metrics);
        return 0;
}
