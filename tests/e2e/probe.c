/*
 * probe: the traffic endpoint of the end-to-end tests.
 *
 * The e2e tests prove interception by sending real connections through the rules that
 * `pilotfish iptables` programs and looking at where they land. This tool is both ends:
 *
 *   probe listen --port P [--addr A] [--transparent] [--udp] [--count N] [--ready-file F]
 *                [--name NAME] [--timeout S] [--echo | --echo-after-eof | --shut-first | --linger0]
 *                [--stall MS]
 *   probe connect --to ADDR:PORT [--from ADDR] [--udp] [--timeout S]
 *                 [--send-file F] [--recv-file F] [--shutdown-write] [--expect-reset]
 *                 [--linger0] [--hold MS]
 *
 * Every event is one line on stdout, `key=value` separated by spaces, so a shell test can grep
 * it. The listener answers each connection with a line naming itself, its local address, the
 * peer and the original destination, and the client prints that line as `reply=...`: the
 * client alone therefore knows which listener served it and what the listener saw.
 *
 * The proxy tests need more of TCP than "where did it land", so both ends have stream modes:
 *
 *   - `listen --echo` sends back every byte as it arrives, and `--echo-after-eof` reads until
 *     the client's FIN before it sends anything back: a reply that arrives at all proves the FIN
 *     crossed every hop while the other direction stayed open (a half-close kept faithful);
 *     `--shut-first` is the mirror image: the server answers and sends its FIN at once, then
 *     counts what the client still sends until the client's FIN;
 *   - `connect --send-file F` sends F instead of the hello line and reads whatever comes back
 *     until the server's EOF (and F is all sent), into `--recv-file`, so a shell test compares
 *     hashes;
 *     `--shutdown-write` half-closes after sending;
 *   - `listen --stall MS` (echo modes) waits MS milliseconds after accepting before it reads
 *     anything: a slow reader, to see how much the hops in between take on meanwhile;
 *   - `--linger0` ends a connection with a reset (SO_LINGER 0) instead of a FIN, on either side;
 *     `connect --expect-reset` succeeds only when the connection ends in ECONNRESET (a FIN or a
 *     reply followed by a FIN is a failure) and says after how many milliseconds;
 *   - `connect --hold MS` keeps the connection open MS milliseconds after the exchange;
 *   - each listener connection ends with a line `done ... end=eof|timeout|ECONNRESET|...`, so
 *     the server's view of how the client left is checkable too.
 *
 * Failures name the errno (`ECONNRESET`, `ECONNREFUSED`, ...) next to its text.
 *
 * The original destination is read with SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6),
 * which consult conntrack. The kernel answers these only for TCP (and SCTP); for UDP the
 * listener always prints `origdst=none`. A connection that conntrack does not track prints
 * `origdst=none` too; a tracked connection without NAT prints its own local address.
 *
 * Nothing blocks without a deadline: every wait is a poll() bounded by --timeout (default 5 s).
 * Exit status: 0 success, 1 failure or timeout (a message on stderr), 2 usage error.
 * It is deliberately one file with no project library, so it can be built and run anywhere.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h; both are 80, defined here so
 * the probe does not depend on kernel UAPI headers that clash with glibc's netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define PROBE_LINE_MAX 512
#define PROBE_ADDR_MAX (INET6_ADDRSTRLEN + 8)
#define PROBE_CHUNK 65536
/* What --echo-after-eof keeps before it answers; the tests send a few MiB at most. */
#define PROBE_ECHO_MAX (256u << 20)

struct endpoint {
        struct sockaddr_storage ss;
        socklen_t len;
};

static const char *prog_mode = "probe";

static _Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die_usage(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "probe %s: ", prog_mode);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n"
                "usage: probe listen --port P [--addr A] [--transparent] [--udp] [--count N]\n"
                "                    [--ready-file F] [--name NAME] [--timeout S]\n"
                "                    [--echo | --echo-after-eof | --shut-first | --linger0]\n"
                "       probe connect --to ADDR:PORT [--from ADDR] [--udp] [--timeout S]\n"
                "                     [--send-file F] [--recv-file F] [--shutdown-write]\n"
                "                     [--expect-reset] [--linger0] [--hold MS]\n"
                "IPv6 addresses are written in [brackets]; --count 0 serves until --timeout idle seconds pass.\n");
        exit(2);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, for poll(); 0 once it has passed. */
static int remaining_ms(int64_t deadline)
{
        int64_t left = deadline - now_ms();

        if (left <= 0)
                return 0;
        return left > INT_MAX ? INT_MAX : (int)left;
}

