/*
 * Istio's rule emission algorithm, step by step as SEMANTICS.md section 4 numbers it. The
 * builder keeps one list per family; "both" adds a rule to v4 and, when IPv6 is on, to v6;
 * "versioned" does the same with a family-specific address substituted. Rule text is
 * byte-for-byte Istio's, which is what makes the conformance corpus a test of this file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "capture/plan.h"
#include "capture/settings.h"
#include "common/strbuf.h"

#define DNS_PORT "53"
#define DNS_AGENT_PORT "15053"
#define OUTBOUND_MARK "1338"    /* hard-coded in Istio for the TPROXY self-redirect */

struct builder {
        struct plan *p;
        int error;
};

static int rules_push(struct plan_rules *rs, const char *table, const char *chain, int position,
                      const char *spec)
{
        struct plan_rule *v = rs->v;

        /* Grow to powers of two: a list of thousands of UIDs stays linear. */
        if ((rs->n & (rs->n - 1)) == 0) {
                v = realloc(rs->v, (rs->n ? rs->n * 2 : 1) * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                rs->v = v;
        }
        v[rs->n] = (struct plan_rule){
                .table = strdup(table),
                .chain = strdup(chain),
                .position = position,
                .spec = strdup(spec),
        };
        if (!v[rs->n].table || !v[rs->n].chain || !v[rs->n].spec) {
                free(v[rs->n].table);
                free(v[rs->n].chain);
                free(v[rs->n].spec);
                return -ENOMEM;
        }
        rs->n++;
        return 0;
}

static void add(struct builder *b, enum plan_family fam, const char *table, const char *chain,
                int position, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void add(struct builder *b, enum plan_family fam, const char *table, const char *chain,
                int position, const char *fmt, ...)
{
        struct strbuf spec = STRBUF_NULL;
        va_list ap;
        int r;

        if (b->error)
                return;
        if (fam == PLAN_V6 && !b->p->ipv6)
                return;
        va_start(ap, fmt);
        strbuf_vprintf(&spec, fmt, ap);
        va_end(ap);
        r = spec.error ? spec.error : rules_push(&b->p->family[fam], table, chain, position, strbuf_str(&spec));
        if (r < 0)
                b->error = r;
        strbuf_deinit(&spec);
}

/* Both families, same text. */
#define BOTH(b, table, chain, pos, ...) do { \
        add(b, PLAN_V4, table, chain, pos, __VA_ARGS__); \
        add(b, PLAN_V6, table, chain, pos, __VA_ARGS__); \
} while (0)

static void build_interfaces(struct builder *b, const struct capture_settings *s)
{
        /* Step 1: excluded NICs are never captured; in TPROXY mode mangle gets the same. */
        for (size_t i = 0; i < s->exclude_ifs.n; i++) {
                BOTH(b, "nat", "PREROUTING", 0, "-i %s -j RETURN", s->exclude_ifs.v[i]);
                BOTH(b, "nat", "OUTPUT", 0, "-o %s -j RETURN", s->exclude_ifs.v[i]);
        }
        if (s->mode == CAPTURE_MODE_TPROXY)
                for (size_t i = 0; i < s->exclude_ifs.n; i++) {
                        BOTH(b, "mangle", "PREROUTING", 0, "-i %s -j RETURN", s->exclude_ifs.v[i]);
                        BOTH(b, "mangle", "OUTPUT", 0, "-o %s -j RETURN", s->exclude_ifs.v[i]);
                }
        /* Step 2: KubeVirt interfaces: inserted first, so the last one written ends up on top. */
        for (size_t i = 0; i < s->kube_virt_ifs.n; i++)
                BOTH(b, "nat", "PREROUTING", 1, "-i %s -j RETURN", s->kube_virt_ifs.v[i]);
        /* Step 3. */
        if (s->drop_invalid) {
                BOTH(b, "mangle", "PREROUTING", 0, "-m conntrack --ctstate INVALID -j ISTIO_DROP");
                BOTH(b, "mangle", "ISTIO_DROP", 0, "-j DROP");
        }
}

static void build_inbound(struct builder *b, const struct capture_settings *s)
{
        /* Step 4: chain bodies that always exist. */
        BOTH(b, "nat", "ISTIO_INBOUND", 0, "-p tcp --dport %s -j RETURN", s->inbound_tunnel_port);
        BOTH(b, "nat", "ISTIO_REDIRECT", 0, "-p tcp -j REDIRECT --to-ports %s", s->envoy_port);
        BOTH(b, "nat", "ISTIO_IN_REDIRECT", 0, "-p tcp -j REDIRECT --to-ports %s", s->inbound_capture_port);

        /* Step 5. */
        if (!s->inbound_all && s->inbound_port_list.n == 0)
                return;
        if (s->mode == CAPTURE_MODE_REDIRECT) {
                BOTH(b, "nat", "PREROUTING", 0, "-p tcp -j ISTIO_INBOUND");
                if (s->inbound_all) {
                        for (size_t i = 0; i < s->local_exclude_list.n; i++)
                                BOTH(b, "nat", "ISTIO_INBOUND", 0, "-p tcp --dport %s -j RETURN",
                                     s->local_exclude_list.v[i]);
                        BOTH(b, "nat", "ISTIO_INBOUND", 0, "-p tcp -j ISTIO_IN_REDIRECT");
                } else {
                        for (size_t i = 0; i < s->inbound_port_list.n; i++)
                                BOTH(b, "nat", "ISTIO_INBOUND", 0, "-p tcp --dport %s -j ISTIO_IN_REDIRECT",
                                     s->inbound_port_list.v[i]);
                }
                return;
        }

        BOTH(b, "mangle", "ISTIO_DIVERT", 0, "-j MARK --set-mark %u", s->mark);
        BOTH(b, "mangle", "ISTIO_DIVERT", 0, "-j ACCEPT");
        add(b, PLAN_V4, "mangle", "ISTIO_TPROXY", 0,
            "! -d %s -p tcp -j TPROXY --tproxy-mark %u/0xffffffff --on-port %s", s->loopback_v4, s->mark,
            s->inbound_capture_port);
        add(b, PLAN_V6, "mangle", "ISTIO_TPROXY", 0,
            "! -d ::1/128 -p tcp -j TPROXY --tproxy-mark %u/0xffffffff --on-port %s", s->mark,
            s->inbound_capture_port);
        BOTH(b, "mangle", "PREROUTING", 0, "-p tcp -j ISTIO_INBOUND");
        if (s->inbound_all) {
                for (size_t i = 0; i < s->local_exclude_list.n; i++)
                        BOTH(b, "mangle", "ISTIO_INBOUND", 0, "-p tcp --dport %s -j RETURN",
                             s->local_exclude_list.v[i]);
                BOTH(b, "mangle", "ISTIO_INBOUND", 0,
                     "-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT");
                BOTH(b, "mangle", "ISTIO_INBOUND", 0, "-p tcp -j ISTIO_TPROXY");
        } else {
                for (size_t i = 0; i < s->inbound_port_list.n; i++) {
                        BOTH(b, "mangle", "ISTIO_INBOUND", 0,
                             "-p tcp --dport %s -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT",
                             s->inbound_port_list.v[i]);
                        BOTH(b, "mangle", "ISTIO_INBOUND", 0, "-p tcp --dport %s -j ISTIO_TPROXY",
                             s->inbound_port_list.v[i]);
                }
        }
}

/* Steps 9 and 10: the three rules per proxy UID, then per GID. */
static void build_owner_triples(struct builder *b, const struct capture_settings *s, const char *kind,
                                const struct strv *ids, bool dns)
{
        bool is_uid = strcmp(kind, "uid") == 0;

        for (size_t i = 0; i < ids->n; i++) {
                const char *id = ids->v[i];

                /* a: the proxy talking to its own pod through a service VIP comes back inbound.
                 * Only the UID rule gets the DNS exemption (Istio's asymmetry, kept as is). */
                if (dns && is_uid) {
                        add(b, PLAN_V4, "nat", "ISTIO_OUTPUT", 0,
                            "-o lo ! -d %s -p tcp -m multiport ! --dports %s,%s -m owner --%s-owner %s -j ISTIO_IN_REDIRECT",
                            s->loopback_v4, DNS_PORT, s->inbound_tunnel_port, kind, id);
                        add(b, PLAN_V6, "nat", "ISTIO_OUTPUT", 0,
                            "-o lo ! -d ::1/128 -p tcp -m multiport ! --dports %s,%s -m owner --%s-owner %s -j ISTIO_IN_REDIRECT",
                            DNS_PORT, s->inbound_tunnel_port, kind, id);
                } else {
                        add(b, PLAN_V4, "nat", "ISTIO_OUTPUT", 0,
                            "-o lo ! -d %s -p tcp ! --dport %s -m owner --%s-owner %s -j ISTIO_IN_REDIRECT",
                            s->loopback_v4, s->inbound_tunnel_port, kind, id);
                        add(b, PLAN_V6, "nat", "ISTIO_OUTPUT", 0,
                            "-o lo ! -d ::1/128 -p tcp ! --dport %s -m owner --%s-owner %s -j ISTIO_IN_REDIRECT",
                            s->inbound_tunnel_port, kind, id);
                }
                /* b: loopback traffic of anyone else is not captured, unless -i names loopback. */
                if (!s->include_has_loopback) {
                        if (dns)
                                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-o lo -p tcp ! --dport %s -m owner ! --%s-owner %s -j RETURN",
                                     DNS_PORT, kind, id);
                        else
                                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-o lo -m owner ! --%s-owner %s -j RETURN", kind, id);
                }
                /* c: the proxy's own traffic is never captured. */
                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-m owner --%s-owner %s -j RETURN", kind, id);
        }
}

