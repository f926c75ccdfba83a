/*
 * TPROXY policy routing and the ::6 passthrough address over rtnetlink; see route.h. Every
 * public call opens its own NETLINK_ROUTE socket in the current network namespace (the CNI
 * plugin has already entered the pod's), does its few requests and closes it again: these
 * run once per pod start, so a shared socket would buy nothing and cost a lifetime rule.
 *
 * Message layouts follow what iproute2 sends for the equivalent `ip` commands, so
 * `ip rule show` / `ip route show table T` print exactly what Istio's setup prints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "capture/route.h"
#include "common/netlink.h"

/*
 * Rule attributes are scanned up to this type, so selectors newer than our headers (FRA_DSCP,
 * FRA_FLOWLABEL, ...) are still seen and make a rule "not identical".
 */
#define ROUTE_ATTR_SCAN_MAX 255
/* Identical rules removed per dump round, and rounds; duplicates beyond this are absurd. */
#define ROUTE_RULE_BATCH 32
#define ROUTE_RULE_ROUNDS 64

static const struct in6_addr route_lo_ipv6_addr = { .s6_addr = { [15] = 6 } };       /* ::6 */

static const char *route_family_name(int family)
{
        return family == AF_INET6 ? "IPv6" : "IPv4";
}

static int route_family_af(enum route_family f)
{
        return f == ROUTE_V6 ? AF_INET6 : AF_INET;
}

/*
 * Writes "<what>: <strerror(-r)>[ (<extack>)]" into err. nl may be NULL when no kernel reply
 * is involved.
 */
static void route_error(char *err, size_t errlen, int r, const struct netlink *nl,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void route_error(char *err, size_t errlen, int r, const struct netlink *nl,
                        const char *fmt, ...)
{
        char ebuf[128];
        va_list ap;
        int n;

        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= errlen)
                return;
        if (nl && nl->ext_msg[0])
                snprintf(err + n, errlen - (size_t)n, ": %s (%s)",
                         strerror_r(-r, ebuf, sizeof(ebuf)), nl->ext_msg);
        else
                snprintf(err + n, errlen - (size_t)n, ": %s", strerror_r(-r, ebuf, sizeof(ebuf)));
}

static int route_open(struct netlink *nl, char *err, size_t errlen)
{
        int r = netlink_init(nl);

        if (r < 0)
                route_error(err, errlen, r, NULL, "opening rtnetlink socket");
        return r;
}

static int route_lo_index(unsigned *ret, char *err, size_t errlen)
{
        unsigned idx = if_nametoindex("lo");
        int r;

        if (idx == 0) {
                r = errno ? -errno : -ENODEV;
                route_error(err, errlen, r, NULL, "looking up interface lo");
                return r;
        }
        *ret = idx;
        return 0;
}

/* The table id goes in the header when it fits, and always in the 32-bit attribute. */
static uint8_t route_table_hdr(unsigned table)
{
        return table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
}

/* ---- rules ---------------------------------------------------------------------------- */

struct route_rule_scan {
        int family;
        uint32_t mark;
        uint32_t table;
        unsigned count;                         /* identical rules seen */
        uint32_t prio[ROUTE_RULE_BATCH];        /* priorities of the first ROUTE_RULE_BATCH */
        unsigned nprio;
};

/*
 * True when a dumped rule is exactly "fwmark MARK lookup TABLE": full mask, no inversion, no
 * other selector. Priority and protocol do not change what the rule matches.
 */
static bool route_rule_identical(const struct fib_rule_hdr *frh, const struct nlattr *const *tb,
                                 const struct route_rule_scan *s)
{
        uint32_t v, table = frh->table;

        if (frh->family != s->family || frh->action != FR_ACT_TO_TBL || frh->src_len ||
            frh->dst_len || frh->tos || (frh->flags & FIB_RULE_INVERT))
                return false;
        for (unsigned type = 0; type <= ROUTE_ATTR_SCAN_MAX; type++) {
                if (!tb[type])
                        continue;
                switch (type) {
                case FRA_PRIORITY:
                case FRA_PROTOCOL:
                case FRA_PAD:
                        break;
                case FRA_TABLE:
                        if (netlink_attr_get_u32(tb[type], &table) < 0)
                                return false;
                        break;
                case FRA_FWMARK:
                        if (netlink_attr_get_u32(tb[type], &v) < 0 || v != s->mark)
                                return false;
                        break;
                case FRA_FWMASK:
                        if (netlink_attr_get_u32(tb[type], &v) < 0 || v != UINT32_MAX)
                                return false;
                        break;
                case FRA_SUPPRESS_PREFIXLEN:
                case FRA_SUPPRESS_IFGROUP:
                        /* Dumped with -1 meaning "not set". */
                        if (netlink_attr_get_u32(tb[type], &v) < 0 || v != UINT32_MAX)
                                return false;
                        break;
                default:
                        return false;
                }
        }
        return tb[FRA_FWMARK] && table == s->table;
}