/* The symbolic name of an errno value, for messages a test can grep ("ECONNRESET"). */
static const char *errno_name(int e)
{
        static const struct {
                int e;
                const char *name;
        } names[] = {
                { ECONNRESET, "ECONNRESET" }, { ECONNREFUSED, "ECONNREFUSED" }, { ETIMEDOUT, "ETIMEDOUT" },
                { EPIPE, "EPIPE" }, { ECONNABORTED, "ECONNABORTED" }, { EHOSTUNREACH, "EHOSTUNREACH" },
                { ENETUNREACH, "ENETUNREACH" }, { EADDRINUSE, "EADDRINUSE" }, { EADDRNOTAVAIL, "EADDRNOTAVAIL" },
                { EACCES, "EACCES" }, { EPERM, "EPERM" }, { EINVAL, "EINVAL" }, { ENOTCONN, "ENOTCONN" },
                { EAGAIN, "EAGAIN" }, { EINTR, "EINTR" }, { ENOMEM, "ENOMEM" }, { ENOENT, "ENOENT" },
                { EMFILE, "EMFILE" }, { ENFILE, "ENFILE" }, { ENOBUFS, "ENOBUFS" }, { EBADF, "EBADF" },
                { EAFNOSUPPORT, "EAFNOSUPPORT" }, { ENOPROTOOPT, "ENOPROTOOPT" }, { EIO, "EIO" },
        };
        static _Thread_local char other[24];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].e == e)
                        return names[i].name;
        snprintf(other, sizeof(other), "errno%d", e);
        return other;
}

/* "text (ENAME)" for messages; one static buffer, so one call per message. */
static const char *errno_text(int e)
{
        static _Thread_local char buf[128];

        snprintf(buf, sizeof(buf), "%s (%s)", strerror(e), errno_name(e));
        return buf;
}

static long parse_long(const char *s, long min, long max, const char *option)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                die_usage("bad %s %s", option, s);
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

        memset(ret, 0, sizeof(*ret));
        if (text[0] == '[') {
                const char *close = strchr(text, ']');

                if (!close)
                        return -EINVAL;
                hlen = (size_t)(close - text - 1);
                if (hlen >= sizeof(host))
                        return -EINVAL;
                memcpy(host, text + 1, hlen);
                host[hlen] = '\0';
                if (close[1] == ':')
                        port_text = close + 2;
                else if (close[1] != '\0')
                        return -EINVAL;
        } else {
                /* Unbracketed: "A:P" with exactly one colon, or a bare address (v4 or v6). */
                const char *colon = with_port ? strchr(text, ':') : NULL;

                if (colon && strchr(colon + 1, ':'))
                        return -EINVAL;
                hlen = colon ? (size_t)(colon - text) : strlen(text);
                if (hlen >= sizeof(host))
                        return -EINVAL;
                memcpy(host, text, hlen);
                host[hlen] = '\0';
                if (colon)
                        port_text = colon + 1;
        }
        if (with_port != (port_text != NULL))
                return -EINVAL;
        if (port_text) {
                char *end;

                errno = 0;
                port = strtol(port_text, &end, 10);
                if (errno || end == port_text || *end || port < 0 || port > 65535)
                        return -EINVAL;
        }

        struct sockaddr_in *sin = (struct sockaddr_in *)&ret->ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ret->ss;

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

static void endpoint_set_port(struct endpoint *ep, uint16_t port)
{
        if (ep->ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ep->ss)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *)&ep->ss)->sin6_port = htons(port);
}

/* Writes "a.b.c.d:p" or "[v6]:p" into buf (PROBE_ADDR_MAX bytes) and returns buf. */
static const char *endpoint_format(const struct sockaddr_storage *ss, char *buf)
{
        char host[INET6_ADDRSTRLEN];

        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
                snprintf(buf, PROBE_ADDR_MAX, "%s:%u", host, ntohs(sin->sin_port));
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

                inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
                snprintf(buf, PROBE_ADDR_MAX, "[%s]:%u", host, ntohs(sin6->sin6_port));
        } else {
                snprintf(buf, PROBE_ADDR_MAX, "none");
        }
        return buf;
}

/*
 * Original destination of an accepted TCP socket from conntrack; "none" when conntrack has
 * no entry for it (ENOENT) or the family has no such option.
 */
static const char *origdst_format(int fd, int family, char *buf)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int r;

        memset(&ss, 0, sizeof(ss));
        if (family == AF_INET)
                r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
        else
                r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
        if (r < 0) {
                snprintf(buf, PROBE_ADDR_MAX, "none");
                return buf;
        }
        return endpoint_format(&ss, buf);
}

/*
 * Reads into buf until a newline, EOF or the deadline; the newline is stripped.
 * Returns the number of bytes kept, or a negative errno (-ETIMEDOUT when nothing arrived).
 */
static ssize_t read_line(int fd, char *buf, size_t size, int64_t deadline)
{
        size_t n = 0;

        while (n + 1 < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, remaining_ms(deadline));
                ssize_t got;

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return n ? (ssize_t)n : -ETIMEDOUT;
                got = read(fd, buf + n, size - 1 - n);
                if (got < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (got < 0)
                        return n ? (ssize_t)n : -errno;
                if (got == 0)
                        break;
                n += (size_t)got;
                if (memchr(buf, '\n', n))
                        break;
        }
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        return (ssize_t)strlen(buf);
}

static int write_all(int fd, const char *s, size_t len)
{
        while (len) {
                ssize_t w = write(fd, s, len);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                s += w;
                len -= (size_t)w;
        }
        return 0;
}

