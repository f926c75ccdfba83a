/*
 * proxy/relay: the relay between a client and an upstream, driven step by step on one worker's
 * loop (no namespace, no packet filter: the destination is given, as the original destination
 * would be). It pins what the relay promises whatever the transport under it: bytes arrive
 * whole and in order both ways, a half-close in either direction is passed on while the other
 * direction goes on, a reset in either direction becomes a reset on the other side, a
 * receiver that does not read stops the sender with a bounded amount held in between, bulk
 * transfers switch to splice and small messages back to copying, and a refused connect resets
 * the client.
 *
 * Each behaviour runs over real loopback TCP (the relay connects itself), over AF_UNIX
 * socketpairs (relay_attach), and over a test transport on TCP that behaves as TLS will: it
 * takes everything the socket has into a buffer of its own and hands it out 100 bytes at a
 * time (so a short receive does not mean the socket is drained, and epoll never reports what
 * it holds), cannot splice, and needs a second call to close its write side.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/strbuf.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/relay.h"
#include "proxy/settings.h"
#include "proxy/worker.h"
#include "tap.h"

/* How long a step may take before the test gives up on it: a failure, not a measurement. */
#define STEP_DEADLINE_MS 5000

enum mode {
        MODE_TCP = 0,           /* the relay connects to a listening upstream over loopback */
        MODE_PAIR,              /* two AF_UNIX socketpairs, attached */
        MODE_HELD,              /* loopback TCP under the holding test transport, attached */
        _MODE_MAX,
};

static const char *const mode_names[_MODE_MAX] = { "tcp", "socketpair", "held-transport" };

struct harness {
        enum mode mode;
        struct proxy p;
        struct worker w;
        int front;                      /* where the test's client connects; the relay gets the accepted end */
        int back;                       /* the upstream's listener */
        struct sockaddr_storage back_addr;
        int client;                     /* the test's client end */
        int server;                     /* the test's upstream end */
};

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_nonblock(int fd)
{
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int listen_loopback(struct sockaddr_storage *ret)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                abort();
        memset(ret, 0, sizeof(*ret));
        memcpy(ret, &a, sizeof(a));
        return fd;
}

static const char *cur_mode = "";

/* tap_ok with the harness's mode in front of the description. */
#define T_OK(cond, fmt, ...) tap_ok((cond), "[%s] " fmt, cur_mode, ##__VA_ARGS__)

static void harness_init(struct harness *h, enum mode m)
{
        char *const argv[] = { "proxy", NULL };
        struct metrics_identity id = { "w", "ns", "app", "v1", "Kubernetes" };
        char err[256];

        memset(h, 0, sizeof(*h));
        h->mode = m;
        cur_mode = mode_names[m];
        if (proxy_settings_parse(&h->p.settings, 1, argv, NULL, err, sizeof(err)) < 0 ||
            metrics_new(&h->p.metrics, &id) < 0)
                abort();
        h->p.workers = &h->w;
        h->p.n_workers = 1;
        h->w.proxy = &h->p;
        h->w.settings = &h->p.settings;
        h->w.metrics = h->p.metrics;
        h->w.outbound.fd = h->w.inbound.fd = -1;
        pthread_mutex_init(&h->w.lock, NULL);
        pipe_pool_init(&h->w.pipes, 16, 64);
        h->w.scratch = malloc(RELAY_SCRATCH_SIZE);
        if (!h->w.scratch || loop_new(&h->w.loop) < 0)
                abort();
        h->front = h->back = h->client = h->server = -1;
}

static void harness_deinit(struct harness *h)
{
        if (h->client >= 0)
                close(h->client);
        if (h->server >= 0)
                close(h->server);
        if (h->front >= 0)
                close(h->front);
        if (h->back >= 0)
                close(h->back);
        worker_deinit(&h->w);
        h->p.metrics = metrics_free(h->p.metrics);
}

/* Runs the loop until cond(h) holds or the deadline passes; returns whether it held. */
static bool drive_until(struct harness *h, bool (*cond)(struct harness *h))
{
        uint64_t end = now_ms() + STEP_DEADLINE_MS;

        while (!cond(h)) {
                if (now_ms() > end)
                        return false;
                if (loop_run_once(h->w.loop, 5) < 0)
                        return false;
        }
        return true;
}