static void build_dns(struct builder *b, const struct capture_settings *s)
{
        const struct strv *servers[2] = { &s->dns_v4, &s->dns_v6 };
        const char *const plen[2] = { "32", "128" };

        /* Section 8, in Istio's order. */
        BOTH(b, "raw", "OUTPUT", 0, "-j ISTIO_OUTPUT_DNS");
        for (int f = 0; f < 2; f++)
                if (s->capture_all_dns || servers[f]->n)
                        add(b, (enum plan_family)f, "nat", "ISTIO_OUTPUT", 0, "-j ISTIO_OUTPUT_DNS");
        for (int proto = 0; proto < 2; proto++) {
                const char *p = proto == 0 ? "tcp" : "udp";
                /* Istio writes --to-ports for TCP and --to-port for UDP; both are accepted. */
                const char *to = proto == 0 ? "--to-ports" : "--to-port";

                if (s->capture_all_dns) {
                        BOTH(b, "nat", "ISTIO_OUTPUT_DNS", 0, "-p %s --dport %s -j REDIRECT %s %s", p, DNS_PORT, to,
                             DNS_AGENT_PORT);
                        continue;
                }
                for (int f = 0; f < 2; f++)
                        for (size_t i = 0; i < servers[f]->n; i++)
                                add(b, (enum plan_family)f, "nat", "ISTIO_OUTPUT_DNS", 0,
                                    "-p %s --dport %s -d %s/%s -j REDIRECT %s %s", p, DNS_PORT, servers[f]->v[i],
                                    plen[f], to, DNS_AGENT_PORT);
        }
        for (int k = 0; k < 2; k++) {
                const char *kind = k == 0 ? "uid" : "gid";
                const struct strv *ids = k == 0 ? &s->uids : &s->gids;
                for (size_t i = 0; i < ids->n; i++) {
                        BOTH(b, "raw", "ISTIO_OUTPUT_DNS", 0, "-p udp --dport %s -m owner --%s-owner %s -j CT --zone 1",
                             DNS_PORT, kind, ids->v[i]);
                        BOTH(b, "raw", "ISTIO_OUTPUT_DNS", 0, "-p udp --sport %s -m owner --%s-owner %s -j CT --zone 2",
                             DNS_AGENT_PORT, kind, ids->v[i]);
                }
        }
        if (s->capture_all_dns) {
                BOTH(b, "raw", "PREROUTING", 0, "-j ISTIO_INBOUND");
                BOTH(b, "raw", "ISTIO_OUTPUT_DNS", 0, "-p udp --dport %s -j CT --zone 2", DNS_PORT);
                BOTH(b, "raw", "ISTIO_INBOUND", 0, "-p udp --sport %s -j CT --zone 1", DNS_PORT);
                return;
        }
        for (int f = 0; f < 2; f++) {
                if (servers[f]->n)
                        add(b, (enum plan_family)f, "raw", "PREROUTING", 0, "-j ISTIO_INBOUND");
                for (size_t i = 0; i < servers[f]->n; i++) {
                        add(b, (enum plan_family)f, "raw", "ISTIO_OUTPUT_DNS", 0, "-p udp --dport %s -d %s/%s -j CT --zone 2",
                            DNS_PORT, servers[f]->v[i], plen[f]);
                        add(b, (enum plan_family)f, "raw", "ISTIO_INBOUND", 0, "-p udp --sport %s -s %s/%s -j CT --zone 1",
                            DNS_PORT, servers[f]->v[i], plen[f]);
                }
        }
}

