/*
 * --run-validation; see validate.h. Single-threaded: both listeners and the client socket
 * sit in one poll() loop, one connection attempt per second until the deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/settings.h"
#include "capture/validate.h"

static long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_on(const char *port_text, char *msg, size_t msglen)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port_text)) };
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                snprintf(msg, msglen, "listening on 127.0.0.1:%s: %s", port_text, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

static int connect_probe(unsigned port)
{
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        inet_pton(AF_INET, "127.0.0.6", &dst.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
            (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int validate_run(const struct capture_settings *s, char *msg, size_t msglen)
{
        int lfd[2] = { -1, -1 }, cfd = -1, r = -ETIMEDOUT;
        const char *ports[2] = { s->envoy_port, s->inbound_capture_port };
        long deadline = now_ms() + s->probe_timeout_ms, next_try = 0;
        unsigned seen_port = 0;

        for (int i = 0; i < 2; i++) {
                lfd[i] = listen_on(ports[i], msg, msglen);
                if (lfd[i] < 0) {
                        r = lfd[i];
                        goto out;
                }
        }
        while (now_ms() < deadline) {
                struct pollfd pfd[2] = { { .fd = lfd[0], .events = POLLIN }, { .fd = lfd[1], .events = POLLIN } };
                long wait;

                if (now_ms() >= next_try) {
                        if (cfd >= 0)
                                close(cfd);
                        cfd = connect_probe(s->probe_port_num);
                        next_try = now_ms() + 1000;
                }
                wait = (next_try < deadline ? next_try : deadline) - now_ms();
                if (poll(pfd, 2, wait > 0 ? (int)wait : 0) < 0 && errno != EINTR) {
                        r = -errno;
                        snprintf(msg, msglen, "poll: %s", strerror(errno));
                        goto out;
                }
                for (int i = 0; i < 2; i++) {
                        struct sockaddr_in od;
                        socklen_t len = sizeof(od);
                        int afd;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        afd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
                        if (afd < 0)
                                continue;
                        if (getsockopt(afd, SOL_IP, SO_ORIGINAL_DST, &od, &len) == 0) {
                                seen_port = ntohs(od.sin_port);
                                if (seen_port == s->probe_port_num) {
                                        snprintf(msg, msglen, "a connection to 127.0.0.6:%u was redirected to port %s",
                                                 s->probe_port_num, ports[i]);
                                        close(afd);
                                        r = 0;
                                        goto out;
                                }
                        }
                        close(afd);
                }
        }
        snprintf(msg, msglen,
                 "no connection to 127.0.0.6:%u reached the capture ports %s or %s within %s%s; the traffic "
                 "capture rules are not in effect in this namespace",
                 s->probe_port_num, ports[0], ports[1], s->probe_timeout,
                 seen_port ? " (a redirected connection had another original port)" : "");
out:
        for (int i = 0; i < 2; i++)
                if (lfd[i] >= 0)
                        close(lfd[i]);
        if (cfd >= 0)
                close(cfd);
        return r;
}
