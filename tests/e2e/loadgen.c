/*
 * loadgen: the load endpoint of the proxy e2e tests (many connections at once, or many in a row).
 *
 * probe proves where one connection lands; this tool proves that a proxy relays thousands of
 * them correctly and lets go of each one afterwards. It is both ends:
 *
 *   loadgen echo-server --port P [--addr A] [--ready-file F] [--timeout S]
 *   loadgen hold  --to ADDR:PORT --conns N --payload BYTES [--hold-seconds S] [--ready-file F]
 *                 [--ramp K] [--timeout S] [--max-seconds S]
 *   loadgen churn --to ADDR:PORT --count N --concurrency C --payload BYTES [--timeout S] [--max-seconds S]
 *   loadgen rate  --to ADDR:PORT --seconds S --concurrency C [--payload BYTES] [--gap-ms G]
 *                 [--pause-ms P] [--timeout S]
 *
 * Every client connection runs the same exchange: it sends a payload that no other connection
 * (and no other round of the same connection) sends, its first bytes naming the connection and
 * the round, then reads the echo and compares it byte for byte as it arrives. After its last
 * round it shuts down its sending side and waits for the server's EOF, so "ok" means the whole
 * life of the connection, FIN both ways included, went through. The echo server echoes until EOF
 * and then closes.
 *
 *   - hold opens N connections (at most --ramp exchanging at once, so that a listener's accept
 *     queue is never flooded), does round 1 on each, writes the ready file once every connection
 *     is settled, keeps them all open for --hold-seconds or until SIGTERM/SIGINT (watching for any
 *     that drops), then does round 2 on each and closes them: round 2 proves a held connection
 *     still works at the moment it is let go.
 *   - churn runs N short connections, at most C at a time.
 *   - rate keeps C connections going for S seconds, each fresh: round 1, a gap, round 2, close
 *     (the C slots start spread over one cycle, so most are between rounds at any moment).
 *     SIGUSR1 sets a mark (the tests send it right before draining a proxy), and the summary then
 *     tells apart connections that failed before the mark, after it, and those whose round 1 was
 *     done (so the connection was relayed end to end) when they failed.
 *
 * One epoll loop, no threads. Nothing waits without a bound: each exchange has --timeout
 * (default 10 s) from its start, and each client mode gives up after --max-seconds. The summary
 * is one line of key=value on stdout; failures are also counted by cause (err_connect,
 * err_reset, err_eof, err_mismatch, err_timeout, err_dropped). Exit status: 0 when nothing failed,
 * 1 otherwise, 2 usage error. RLIMIT_NOFILE is raised as far as the mode needs (the tests run it
 * as root, which may raise the hard limit too). Like probe, it is one file with no project
 * library.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOADGEN_BATCH 256
#define LOADGEN_IO_CHUNK 65536
#define LOADGEN_TICK_MS 20

struct endpoint {
        struct sockaddr_storage ss;
        socklen_t len;
};

static const char *prog_mode = "loadgen";

static _Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die_usage(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "loadgen %s: ", prog_mode);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n"
                "usage: loadgen echo-server --port P [--addr A] [--ready-file F] [--timeout S]\n"
                "       loadgen hold --to ADDR:PORT --conns N --payload BYTES [--hold-seconds S]\n"
                "                    [--ready-file F] [--ramp K] [--timeout S] [--max-seconds S]\n"
                "       loadgen churn --to ADDR:PORT --count N --concurrency C --payload BYTES\n"
                "                     [--timeout S] [--max-seconds S]\n"
                "       loadgen rate --to ADDR:PORT --seconds S --concurrency C [--payload BYTES]\n"
                "                    [--gap-ms G] [--pause-ms P] [--timeout S]\n"
                "IPv6 addresses are written in [brackets].\n");
        exit(2);
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "loadgen %s: ", prog_mode);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long parse_long(const char *s, long min, long max, const char *option)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                die_usage("bad %s %s (want %ld..%ld)", option, s, min, max);
        return v;
}

/*
 * Parses "A", "[A6]", "A6" (with_port false) or "A:P", "[A6]:P" (with_port true) into ret.
 * Returns 0, or -EINVAL when the text is not an address of that form.
 */