/* Sets SO_LINGER 0, so that close() sends a reset instead of a FIN, and closes. */
static void close_reset(int fd)
{
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
}

/*
 * Writes all of buf to a blocking or non-blocking socket, waiting (poll) at most until
 * deadline. Returns 0, or a negative errno (-ETIMEDOUT when the peer did not take the bytes).
 */
static int write_all_until(int fd, const char *buf, size_t len, int64_t deadline)
{
        while (len) {
                ssize_t w = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        int r = poll(&p, 1, remaining_ms(deadline));

                        if (r < 0 && errno != EINTR)
                                return -errno;
                        if (r == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                if (w < 0)
                        return -errno;
                buf += w;
                len -= (size_t)w;
        }
        return 0;
}

/* The name a `done` line gives to how a connection ended: 0 is "eof". */
static const char *end_name(int err)
{
        if (err == 0)
                return "eof";
        if (err == ETIMEDOUT)
                return "timeout";
        return errno_name(err);
}

enum listen_mode {
        LISTEN_REPLY = 0,       /* read a line, answer with what was seen (the default) */
        LISTEN_ECHO,            /* send every byte back as it comes, until EOF */
        LISTEN_ECHO_AFTER_EOF,  /* read until EOF, then send it all back */
        LISTEN_SHUT_FIRST,      /* send the reply line and a FIN at once, then read until EOF */
};

struct listen_opts {
        struct endpoint addr;
        bool transparent, udp, linger0;
        enum listen_mode mode;
        long count, timeout_s, stall_ms;
        const char *ready_file, *name;
};

/*
 * The echo modes. Every wait is bounded by --timeout seconds of silence. Returns how the
 * client's side ended (0 at EOF, else an errno value) and fills in the byte counts.
 */
static int serve_echo(int fd, const struct listen_opts *o, uint64_t *ret_in, uint64_t *ret_out)
{
        size_t cap = 0, len = 0;
        char *keep = NULL, chunk[PROBE_CHUNK];
        int end = 0, r;

        *ret_in = *ret_out = 0;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                r = poll(&p, 1, (int)(o->timeout_s * 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        end = r == 0 ? ETIMEDOUT : errno;
                        goto out;
                }
                n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0) {
                        end = errno;
                        goto out;
                }
                if (n == 0)
                        break;
                *ret_in += (uint64_t)n;
                if (o->mode == LISTEN_ECHO) {
                        r = write_all_until(fd, chunk, (size_t)n, now_ms() + 1000 * o->timeout_s);
                        if (r < 0) {
                                end = -r;
                                goto out;
                        }
                        *ret_out += (uint64_t)n;
                        continue;
                }
                if (len + (size_t)n > PROBE_ECHO_MAX) {
                        fprintf(stderr, "probe listen: --echo-after-eof keeps at most %u bytes\n", PROBE_ECHO_MAX);
                        end = ENOMEM;
                        goto out;
                }
                if (len + (size_t)n > cap) {
                        size_t ncap = cap ? cap * 2 : 1u << 20;
                        char *nk;

                        while (ncap < len + (size_t)n)
                                ncap *= 2;
                        nk = realloc(keep, ncap);
                        if (!nk) {
                                end = ENOMEM;
                                goto out;
                        }
                        keep = nk;
                        cap = ncap;
                }
                memcpy(keep + len, chunk, (size_t)n);
                len += (size_t)n;
        }
        /* EOF from the client: answer (echo-after-eof), then pass the FIN back. */
        if (len) {
                r = write_all_until(fd, keep, len, now_ms() + 1000 * o->timeout_s);
                if (r < 0) {
                        end = -r;
                        goto out;
                }
                *ret_out += len;
        }
        shutdown(fd, SHUT_WR);
out:
        free(keep);
        return end;
}

/*
 * Reads and counts until the client's EOF, each wait bounded by --timeout seconds of silence.
 * Returns 0 at EOF, else an errno value (ETIMEDOUT for silence).
 */
static int serve_sink(int fd, const struct listen_opts *o, uint64_t *ret_in)
{
        char chunk[PROBE_CHUNK];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;
                int r = poll(&p, 1, (int)(o->timeout_s * 1000));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r == 0 ? ETIMEDOUT : errno;
                n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return errno;
                if (n == 0)
                        return 0;
                *ret_in += (uint64_t)n;
        }
}