static int route_rule_scan_cb(const struct nlmsghdr *nlh, void *userdata)
{
        const struct nlattr *tb[ROUTE_ATTR_SCAN_MAX + 1];
        struct route_rule_scan *s = userdata;
        const struct fib_rule_hdr *frh;
        uint32_t prio = 0;
        int r;

        if (nlh->nlmsg_type != RTM_NEWRULE)
                return 0;
        r = netlink_attr_parse(nlh, sizeof(*frh), tb, ROUTE_ATTR_SCAN_MAX);
        if (r < 0)
                return r;
        frh = mnl_nlmsg_get_payload(nlh);
        if (!route_rule_identical(frh, tb, s))
                return 0;
        /* An absent FRA_PRIORITY means preference 0. */
        if (tb[FRA_PRIORITY] && netlink_attr_get_u32(tb[FRA_PRIORITY], &prio) < 0)
                return -EBADMSG;
        if (s->nprio < ROUTE_RULE_BATCH)
                s->prio[s->nprio++] = prio;
        s->count++;
        return 0;
}

static int route_rule_scan(struct netlink *nl, struct route_rule_scan *s, char *err,
                           size_t errlen)
{
        char buf[NETLINK_REQUEST_SIZE];
        struct fib_rule_hdr *frh;
        struct nlmsghdr *nlh;
        int r;

        s->count = s->nprio = 0;
        nlh = netlink_msg_start(buf, RTM_GETRULE, 0);
        frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
        frh->family = (uint8_t)s->family;
        r = netlink_dump(nl, nlh, route_rule_scan_cb, s);
        if (r < 0)
                route_error(err, errlen, r, nl, "listing rules (%s)", route_family_name(s->family));
        return r;
}

/* Builds "fwmark MARK lookup TABLE" (plus "pref PRIO" when prio >= 0) for add or delete. */
static struct nlmsghdr *route_rule_msg(void *buf, uint16_t type, uint16_t flags, int family,
                                       uint32_t mark, uint32_t table, int64_t prio)
{
        struct nlmsghdr *nlh = netlink_msg_start(buf, type, flags);
        struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

        frh->family = (uint8_t)family;
        frh->action = FR_ACT_TO_TBL;
        frh->table = route_table_hdr(table);
        mnl_attr_put_u32(nlh, FRA_TABLE, table);
        mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
        /* What the kernel fills in for a mark without a mask; explicit so delete matches it. */
        mnl_attr_put_u32(nlh, FRA_FWMASK, UINT32_MAX);
        if (prio >= 0)
                mnl_attr_put_u32(nlh, FRA_PRIORITY, (uint32_t)prio);
        return nlh;
}

/* Adds the rule unless an identical one exists. Returns 1 when it added it, 0 when present. */
static int route_rule_add(struct netlink *nl, int family, uint32_t mark, uint32_t table,
                          char *err, size_t errlen)
{
        struct route_rule_scan s = { .family = family, .mark = mark, .table = table };
        char buf[NETLINK_REQUEST_SIZE];
        int r;

        r = route_rule_scan(nl, &s, err, errlen);
        if (r < 0)
                return r;
        if (s.count > 0)
                return 0;
        /* NLM_F_EXCL as Istio sends it; the dump above is what really prevents duplicates. */
        r = netlink_request(nl, route_rule_msg(buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL,
                                               family, mark, table, -1));
        if (r == -EEXIST)
                return 0;
        if (r < 0) {
                route_error(err, errlen, r, nl, "adding rule 'fwmark 0x%x lookup %u' (%s)",
                            (unsigned)mark, (unsigned)table, route_family_name(family));
                return r;
        }
        return 1;
}