/* Runs the loop for a few rounds that find nothing to do, so the relay has settled. */
static void drive_idle(struct harness *h)
{
        for (int i = 0; i < 20; i++)
                loop_run_once(h->w.loop, 2);
}

static bool server_accepted(struct harness *h)
{
        struct pollfd pfd = { .fd = h->back, .events = POLLIN };

        if (h->server < 0 && poll(&pfd, 1, 0) == 1) {
                h->server = accept4(h->back, NULL, NULL, SOCK_CLOEXEC);
                set_nonblock(h->server);
        }
        return h->server >= 0;
}

static bool no_relay_left(struct harness *h)
{
        return h->w.relays == NULL;
}

/*
 * The holding transport: what TLS does to a relay. recv takes everything the socket has into
 * the transport's buffer and returns at most HELD_CHUNK bytes of it; pending says how much is
 * held; there is no splice; shutw answers -EAGAIN once before it closes the write side.
 */
#define HELD_CHUNK 100

struct held {
        char buf[65536];
        size_t off, len;
        bool shutw_asked;
};

static ssize_t held_recv(struct conn *c, void *buf, size_t len)
{
        struct held *h = c->xprt_ctx;

        if (h->off == h->len) {
                ssize_t n = read(c->fd, h->buf, sizeof(h->buf));
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                h->off = 0;
                h->len = (size_t)n;
        }
        if (len > HELD_CHUNK)
                len = HELD_CHUNK;
        if (len > h->len - h->off)
                len = h->len - h->off;
        memcpy(buf, h->buf + h->off, len);
        h->off += len;
        return (ssize_t)len;
}

static ssize_t held_send(struct conn *c, const void *buf, size_t len)
{
        ssize_t n = write(c->fd, buf, len);

        return n < 0 ? -errno : n;
}

static size_t held_pending(const struct conn *c)
{
        const struct held *h = c->xprt_ctx;

        return h->len - h->off;
}

static int held_shutw(struct conn *c)
{
        struct held *h = c->xprt_ctx;

        if (!h->shutw_asked) {
                h->shutw_asked = true;
                return -EAGAIN;
        }
        return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void held_close(struct conn *c)
{
        free(c->xprt_ctx);
        close(c->fd);
}

static void held_abort(struct conn *c)
{
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        held_close(c);
}

static const struct xprt_ops xprt_held = {
        .name = "held",
        .recv = held_recv,
        .send = held_send,
        .pending = held_pending,
        .shutw = held_shutw,
        .abort = held_abort,
        .close = held_close,
        .splice_in = NULL,
        .splice_out = NULL,
};

static void conn_held(struct conn *c, int fd)
{
        conn_init(c, fd, &xprt_held);
        c->xprt_ctx = calloc(1, sizeof(struct held));
        if (!c->xprt_ctx)
                abort();
}

/* A connected TCP pair over loopback: *a the connecting end, *b the accepted one (non-blocking). */
static bool tcp_pair(int *a, int *b)
{
        struct sockaddr_storage addr;
        int l = listen_loopback(&addr);

        *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(*a, (struct sockaddr *)&addr, sizeof(struct sockaddr_in)) < 0)
                return false;
        *b = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        close(l);
        set_nonblock(*a);
        return *b >= 0;
}