/* Serves one TCP connection: logs it, then answers as the mode says; a `done` line ends it. */
static void serve_tcp(int lfd, const struct listen_opts *o, int family)
{
        char local[PROBE_ADDR_MAX], peer[PROBE_ADDR_MAX], orig[PROBE_ADDR_MAX];
        char line[PROBE_LINE_MAX], reply[PROBE_LINE_MAX + 3 * PROBE_ADDR_MAX + 64];
        struct sockaddr_storage lss, pss;
        socklen_t llen = sizeof(lss);
        uint64_t in = 0, out = 0;
        ssize_t n;
        int fd, end = 0, r;

        fd = accept4(lfd, (struct sockaddr *)&pss, &(socklen_t){ sizeof(pss) }, SOCK_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "probe listen: accept: %s\n", errno_text(errno));
                return;
        }
        memset(&lss, 0, sizeof(lss));
        getsockname(fd, (struct sockaddr *)&lss, &llen);
        endpoint_format(&lss, local);
        endpoint_format(&pss, peer);
        origdst_format(fd, family, orig);
        printf("accept name=%s proto=tcp local=%s peer=%s origdst=%s\n", o->name, local, peer, orig);

        if (o->mode == LISTEN_SHUT_FIRST) {
                snprintf(reply, sizeof(reply), "name=%s local=%s peer=%s origdst=%s\n", o->name, local, peer, orig);
                if ((r = write_all(fd, reply, strlen(reply))) < 0) {
                        end = -r;
                        goto done;
                }
                out = strlen(reply);
                shutdown(fd, SHUT_WR);
                end = serve_sink(fd, o, &in);
                goto done;
        }
        if (o->mode != LISTEN_REPLY) {
                if (o->stall_ms) {
                        /* A reader that does not read: what piles up on the way shows backpressure. */
                        printf("stall name=%s ms=%ld\n", o->name, o->stall_ms);
                        fflush(stdout);
                        usleep((useconds_t)o->stall_ms * 1000);
                }
                end = serve_echo(fd, o, &in, &out);
                if (end == 0) {
                        /* Wait for the client's close so ours cannot turn into a reset. */
                        n = read_line(fd, line, sizeof(line), now_ms() + 2000);
                        if (n < 0 && n != -ETIMEDOUT)
                                end = (int)-n;
                }
                goto done;
        }
        /* The client writes first; a silent client still gets its answer after the deadline,
         * which is short so that one stuck client cannot hold up the ones queued behind it. */
        n = read_line(fd, line, sizeof(line), now_ms() + 1000 * (o->timeout_s < 5 ? o->timeout_s : 5));
        if (n < 0) {
                line[0] = '\0';
                if (n != -ETIMEDOUT)
                        end = (int)-n;
        }
        in = n > 0 ? (uint64_t)n : 0;
        snprintf(reply, sizeof(reply), "name=%s local=%s peer=%s origdst=%s\n", o->name, local, peer, orig);
        if ((r = write_all(fd, reply, strlen(reply))) < 0) {
                fprintf(stderr, "probe listen: write reply to %s: %s\n", peer, errno_text(-r));
                end = end ? end : -r;
        } else {
                out = strlen(reply);
        }
        if (o->linger0) {
                /* --linger0: the reply, then a reset where a FIN would be. */
                printf("done name=%s peer=%s received=%llu sent=%llu end=%s closed=reset\n", o->name, peer,
                       (unsigned long long)in, (unsigned long long)out, end_name(end));
                close_reset(fd);
                return;
        }
        shutdown(fd, SHUT_WR);
        /* Wait for the client's close so ours cannot turn into a reset that eats the reply. */
        n = read_line(fd, line, sizeof(line), now_ms() + 1000);
        if (n < 0 && n != -ETIMEDOUT && !end)
                end = (int)-n;
done:
        printf("done name=%s peer=%s received=%llu sent=%llu end=%s\n", o->name, peer, (unsigned long long)in,
               (unsigned long long)out, end_name(end));
        close(fd);
}

/*
 * Serves one datagram. The reply leaves from the address the datagram was sent to (pktinfo),
 * which conntrack needs to match it to the original flow and undo any NAT for the client.
 */
