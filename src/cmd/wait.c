/*
 * `pilotfish wait`: blocks until the proxy's readiness endpoint answers 200, or fails after a
 * timeout. The injector puts it in the proxy container's postStart hook when the application
 * must not start before the proxy (holdApplicationUntilProxyStarts): kubelet starts the
 * containers in order and waits for the hook. Istio's `pilot-agent wait` flags are accepted.
 * Plain HTTP/1.0 over a socket: one request line and a status line are all it needs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmd/wait.h"
#include "common/flags.h"

struct wait_opts {
        const char *url;
        char host[64];
        unsigned port;
        char path[256];
        unsigned timeout_s, period_ms, request_timeout_ms;
        bool help;
};

#define O(f) offsetof(struct wait_opts, f)
/* pilot-agent wait's flags (cobra's IntVar: a number; here also positive and at most a day). */
static const struct flags_opt opts[] = {
        { .name = "url", .metavar = "URL", .def = "http://localhost:15021/healthz/ready", .offset = O(url),
          .help = "what to ask: http://, an IPv4 address or localhost, an optional port, a path" },
        { .name = "timeoutSeconds", .metavar = "S", .def = "60", .set = flags_set_uint, .offset = O(timeout_s),
          .min = 1, .max = 86400000, .help = "give up after this long" },
        { .name = "periodMillis", .metavar = "MS", .def = "500", .set = flags_set_uint, .offset = O(period_ms),
          .min = 1, .max = 86400000, .help = "pause between two attempts" },
        { .name = "requestTimeoutMillis", .metavar = "MS", .def = "500", .set = flags_set_uint,
          .offset = O(request_timeout_ms), .min = 1, .max = 86400000, .help = "longest wait for one answer" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "this text" },
};
#undef O
static const struct flags_table table = FLAGS_TABLE(opts, 0, NULL);

static void usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish wait [flags]\n\n"
                   "Waits until URL answers 200. Exit status 0 once it does, 1 when --timeoutSeconds pass first.\n\n");
        flags_usage(&table, f);
}

static long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* http://HOST:PORT/PATH with an IPv4 address or localhost; the proxy listens there. */
static int parse_url(const char *url, struct wait_opts *o)
{
        const char *p = url, *colon, *slash;
        char *end;
        unsigned long port = 80;

        if (strncmp(p, "http://", 7) != 0)
                return -EINVAL;
        p += 7;
        slash = strchr(p, '/');
        colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
        if (colon) {
                port = strtoul(colon + 1, &end, 10);
                if (end == colon + 1 || (slash ? end != slash : *end) || port == 0 || port > 65535)
                        return -EINVAL;
        }
        snprintf(o->host, sizeof(o->host), "%.*s", (int)((colon ? colon : slash ? slash : p + strlen(p)) - p), p);
        snprintf(o->path, sizeof(o->path), "%s", slash ? slash : "/");
        o->port = (unsigned)port;
        if (strcmp(o->host, "localhost") == 0)
                snprintf(o->host, sizeof(o->host), "127.0.0.1");
        struct in_addr a;
        return inet_pton(AF_INET, o->host, &a) == 1 ? 0 : -EINVAL;
}

/* One request; returns the HTTP status, or -errno. */
static int probe(const struct wait_opts *o)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
        char req[512], resp[64];
        long deadline = now_ms() + o->request_timeout_ms;
        size_t got = 0;
        int fd, status = -ETIMEDOUT;

        inet_pton(AF_INET, o->host, &sa.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                status = -errno;
                goto out;
        }
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%u\r\n\r\n", o->path, o->host, o->port);
        for (bool sent = false; now_ms() < deadline;) {
                struct pollfd pfd = { .fd = fd, .events = sent ? POLLIN : POLLOUT };
                ssize_t n;

                if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
                        continue;
                if (!sent) {
                        if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
                                status = -errno;
                                goto out;
                        }
                        sent = true;
                        continue;
                }
                n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
                if (n <= 0) {
                        status = n == 0 ? -ECONNRESET : -errno;
                        goto out;
                }
                got += (size_t)n;
                resp[got] = '\0';
                if (got >= 12 || strchr(resp, '\n')) {
                        /* "HTTP/1.x NNN" */
                        status = strncmp(resp, "HTTP/1.", 7) == 0 ? atoi(resp + 9) : -EPROTO;
                        goto out;
                }
        }
out:
        close(fd);
        return status;
}

int wait_main(int argc, char **argv)
{
        struct wait_opts o = { .url = "http://localhost:15021/healthz/ready", .timeout_s = 60, .period_ms = 500,
                               .request_timeout_ms = 500 };
        const char *url;
        long start;
        int last = 0, r = flags_parse_main(&table, &o, argc, argv, &o.help, usage);

        if (r != 0)
                return r < 0 ? 1 : 0;
        url = o.url;
        if (parse_url(url, &o) < 0) {
                fprintf(stderr, "Error: --url: '%s' is not http://IPV4-OR-LOCALHOST[:PORT]/PATH\n", url);
                return 1;
        }
        start = now_ms();
        for (;;) {
                last = probe(&o);
                if (last == 200) {
                        fprintf(stderr, "pilotfish wait: %s is ready after %ld ms\n", url, now_ms() - start);
                        return 0;
                }
                if (now_ms() - start >= (long)o.timeout_s * 1000) {
                        if (last > 0)
                                fprintf(stderr, "Error: %s still answers %d after %u s\n", url, last, o.timeout_s);
                        else
                                fprintf(stderr, "Error: %s did not answer within %u s: %s\n", url, o.timeout_s,
                                        strerror(-last));
                        return 1;
                }
                usleep((useconds_t)o.period_ms * 1000);
        }
}