/* Client connected through the relay to an upstream, in the harness's mode. */
static bool harness_connect(struct harness *h)
{
        struct sockaddr_storage front_addr, peer;
        socklen_t len = sizeof(peer);
        struct conn client, upstream;
        int accepted, relay_client, relay_upstream, sp[2];

        if (h->mode == MODE_TCP) {
                h->front = listen_loopback(&front_addr);
                h->back = listen_loopback(&h->back_addr);
                h->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (connect(h->client, (struct sockaddr *)&front_addr, sizeof(struct sockaddr_in)) < 0)
                        return false;
                set_nonblock(h->client);
                accepted = accept4(h->front, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (accepted < 0)
                        return false;
                relay_start_to(&h->w, RELAY_OUTBOUND, accepted, &peer, &h->back_addr);
                return drive_until(h, server_accepted) && h->w.relays != NULL;
        }
        /* Attached: the destination is only the series' label (no packet goes there). */
        struct sockaddr_in label = { .sin_family = AF_INET, .sin_port = htons(80) };
        inet_pton(AF_INET, "198.18.0.1", &label.sin_addr);
        memset(&h->back_addr, 0, sizeof(h->back_addr));
        memcpy(&h->back_addr, &label, sizeof(label));
        memset(&peer, 0, sizeof(peer));
        peer.ss_family = AF_INET;
        if (h->mode == MODE_PAIR) {
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0)
                        return false;
                h->client = sp[0];
                relay_client = sp[1];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0)
                        return false;
                relay_upstream = sp[0];
                h->server = sp[1];
                conn_init(&client, relay_client, &xprt_raw);
                conn_init(&upstream, relay_upstream, &xprt_raw);
        } else {
                if (!tcp_pair(&h->client, &relay_client) || !tcp_pair(&h->server, &relay_upstream))
                        return false;
                conn_held(&client, relay_client);
                conn_held(&upstream, relay_upstream);
        }
        relay_attach(&h->w, RELAY_OUTBOUND, &client, &upstream, &peer, &h->back_addr);
        return h->w.relays != NULL;
}

/* Reads exactly len bytes from fd (non-blocking) while driving the loop; false on EOF, error or deadline. */
static bool read_exact(struct harness *h, int fd, char *buf, size_t len)
{
        uint64_t end = now_ms() + STEP_DEADLINE_MS;
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, buf + got, len - got);
                if (n > 0) {
                        got += (size_t)n;
                        continue;
                }
                if (n == 0 || errno != EAGAIN || now_ms() > end)
                        return false;
                loop_run_once(h->w.loop, 5);
        }
        return true;
}

/* What a read on fd ends with once the loop has run: 0 for EOF, or the errno (EAGAIN: nothing yet). */
static int read_outcome(struct harness *h, int fd)
{
        uint64_t end = now_ms() + STEP_DEADLINE_MS;
        char c;

        for (;;) {
                ssize_t n = read(fd, &c, 1);
                if (n == 0)
                        return 0;
                if (n > 0)
                        return -1;      /* unexpected data */
                if (errno != EAGAIN || now_ms() > end)
                        return errno;
                loop_run_once(h->w.loop, 5);
        }
}

static void reset_close(int fd)
{
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
}

static struct metrics_series_counts series_counts(struct harness *h)
{
        struct metrics_series_counts c;

        metrics_series_read(metrics_series_get(h->p.metrics, METRICS_OUTBOUND, (struct sockaddr *)&h->back_addr, "-"),
                            &c);
        return c;
}

static uint64_t metric_value(struct harness *h, const char *name)
{
        struct strbuf out = STRBUF_NULL;
        uint64_t v = UINT64_MAX;
        char line[128];
        const char *p;

        /* The sample line, "\nNAME VALUE", not the # HELP or # TYPE line. */
        snprintf(line, sizeof(line), "\n%s ", name);
        if (metrics_render(h->p.metrics, NULL, METRICS_FORMAT_PROMETHEUS, &out) == 0 &&
            (p = strstr(strbuf_str(&out), line)))
                v = strtoull(p + strlen(line), NULL, 10);
        strbuf_deinit(&out);
        return v;
}