static void serve_udp(int fd, const struct listen_opts *o, int family)
{
        char local[PROBE_ADDR_MAX], peer[PROBE_ADDR_MAX];
        char buf[PROBE_LINE_MAX], reply[PROBE_LINE_MAX + 3 * PROBE_ADDR_MAX + 64];
        char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct sockaddr_in6))];
        struct sockaddr_storage pss, lss = o->addr.ss;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
        struct msghdr msg = {
                .msg_name = &pss, .msg_namelen = sizeof(pss),
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
        };
        struct in_pktinfo pi4 = { 0 };
        struct in6_pktinfo pi6 = { 0 };
        bool have_pi = false;
        ssize_t n;

        n = recvmsg(fd, &msg, 0);
        if (n < 0) {
                fprintf(stderr, "probe listen: recvmsg: %s\n", errno_text(errno));
                return;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO) {
                        memcpy(&pi4, CMSG_DATA(c), sizeof(pi4));
                        pi4.ipi_spec_dst = pi4.ipi_addr;
                        pi4.ipi_ifindex = 0;
                        ((struct sockaddr_in *)&lss)->sin_addr = pi4.ipi_addr;
                        have_pi = true;
                } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                        memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
                        pi6.ipi6_ifindex = 0;
                        ((struct sockaddr_in6 *)&lss)->sin6_addr = pi6.ipi6_addr;
                        have_pi = true;
                } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) ||
                           (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR)) {
                        /* The datagram's destination as delivered (after NAT): with a
                         * transparent socket that is the address the sender used. */
                        memcpy(&lss, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0) < sizeof(lss) ?
                               c->cmsg_len - CMSG_LEN(0) : sizeof(lss));
                }
        }
        endpoint_format(&lss, local);
        endpoint_format(&pss, peer);
        printf("accept name=%s proto=udp local=%s peer=%s origdst=none\n", o->name, local, peer);

        snprintf(reply, sizeof(reply), "name=%s local=%s peer=%s origdst=none\n", o->name, local, peer);
        char rcbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct iovec riov = { .iov_base = reply, .iov_len = strlen(reply) };
        struct msghdr rmsg = {
                .msg_name = &pss, .msg_namelen = msg.msg_namelen,
                .msg_iov = &riov, .msg_iovlen = 1,
        };

        /* A transparent socket may answer from a foreign address only through pktinfo too. */
        if (have_pi) {
                memset(rcbuf, 0, sizeof(rcbuf));
                rmsg.msg_control = rcbuf;
                if (family == AF_INET) {
                        rmsg.msg_controllen = CMSG_SPACE(sizeof(pi4));
                        struct cmsghdr *c = CMSG_FIRSTHDR(&rmsg);
                        c->cmsg_level = SOL_IP;
                        c->cmsg_type = IP_PKTINFO;
                        c->cmsg_len = CMSG_LEN(sizeof(pi4));
                        memcpy(CMSG_DATA(c), &pi4, sizeof(pi4));
                } else {
                        rmsg.msg_controllen = CMSG_SPACE(sizeof(pi6));
                        struct cmsghdr *c = CMSG_FIRSTHDR(&rmsg);
                        c->cmsg_level = SOL_IPV6;
                        c->cmsg_type = IPV6_PKTINFO;
                        c->cmsg_len = CMSG_LEN(sizeof(pi6));
                        memcpy(CMSG_DATA(c), &pi6, sizeof(pi6));
                }
        }
        if (sendmsg(fd, &rmsg, 0) < 0)
                fprintf(stderr, "probe listen: sendmsg reply to %s: %s\n", peer, errno_text(errno));
}

static int cmd_listen(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "port", required_argument, NULL, 'p' },
                { "addr", required_argument, NULL, 'a' },
                { "transparent", no_argument, NULL, 'T' },
                { "udp", no_argument, NULL, 'u' },
                { "count", required_argument, NULL, 'c' },
                { "ready-file", required_argument, NULL, 'r' },
                { "name", required_argument, NULL, 'n' },
                { "timeout", required_argument, NULL, 't' },
                { "echo", no_argument, NULL, 'e' },
                { "echo-after-eof", no_argument, NULL, 'E' },
                { "linger0", no_argument, NULL, 'L' },
                { "shut-first", no_argument, NULL, 'S' },
                { "stall", required_argument, NULL, 'D' },
                { 0 },
        };
        struct listen_opts o = { .count = 1, .timeout_s = 5, .name = "probe" };
        const char *addr_text = "0.0.0.0";
        char local[PROBE_ADDR_MAX];
        long port = -1, served = 0;
        int fd, family, one = 1, c;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'p': port = parse_long(optarg, 1, 65535, "--port"); break;
                case 'a': addr_text = optarg; break;
                case 'T': o.transparent = true; break;
                case 'u': o.udp = true; break;
                case 'c': o.count = parse_long(optarg, 0, LONG_MAX, "--count"); break;
                case 'r': o.ready_file = optarg; break;
                case 'n': o.name = optarg; break;
                case 't': o.timeout_s = parse_long(optarg, 1, 86400, "--timeout"); break;
                case 'e': o.mode = LISTEN_ECHO; break;
                case 'E': o.mode = LISTEN_ECHO_AFTER_EOF; break;
                case 'L': o.linger0 = true; break;
                case 'S': o.mode = LISTEN_SHUT_FIRST; break;
                case 'D': o.stall_ms = parse_long(optarg, 0, 600000, "--stall"); break;
                default: die_usage("bad option %s", argv[optind - 1]);
                }
        }
        if (optind != argc)
                die_usage("unexpected argument %s", argv[optind]);
        if (port < 0)
                die_usage("%s", "--port is required");
        if (o.udp && (o.mode != LISTEN_REPLY || o.linger0))
                die_usage("%s", "--echo, --echo-after-eof, --shut-first and --linger0 are for TCP");
        if (o.stall_ms && o.mode != LISTEN_ECHO && o.mode != LISTEN_ECHO_AFTER_EOF)
                die_usage("%s", "--stall goes with --echo and --echo-after-eof");
        if (o.mode != LISTEN_REPLY && o.linger0)
                die_usage("%s", "--linger0 goes with the default reply mode only");
        if (endpoint_parse(addr_text, false, &o.addr) < 0)
                die_usage("bad --addr %s", addr_text);
        endpoint_set_port(&o.addr, (uint16_t)port);
        family = o.addr.ss.ss_family;

        fd = socket(family, (o.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                fprintf(stderr, "probe listen: socket: %s\n", errno_text(errno));
                return 1;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* One family per socket, so an IPv4 test never passes through a mapped v6 listener. */
        if (family == AF_INET6)
                setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (o.transparent &&
            (family == AF_INET ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))
                               : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))) < 0) {
                fprintf(stderr, "probe listen: setsockopt IP_TRANSPARENT: %s (needs CAP_NET_ADMIN or CAP_NET_RAW)\n",
                        errno_text(errno));
                return 1;
        }
        if (o.udp) {
                if (family == AF_INET) {
                        setsockopt(fd, SOL_IP, IP_PKTINFO, &one, sizeof(one));
                        setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
                } else {
                        setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
                        setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one));
                }
        }
        if (bind(fd, (struct sockaddr *)&o.addr.ss, o.addr.len) < 0) {
                fprintf(stderr, "probe listen: bind %s: %s\n", endpoint_format(&o.addr.ss, local), errno_text(errno));
                return 1;
        }
        if (!o.udp && listen(fd, 64) < 0) {
                fprintf(stderr, "probe listen: listen %s: %s\n", endpoint_format(&o.addr.ss, local), errno_text(errno));
                return 1;
        }
        printf("listening name=%s proto=%s local=%s\n", o.name, o.udp ? "udp" : "tcp", endpoint_format(&o.addr.ss, local));
        if (o.ready_file) {
                int rfd = open(o.ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                if (rfd < 0) {
                        fprintf(stderr, "probe listen: create ready file %s: %s\n", o.ready_file, errno_text(errno));
                        return 1;
                }
                close(rfd);
        }

        while (o.count == 0 || served < o.count) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, (int)(o.timeout_s * 1000));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "probe listen: poll: %s\n", errno_text(errno));
                        return 1;
                }
                if (r == 0) {
                        printf("timeout name=%s served=%ld\n", o.name, served);
                        if (o.count == 0)
                                return 0;
                        fprintf(stderr, "probe listen: %s: no connection within %ld s (served %ld of %ld)\n",
                                local, o.timeout_s, served, o.count);
                        return 1;
                }
                if (o.udp)
                        serve_udp(fd, &o, family);
                else
                        serve_tcp(fd, &o, family);
                served++;
        }
        close(fd);
        return 0;
}

