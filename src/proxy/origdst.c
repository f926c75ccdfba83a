/*
 * Original destination lookup and address printing; see origdst.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy/origdst.h"

/* linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h: both 80. Defined here because
 * those UAPI headers clash with glibc's netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

int origdst_get(int fd, bool transparent, struct sockaddr_storage *ret)
{
        struct sockaddr_storage local;
        socklen_t len = sizeof(local);

        memset(ret, 0, sizeof(*ret));
        if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
                return -errno;
        if (transparent) {
                const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&local;

                /* A dual-stack listener reports an IPv4 destination as ::ffff:a.b.c.d; the
                 * upstream connect must be IPv4 (from 127.0.0.6, not ::6). */
                if (local.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) {
                        struct sockaddr_in *o4 = (struct sockaddr_in *)ret;

                        o4->sin_family = AF_INET;
                        o4->sin_port = l6->sin6_port;
                        memcpy(&o4->sin_addr, &l6->sin6_addr.s6_addr[12], 4);
                        return 0;
                }
                *ret = local;
                return 0;
        }
        len = sizeof(*ret);
        if (local.ss_family == AF_INET6) {
                const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&local;
                /* An IPv4 connection on a dual-stack socket still has IPv4 conntrack. */
                if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) {
                        struct sockaddr_in *o4 = (struct sockaddr_in *)ret;
                        len = sizeof(*o4);
                        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, o4, &len) < 0)
                                return -errno;
                        return 0;
                }
                if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, ret, &len) < 0)
                        return -errno;
                return 0;
        }
        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, ret, &len) < 0)
                return -errno;
        return 0;
}

void sockaddr_format(const struct sockaddr_storage *sa, char *buf, size_t len)
{
        char a[INET6_ADDRSTRLEN];

        if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
                /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; print them as IPv4. */
                if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
                        inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], a, sizeof(a));
                        snprintf(buf, len, "%s:%u", a, ntohs(s6->sin6_port));
                        return;
                }
                inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
                snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
        } else if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
                inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
                snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
        } else {
                snprintf(buf, len, "unknown");
        }
}

unsigned sockaddr_port(const struct sockaddr_storage *sa)
{
        if (sa->ss_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        if (sa->ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)sa)->sin_port);
        return 0;
}

bool sockaddr_is_loopback(const struct sockaddr_storage *sa)
{
        if (sa->ss_family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
        if (sa->ss_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        return false;
}

int passthrough_bind(int fd, int family)
{
        struct sockaddr_storage src = { 0 };
        socklen_t len;

        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
                s6->sin6_family = AF_INET6;
                s6->sin6_addr.s6_addr[15] = 6;
                len = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
                s4->sin_family = AF_INET;
                s4->sin_addr.s_addr = htonl(0x7f000006);
                len = sizeof(*s4);
        }
        /* Let connect() pick the source port knowing the destination, as Envoy does; a port
         * chosen at bind() is held in TIME_WAIT against every destination, and a busy pod runs
         * out of them. */
        (void)setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &(int){ 1 }, sizeof(int));
        return bind(fd, (struct sockaddr *)&src, len) < 0 ? -errno : 0;
}
