/*
 * Listening sockets; see listen.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/listen.h"

#define LISTEN_BACKLOG 4096

/*
 * A TCP socket for addr:port (NULL: every address), filled into ss: IPv6 dual-stack when the
 * namespace has IPv6 and no IPv4 address was asked for, else IPv4. Returns the fd or -errno.
 */
static int tcp_socket_for(const char *addr, unsigned port, struct sockaddr_storage *ss, socklen_t *len,
                          char *err, size_t errlen)
{
        bool v6 = !addr || strchr(addr, ':');
        int zero = 0, fd = -1;

        memset(ss, 0, sizeof(*ss));
        if (v6)
                fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                if (addr)
                        inet_pton(AF_INET6, addr, &a->sin6_addr);
                *len = sizeof(*a);
                /* Dual-stack: one socket takes IPv4 (as mapped addresses) and IPv6. */
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                return fd;
        }
        if (v6 && addr) {
                snprintf(err, errlen, "socket(AF_INET6) for [%s]:%u: %s", addr, port, strerror(errno));
                return -errno;
        }
        /* No IPv6 in this namespace (or an IPv4 address was asked for). */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                snprintf(err, errlen, "socket(AF_INET): %s", strerror(errno));
                return -errno;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (addr)
                inet_pton(AF_INET, addr, &a->sin_addr);
        *len = sizeof(*a);
        return fd;
}

int listen_tcp(const char *addr, unsigned port, bool reuseport, bool transparent, char *err, size_t errlen)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int one = 1, fd;
        const char *what = "setsockopt";

        fd = tcp_socket_for(addr, port, &ss, &len, err, errlen);
        if (fd < 0)
                return fd;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
            (transparent && ss.ss_family == AF_INET6 &&
             setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0) ||
            (transparent && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0))
                goto fail;
        what = "bind";
        if (bind(fd, (struct sockaddr *)&ss, len) < 0)
                goto fail;
        what = "listen";
        if (listen(fd, LISTEN_BACKLOG) < 0)
                goto fail;
        return fd;
fail:
        {
                int r = -errno;
                snprintf(err, errlen, "%s on %s:%u%s: %s", what, addr ? addr : "*", port,
                         transparent ? " (transparent, needs CAP_NET_ADMIN)" : "", strerror(errno));
                close(fd);
                return r;
        }
}

int port_check_unused(unsigned port, char *err, size_t errlen)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int one = 1, fd, r = 0;

        fd = tcp_socket_for(NULL, port, &ss, &len, err, errlen);
        if (fd < 0)
                return fd;
        /* SO_REUSEADDR, so that connections of an earlier run in TIME_WAIT do not count; a
         * socket in LISTEN still does, SO_REUSEPORT or not. */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
                r = -errno;
                if (errno == EADDRINUSE)
                        snprintf(err, errlen, "*:%u is already in use: another process listens there "
                                 "(the capture ports are shared with SO_REUSEPORT between pilotfish's own "
                                 "workers only)", port);
                else
                        snprintf(err, errlen, "bind on *:%u: %s", port, strerror(errno));
        }
        close(fd);
        return r;
}