struct connect_opts {
        const char *to_text, *from_text, *send_file, *recv_file;
        bool udp, shutdown_write, expect_reset, linger0;
        long timeout_s, hold_ms;
};

/* Reads all of path into a malloc'd buffer. Returns 0 or a negative errno. */
static int slurp(const char *path, char **ret, size_t *ret_len)
{
        struct stat st;
        char *buf;
        size_t off = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_size < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (off < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        free(buf);
                        close(fd);
                        return r;
                }
                off += (size_t)n;
        }
        close(fd);
        *ret = buf;
        *ret_len = off;
        return 0;
}

/*
 * --send-file: sends the file while reading whatever comes back (so an echo cannot deadlock on
 * full buffers), half-closes when told to, and reads until the server's EOF or the deadline.
 * Returns how the connection ended (0 at EOF, else an errno value; ETIMEDOUT at the deadline).
 */
static int stream_exchange(int fd, const struct connect_opts *o, int64_t deadline, uint64_t *ret_sent,
                           uint64_t *ret_received)
{
        char *data = NULL, chunk[PROBE_CHUNK];
        size_t len = 0, sent = 0;
        bool shut = false, eof = false;
        int out = -1, end = 0, r;

        *ret_sent = *ret_received = 0;
        r = slurp(o->send_file, &data, &len);
        if (r < 0) {
                fprintf(stderr, "probe connect: --send-file %s: %s\n", o->send_file, errno_text(-r));
                return -r;
        }
        if (o->recv_file) {
                out = open(o->recv_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (out < 0) {
                        end = errno;
                        fprintf(stderr, "probe connect: --recv-file %s: %s\n", o->recv_file, errno_text(end));
                        free(data);
                        return end;
                }
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = (eof ? 0 : POLLIN) | (sent < len ? POLLOUT : 0) };
                ssize_t n;

                if (sent == len && o->shutdown_write && !shut) {
                        if (shutdown(fd, SHUT_WR) < 0) {
                                end = errno;
                                break;
                        }
                        shut = true;
                }
                /* The server's EOF ends the exchange once everything is sent: a server that
                 * half-closes first still gets the rest of the file. */
                if (eof && sent == len)
                        break;
                r = poll(&p, 1, remaining_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        end = r == 0 ? ETIMEDOUT : errno;
                        break;
                }
                if (p.revents & POLLIN || p.revents & (POLLERR | POLLHUP)) {
                        n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                        if (n < 0 && errno != EINTR && errno != EAGAIN) {
                                end = errno;
                                break;
                        }
                        if (n == 0) {
                                eof = true;
                                continue;
                        }
                        if (n > 0) {
                                *ret_received += (uint64_t)n;
                                if (out >= 0 && write_all(out, chunk, (size_t)n) < 0) {
                                        end = errno;
                                        break;
                                }
                        }
                }
                if (sent < len && p.revents & (POLLOUT | POLLERR | POLLHUP)) {
                        n = send(fd, data + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n < 0 && errno != EINTR && errno != EAGAIN) {
                                end = errno;
                                break;
                        }
                        if (n > 0)
                                sent += (size_t)n;
                }
        }
        *ret_sent = sent;
        if (out >= 0 && close(out) < 0 && end == 0)
                end = errno;
        free(data);
        return end;
}