static void test_half_close_client_first(enum mode m)
{
        struct harness h;
        char buf[16];

        harness_init(&h, m);
        T_OK(harness_connect(&h), "half-close, client first: the relay connects to the upstream");
        T_OK(write(h.client, "hello", 5) == 5 && read_exact(&h, h.server, buf, 5) && memcmp(buf, "hello", 5) == 0,
               "half-close, client first: the request reaches the upstream");
        shutdown(h.client, SHUT_WR);
        T_OK(read_outcome(&h, h.server) == 0, "half-close, client first: the client's FIN reaches the upstream");
        T_OK(write(h.server, "world!", 6) == 6 && read_exact(&h, h.client, buf, 6) && memcmp(buf, "world!", 6) == 0,
               "half-close, client first: the upstream still answers after the client's FIN");
        T_OK(h.w.relays != NULL, "half-close, client first: the relay stays while one direction is open");
        shutdown(h.server, SHUT_WR);
        T_OK(read_outcome(&h, h.client) == 0, "half-close, client first: the upstream's FIN reaches the client");
        T_OK(drive_until(&h, no_relay_left), "half-close, client first: the relay ends when both directions are closed");
        struct metrics_series_counts c = series_counts(&h);
        T_OK(c.opened == 1 && c.closed == 1 && c.received == 5 && c.sent == 6,
               "half-close, client first: counted once, 5 bytes received and 6 sent (got %lu/%lu/%lu/%lu)",
               (unsigned long)c.opened, (unsigned long)c.closed, (unsigned long)c.received, (unsigned long)c.sent);
        harness_deinit(&h);
}

static void test_half_close_upstream_first(enum mode m)
{
        struct harness h;
        char buf[16];

        harness_init(&h, m);
        T_OK(harness_connect(&h), "half-close, upstream first: connected");
        /* A server that speaks first and then closes its side (a banner, then FIN). */
        T_OK(write(h.server, "220 hi\r\n", 8) == 8 && read_exact(&h, h.client, buf, 8),
               "half-close, upstream first: a server that speaks first is relayed");
        shutdown(h.server, SHUT_WR);
        T_OK(read_outcome(&h, h.client) == 0, "half-close, upstream first: the upstream's FIN reaches the client");
        T_OK(write(h.client, "QUIT\r\n", 6) == 6 && read_exact(&h, h.server, buf, 6) && memcmp(buf, "QUIT\r\n", 6) == 0,
               "half-close, upstream first: the client can still send after the upstream's FIN");
        close(h.client);
        h.client = -1;
        T_OK(read_outcome(&h, h.server) == 0, "half-close, upstream first: the client's close reaches the upstream as a FIN");
        T_OK(drive_until(&h, no_relay_left), "half-close, upstream first: the relay ends");
        harness_deinit(&h);
}

static void test_reset_from_client(enum mode m)
{
        struct harness h;
        char buf[4];

        harness_init(&h, m);
        T_OK(harness_connect(&h), "client reset: connected");
        T_OK(write(h.client, "abc", 3) == 3 && read_exact(&h, h.server, buf, 3), "client reset: data flows first");
        reset_close(h.client);
        h.client = -1;
        T_OK(read_outcome(&h, h.server) == ECONNRESET, "client reset: the upstream sees a reset, not a FIN");
        T_OK(drive_until(&h, no_relay_left), "client reset: the relay ends");
        harness_deinit(&h);
}

static void test_reset_from_upstream(enum mode m)
{
        struct harness h;
        char buf[4];

        harness_init(&h, m);
        T_OK(harness_connect(&h), "upstream reset: connected");
        T_OK(write(h.client, "abc", 3) == 3 && read_exact(&h, h.server, buf, 3), "upstream reset: data flows first");
        reset_close(h.server);
        h.server = -1;
        T_OK(read_outcome(&h, h.client) == ECONNRESET, "upstream reset: the client sees a reset, not a FIN");
        T_OK(drive_until(&h, no_relay_left), "upstream reset: the relay ends");
        harness_deinit(&h);
}

static void fill_pattern(char *buf, size_t len, uint64_t offset)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (char)((offset + i) % 251);
}

/* Reads everything until EOF, checking the pattern; returns the byte count or -1 on a mismatch. */
static int64_t drain_checked(struct harness *h, int fd)
{
        static char buf[65536], want[65536];
        uint64_t end = now_ms() + STEP_DEADLINE_MS * 4;
        int64_t total = 0;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n > 0) {
                        fill_pattern(want, (size_t)n, (uint64_t)total);
                        if (memcmp(buf, want, (size_t)n) != 0)
                                return -1;
                        total += n;
                        continue;
                }
                if (n == 0)
                        return total;
                if (errno != EAGAIN || now_ms() > end) {
                        printf("# drained %ld bytes, then %s\n", (long)total, n < 0 && errno != EAGAIN ? strerror(errno) : "the deadline");
                        return -1;
                }
                loop_run_once(h->w.loop, 5);
        }
}

