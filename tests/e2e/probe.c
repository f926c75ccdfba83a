/*
 * probe: the traffic endpoint of the end-to-end tests.
 *
 * The e2e tests prove interception by sending real connections through the rules that
 * `pilotfish iptables` programs and looking at where they land. This tool is both ends:
 *
 *   probe listen --port P [--addr A] [--transparent] [--udp] [--count N] [--ready-file F]
 *                [--name NAME] [--timeout S]
 *   probe connect --to ADDR:PORT [--from ADDR] [--udp] [--timeout S]
 *
 * Every event is one line on stdout, `key=value` separated by spaces, so a shell test can grep
 * it. The listener answers each connection with a line naming itself, its local address, the
 * peer and the original destination, and the client prints that line as `reply=...`: the
 * client alone therefore knows which listener served it and what the listener saw.
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
                "       probe connect --to ADDR:PORT [--from ADDR] [--udp] [--timeout S]\n"
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

struct listen_opts {
        struct endpoint addr;
        bool transparent, udp;
        long count, timeout_s;
        const char *ready_file, *name;
};

/* Serves one TCP connection: logs it, reads the client's line, answers with what it saw. */
static void serve_tcp(int lfd, const struct listen_opts *o, int family)
{
        char local[PROBE_ADDR_MAX], peer[PROBE_ADDR_MAX], orig[PROBE_ADDR_MAX];
        char line[PROBE_LINE_MAX], reply[PROBE_LINE_MAX + 3 * PROBE_ADDR_MAX + 64];
        struct sockaddr_storage lss, pss;
        socklen_t llen = sizeof(lss);
        int fd;

        fd = accept4(lfd, (struct sockaddr *)&pss, &(socklen_t){ sizeof(pss) }, SOCK_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "probe listen: accept: %s\n", strerror(errno));
                return;
        }
        memset(&lss, 0, sizeof(lss));
        getsockname(fd, (struct sockaddr *)&lss, &llen);
        endpoint_format(&lss, local);
        endpoint_format(&pss, peer);
        origdst_format(fd, family, orig);
        printf("accept name=%s proto=tcp local=%s peer=%s origdst=%s\n", o->name, local, peer, orig);

        /* The client writes first; a silent client still gets its answer after the deadline,
         * which is short so that one stuck client cannot hold up the ones queued behind it. */
        if (read_line(fd, line, sizeof(line), now_ms() + 1000 * (o->timeout_s < 5 ? o->timeout_s : 5)) < 0)
                line[0] = '\0';
        snprintf(reply, sizeof(reply), "name=%s local=%s peer=%s origdst=%s\n", o->name, local, peer, orig);
        if (write_all(fd, reply, strlen(reply)) < 0)
                fprintf(stderr, "probe listen: write reply to %s: %s\n", peer, strerror(errno));
        shutdown(fd, SHUT_WR);
        /* Wait for the client's close so ours cannot turn into a reset that eats the reply. */
        (void)read_line(fd, line, sizeof(line), now_ms() + 1000);
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
                fprintf(stderr, "probe listen: recvmsg: %s\n", strerror(errno));
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
                fprintf(stderr, "probe listen: sendmsg reply to %s: %s\n", peer, strerror(errno));
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
                default: die_usage("bad option %s", argv[optind - 1]);
                }
        }
        if (optind != argc)
                die_usage("unexpected argument %s", argv[optind]);
        if (port < 0)
                die_usage("%s", "--port is required");
        if (endpoint_parse(addr_text, false, &o.addr) < 0)
                die_usage("bad --addr %s", addr_text);
        endpoint_set_port(&o.addr, (uint16_t)port);
        family = o.addr.ss.ss_family;

        fd = socket(family, (o.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                fprintf(stderr, "probe listen: socket: %s\n", strerror(errno));
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
                        strerror(errno));
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
                fprintf(stderr, "probe listen: bind %s: %s\n", endpoint_format(&o.addr.ss, local), strerror(errno));
                return 1;
        }
        if (!o.udp && listen(fd, 64) < 0) {
                fprintf(stderr, "probe listen: listen %s: %s\n", endpoint_format(&o.addr.ss, local), strerror(errno));
                return 1;
        }
        printf("listening name=%s proto=%s local=%s\n", o.name, o.udp ? "udp" : "tcp", endpoint_format(&o.addr.ss, local));
        if (o.ready_file) {
                int rfd = open(o.ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                if (rfd < 0) {
                        fprintf(stderr, "probe listen: create ready file %s: %s\n", o.ready_file, strerror(errno));
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
                        fprintf(stderr, "probe listen: poll: %s\n", strerror(errno));
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

static int cmd_connect(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "to", required_argument, NULL, 'o' },
                { "from", required_argument, NULL, 'f' },
                { "udp", no_argument, NULL, 'u' },
                { "timeout", required_argument, NULL, 't' },
                { 0 },
        };
        const char *to_text = NULL, *from_text = NULL;
        char local[PROBE_ADDR_MAX], peer[PROBE_ADDR_MAX], line[PROBE_LINE_MAX];
        struct endpoint to, from;
        struct sockaddr_storage lss, pss;
        socklen_t llen = sizeof(lss), plen = sizeof(pss);
        bool udp = false;
        long timeout_s = 5;
        int64_t deadline;
        ssize_t n;
        int fd, c, r;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'o': to_text = optarg; break;
                case 'f': from_text = optarg; break;
                case 'u': udp = true; break;
                case 't': timeout_s = parse_long(optarg, 1, 86400, "--timeout"); break;
                default: die_usage("bad option %s", argv[optind - 1]);
                }
        }
        if (optind != argc)
                die_usage("unexpected argument %s", argv[optind]);
        if (!to_text)
                die_usage("%s", "--to is required");
        if (endpoint_parse(to_text, true, &to) < 0)
                die_usage("bad --to %s (want ADDR:PORT, IPv6 as [ADDR]:PORT)", to_text);
        if (from_text && endpoint_parse(from_text, false, &from) < 0)
                die_usage("bad --from %s", from_text);
        if (from_text && from.ss.ss_family != to.ss.ss_family)
                die_usage("--from %s is not in the family of --to", from_text);
        deadline = now_ms() + 1000 * timeout_s;

        fd = socket(to.ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                fprintf(stderr, "probe connect: socket: %s\n", strerror(errno));
                return 1;
        }
        if (from_text && bind(fd, (struct sockaddr *)&from.ss, from.len) < 0) {
                fprintf(stderr, "probe connect: bind %s: %s\n", from_text, strerror(errno));
                return 1;
        }
        if (connect(fd, (struct sockaddr *)&to.ss, to.len) < 0) {
                if (errno != EINPROGRESS) {
                        fprintf(stderr, "probe connect: connect %s: %s\n", to_text, strerror(errno));
                        return 1;
                }
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int err = 0;

                do
                        r = poll(&p, 1, remaining_ms(deadline));
                while (r < 0 && errno == EINTR);
                if (r == 0) {
                        fprintf(stderr, "probe connect: connect %s: timed out after %ld s\n", to_text, timeout_s);
                        return 1;
                }
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){ sizeof(err) });
                if (r < 0 || err) {
                        fprintf(stderr, "probe connect: connect %s: %s\n", to_text, strerror(r < 0 ? errno : err));
                        return 1;
                }
        }
        getsockname(fd, (struct sockaddr *)&lss, &llen);
        getpeername(fd, (struct sockaddr *)&pss, &plen);
        endpoint_format(&lss, local);
        endpoint_format(&pss, peer);

        snprintf(line, sizeof(line), "hello from %s\n", local);
        if ((r = write_all(fd, line, strlen(line))) < 0) {
                fprintf(stderr, "probe connect: send to %s: %s\n", to_text, strerror(-r));
                return 1;
        }
        n = read_line(fd, line, sizeof(line), deadline);
        if (n == -ETIMEDOUT) {
                fprintf(stderr, "probe connect: %s: no reply within %ld s\n", to_text, timeout_s);
                return 1;
        }
        if (n < 0) {
                fprintf(stderr, "probe connect: read reply from %s: %s\n", to_text, strerror((int)-n));
                return 1;
        }
        if (n == 0) {
                fprintf(stderr, "probe connect: %s: closed without a reply\n", to_text);
                return 1;
        }
        printf("connected proto=%s local=%s peer=%s reply=%s\n", udp ? "udp" : "tcp", local, peer, line);
        close(fd);
        return 0;
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