/*
 * Reads and drops whatever arrives until the deadline, the peer's EOF (stop_at_eof) or an
 * error. Returns 0 at EOF, ETIMEDOUT at the deadline, else the errno value.
 */
static int drain_until(int fd, int64_t deadline, bool stop_at_eof, uint64_t *received)
{
        char chunk[PROBE_CHUNK];
        bool eof = false;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = eof ? 0 : POLLIN };
                ssize_t n;
                int r = poll(&p, 1, remaining_ms(deadline));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return errno;
                if (r == 0)
                        return eof ? 0 : ETIMEDOUT;
                if (eof) {
                        /* Only an error is reported after EOF (POLLERR): a late reset. */
                        int e = 0;
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &(socklen_t){ sizeof(e) });
                        return e ? e : 0;
                }
                n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return errno;
                if (n == 0) {
                        if (stop_at_eof)
                                return 0;
                        eof = true;
                        continue;
                }
                *received += (uint64_t)n;
        }
}

static int cmd_connect(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "to", required_argument, NULL, 'o' },
                { "from", required_argument, NULL, 'f' },
                { "udp", no_argument, NULL, 'u' },
                { "timeout", required_argument, NULL, 't' },
                { "send-file", required_argument, NULL, 's' },
                { "recv-file", required_argument, NULL, 'R' },
                { "shutdown-write", no_argument, NULL, 'W' },
                { "expect-reset", no_argument, NULL, 'X' },
                { "linger0", no_argument, NULL, 'L' },
                { "hold", required_argument, NULL, 'H' },
                { 0 },
        };
        struct connect_opts o = { .timeout_s = 5 };
        char local[PROBE_ADDR_MAX], peer[PROBE_ADDR_MAX], line[PROBE_LINE_MAX];
        struct endpoint to, from;
        struct sockaddr_storage lss, pss;
        socklen_t llen = sizeof(lss), plen = sizeof(pss);
        uint64_t sent = 0, received = 0;
        int64_t deadline, t0;
        bool replied = false;
        ssize_t n;
        int fd, c, r, end = 0;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'o': o.to_text = optarg; break;
                case 'f': o.from_text = optarg; break;
                case 'u': o.udp = true; break;
                case 't': o.timeout_s = parse_long(optarg, 1, 86400, "--timeout"); break;
                case 's': o.send_file = optarg; break;
                case 'R': o.recv_file = optarg; break;
                case 'W': o.shutdown_write = true; break;
                case 'X': o.expect_reset = true; break;
                case 'L': o.linger0 = true; break;
                case 'H': o.hold_ms = parse_long(optarg, 0, 86400000, "--hold"); break;
                default: die_usage("bad option %s", argv[optind - 1]);
                }
        }
        if (optind != argc)
                die_usage("unexpected argument %s", argv[optind]);
        if (!o.to_text)
                die_usage("%s", "--to is required");
        if (endpoint_parse(o.to_text, true, &to) < 0)
                die_usage("bad --to %s (want ADDR:PORT, IPv6 as [ADDR]:PORT)", o.to_text);
        if (o.from_text && endpoint_parse(o.from_text, false, &from) < 0)
                die_usage("bad --from %s", o.from_text);
        if (o.from_text && from.ss.ss_family != to.ss.ss_family)
                die_usage("--from %s is not in the family of --to", o.from_text);
        if (o.udp && (o.send_file || o.recv_file || o.shutdown_write || o.expect_reset || o.linger0 || o.hold_ms))
                die_usage("%s", "--send-file, --recv-file, --shutdown-write, --expect-reset, --linger0 and --hold are for TCP");
        if (o.recv_file && !o.send_file)
                die_usage("%s", "--recv-file goes with --send-file");
        if (o.send_file && o.hold_ms)
                die_usage("%s", "--hold goes with the default line exchange, not --send-file");
        t0 = now_ms();
        deadline = t0 + 1000 * o.timeout_s;

        fd = socket(to.ss.ss_family, (o.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                fprintf(stderr, "probe connect: socket: %s\n", errno_text(errno));
                return 1;
        }
        if (o.from_text && bind(fd, (struct sockaddr *)&from.ss, from.len) < 0) {
                fprintf(stderr, "probe connect: bind %s: %s\n", o.from_text, errno_text(errno));
                return 1;
        }
        if (connect(fd, (struct sockaddr *)&to.ss, to.len) < 0) {
                if (errno != EINPROGRESS) {
                        fprintf(stderr, "probe connect: connect %s: %s\n", o.to_text, errno_text(errno));
                        return 1;
                }
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int err = 0;

                do
                        r = poll(&p, 1, remaining_ms(deadline));
                while (r < 0 && errno == EINTR);
                if (r == 0) {
                        fprintf(stderr, "probe connect: connect %s: timed out after %ld s\n", o.to_text, o.timeout_s);
                        return 1;
                }
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){ sizeof(err) });
                /* A handshake that completed and was reset before this poll returned reports
                 * ECONNRESET here; a refused SYN is ECONNREFUSED. Only the first is a reset. */
                if (r >= 0 && err == ECONNRESET && o.expect_reset) {
                        end = err;
                        snprintf(local, sizeof(local), "none");
                        snprintf(peer, sizeof(peer), "%s", o.to_text);
                        goto finish;
                }
                if (r < 0 || err) {
                        fprintf(stderr, "probe connect: connect %s: %s\n", o.to_text, errno_text(r < 0 ? errno : err));
                        return 1;
                }
        }
        memset(&lss, 0, sizeof(lss));
        memset(&pss, 0, sizeof(pss));
        getsockname(fd, (struct sockaddr *)&lss, &llen);
        getpeername(fd, (struct sockaddr *)&pss, &plen);
        endpoint_format(&lss, local);
        endpoint_format(&pss, peer);

        if (o.send_file) {
                end = stream_exchange(fd, &o, deadline, &sent, &received);
                printf("done proto=tcp local=%s peer=%s sent=%llu received=%llu elapsed_ms=%lld end=%s\n", local, peer,
                       (unsigned long long)sent, (unsigned long long)received, (long long)(now_ms() - t0),
                       end_name(end));
                goto finish;
        }

        snprintf(line, sizeof(line), "hello from %s\n", local);
        if ((r = write_all_until(fd, line, strlen(line), deadline)) < 0) {
                end = -r;
                if (!o.expect_reset)
                        fprintf(stderr, "probe connect: send to %s: %s\n", o.to_text, errno_text(end));
                goto finish;
        }
        if (o.shutdown_write && shutdown(fd, SHUT_WR) < 0) {
                end = errno;
                fprintf(stderr, "probe connect: shutdown %s: %s\n", o.to_text, errno_text(end));
                goto finish;
        }
        n = read_line(fd, line, sizeof(line), deadline);
        if (n < 0) {
                end = (int)-n;
                if (!o.expect_reset) {
                        if (n == -ETIMEDOUT)
                                fprintf(stderr, "probe connect: %s: no reply within %ld s\n", o.to_text, o.timeout_s);
                        else
                                fprintf(stderr, "probe connect: read reply from %s: %s\n", o.to_text, errno_text(end));
                }
                goto finish;
        }
        if (n == 0) {
                end = 0;
                if (!o.expect_reset)
                        fprintf(stderr, "probe connect: %s: closed without a reply\n", o.to_text);
                goto finish;
        }
        replied = true;
        received = (uint64_t)n;
        printf("connected proto=%s local=%s peer=%s reply=%s\n", o.udp ? "udp" : "tcp", local, peer, line);
        if (o.hold_ms) {
                /* Keep the connection open; an EOF from the server does not end the hold. */
                end = drain_until(fd, now_ms() + o.hold_ms, false, &received);
                if (end == ETIMEDOUT)
                        end = 0;
                printf("held ms=%ld end=%s\n", o.hold_ms, end_name(end));
        }
        if (o.expect_reset && !end)
                end = drain_until(fd, deadline, true, &received);