static void test_backpressure(enum mode m)
{
        static char buf[65536];
        struct harness h;
        uint64_t written = 0;
        int stalled = 0;
        size_t bound;

        harness_init(&h, m);
        T_OK(harness_connect(&h), "backpressure: connected");
        /* The upstream reads nothing: write until the client is stopped for many rounds. */
        while (stalled < 50) {
                fill_pattern(buf, sizeof(buf), written);
                ssize_t n = write(h.client, buf, sizeof(buf));
                if (n > 0) {
                        written += (uint64_t)n;
                        stalled = 0;
                } else {
                        stalled++;
                }
                loop_run_once(h.w.loop, 2);
                if (written > 256u << 20)
                        break;
        }
        T_OK(written < 256u << 20, "backpressure: a client whose upstream does not read is stopped (%lu bytes taken)",
               (unsigned long)written);
        struct relay *r = h.w.relays;
        const struct relay_flow *f = r ? &r->flow[RELAY_FLOW_UP] : NULL;
        bound = (size_t)h.w.pipes.pipe_size > RELAY_SCRATCH_SIZE ? (size_t)h.w.pipes.pipe_size : RELAY_SCRATCH_SIZE;
        T_OK(f && f->in_pipe + (f->pending_len - f->pending_off) <= bound,
               "backpressure: the relay holds at most one pipe or one buffer of it (%zu bytes, bound %zu)",
               f ? f->in_pipe + (f->pending_len - f->pending_off) : 0, bound);
        shutdown(h.client, SHUT_WR);
        T_OK(drain_checked(&h, h.server) == (int64_t)written,
               "backpressure: once the upstream reads, every byte arrives in order");
        harness_deinit(&h);
}

static void test_copy_splice_switch(enum mode m)
{
        static char buf[1 << 20];
        struct harness h;
        uint64_t spliced0, copied0, spliced1, copied1, spliced2, copied2;
        char small[100];
        size_t off = 0;

        harness_init(&h, m);
        T_OK(harness_connect(&h), "copy/splice: connected");
        spliced0 = metric_value(&h, "pilotfish_bytes_spliced_total");
        copied0 = metric_value(&h, "pilotfish_bytes_copied_total");
        /* 1 MiB at once: reads fill the scratch buffer, so the flow goes bulk. */
        fill_pattern(buf, sizeof(buf), 0);
        uint64_t end = now_ms() + STEP_DEADLINE_MS;
        static char got[1 << 20];
        size_t recvd = 0;
        while ((off < sizeof(buf) || recvd < sizeof(buf)) && now_ms() < end) {
                ssize_t n;
                if (off < sizeof(buf) && (n = write(h.client, buf + off, sizeof(buf) - off)) > 0)
                        off += (size_t)n;
                loop_run_once(h.w.loop, 1);
                while (recvd < sizeof(got) && (n = read(h.server, got + recvd, sizeof(got) - recvd)) > 0)
                        recvd += (size_t)n;
        }
        T_OK(recvd == sizeof(buf) && memcmp(got, buf, sizeof(buf)) == 0, "copy/splice: 1 MiB arrives whole and in order");
        spliced1 = metric_value(&h, "pilotfish_bytes_spliced_total");
        copied1 = metric_value(&h, "pilotfish_bytes_copied_total");
        if (m == MODE_HELD)
                T_OK(spliced1 == spliced0 && copied1 - copied0 == sizeof(buf),
                     "copy/splice: a transport that cannot splice has every byte copied (copied %lu, spliced %lu)",
                     (unsigned long)(copied1 - copied0), (unsigned long)(spliced1 - spliced0));
        else
                T_OK(spliced1 > spliced0 && spliced1 - spliced0 >= sizeof(buf) / 2,
                     "copy/splice: most of a bulk transfer is spliced (%lu of %zu bytes)",
                     (unsigned long)(spliced1 - spliced0), sizeof(buf));
        /* Then a request/response exchange of small messages: copied again, not spliced. */
        bool ok = true;
        for (int i = 0; i < 20 && ok; i++) {
                memset(small, 'a' + i % 26, sizeof(small));
                ok = write(h.client, small, sizeof(small)) == (ssize_t)sizeof(small) &&
                     read_exact(&h, h.server, got, sizeof(small)) && memcmp(got, small, sizeof(small)) == 0 &&
                     write(h.server, small, 10) == 10 && read_exact(&h, h.client, got, 10);
        }
        T_OK(ok, "copy/splice: small messages after the bulk transfer go through both ways");
        spliced2 = metric_value(&h, "pilotfish_bytes_spliced_total");
        copied2 = metric_value(&h, "pilotfish_bytes_copied_total");
        T_OK(copied2 - copied1 >= 20 * 110 - sizeof(small) && spliced2 - spliced1 <= sizeof(small),
               "copy/splice: small messages are copied once reads are small (copied %lu, spliced %lu)",
               (unsigned long)(copied2 - copied1), (unsigned long)(spliced2 - spliced1));
        harness_deinit(&h);
}

