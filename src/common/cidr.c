/*
 * Address and prefix parsing with Go netip semantics; see cidr.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"

int ip_parse(const char *s, struct cidr *ret)
{
        memset(ret, 0, sizeof(*ret));
        if (strchr(s, ':')) {
                /* Zones ("fe80::1%eth0") are not accepted in a prefix by netip either. */
                if (inet_pton(AF_INET6, s, &ret->addr.v6) != 1)
                        return -EINVAL;
                ret->family = AF_INET6;
                ret->prefix_len = 128;
                return 0;
        }
        /* glibc's inet_pton rejects leading zeros and short forms, as netip does. */
        if (inet_pton(AF_INET, s, &ret->addr.v4) != 1)
                return -EINVAL;
        ret->family = AF_INET;
        ret->prefix_len = 32;
        return 0;
}

int cidr_parse(const char *s, struct cidr *ret)
{
        const char *slash = strrchr(s, '/');
        char addr[INET6_ADDRSTRLEN + 1];
        unsigned long len = 0;
        const char *p;
        size_t n;

        if (!slash)
                return -EINVAL;
        n = (size_t)(slash - s);
        if (n == 0 || n >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, n);
        addr[n] = '\0';
        if (ip_parse(addr, ret) < 0)
                return -EINVAL;

        p = slash + 1;
        /* netip: decimal digits only, no sign, no leading zero except "0" itself. */
        if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0'))
                return -EINVAL;
        for (const char *q = p; *q; q++) {
                if (*q < '0' || *q > '9')
                        return -EINVAL;
                len = len * 10 + (unsigned long)(*q - '0');
        }
        if (len > (ret->family == AF_INET ? 32u : 128u))
                return -EINVAL;
        ret->prefix_len = (unsigned)len;
        return 0;
}

/*
 * Go's netip text for IPv6: lower-case hex groups, the longest run of two or more zero groups
 * (the first on a tie) as "::", and dotted quads only for IPv4-mapped addresses. glibc's
 * inet_ntop also prints other addresses whose first 96 bits are zero as dotted quads
 * ("::0.1.0.2"), which would make rule text differ from Istio's.
 */
static void ip6_format(const struct in6_addr *a, char *buf, size_t len)
{
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        int best = -1, best_len = 0, off = 0;
        unsigned g[8];

        if (memcmp(a->s6_addr, mapped, sizeof(mapped)) == 0) {
                snprintf(buf, len, "::ffff:%u.%u.%u.%u", a->s6_addr[12], a->s6_addr[13], a->s6_addr[14],
                         a->s6_addr[15]);
                return;
        }
        for (int i = 0; i < 8; i++)
                g[i] = (unsigned)a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
        for (int i = 0; i < 8;) {
                int j = i;
                while (j < 8 && g[j] == 0)
                        j++;
                if (j - i > best_len && j - i >= 2) {
                        best = i;
                        best_len = j - i;
                }
                i = j > i ? j : i + 1;
        }
        buf[0] = '\0';
        for (int i = 0; i < 8; i++) {
                if (i == best) {
                        off += snprintf(buf + off, len - (size_t)off, "::");
                        i += best_len - 1;
                        continue;
                }
                off += snprintf(buf + off, len - (size_t)off, "%s%x", (i == 0 || i == best + best_len) ? "" : ":", g[i]);
                if ((size_t)off >= len)
                        return;
        }
}

void ip_format(const struct cidr *c, char *buf, size_t len)
{
        if (c->family == AF_INET6)
                ip6_format(&c->addr.v6, buf, len);
        else
                ip_format_iptables(c, buf, len);
}

void ip_format_iptables(const struct cidr *c, char *buf, size_t len)
{
        if (!inet_ntop(c->family, &c->addr, buf, (socklen_t)len))
                snprintf(buf, len, "?");
}

void cidr_format_iptables(const struct cidr *c, char *buf, size_t len)
{
        char a[INET6_ADDRSTRLEN];

        ip_format_iptables(c, a, sizeof(a));
        snprintf(buf, len, "%s/%u", a, c->prefix_len);
}

void cidr_format(const struct cidr *c, char *buf, size_t len)
{
        char a[INET6_ADDRSTRLEN];

        ip_format(c, a, sizeof(a));
        snprintf(buf, len, "%s/%u", a, c->prefix_len);
}

bool cidr_is_loopback(const struct cidr *c)
{
        if (c->family == AF_INET)
                return (ntohl(c->addr.v4.s_addr) >> 24) == 127;
        return IN6_IS_ADDR_LOOPBACK(&c->addr.v6);
}