static int endpoint_parse(const char *text, bool with_port, struct endpoint *ret)
{
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_text = NULL;
        size_t hlen;
        long port = 0;
        struct sockaddr_in *sin = (struct sockaddr_in *)&ret->ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ret->ss;

        memset(ret, 0, sizeof(*ret));
        if (text[0] == '[') {
                const char *close = strchr(text, ']');

                if (!close)
                        return -EINVAL;
                hlen = (size_t)(close - text - 1);
                if (close[1] == ':')
                        port_text = close + 2;
                else if (close[1] != '\0')
                        return -EINVAL;
                text++;
        } else {
                const char *colon = with_port ? strrchr(text, ':') : NULL;

                if (colon && strchr(text, ':') != colon)
                        return -EINVAL;
                hlen = colon ? (size_t)(colon - text) : strlen(text);
                if (colon)
                        port_text = colon + 1;
        }
        if (hlen >= sizeof(host) || with_port != (port_text != NULL))
                return -EINVAL;
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        if (port_text) {
                char *end;

                errno = 0;
                port = strtol(port_text, &end, 10);
                if (errno || end == port_text || *end || port < 0 || port > 65535)
                        return -EINVAL;
        }
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
                sin->sin_family = AF_INET;
                sin->sin_port = htons((uint16_t)port);
                ret->len = sizeof(*sin);
                return 0;
        }
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons((uint16_t)port);
                ret->len = sizeof(*sin6);
                return 0;
        }
        return -EINVAL;
}

/*
 * Makes sure `want` descriptors can be open: raises the soft limit, and the hard one when that
 * is allowed (root). Returns the limit now in force.
 */
static rlim_t raise_nofile(rlim_t want)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 0;
        if (rl.rlim_cur >= want)
                return rl.rlim_cur;
        if (rl.rlim_max < want) {
                struct rlimit both = { want, want };

                if (setrlimit(RLIMIT_NOFILE, &both) == 0)
                        return want;
        }
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        return rl.rlim_cur;
}

/* Writes text to path through a temporary file and rename(), so a reader never sees half of it. */
static void ready_file_write(const char *path, const char *text)
{
        char tmp[PATH_MAX];
        FILE *f;

        if (!path)
                return;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                die("ready file path too long");
        f = fopen(tmp, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
                die("writing the ready file %s: %s", path, strerror(errno));
}

/* Blocks SIGTERM, SIGINT, SIGUSR1 and SIGPIPE; returns a signalfd for the first three. */
static int signals_setup(void)
{
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGPIPE);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                die("signalfd: %s", strerror(errno));
        return fd;
}

/* The epoll tag of the signalfd; connections are tagged with their own address. */
static char signal_tag;
static char listener_tag;

/* ---- echo server -------------------------------------------------------------------------- */

struct echo_conn {
        struct echo_conn *prev, *next;  /* every open connection, freed at exit */
        int fd;
        size_t off, len;        /* bytes read and not yet written back */
        char buf[16384];
};

static struct echo_conn *echo_conns;

static void echo_close(int ep, struct echo_conn *c, unsigned long *closed)
{
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                echo_conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        free(c);
        (*closed)++;
}

/*
 * One readiness event: writes back what is pending, then reads more only when nothing is
 * pending (so a client that does not read holds the server back instead of growing a buffer).
 * Returns false when the connection is to be closed.
 */
static bool echo_run(int ep, struct echo_conn *c, unsigned long *bytes, unsigned long *errors)
{
        for (;;) {
                while (c->off < c->len) {
                        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

                        if (n > 0) {
                                c->off += (size_t)n;
                                *bytes += (unsigned long)n;
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN) {
                                struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

                                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                                return true;
                        }
                        (*errors)++;
                        return false;
                }
                c->off = c->len = 0;
                ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

                if (n > 0) {
                        c->len = (size_t)n;
                        continue;
                }
                if (n == 0)
                        return false;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };

                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                        return true;
                }
                (*errors)++;
                return false;
        }
}