static void build_outbound(struct builder *b, const struct capture_settings *s)
{
        const struct strv *include[2] = { &s->include_v4, &s->include_v6 };
        const struct strv *exclude[2] = { &s->exclude_v4, &s->exclude_v6 };
        bool dns = b->p->redirect_dns;

        /* Step 6. pilotfish keeps the ≤1.24 "-p tcp" form unless UDP (DNS) must enter the chain. */
        if (dns)
                BOTH(b, "nat", "OUTPUT", 0, "-j ISTIO_OUTPUT");
        else
                BOTH(b, "nat", "OUTPUT", 0, "-p tcp -j ISTIO_OUTPUT");

        /* Step 7. */
        for (size_t i = 0; i < s->outbound_exclude_list.n; i++) {
                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-p tcp --dport %s -j RETURN", s->outbound_exclude_list.v[i]);
                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-p udp --dport %s -j RETURN", s->outbound_exclude_list.v[i]);
        }
        /* Step 8: the inbound passthrough from 127.0.0.6 goes straight to the application. */
        add(b, PLAN_V4, "nat", "ISTIO_OUTPUT", 0, "-o lo -s 127.0.0.6/32 -j RETURN");
        add(b, PLAN_V6, "nat", "ISTIO_OUTPUT", 0, "-o lo -s ::6/128 -j RETURN");

        build_owner_triples(b, s, "uid", &s->uids, dns);
        build_owner_triples(b, s, "gid", &s->gids, dns);

        /* Step 11. */
        if (!s->owner_groups_all) {
                struct strbuf spec = STRBUF_NULL;
                for (size_t i = 0; i < s->owner_groups.n; i++)
                        strbuf_printf(&spec, "-m owner ! --gid-owner %s ", s->owner_groups.v[i]);
                strbuf_puts(&spec, "-j RETURN");
                if (spec.error)
                        b->error = spec.error;
                else
                        BOTH(b, "nat", "ISTIO_OUTPUT", 0, "%s", strbuf_str(&spec));
                strbuf_deinit(&spec);
        } else {
                for (size_t i = 0; i < s->owner_groups_excl.n; i++)
                        BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-m owner --gid-owner %s -j RETURN", s->owner_groups_excl.v[i]);
        }

        /* Step 12. */
        if (dns)
                build_dns(b, s);

        /* Step 13. */
        add(b, PLAN_V4, "nat", "ISTIO_OUTPUT", 0, "-d %s -j RETURN", s->loopback_v4);
        add(b, PLAN_V6, "nat", "ISTIO_OUTPUT", 0, "-d ::1/128 -j RETURN");

        /* Step 14. */
        for (int f = 0; f < 2; f++)
                for (size_t i = 0; i < exclude[f]->n; i++)
                        add(b, (enum plan_family)f, "nat", "ISTIO_OUTPUT", 0, "-d %s -j RETURN", exclude[f]->v[i]);

        /* Step 15. */
        for (size_t i = 0; i < s->outbound_port_list.n; i++)
                BOTH(b, "nat", "ISTIO_OUTPUT", 0, "-p tcp --dport %s -j ISTIO_REDIRECT", s->outbound_port_list.v[i]);

        /* Step 16, per family. */
        for (int f = 0; f < 2; f++) {
                enum plan_family fam = (enum plan_family)f;

                if (s->outbound_all) {
                        add(b, fam, "nat", "ISTIO_OUTPUT", 0, "-j ISTIO_REDIRECT");
                        for (size_t k = 0; k < s->kube_virt_ifs.n; k++)
                                add(b, fam, "nat", "PREROUTING", 1, "-i %s -j ISTIO_REDIRECT", s->kube_virt_ifs.v[k]);
                        continue;
                }
                for (size_t i = 0; i < include[f]->n; i++) {
                        for (size_t k = 0; k < s->kube_virt_ifs.n; k++)
                                add(b, fam, "nat", "PREROUTING", 1, "-i %s -d %s -j ISTIO_REDIRECT",
                                    s->kube_virt_ifs.v[k], include[f]->v[i]);
                        add(b, fam, "nat", "ISTIO_OUTPUT", 0, "-d %s -j ISTIO_REDIRECT", include[f]->v[i]);
                }
        }
}

