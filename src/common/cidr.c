/*
 * Address and prefix parsing with Go netip semantics; see cidr.h.
 */
#include <arpa/inet.h>
#include <errno.h>
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

void ip_format(const struct cidr *c, char *buf, size_t len)
{
        if (!inet_ntop(c->family, &c->addr, buf, (socklen_t)len))
                snprintf(buf, len, "?");
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