static int cmd_echo_server(int argc, char **argv)
{
        static const struct option opts[] = {
                { "port", required_argument, NULL, 'p' },
                { "addr", required_argument, NULL, 'a' },
                { "ready-file", required_argument, NULL, 'r' },
                { "timeout", required_argument, NULL, 't' },
                {},
        };
        const char *addr = NULL, *ready = NULL;
        long port = -1, timeout_s = 600;
        unsigned long accepted = 0, closed = 0, bytes = 0, errors = 0;
        struct endpoint ep_addr;
        struct epoll_event ev, events[LOADGEN_BATCH];
        int one = 1, lfd, ep, sfd, opt;
        int64_t deadline;
        bool stop = false;

        prog_mode = "echo-server";
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'p': port = parse_long(optarg, 1, 65535, "--port"); break;
                case 'a': addr = optarg; break;
                case 'r': ready = optarg; break;
                case 't': timeout_s = parse_long(optarg, 1, 86400, "--timeout"); break;
                default: die_usage("unknown option");
                }
        }
        if (optind != argc || port < 0)
                die_usage("--port is required");
        if (endpoint_parse(addr ? addr : "0.0.0.0", false, &ep_addr) < 0)
                die_usage("bad --addr %s", addr);
        if (ep_addr.ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ep_addr.ss)->sin6_port = htons((uint16_t)port);
        else
                ((struct sockaddr_in *)&ep_addr.ss)->sin_port = htons((uint16_t)port);
        raise_nofile(1 << 18);

        sfd = signals_setup();
        lfd = socket(ep_addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket: %s", strerror(errno));
        (void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfd, (struct sockaddr *)&ep_addr.ss, ep_addr.len) < 0)
                die("bind to port %ld: %s", port, strerror(errno));
        /* The kernel caps the backlog at net.core.somaxconn. */
        if (listen(lfd, 65535) < 0)
                die("listen: %s", strerror(errno));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                die("epoll_create1: %s", strerror(errno));
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &listener_tag };
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &signal_tag };
        epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
        ready_file_write(ready, "listening\n");
        deadline = now_ms() + timeout_s * 1000;

        while (!stop && now_ms() < deadline) {
                int n = epoll_wait(ep, events, LOADGEN_BATCH, 1000);

                if (n < 0 && errno != EINTR)
                        die("epoll_wait: %s", strerror(errno));
                for (int i = 0; i < n; i++) {
                        void *tag = events[i].data.ptr;

                        if (tag == &signal_tag) {
                                stop = true;
                        } else if (tag == &listener_tag) {
                                for (int k = 0; k < LOADGEN_BATCH; k++) {
                                        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                        struct echo_conn *c;

                                        if (fd < 0) {
                                                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                                        errors++;
                                                break;
                                        }
                                        accepted++;
                                        c = malloc(sizeof(*c));
                                        if (!c) {
                                                close(fd);
                                                errors++;
                                                continue;
                                        }
                                        c->fd = fd;
                                        c->off = c->len = 0;
                                        c->prev = NULL;
                                        c->next = echo_conns;
                                        if (echo_conns)
                                                echo_conns->prev = c;
                                        echo_conns = c;
                                        ev = (struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
                                        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                                }
                        } else {
                                struct echo_conn *c = tag;

                                if (!echo_run(ep, c, &bytes, &errors))
                                        echo_close(ep, c, &closed);
                        }
                }
        }
        printf("mode=echo-server accepted=%lu closed=%lu bytes=%lu errors=%lu\n", accepted, closed, bytes, errors);
        while (echo_conns)
                echo_close(ep, echo_conns, &closed);
        close(ep);
        close(lfd);
        close(sfd);
        return 0;
}

/* ---- clients ------------------------------------------------------------------------------ */

enum mode { MODE_HOLD, MODE_CHURN, MODE_RATE };

enum conn_state {
        CS_IDLE = 0,            /* no socket */
        CS_CONNECTING,
        CS_EXCHANGE,            /* sending the payload and reading its echo */
        CS_HELD,                /* hold: round 1 done, waiting for the release */
        CS_GAP,                 /* rate: between round 1 and round 2 */
        CS_CLOSING,             /* SHUT_WR sent, waiting for the server's EOF */
};

enum err {
        ERR_CONNECT = 0,        /* the connect failed (refused, unreachable, socket error) */
        ERR_RESET,              /* a reset or another socket error after connecting */
        ERR_EOF,                /* EOF before the whole echo came back */
        ERR_MISMATCH,           /* the echo differs from what was sent, or bytes nobody asked for */
        ERR_TIMEOUT,            /* an exchange or the close took longer than --timeout */
        ERR_DROPPED,            /* hold: a held connection was closed or reset by the other side */
        _ERR_MAX,
};

static const char *const err_names[_ERR_MAX] = {
        "err_connect", "err_reset", "err_eof", "err_mismatch", "err_timeout", "err_dropped",
};

struct conn {
        int fd;
        enum conn_state state;
        uint64_t id;
        unsigned round;
        unsigned char *payload;
        size_t sent, rcvd;
        int64_t deadline;       /* of the current exchange, gap or close; 0 for none */
        bool round1_done;
        bool round1_before_mark;
        bool restart;           /* churn/rate: start the next connection in this slot */
};

