/*
 * Settings of `pilotfish iptables`: Istio's istio-iptables flags and environment variables
 * (../shared/conformance/istio-iptables/SEMANTICS.md section 2) with the same defaults and
 * precedence (flag over alias env over primary env over default), plus pilotfish's own
 * --ipv6 and --resolv-conf for the two inputs Istio reads from the system.
 *
 * Parsing keeps every value as text first (flag table in settings.c), then
 * capture_settings_resolve() validates all of it and derives the typed fields the rule
 * planner uses. Validation is stricter than Istio's where Istio pastes unchecked text into
 * iptables-restore input (ports, IDs, interface names): a bad value is an error that names
 * it, never a rule that silently does something else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/strv.h"

enum capture_mode {
        CAPTURE_MODE_REDIRECT = 0,
        CAPTURE_MODE_TPROXY,
};

enum capture_ipv6 {
        CAPTURE_IPV6_AUTO = 0,
        CAPTURE_IPV6_TRUE,
        CAPTURE_IPV6_FALSE,
};

struct capture_settings {
        /* Text values, after flag/env/default precedence. Owned. */
        char *envoy_port;               /* -p */
        char *inbound_capture_port;     /* -z */
        char *inbound_tunnel_port;      /* -e */
        char *proxy_uid;                /* -u */
        char *proxy_gid;                /* -g */
        char *interception_mode;        /* -m */
        char *inbound_ports;            /* -b */
        char *local_exclude_ports;      /* -d */
        char *exclude_interfaces;       /* -c */
        char *service_cidr;             /* -i */
        char *service_exclude_cidr;     /* -x */
        char *outbound_ports;           /* -q */
        char *outbound_ports_exclude;   /* -o */
        char *kube_virt_interfaces;     /* -k */
        char *tproxy_mark;              /* -t */
        char *tproxy_route_table;       /* -r */
        char *probe_port;
        char *probe_timeout;
        char *network_namespace;
        char *force_iptables_binary;
        char *log_output_level;
        char *ipv6;                     /* pilotfish: auto|true|false */
        char *resolv_conf;              /* pilotfish: path */
        /* Environment only. */
        char *owner_groups_include;     /* ISTIO_OUTBOUND_OWNER_GROUPS */
        char *owner_groups_exclude;     /* ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE */
        char *loopback_cidr;            /* ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR */
        char *envoy_user;               /* ENVOY_USER */
        char *dry_run_file;             /* DRY_RUN_FILE_PATH */

        bool dry_run;
        bool skip_rule_apply;
        bool run_validation;
        bool redirect_dns;
        bool capture_all_dns;
        bool drop_invalid;
        bool dual_stack;
        bool cni_mode;
        bool reconcile;
        bool cleanup_only;
        bool force_apply;
        bool native_nftables;
        bool log_as_json;
        bool help;

        /* Whether any flag or env var that shapes the rules was given (cleanup scope). */
        bool capture_flags_given;
        /* What parsing ignored, as Istio does with a warning (a positional argument, a
         * boolean variable that does not parse), for the caller to log: library code does not. */
        struct strv warnings;

        /* Resolved by capture_settings_resolve(). */
        enum capture_mode mode;
        enum capture_ipv6 ipv6_mode;
        bool enable_ipv6;
        struct strv uids, gids;
        bool inbound_all;               /* -b '*' */
        struct strv inbound_port_list;  /* -b list */
        struct strv local_exclude_list; /* -d */
        struct strv exclude_ifs;        /* -c */
        struct strv kube_virt_ifs;      /* -k */
        bool outbound_all;              /* -i '*' */
        struct strv include_v4, include_v6;     /* -i CIDRs, canonical text */
        bool include_has_loopback;
        struct strv exclude_v4, exclude_v6;     /* -x CIDRs */
        struct strv outbound_port_list;         /* -q */
        struct strv outbound_exclude_list;      /* -o */
        bool owner_groups_all;
        struct strv owner_groups;               /* include list, when not '*' */
        struct strv owner_groups_excl;          /* exclude list, when include is '*' */
        char loopback_v4[64];                   /* ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, canonical */
        struct strv dns_v4, dns_v6;             /* resolver addresses, canonical, no prefix */
        unsigned mark;
        unsigned route_table;
        unsigned probe_port_num;
        long probe_timeout_ms;
};

/* Fills in Istio's defaults. Returns 0, or -ENOMEM with s left empty (deinit is safe). */
int capture_settings_init(struct capture_settings *s);
void capture_settings_deinit(struct capture_settings *s);

/*
 * Applies the environment (primary names, then aliases), as Istio binds them before flags are
 * parsed. `env` is an envp-style array. A bool variable that does not parse is ignored with a
 * warning in s->warnings, as in Istio. Returns 0 or -ENOMEM.
 */
int capture_settings_load_env(struct capture_settings *s, char *const *env);

/*
 * Parses the command line (argv[0] is the subcommand name and is skipped) with common/flags in
 * pflag mode: -x V, -xV, -x=V, -nh, --long V, --long=V, --bool, --bool=false, "--" ends flags;
 * a positional argument is ignored with a warning in s->warnings (cobra without Args).
 * Returns 0, or -EINVAL with every problem in err (unknown flag, missing value, bad bool), or
 * -ENOMEM.
 */
int capture_settings_parse_args(struct capture_settings *s, int argc, char *const *argv,
                                char *err, size_t errlen);

/*
 * Validates every value and derives the typed fields. Reads the resolv.conf file (only when
 * DNS capture needs servers) and the namespace's addresses (only for --ipv6=auto). Returns 0,
 * or -EINVAL with every problem found named in err, or another negative errno.
 */
int capture_settings_resolve(struct capture_settings *s, char *err, size_t errlen);

/* Writes the usage text (generated from the flag table) to f. */
void capture_settings_usage(FILE *f);
