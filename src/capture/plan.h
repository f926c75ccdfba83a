/*
 * The pure rule model: capture settings in, an ordered list of rules per address family out.
 * This is Istio's emission algorithm (../shared/conformance/istio-iptables/SEMANTICS.md
 * section 4) kept as data, with no syscalls, so that the dry run, the applier, the state
 * check and cleanup all work from the same list and the conformance corpus can test it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct capture_settings;

enum plan_family {
        PLAN_V4 = 0,
        PLAN_V6,
        _PLAN_FAMILY_MAX,
};

/* One iptables rule, as Istio writes it in the restore input. */
struct plan_rule {
        char *table;    /* "nat", "mangle", "raw", "filter" */
        char *chain;
        int position;   /* 0: append (-A); N > 0: insert at N (-I CHAIN N) */
        char *spec;     /* the rule body, e.g. "-p tcp --dport 15008 -j RETURN" */
};

struct plan_rules {
        struct plan_rule *v;
        size_t n;
};

struct plan {
        struct plan_rules family[_PLAN_FAMILY_MAX];
        bool ipv6;              /* the v6 list is applied */
        bool redirect_dns;      /* DNS capture is on (servers known or capture-all) */
        bool dns_requested_without_servers;
};

#define PLAN_NULL { .family = { { NULL, 0 }, { NULL, 0 } }, .ipv6 = false }

/*
 * Builds the rules for `s` (already validated by capture_settings_resolve()). Returns 0 or
 * -ENOMEM. The plan owns everything; release it with plan_deinit().
 */
int plan_build(const struct capture_settings *s, struct plan *ret);
void plan_deinit(struct plan *p);

/* Builtin chains and targets: never declared with -N, never deleted. */
bool plan_chain_is_builtin(const char *chain);
/* "ISTIO_..." */
bool plan_chain_is_istio(const char *chain);
/*
 * The jump target of a rule spec when it jumps to a user chain ("-j ISTIO_REDIRECT" as the
 * last two tokens), else NULL. Points into spec; *ret_len gets its length.
 */
const char *plan_rule_jump_target(const char *spec, size_t *ret_len);