static void test_connect_refused(enum mode m)
{
        struct harness h;
        struct sockaddr_storage front_addr, peer, dead;
        socklen_t len = sizeof(peer);
        int dead_fd, accepted;

        harness_init(&h, m);
        /* A port that was just listening and is closed now: nothing answers there. */
        dead_fd = listen_loopback(&dead);
        close(dead_fd);
        h.front = listen_loopback(&front_addr);
        h.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        connect(h.client, (struct sockaddr *)&front_addr, sizeof(struct sockaddr_in));
        set_nonblock(h.client);
        accepted = accept4(h.front, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        relay_start_to(&h.w, RELAY_OUTBOUND, accepted, &peer, &dead);
        T_OK(read_outcome(&h, h.client) == ECONNRESET, "connect refused: the client is reset");
        T_OK(drive_until(&h, no_relay_left), "connect refused: the relay ends");
        struct metrics_series_counts c;
        metrics_series_read(metrics_series_get(h.p.metrics, METRICS_OUTBOUND, (struct sockaddr *)&dead, "UF"), &c);
        T_OK(c.opened == 1 && c.closed == 1, "connect refused: counted opened and closed with flag UF");
        harness_deinit(&h);
}

static void test_idle_relay_holds_nothing(enum mode m)
{
        struct harness h;
        char buf[8];

        harness_init(&h, m);
        T_OK(harness_connect(&h), "idle: connected");
        T_OK(write(h.client, "ping", 4) == 4 && read_exact(&h, h.server, buf, 4) && write(h.server, "pong", 4) == 4 &&
               read_exact(&h, h.client, buf, 4), "idle: one exchange");
        drive_idle(&h);
        struct relay *r = h.w.relays;
        bool empty = r;
        for (int i = 0; r && i < 2; i++)
                empty = empty && r->flow[i].pipe[0] < 0 && !r->flow[i].pending;
        T_OK(empty, "idle: an idle relay holds neither a pipe nor a buffer");
        harness_deinit(&h);
}

/* A client that sent before the relay started: its bytes are read while the connect runs. */
static void test_preread(enum mode m, bool fin)
{
        struct harness h;
        struct sockaddr_storage front_addr, peer;
        socklen_t len = sizeof(peer);
        char buf[32];
        int accepted;

        harness_init(&h, m);
        h.front = listen_loopback(&front_addr);
        h.back = listen_loopback(&h.back_addr);
        h.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        connect(h.client, (struct sockaddr *)&front_addr, sizeof(struct sockaddr_in));
        set_nonblock(h.client);
        T_OK(write(h.client, "GET / HTTP/1.1\r\n\r\n", 18) == 18, "pre-read%s: the client speaks first", fin ? ", then FIN" : "");
        if (fin)
                shutdown(h.client, SHUT_WR);
        accepted = accept4(h.front, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        relay_start_to(&h.w, RELAY_OUTBOUND, accepted, &peer, &h.back_addr);
        struct relay *r = h.w.relays;
        T_OK(r && r->connecting, "pre-read%s: the upstream connect is under way at once", fin ? ", then FIN" : "");
        /* One round: the client's readiness comes with (or before) the connect's. */
        loop_run_once(h.w.loop, 0);
        T_OK(h.w.relays && (r->preread_len == 18 || !r->connecting) && r->tracker.ops == &tracker_opaque,
             "pre-read%s: the first bytes are read during the connect and the tracker is chosen (opaque)",
             fin ? ", then FIN" : "");
        T_OK(drive_until(&h, server_accepted) && read_exact(&h, h.server, buf, 18) && memcmp(buf, "GET / HTTP/1.1\r\n\r\n", 18) == 0,
             "pre-read%s: what was read ahead reaches the upstream first and unchanged", fin ? ", then FIN" : "");
        if (fin)
                T_OK(read_outcome(&h, h.server) == 0, "pre-read, then FIN: the FIN read ahead follows the bytes");
        T_OK(write(h.server, "ok", 2) == 2 && read_exact(&h, h.client, buf, 2), "pre-read%s: the answer comes back",
             fin ? ", then FIN" : "");
        struct metrics_series_counts c = series_counts(&h);
        T_OK(c.received == 18 && c.sent == 2, "pre-read%s: bytes read ahead are counted once (received %lu)",
             fin ? ", then FIN" : "", (unsigned long)c.received);
        harness_deinit(&h);
}

/* Regression: the access log said connect_error and the metrics refused for a reset during
 * the handshake. One table now decides both, and each errno has one meaning. */
static void test_connect_errno_table(void)
{
        static const struct {
                int err;
                const char *end, *flag;
                enum metrics_connect_failure cause;
        } cases[] = {
                { ECONNREFUSED, "connect_refused", "UF", METRICS_CONNECT_REFUSED },
                { ECONNRESET, "connect_refused", "UF", METRICS_CONNECT_REFUSED },
                { ETIMEDOUT, "connect_timeout", "UF", METRICS_CONNECT_TIMEOUT },
                { EHOSTUNREACH, "connect_unreachable", "UF", METRICS_CONNECT_UNREACHABLE },
                { ENETUNREACH, "connect_unreachable", "UF", METRICS_CONNECT_UNREACHABLE },
                { EHOSTDOWN, "connect_unreachable", "UF", METRICS_CONNECT_UNREACHABLE },
                { ENETDOWN, "connect_unreachable", "UF", METRICS_CONNECT_UNREACHABLE },
                { EACCES, "connect_error", "UF", METRICS_CONNECT_OTHER },
                { EADDRNOTAVAIL, "connect_error", "UF", METRICS_CONNECT_OTHER },
        };

        cur_mode = "table";
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                for (int sign = 1; sign >= -1; sign -= 2) {
                        enum relay_end e = relay_end_from_connect_errno(sign * cases[i].err);
                        T_OK(strcmp(relay_end_str(e), cases[i].end) == 0 && strcmp(relay_end_flag(e), cases[i].flag) == 0 &&
                             relay_end_connect_failure(e) == cases[i].cause,
                             "connect errno %s%s: %s, flag %s, counted as %s (got %s, %s, %s)", sign < 0 ? "-" : "",
                             strerrorname_np(cases[i].err), cases[i].end, cases[i].flag,
                             metrics_connect_failure_str(cases[i].cause), relay_end_str(e), relay_end_flag(e),
                             metrics_connect_failure_str(relay_end_connect_failure(e)));
                }
        }
}

int main(void)
{
        for (enum mode m = 0; m < _MODE_MAX; m++) {
                test_half_close_client_first(m);
                test_half_close_upstream_first(m);
                if (m != MODE_PAIR) {
                        /* AF_UNIX has no reset. */
                        test_reset_from_client(m);
                        test_reset_from_upstream(m);
                }
                test_backpressure(m);
                test_copy_splice_switch(m);
                test_idle_relay_holds_nothing(m);
        }
        test_connect_refused(MODE_TCP);
        test_preread(MODE_TCP, false);
        test_preread(MODE_TCP, true);
        test_connect_errno_table();
        return tap_done();
}