/*
 * Deletes every rule identical to "fwmark MARK lookup TABLE", each by its own priority so a
 * broader delete cannot hit a more specific rule that shares mark and table.
 */
static int route_rule_remove(struct netlink *nl, int family, uint32_t mark, uint32_t table,
                             char *err, size_t errlen)
{
        struct route_rule_scan s = { .family = family, .mark = mark, .table = table };
        char buf[NETLINK_REQUEST_SIZE];
        int r;

        for (unsigned round = 0; round < ROUTE_RULE_ROUNDS; round++) {
                r = route_rule_scan(nl, &s, err, errlen);
                if (r < 0)
                        return r;
                if (s.count == 0)
                        return 0;
                for (unsigned i = 0; i < s.nprio; i++) {
                        r = netlink_request(nl, route_rule_msg(buf, RTM_DELRULE, 0, family, mark,
                                                               table, s.prio[i]));
                        if (r < 0 && r != -ENOENT) {
                                route_error(err, errlen, r, nl,
                                            "deleting rule 'fwmark 0x%x lookup %u' (%s, priority %u)",
                                            (unsigned)mark, (unsigned)table,
                                            route_family_name(family), (unsigned)s.prio[i]);
                                return r;
                        }
                }
        }
        route_error(err, errlen, -ELOOP, NULL,
                    "deleting rule 'fwmark 0x%x lookup %u' (%s): still present after %d rounds",
                    (unsigned)mark, (unsigned)table, route_family_name(family), ROUTE_RULE_ROUNDS);
        return -ELOOP;
}

/* ---- routes --------------------------------------------------------------------------- */

struct route_route_scan {
        int family;
        uint32_t table;
        uint32_t oif;
        bool found;
};

static int route_route_scan_cb(const struct nlmsghdr *nlh, void *userdata)
{
        const struct nlattr *tb[RTA_MAX + 1];
        struct route_route_scan *s = userdata;
        const struct rtmsg *rtm;
        uint32_t table, oif;
        int r;

        if (nlh->nlmsg_type != RTM_NEWROUTE)
                return 0;
        r = netlink_attr_parse(nlh, sizeof(*rtm), tb, RTA_MAX);
        if (r < 0)
                return r;
        rtm = mnl_nlmsg_get_payload(nlh);
        if (rtm->rtm_family != s->family || rtm->rtm_dst_len != 0 || rtm->rtm_type != RTN_LOCAL)
                return 0;
        table = rtm->rtm_table;
        if (tb[RTA_TABLE] && netlink_attr_get_u32(tb[RTA_TABLE], &table) < 0)
                return -EBADMSG;
        if (table != s->table || !tb[RTA_OIF] || netlink_attr_get_u32(tb[RTA_OIF], &oif) < 0 ||
            oif != s->oif)
                return 0;
        s->found = true;
        return 0;
}

static int route_route_exists(struct netlink *nl, int family, uint32_t table, unsigned lo,
                              char *err, size_t errlen)
{
        struct route_route_scan s = { .family = family, .table = table, .oif = lo };
        char buf[NETLINK_REQUEST_SIZE];
        struct nlmsghdr *nlh;
        struct rtmsg *rtm;
        int r;

        nlh = netlink_msg_start(buf, RTM_GETROUTE, 0);
        rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
        rtm->rtm_family = (uint8_t)family;
        r = netlink_dump(nl, nlh, route_route_scan_cb, &s);
        if (r < 0) {
                route_error(err, errlen, r, nl, "listing routes (%s)", route_family_name(family));
                return r;
        }
        return s.found ? 1 : 0;
}

/* "local default dev lo table TABLE", as `ip route add|del` sends it. */
static struct nlmsghdr *route_route_msg(void *buf, uint16_t type, uint16_t flags, int family,
                                        uint32_t table, unsigned lo)
{
        struct nlmsghdr *nlh = netlink_msg_start(buf, type, flags);
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

        rtm->rtm_family = (uint8_t)family;
        rtm->rtm_dst_len = 0;
        rtm->rtm_table = route_table_hdr(table);
        rtm->rtm_type = RTN_LOCAL;
        if (type == RTM_NEWROUTE) {
                rtm->rtm_protocol = RTPROT_BOOT;
                rtm->rtm_scope = RT_SCOPE_HOST;
        } else {
                /* Delete: any protocol and scope, but only the local route through lo. */
                rtm->rtm_protocol = RTPROT_UNSPEC;
                rtm->rtm_scope = RT_SCOPE_NOWHERE;
        }
        mnl_attr_put_u32(nlh, RTA_TABLE, table);
        mnl_attr_put_u32(nlh, RTA_OIF, lo);
        return nlh;
}