static void build_tproxy_tail(struct builder *b, const struct capture_settings *s)
{
        /* Step 17: runs in TPROXY mode even when -b is empty, as Istio's does. */
        BOTH(b, "mangle", "PREROUTING", 0, "-p tcp -m mark --mark %u -j CONNMARK --save-mark", s->mark);
        BOTH(b, "mangle", "OUTPUT", 0, "-p tcp -o lo -m mark --mark %u -j RETURN", s->mark);
        for (int k = 0; k < 2; k++) {
                const char *kind = k == 0 ? "uid" : "gid";
                const struct strv *ids = k == 0 ? &s->uids : &s->gids;
                for (size_t i = 0; i < ids->n; i++) {
                        add(b, PLAN_V4, "mangle", "OUTPUT", 0,
                            "! -d %s -p tcp -o lo -m owner --%s-owner %s -j MARK --set-mark " OUTBOUND_MARK,
                            s->loopback_v4, kind, ids->v[i]);
                        add(b, PLAN_V6, "mangle", "OUTPUT", 0,
                            "! -d ::1/128 -p tcp -o lo -m owner --%s-owner %s -j MARK --set-mark " OUTBOUND_MARK, kind,
                            ids->v[i]);
                }
        }
        BOTH(b, "mangle", "OUTPUT", 0, "-p tcp -m connmark --mark %u -j CONNMARK --restore-mark", s->mark);
        BOTH(b, "mangle", "ISTIO_INBOUND", 1, "-p tcp -m mark --mark %u -j RETURN", s->mark);
        add(b, PLAN_V4, "mangle", "ISTIO_INBOUND", 2, "-p tcp -s 127.0.0.6/32 -i lo -j RETURN");
        add(b, PLAN_V6, "mangle", "ISTIO_INBOUND", 2, "-p tcp -s ::6/128 -i lo -j RETURN");
        BOTH(b, "mangle", "ISTIO_INBOUND", 3, "-p tcp -i lo -m mark ! --mark " OUTBOUND_MARK " -j RETURN");
}

