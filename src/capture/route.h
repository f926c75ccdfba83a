/*
 * Policy routing for TPROXY inbound capture and the IPv6 inbound-passthrough address, as
 * istio-iptables sets them up after its rules are applied (../shared/conformance/istio-iptables/
 * SEMANTICS.md sections 5 and 7):
 *
 *     ip rule add fwmark MARK lookup TABLE             (IPv4, and IPv6 when enabled)
 *     ip route add local default dev lo table TABLE    (0.0.0.0/0, and ::/0)
 *     ip addr add ::6/128 dev lo                       (only when IPv6 is enabled)
 *
 * All of it goes through rtnetlink in the caller's current network namespace; nothing runs
 * `ip`. Istio adds the rule with NLM_F_EXCL, but the kernel's duplicate check compares the
 * priority too, and an unprioritised rule gets a fresh one each time, so a second Istio run
 * stacks a second identical rule. pilotfish dumps the rules first and adds one only when no
 * identical rule (same family, fwmark, mask, table and no other selector) exists, which makes
 * re-runs idempotent. Routes and the address are added exclusively and an EEXIST means "was
 * already there". What a call actually added is recorded in a struct route_undo, so a failed
 * run rolls back only its own changes and leaves pre-existing state alone.
 *
 * Errors: functions return 0 or a negative errno (the kernel's own, e.g. -EACCES when IPv6 is
 * disabled on lo). When err is non-NULL it receives one line saying what failed, on what and
 * why, e.g. "adding rule 'fwmark 0x539 lookup 133' (IPv6): Permission denied (IPv6 is
 * disabled on nexthop device)"; the kernel's extended-ACK text is included when it gave one.
 * err may be NULL (errlen is then ignored); it is left untouched on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What Istio's -t/--istio-inbound-tproxy-mark, -r/...-route-table and IPv6 detection give. */
struct route_tproxy {
        unsigned mark;          /* fwmark, 1..0xffffffff; matched with the full mask */
        unsigned table;         /* routing table id, 1..0xffffffff */
        bool ipv6;              /* also the AF_INET6 rule and route */
};

enum route_family {
        ROUTE_V4 = 0,
        ROUTE_V6,
        _ROUTE_FAMILY_MAX,
};

/*
 * What this process added, and nothing else; route_undo_apply() removes exactly these.
 * Records accumulate across calls (route_tproxy_add() then route_lo_ipv6_passthrough_add()
 * into the same undo) and are cleared as they are undone.
 */
struct route_undo {
        unsigned mark;                          /* of the recorded rules and routes */
        unsigned table;
        bool rule[_ROUTE_FAMILY_MAX];           /* added "fwmark mark lookup table" */
        bool route[_ROUTE_FAMILY_MAX];          /* added "local default dev lo table table" */
        bool lo_ipv6;                           /* added ::6/128 on lo */
};

#define ROUTE_UNDO_NULL { .mark = 0, .table = 0, .rule = { false, false }, .route = { false, false }, .lo_ipv6 = false }

/*
 * Adds the fwmark rule(s) and local default route(s) for t that are missing, IPv4 first.
 * Refuses mark 0 or table 0 with -EINVAL before touching anything (the kernel would turn
 * "lookup 0" into a freshly allocated table and "table 0" routes into the main table).
 * ret_undo (initialised by the caller, e.g. ROUTE_UNDO_NULL; may be NULL) gets a record of
 * each item this call added; if it already holds records for a different mark or table,
 * -EINVAL.
 * On failure the items added before the failing step stay in place and recorded, so the
 * caller decides whether to route_undo_apply(). Returns 0 or a negative errno.
 */
int route_tproxy_add(const struct route_tproxy *t, struct route_undo *ret_undo, char *err,
                     size_t errlen);

/*
 * Adds ::6/128 to lo (Istio does this whenever IPv6 is enabled, REDIRECT mode included, so
 * Envoy can bind the passthrough source). EEXIST counts as success and is not recorded.
 * undo may be NULL. Returns 0 or a negative errno (-EACCES: IPv6 disabled on lo).
 */
int route_lo_ipv6_passthrough_add(struct route_undo *undo, char *err, size_t errlen);

/*
 * Removes what u records, in reverse order of adding, and clears each record that is gone
 * (an item that vanished in the meantime counts as gone). Tries every item even after a
 * failure; returns 0 or the first negative errno, with its message in err.
 */
int route_undo_apply(struct route_undo *u, char *err, size_t errlen);

/*
 * Removes every rule identical to t's (duplicates included) and the local default routes of
 * t->table, for IPv4 and, when t->ipv6, IPv6: the --cleanup-only path. Missing items are not
 * an error (ENOENT/ESRCH). Returns 0 or the first negative errno; it goes on after a failure.
 */
int route_tproxy_remove(const struct route_tproxy *t, char *err, size_t errlen);

/* Removes ::6/128 from lo; EADDRNOTAVAIL (not there) is success. Returns 0 or negative errno. */
int route_lo_ipv6_passthrough_remove(char *err, size_t errlen);

/*
 * Queries. family is AF_INET or AF_INET6. Each returns the count or a boolean as a
 * non-negative int, or a negative errno when the dump itself failed.
 * route_rule_count(): how many rules are identical to "fwmark mark lookup table".
 * route_local_default_exists(): 1 when "local default dev lo" is in table, else 0.
 * route_lo_ipv6_passthrough_exists(): 1 when ::6/128 is on lo, else 0.
 */
int route_rule_count(int family, unsigned mark, unsigned table);
int route_local_default_exists(int family, unsigned table);
int route_lo_ipv6_passthrough_exists(void);

/* True when every rule and route route_tproxy_add() would create for t is present. */
bool route_tproxy_present(const struct route_tproxy *t);