/* Returns 1 when it added the route, 0 when one was there already (EEXIST). */
static int route_route_add(struct netlink *nl, int family, uint32_t table, unsigned lo,
                           char *err, size_t errlen)
{
        char buf[NETLINK_REQUEST_SIZE];
        int r;

        r = netlink_request(nl, route_route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                                                family, table, lo));
        if (r == -EEXIST)
                return 0;
        if (r < 0) {
                route_error(err, errlen, r, nl,
                            "adding route 'local default dev lo table %u' (%s)",
                            (unsigned)table, route_family_name(family));
                return r;
        }
        return 1;
}

static int route_route_remove(struct netlink *nl, int family, uint32_t table, unsigned lo,
                              char *err, size_t errlen)
{
        char buf[NETLINK_REQUEST_SIZE];
        int r;

        r = netlink_request(nl, route_route_msg(buf, RTM_DELROUTE, 0, family, table, lo));
        /* ESRCH: no such route (or table); ENOENT from older IPv6 code paths. */
        if (r == -ESRCH || r == -ENOENT)
                return 0;
        if (r < 0)
                route_error(err, errlen, r, nl,
                            "deleting route 'local default dev lo table %u' (%s)",
                            (unsigned)table, route_family_name(family));
        return r;
}

/* ---- the ::6 address ------------------------------------------------------------------ */

struct route_addr_scan {
        unsigned ifindex;
        bool found;
};

static int route_addr_scan_cb(const struct nlmsghdr *nlh, void *userdata)
{
        const struct nlattr *tb[IFA_MAX + 1];
        struct route_addr_scan *s = userdata;
        const struct ifaddrmsg *ifa;
        const struct nlattr *a;
        int r;

        if (nlh->nlmsg_type != RTM_NEWADDR)
                return 0;
        r = netlink_attr_parse(nlh, sizeof(*ifa), tb, IFA_MAX);
        if (r < 0)
                return r;
        ifa = mnl_nlmsg_get_payload(nlh);
        if (ifa->ifa_family != AF_INET6 || ifa->ifa_index != s->ifindex || ifa->ifa_prefixlen != 128)
                return 0;
        a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        if (a && mnl_attr_get_payload_len(a) == sizeof(struct in6_addr) &&
            memcmp(mnl_attr_get_payload(a), &route_lo_ipv6_addr, sizeof(struct in6_addr)) == 0)
                s->found = true;
        return 0;
}

static int route_addr_exists(struct netlink *nl, unsigned lo, char *err, size_t errlen)
{
        struct route_addr_scan s = { .ifindex = lo };
        char buf[NETLINK_REQUEST_SIZE];
        struct ifaddrmsg *ifa;
        struct nlmsghdr *nlh;
        int r;

        nlh = netlink_msg_start(buf, RTM_GETADDR, 0);
        ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = AF_INET6;
        r = netlink_dump(nl, nlh, route_addr_scan_cb, &s);
        if (r < 0) {
                route_error(err, errlen, r, nl, "listing addresses (IPv6)");
                return r;
        }
        return s.found ? 1 : 0;
}

static struct nlmsghdr *route_addr_msg(void *buf, uint16_t type, uint16_t flags, unsigned lo)
{
        struct nlmsghdr *nlh = netlink_msg_start(buf, type, flags);
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

        ifa->ifa_family = AF_INET6;
        ifa->ifa_prefixlen = 128;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = lo;
        mnl_attr_put(nlh, IFA_LOCAL, sizeof(route_lo_ipv6_addr), &route_lo_ipv6_addr);
        mnl_attr_put(nlh, IFA_ADDRESS, sizeof(route_lo_ipv6_addr), &route_lo_ipv6_addr);
        return nlh;
}