finish:
        if (o.expect_reset) {
                long long ms = (long long)(now_ms() - t0);

                if (o.linger0)
                        close_reset(fd);
                else
                        close(fd);
                if (end == ECONNRESET) {
                        printf("reset proto=tcp local=%s peer=%s elapsed_ms=%lld replied=%s received=%llu\n", local,
                               peer, ms, replied ? "yes" : "no", (unsigned long long)received);
                        return 0;
                }
                fprintf(stderr, "probe connect: %s: expected a reset, the connection ended with %s after %lld ms "
                        "(replied=%s)\n", o.to_text, end == 0 ? "a FIN (EOF)" : end_name(end), ms,
                        replied ? "yes" : "no");
                return 1;
        }
        if (o.linger0)
                close_reset(fd);
        else
                close(fd);
        if (o.send_file) {
                if (end) {
                        fprintf(stderr, "probe connect: %s: %s after sending %llu bytes and receiving %llu\n",
                                o.to_text, end == ETIMEDOUT ? "timed out" : errno_text(end),
                                (unsigned long long)sent, (unsigned long long)received);
                        return 1;
                }
                return 0;
        }
        return replied && !end ? 0 : 1;
}

int main(int argc, char **argv)
{
        /* Line-buffered even into a file: tests read the log while the listener still runs. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        if (argc < 2)
                die_usage("%s", "missing mode");
        prog_mode = argv[1];
        if (strcmp(argv[1], "listen") == 0)
                return cmd_listen(argc - 1, argv + 1);
        if (strcmp(argv[1], "connect") == 0)
                return cmd_connect(argc - 1, argv + 1);
        die_usage("unknown mode %s", argv[1]);
}
