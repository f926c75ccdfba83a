/*
 * The proxy process; see proxy.h and cmd/proxy.c. Start-up order: check the UID (running as
 * anyone but the proxy UID, its own outbound connections would be captured again and loop),
 * open every listener (so a port conflict fails the start, not the first connection), then
 * start the workers; readiness turns 200 only once all of that succeeded.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/origdst.h"
#include "proxy/proxy.h"

bool proxy_is_self(const struct proxy *p, const struct sockaddr_storage *dst)
{
        unsigned port = sockaddr_port(dst);
        const struct proxy_settings *s = &p->settings;

        if (port != s->outbound_port && port != s->inbound_port)
                return false;
        if (sockaddr_is_loopback(dst))
                return true;
        for (size_t i = 0; i < p->n_local_addrs; i++) {
                const struct sockaddr_storage *a = &p->local_addrs[i];
                if (a->ss_family != dst->ss_family)
                        continue;
                if (a->ss_family == AF_INET &&
                    ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)dst)->sin_addr.s_addr)
                        return true;
                if (a->ss_family == AF_INET6 &&
                    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)dst)->sin6_addr,
                           sizeof(struct in6_addr)) == 0)
                        return true;
        }
        return false;
}