static int route_addr_remove(struct netlink *nl, unsigned lo, char *err, size_t errlen)
{
        char buf[NETLINK_REQUEST_SIZE];
        int r;

        r = netlink_request(nl, route_addr_msg(buf, RTM_DELADDR, 0, lo));
        if (r == -EADDRNOTAVAIL)
                return 0;
        if (r < 0)
                route_error(err, errlen, r, nl, "deleting address ::6/128 from lo");
        return r;
}

/* ---- public API ----------------------------------------------------------------------- */

static int route_tproxy_check(const struct route_tproxy *t, char *err, size_t errlen)
{
        if (t->mark == 0 || t->table == 0) {
                route_error(err, errlen, -EINVAL, NULL,
                            "TPROXY routing 'fwmark 0x%x lookup %u': %s 0 is not usable",
                            t->mark, t->table, t->mark == 0 ? "fwmark" : "table");
                return -EINVAL;
        }
        return 0;
}

static bool route_undo_has_tproxy(const struct route_undo *u)
{
        for (int f = 0; f < _ROUTE_FAMILY_MAX; f++)
                if (u->rule[f] || u->route[f])
                        return true;
        return false;
}

int route_tproxy_add(const struct route_tproxy *t, struct route_undo *ret_undo, char *err,
                     size_t errlen)
{
        struct route_undo scratch = ROUTE_UNDO_NULL;
        struct netlink nl = NETLINK_NULL;
        int nfam = t->ipv6 ? 2 : 1;
        unsigned lo = 0;
        int r;

        r = route_tproxy_check(t, err, errlen);
        if (r < 0)
                return r;
        if (!ret_undo)
                ret_undo = &scratch;
        if (route_undo_has_tproxy(ret_undo) &&
            (ret_undo->mark != t->mark || ret_undo->table != t->table)) {
                route_error(err, errlen, -EINVAL, NULL,
                            "TPROXY routing 'fwmark 0x%x lookup %u': undo record already holds "
                            "'fwmark 0x%x lookup %u'", t->mark, t->table, ret_undo->mark,
                            ret_undo->table);
                return -EINVAL;
        }
        ret_undo->mark = t->mark;
        ret_undo->table = t->table;

        r = route_lo_index(&lo, err, errlen);
        if (r < 0)
                return r;
        r = route_open(&nl, err, errlen);
        if (r < 0)
                return r;

        for (int f = 0; f < nfam; f++) {
                r = route_rule_add(&nl, route_family_af(f), t->mark, t->table, err, errlen);
                if (r < 0)
                        goto out;
                if (r > 0)
                        ret_undo->rule[f] = true;
        }
        for (int f = 0; f < nfam; f++) {
                r = route_route_add(&nl, route_family_af(f), t->table, lo, err, errlen);
                if (r < 0)
                        goto out;
                if (r > 0)
                        ret_undo->route[f] = true;
        }
        r = 0;
out:
        netlink_deinit(&nl);
        return r;
}

int route_lo_ipv6_passthrough_add(struct route_undo *undo, char *err, size_t errlen)
{
        struct netlink nl = NETLINK_NULL;
        char buf[NETLINK_REQUEST_SIZE];
        unsigned lo = 0;
        int r;

        r = route_lo_index(&lo, err, errlen);
        if (r < 0)
                return r;
        r = route_open(&nl, err, errlen);
        if (r < 0)
                return r;
        r = netlink_request(&nl, route_addr_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, lo));
        if (r == -EEXIST) {
                r = 0;
        } else if (r < 0) {
                route_error(err, errlen, r, &nl, "adding address ::6/128 to lo");
        } else if (undo) {
                undo->lo_ipv6 = true;
        }
        netlink_deinit(&nl);
        return r;
}