struct client {
        enum mode mode;
        struct endpoint to;
        size_t payload_len;
        int64_t timeout_ms;
        int ep;
        struct conn *conns;
        size_t n_conns;
        uint64_t next_id;
        uint64_t total;         /* hold/churn: connections to run */
        uint64_t started, ok, failed;
        uint64_t errs[_ERR_MAX];
        int last_errno;
        /* hold */
        size_t ramp, exchanging;
        uint64_t settled, established;
        bool released;
        bool ready_written;
        int64_t release_at;
        /* rate */
        int64_t gap_ms, pause_ms, stop_at;
        int64_t mark_at;        /* 0: no SIGUSR1 yet */
        uint64_t failed_before_mark, ok_after_mark, failed_after_mark, established_failed;
        uint64_t straddled, straddled_ok;
};

/* splitmix64: a payload generator whose stream depends on the connection and the round only. */
static uint64_t mix64(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void payload_fill(unsigned char *p, size_t len, uint64_t id, unsigned round)
{
        char head[64];
        uint64_t s = id * 1000003u + round;
        int hl = snprintf(head, sizeof(head), "loadgen id=%" PRIu64 " round=%u\n", id, round);
        size_t i = 0;

        for (; i < len && i < (size_t)hl; i++)
                p[i] = (unsigned char)head[i];
        for (; i < len; i++)
                p[i] = (unsigned char)mix64(&s);
}

static void conn_interest(struct client *cl, struct conn *c, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = c };

        epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_release_slot(struct client *cl, struct conn *c)
{
        if (c->fd >= 0) {
                epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
        }
        c->fd = -1;
        /* hold: a connection that ends during round 1 frees its place in the ramp. */
        if (cl->mode == MODE_HOLD && !c->round1_done && cl->exchanging > 0)
                cl->exchanging--;
        c->state = CS_IDLE;
        c->restart = cl->mode != MODE_HOLD;
        /* rate: --pause-ms between two connections of a slot keeps the load steady. */
        c->deadline = cl->mode == MODE_RATE ? now_ms() + cl->pause_ms : 0;
}

static const char *hold_ready_path;

/* hold: writes the ready file, once, with how many connections are established and held. */
static void hold_write_ready(struct client *cl, const char *ready)
{
        char text[128];

        if (cl->ready_written)
                return;
        cl->ready_written = true;
        snprintf(text, sizeof(text), "established=%" PRIu64 " failed=%" PRIu64 "\n", cl->established,
                 cl->total - cl->established);
        ready_file_write(ready, text);
        /* What the failures were, for a test's diagnostics (the ready file stays two fields). */
        fprintf(stderr, "loadgen hold: established=%" PRIu64 " failed=%" PRIu64, cl->established,
                cl->total - cl->established);
        for (int i = 0; i < _ERR_MAX; i++)
                fprintf(stderr, " %s=%" PRIu64, err_names[i], cl->errs[i]);
        fprintf(stderr, "\n");
}

/* A connection settles in hold mode when its round 1 is done or it failed before that. */
static void hold_settle(struct client *cl, const char *ready)
{
        cl->settled++;
        if (cl->settled == cl->total)
                hold_write_ready(cl, ready);
}

static void conn_fail(struct client *cl, struct conn *c, enum err why, int e)
{
        bool settles = cl->mode == MODE_HOLD && !c->round1_done;

        cl->failed++;
        cl->errs[why]++;
        if (e)
                cl->last_errno = e;
        if (cl->mode == MODE_RATE) {
                if (c->round1_done)
                        cl->established_failed++;
                if (!cl->mark_at)
                        cl->failed_before_mark++;
                else
                        cl->failed_after_mark++;
                if (c->round1_before_mark && cl->mark_at)
                        cl->straddled++;
        }
        conn_release_slot(cl, c);
        if (settles)
                hold_settle(cl, hold_ready_path);
}

static void conn_succeed(struct client *cl, struct conn *c)
{
        cl->ok++;
        if (cl->mode == MODE_RATE && cl->mark_at) {
                cl->ok_after_mark++;
                if (c->round1_before_mark) {
                        cl->straddled++;
                        cl->straddled_ok++;
                }
        }
        conn_release_slot(cl, c);
}

static void conn_begin_round(struct client *cl, struct conn *c)
{
        payload_fill(c->payload, cl->payload_len, c->id, c->round);
        c->sent = c->rcvd = 0;
        c->state = CS_EXCHANGE;
        c->deadline = now_ms() + cl->timeout_ms;
        conn_interest(cl, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

static void conn_begin_close(struct client *cl, struct conn *c)
{
        if (shutdown(c->fd, SHUT_WR) < 0) {
                conn_fail(cl, c, ERR_RESET, errno);
                return;
        }
        c->state = CS_CLOSING;
        c->deadline = now_ms() + cl->timeout_ms;
        conn_interest(cl, c, EPOLLIN | EPOLLRDHUP);
}

/* Opens connection `id` in slot c. */
static void conn_open(struct client *cl, struct conn *c)
{
        int fd, one = 1;

        c->id = cl->next_id++;
        c->round = 0;
        c->round1_done = c->round1_before_mark = false;
        c->restart = false;
        c->state = CS_CONNECTING;
        c->deadline = now_ms() + cl->timeout_ms;
        cl->started++;
        if (cl->mode == MODE_HOLD)
                cl->exchanging++;
        fd = socket(cl->to.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        c->fd = fd;
        if (fd < 0) {
                conn_fail(cl, c, ERR_CONNECT, errno);
                return;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

        if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                close(fd);
                c->fd = -1;
                conn_fail(cl, c, ERR_CONNECT, errno);
                return;
        }
        if (connect(fd, (struct sockaddr *)&cl->to.ss, cl->to.len) < 0 && errno != EINPROGRESS) {
                conn_fail(cl, c, ERR_CONNECT, errno);
                return;
        }
}

/* The exchange of the current round is complete: on to the next step of this mode. */
static void conn_round_done(struct client *cl, struct conn *c)
{
        c->round++;
        if (c->round == 1) {
                c->round1_done = true;
                c->round1_before_mark = cl->mark_at == 0;
        }
        switch (cl->mode) {
        case MODE_HOLD:
                if (c->round == 1) {
                        cl->established++;
                        if (cl->exchanging > 0)
                                cl->exchanging--;
                        c->state = CS_HELD;
                        c->deadline = 0;
                        conn_interest(cl, c, EPOLLIN | EPOLLRDHUP);
                        hold_settle(cl, hold_ready_path);
                        if (cl->released)
                                conn_begin_round(cl, c);
                        return;
                }
                conn_begin_close(cl, c);
                return;
        case MODE_CHURN:
                conn_begin_close(cl, c);
                return;
        case MODE_RATE:
                if (c->round == 1) {
                        c->state = CS_GAP;
                        c->deadline = now_ms() + cl->gap_ms;
                        conn_interest(cl, c, EPOLLRDHUP);
                        return;
                }
                conn_begin_close(cl, c);
                return;
        }
}

static void conn_event(struct client *cl, struct conn *c)
{
        unsigned char buf[LOADGEN_IO_CHUNK];
        ssize_t n;
        int e;
        socklen_t elen = sizeof(e);

        switch (c->state) {
        case CS_IDLE:
                return;
        case CS_CONNECTING:
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
                        e = errno;
                if (e) {
                        conn_fail(cl, c, ERR_CONNECT, e);
                        return;
                }
                conn_begin_round(cl, c);
                return;
        case CS_EXCHANGE:
                while (c->sent < cl->payload_len) {
                        n = send(c->fd, c->payload + c->sent, cl->payload_len - c->sent, MSG_NOSIGNAL);
                        if (n > 0) {
                                c->sent += (size_t)n;
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                break;
                        conn_fail(cl, c, ERR_RESET, errno);
                        return;
                }
                for (;;) {
                        size_t want = cl->payload_len - c->rcvd;

                        if (want == 0)
                                break;
                        n = recv(c->fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
                        if (n > 0) {
                                if (memcmp(buf, c->payload + c->rcvd, (size_t)n) != 0) {
                                        conn_fail(cl, c, ERR_MISMATCH, 0);
                                        return;
                                }
                                c->rcvd += (size_t)n;
                                continue;
                        }
                        if (n == 0) {
                                conn_fail(cl, c, ERR_EOF, 0);
                                return;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_fail(cl, c, ERR_RESET, errno);
                        return;
                }
                if (c->rcvd == cl->payload_len) {
                        conn_round_done(cl, c);
                        return;
                }
                conn_interest(cl, c, EPOLLIN | EPOLLRDHUP | (c->sent < cl->payload_len ? EPOLLOUT : 0));
                return;
        case CS_HELD:
        case CS_GAP:
        case CS_CLOSING:
                n = recv(c->fd, buf, sizeof(buf), 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (c->state == CS_CLOSING) {
                        if (n == 0)
                                conn_succeed(cl, c);
                        else if (n > 0)
                                conn_fail(cl, c, ERR_MISMATCH, 0);
                        else
                                conn_fail(cl, c, ERR_RESET, errno);
                        return;
                }
                if (n > 0)
                        conn_fail(cl, c, ERR_MISMATCH, 0);
                else
                        conn_fail(cl, c, c->state == CS_HELD ? ERR_DROPPED : (n == 0 ? ERR_EOF : ERR_RESET),
                                  n < 0 ? errno : 0);
                return;
        }
}

/* Deadlines: exchanges and closes that took too long fail; rate's gaps end. */
static void client_sweep(struct client *cl, int64_t now)
{
        for (size_t i = 0; i < cl->n_conns; i++) {
                struct conn *c = &cl->conns[i];

                if (c->state == CS_IDLE || !c->deadline || now < c->deadline)
                        continue;
                if (c->state == CS_GAP)
                        conn_begin_round(cl, c);
                else
                        conn_fail(cl, c, ERR_TIMEOUT, 0);
        }
}

/* Starts connections where this mode wants more: hold ramps up, churn and rate refill slots. */
static void client_fill(struct client *cl, int64_t now)
{
        for (size_t i = 0; i < cl->n_conns; i++) {
                struct conn *c = &cl->conns[i];

                if (cl->mode == MODE_HOLD) {
                        if (cl->started >= cl->total || cl->exchanging >= cl->ramp)
                                return;
                        if (c->state == CS_IDLE && c->id == UINT64_MAX)
                                conn_open(cl, c);
                        continue;
                }
                if (c->state != CS_IDLE || !c->restart)
                        continue;
                if (cl->mode == MODE_CHURN && cl->started >= cl->total) {
                        c->restart = false;
                        continue;
                }
                if (cl->mode == MODE_RATE) {
                        if (now >= cl->stop_at) {
                                c->restart = false;
                                continue;
                        }
                        if (now < c->deadline)
                                continue;
                }
                conn_open(cl, c);
        }
}

static size_t client_live(const struct client *cl)
{
        size_t n = 0;

        for (size_t i = 0; i < cl->n_conns; i++)
                n += cl->conns[i].state != CS_IDLE;
        return n;
}

/*
 * hold, --max-seconds over before every connection settled: the ones still opening fail, the
 * ones never started count as failed, and the established ones stay held as usual.
 */
static void hold_give_up(struct client *cl)
{
        uint64_t left = cl->total - cl->started;

        for (size_t i = 0; i < cl->n_conns; i++) {
                struct conn *c = &cl->conns[i];

                if (c->state == CS_CONNECTING || c->state == CS_EXCHANGE)
                        conn_fail(cl, c, ERR_TIMEOUT, 0);
        }
        cl->started = cl->total;
        cl->failed += left;
        cl->errs[ERR_TIMEOUT] += left;
        cl->settled += left;
        hold_write_ready(cl, hold_ready_path);
}

static void client_release(struct client *cl)
{
        if (cl->released)
                return;
        cl->released = true;
        cl->release_at = now_ms();
        for (size_t i = 0; i < cl->n_conns; i++)
                if (cl->conns[i].state == CS_HELD)
                        conn_begin_round(cl, &cl->conns[i]);
}

static void print_errs(const struct client *cl)
{
        char text[128];

        for (int i = 0; i < _ERR_MAX; i++)
                printf(" %s=%" PRIu64, err_names[i], cl->errs[i]);
        snprintf(text, sizeof(text), "%s", cl->last_errno ? strerror(cl->last_errno) : "none");
        /* One token, so that the summary stays key=value separated by spaces. */
        for (char *p = text; *p; p++)
                if (*p == ' ')
                        *p = '_';
        printf(" last_error=%s", text);
}

static int cmd_client(enum mode mode, int argc, char **argv)
{
        static const struct option opts[] = {
                { "to", required_argument, NULL, 'T' },
                { "conns", required_argument, NULL, 'n' },
                { "count", required_argument, NULL, 'n' },
                { "payload", required_argument, NULL, 'b' },
                { "hold-seconds", required_argument, NULL, 'H' },
                { "ready-file", required_argument, NULL, 'r' },
                { "ramp", required_argument, NULL, 'R' },
                { "concurrency", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "gap-ms", required_argument, NULL, 'g' },
                { "pause-ms", required_argument, NULL, 'P' },
                { "timeout", required_argument, NULL, 't' },
                { "max-seconds", required_argument, NULL, 'm' },
                {},
        };
        struct client cl = { .mode = mode, .timeout_ms = 10000, .ramp = 256, .gap_ms = 100, .pause_ms = 10 };
        const char *to = NULL;
        long count = -1, conc = -1, payload = mode == MODE_RATE ? 64 : -1, seconds = -1, hold_s = 3600;
        long max_s = 300;
        struct epoll_event ev, events[LOADGEN_BATCH];
        int64_t start, end_by, hold_until = 0, now;
        int opt, sfd;
        bool deadline_hit = false;

        prog_mode = mode == MODE_HOLD ? "hold" : mode == MODE_CHURN ? "churn" : "rate";
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'T': to = optarg; break;
                case 'n': count = parse_long(optarg, 1, 100000000, "--conns/--count"); break;
                case 'b': payload = parse_long(optarg, 1, 16 << 20, "--payload"); break;
                case 'H': hold_s = parse_long(optarg, 0, 86400, "--hold-seconds"); break;
                case 'r': hold_ready_path = optarg; break;
                case 'R': cl.ramp = (size_t)parse_long(optarg, 1, 1 << 20, "--ramp"); break;
                case 'c': conc = parse_long(optarg, 1, 1 << 20, "--concurrency"); break;
                case 's': seconds = parse_long(optarg, 1, 86400, "--seconds"); break;
                case 'g': cl.gap_ms = parse_long(optarg, 0, 600000, "--gap-ms"); break;
                case 'P': cl.pause_ms = parse_long(optarg, 0, 600000, "--pause-ms"); break;
                case 't': cl.timeout_ms = parse_long(optarg, 1, 3600, "--timeout") * 1000; break;
                case 'm': max_s = parse_long(optarg, 1, 86400, "--max-seconds"); break;
                default: die_usage("unknown option");
                }
        }
        if (optind != argc)
                die_usage("unexpected argument %s", argv[optind]);
        if (!to || endpoint_parse(to, true, &cl.to) < 0)
                die_usage("--to ADDR:PORT is required");
        if (payload < 1)
                die_usage("--payload is required");
        cl.payload_len = (size_t)payload;
        switch (mode) {
        case MODE_HOLD:
                if (count < 1)
                        die_usage("--conns is required");
                cl.total = (uint64_t)count;
                cl.n_conns = (size_t)count;
                break;
        case MODE_CHURN:
                if (count < 1 || conc < 1)
                        die_usage("--count and --concurrency are required");
                cl.total = (uint64_t)count;
                cl.n_conns = (size_t)(conc < count ? conc : count);
                break;
        case MODE_RATE:
                if (seconds < 1 || conc < 1)
                        die_usage("--seconds and --concurrency are required");
                cl.n_conns = (size_t)conc;
                max_s = seconds + cl.timeout_ms / 1000 * 3 + cl.gap_ms / 1000 + 5;
                break;
        }
        if (raise_nofile((rlim_t)cl.n_conns + 64) < (rlim_t)cl.n_conns + 16)
                die("cannot raise RLIMIT_NOFILE to %zu", cl.n_conns + 64);
        cl.conns = calloc(cl.n_conns, sizeof(*cl.conns));
        if (!cl.conns)
                die("out of memory");
        for (size_t i = 0; i < cl.n_conns; i++) {
                cl.conns[i].fd = -1;
                cl.conns[i].id = UINT64_MAX;
                cl.conns[i].restart = true;
                cl.conns[i].payload = malloc(cl.payload_len);
                if (!cl.conns[i].payload)
                        die("out of memory");
        }
        cl.ep = epoll_create1(EPOLL_CLOEXEC);
        if (cl.ep < 0)
                die("epoll_create1: %s", strerror(errno));
        sfd = signals_setup();
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &signal_tag };
        epoll_ctl(cl.ep, EPOLL_CTL_ADD, sfd, &ev);

        start = now_ms();
        end_by = start + max_s * 1000;
        if (mode == MODE_RATE) {
                cl.stop_at = start + seconds * 1000;
                /* Slots start spread over one cycle, so that they do not run in step: at any
                 * moment most of them are between their two rounds. */
                for (size_t i = 0; i < cl.n_conns; i++)
                        cl.conns[i].deadline = start + (int64_t)i * (cl.gap_ms + cl.pause_ms) / (int64_t)cl.n_conns;
        }
        client_fill(&cl, start);
        for (;;) {
                int n;

                now = now_ms();
                if (mode == MODE_HOLD && cl.settled == cl.total && !cl.released) {
                        if (!hold_until)
                                hold_until = now + hold_s * 1000;
                        if (now >= hold_until)
                                client_release(&cl);
                }
                if (mode == MODE_HOLD ? (cl.settled == cl.total && cl.released && client_live(&cl) == 0)
                                      : (client_live(&cl) == 0 &&
                                         (mode == MODE_CHURN ? cl.started >= cl.total : now >= cl.stop_at)))
                        break;
                /* The held phase is bounded by --hold-seconds and the signals, not by --max-seconds:
                 * the bound applies to opening the connections, and again to closing them. */
                if (mode == MODE_HOLD && cl.released && cl.release_at + max_s * 1000 > end_by && end_by)
                        end_by = cl.release_at + max_s * 1000;
                if (now >= end_by && mode == MODE_HOLD && !cl.released && cl.settled < cl.total) {
                        hold_give_up(&cl);
                        continue;
                }
                if (now >= end_by && !(mode == MODE_HOLD && cl.settled == cl.total && !cl.released)) {
                        deadline_hit = true;
                        break;
                }
                n = epoll_wait(cl.ep, events, LOADGEN_BATCH, LOADGEN_TICK_MS);
                if (n < 0 && errno != EINTR)
                        die("epoll_wait: %s", strerror(errno));
                for (int i = 0; i < n; i++) {
                        if (events[i].data.ptr == &signal_tag) {
                                struct signalfd_siginfo si;

                                while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                        if (si.ssi_signo == SIGUSR1 && !cl.mark_at)
                                                cl.mark_at = now_ms();
                                        else if (si.ssi_signo != SIGUSR1 && mode == MODE_HOLD)
                                                client_release(&cl);
                                        else if (si.ssi_signo != SIGUSR1)
                                                end_by = 0;
                                }
                                continue;
                        }
                        conn_event(&cl, events[i].data.ptr);
                }
                now = now_ms();
                client_sweep(&cl, now);
                /* Slots freed in this batch are reused only now, so that a later event of the
                 * same batch cannot be taken for the new connection in the slot. */
                client_fill(&cl, now);
        }
        if (deadline_hit) {
                for (size_t i = 0; i < cl.n_conns; i++)
                        if (cl.conns[i].state != CS_IDLE)
                                conn_fail(&cl, &cl.conns[i], ERR_TIMEOUT, 0);
                if (mode != MODE_RATE && cl.started < cl.total) {
                        cl.errs[ERR_TIMEOUT] += cl.total - cl.started;
                        cl.failed += cl.total - cl.started;
                }
        }
        /* A hold that gave up still says how far it got, so that nobody waits for it in vain. */
        if (mode == MODE_HOLD)
                hold_write_ready(&cl, hold_ready_path);
        now = now_ms();
        switch (mode) {
        case MODE_HOLD:
                printf("mode=hold conns=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " established=%" PRIu64
                       " elapsed_ms=%" PRId64,
                       cl.total, cl.ok, cl.failed, cl.established, now - start);
                break;
        case MODE_CHURN:
                printf("mode=churn count=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " elapsed_ms=%" PRId64, cl.total,
                       cl.ok, cl.failed, now - start);
                break;
        case MODE_RATE:
                printf("mode=rate started=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " elapsed_ms=%" PRId64
                       " marked=%d mark_ms=%" PRId64 " failed_before_mark=%" PRIu64 " ok_after_mark=%" PRIu64
                       " failed_after_mark=%" PRIu64 " established_failed=%" PRIu64 " straddled=%" PRIu64
                       " straddled_ok=%" PRIu64,
                       cl.started, cl.ok, cl.failed, now - start, cl.mark_at != 0,
                       cl.mark_at ? cl.mark_at - start : 0, cl.failed_before_mark, cl.ok_after_mark,
                       cl.failed_after_mark, cl.established_failed, cl.straddled, cl.straddled_ok);
                break;
        }
        print_errs(&cl);
        printf(" deadline_hit=%d\n", deadline_hit);
        fflush(stdout);
        for (size_t i = 0; i < cl.n_conns; i++) {
                if (cl.conns[i].fd >= 0)
                        close(cl.conns[i].fd);
                free(cl.conns[i].payload);
        }
        free(cl.conns);
        close(cl.ep);
        close(sfd);
        return cl.failed == 0 && !deadline_hit ? 0 : 1;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                die_usage("a mode is required");
        if (strcmp(argv[1], "echo-server") == 0)
                return cmd_echo_server(argc - 1, argv + 1);
        if (strcmp(argv[1], "hold") == 0)
                return cmd_client(MODE_HOLD, argc - 1, argv + 1);
        if (strcmp(argv[1], "churn") == 0)
                return cmd_client(MODE_CHURN, argc - 1, argv + 1);
        if (strcmp(argv[1], "rate") == 0)
                return cmd_client(MODE_RATE, argc - 1, argv + 1);
        die_usage("unknown mode %s", argv[1]);
}