int plan_build(const struct capture_settings *s, struct plan *ret)
{
        struct builder b = { .p = ret, .error = 0 };

        memset(ret, 0, sizeof(*ret));
        ret->ipv6 = s->enable_ipv6;
        if (s->redirect_dns) {
                ret->redirect_dns = s->capture_all_dns || s->dns_v4.n || s->dns_v6.n;
                ret->dns_requested_without_servers = !ret->redirect_dns;
        }

        build_interfaces(&b, s);
        build_inbound(&b, s);
        build_outbound(&b, s);
        if (s->mode == CAPTURE_MODE_TPROXY)
                build_tproxy_tail(&b, s);

        if (b.error) {
                plan_deinit(ret);
                return b.error;
        }
        return 0;
}

void plan_deinit(struct plan *p)
{
        for (int f = 0; f < _PLAN_FAMILY_MAX; f++) {
                for (size_t i = 0; i < p->family[f].n; i++) {
                        free(p->family[f].v[i].table);
                        free(p->family[f].v[i].chain);
                        free(p->family[f].v[i].spec);
                }
                free(p->family[f].v);
                p->family[f].v = NULL;
                p->family[f].n = 0;
        }
}

bool plan_chain_is_builtin(const char *chain)
{
        static const char *const builtin[] = { "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING",
                                               "ACCEPT", "RETURN", "DROP" };

        for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
                if (strcmp(chain, builtin[i]) == 0)
                        return true;
        return false;
}

bool plan_chain_is_istio(const char *chain)
{
        return strncmp(chain, "ISTIO_", 6) == 0;
}

const char *plan_rule_jump_target(const char *spec, size_t *ret_len)
{
        /* The jump is "-j TARGET" as the last two tokens; targets with options never match. */
        size_t n = strlen(spec);
        const char *last, *end = spec + n;

        while (end > spec && end[-1] == ' ')
                end--;
        last = end;
        while (last > spec && last[-1] != ' ')
                last--;
        if (last == end || last - spec < 3 || strncmp(last - 3, "-j ", 3) != 0)
                return NULL;
        if (last - spec > 3 && last[-4] != ' ')
                return NULL;
        {
                char name[64];
                size_t len = (size_t)(end - last);
                if (len >= sizeof(name))
                        return NULL;
                memcpy(name, last, len);
                name[len] = '\0';
                if (plan_chain_is_builtin(name))
                        return NULL;
        }
        *ret_len = (size_t)(end - last);
        return last;
}