int route_undo_apply(struct route_undo *u, char *err, size_t errlen)
{
        struct netlink nl = NETLINK_NULL;
        unsigned lo = 0;
        int r, ret = 0;

        if (!u->lo_ipv6 && !route_undo_has_tproxy(u))
                return 0;
        r = route_lo_index(&lo, err, errlen);
        if (r < 0)
                return r;
        r = route_open(&nl, err, errlen);
        if (r < 0)
                return r;

        /* Reverse order of adding: address, routes, rules; IPv6 before IPv4. */
        if (u->lo_ipv6) {
                r = route_addr_remove(&nl, lo, err, errlen);
                if (r < 0 && ret == 0)
                        ret = r;
                else if (r == 0)
                        u->lo_ipv6 = false;
        }
        for (int f = _ROUTE_FAMILY_MAX - 1; f >= 0; f--) {
                if (!u->route[f])
                        continue;
                r = route_route_remove(&nl, route_family_af(f), u->table, lo,
                                       ret == 0 ? err : NULL, errlen);
                if (r < 0 && ret == 0)
                        ret = r;
                else if (r == 0)
                        u->route[f] = false;
        }
        for (int f = _ROUTE_FAMILY_MAX - 1; f >= 0; f--) {
                if (!u->rule[f])
                        continue;
                r = route_rule_remove(&nl, route_family_af(f), u->mark, u->table,
                                      ret == 0 ? err : NULL, errlen);
                if (r < 0 && ret == 0)
                        ret = r;
                else if (r == 0)
                        u->rule[f] = false;
        }
        netlink_deinit(&nl);
        return ret;
}

int route_tproxy_remove(const struct route_tproxy *t, char *err, size_t errlen)
{
        struct netlink nl = NETLINK_NULL;
        int nfam = t->ipv6 ? 2 : 1;
        unsigned lo = 0;
        int r, ret = 0;

        r = route_tproxy_check(t, err, errlen);
        if (r < 0)
                return r;
        r = route_lo_index(&lo, err, errlen);
        if (r < 0)
                return r;
        r = route_open(&nl, err, errlen);
        if (r < 0)
                return r;

        for (int f = nfam - 1; f >= 0; f--) {
                r = route_route_remove(&nl, route_family_af(f), t->table, lo,
                                       ret == 0 ? err : NULL, errlen);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        for (int f = nfam - 1; f >= 0; f--) {
                r = route_rule_remove(&nl, route_family_af(f), t->mark, t->table,
                                      ret == 0 ? err : NULL, errlen);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        netlink_deinit(&nl);
        return ret;
}

int route_lo_ipv6_passthrough_remove(char *err, size_t errlen)
{
        struct netlink nl = NETLINK_NULL;
        unsigned lo = 0;
        int r;

        r = route_lo_index(&lo, err, errlen);
        if (r < 0)
                return r;
        r = route_open(&nl, err, errlen);
        if (r < 0)
                return r;
        r = route_addr_remove(&nl, lo, err, errlen);
        netlink_deinit(&nl);
        return r;
}

int route_rule_count(int family, unsigned mark, unsigned table)
{
        struct route_rule_scan s = { .family = family, .mark = mark, .table = table };
        struct netlink nl = NETLINK_NULL;
        int r;

        if (family != AF_INET && family != AF_INET6)
                return -EAFNOSUPPORT;
        r = netlink_init(&nl);
        if (r < 0)
                return r;
        r = route_rule_scan(&nl, &s, NULL, 0);
        netlink_deinit(&nl);
        return r < 0 ? r : (int)s.count;
}

int route_local_default_exists(int family, unsigned table)
{
        struct netlink nl = NETLINK_NULL;
        unsigned lo = 0;
        int r;

        if (family != AF_INET && family != AF_INET6)
                return -EAFNOSUPPORT;
        r = route_lo_index(&lo, NULL, 0);
        if (r < 0)
                return r;
        r = netlink_init(&nl);
        if (r < 0)
                return r;
        r = route_route_exists(&nl, family, table, lo, NULL, 0);
        netlink_deinit(&nl);
        return r;
}

int route_lo_ipv6_passthrough_exists(void)
{
        struct netlink nl = NETLINK_NULL;
        unsigned lo = 0;
        int r;

        r = route_lo_index(&lo, NULL, 0);
        if (r < 0)
                return r;
        r = netlink_init(&nl);
        if (r < 0)
                return r;
        r = route_addr_exists(&nl, lo, NULL, 0);
        netlink_deinit(&nl);
        return r;
}

bool route_tproxy_present(const struct route_tproxy *t)
{
        int nfam = t->ipv6 ? 2 : 1;

        for (int f = 0; f < nfam; f++)
                if (route_rule_count(route_family_af(f), t->mark, t->table) <= 0 ||
                    route_local_default_exists(route_family_af(f), t->table) <= 0)
                        return false;
        return true;
}
