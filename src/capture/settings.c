/*
 * istio-iptables flags and environment; see settings.h. One table drives flag parsing, env
 * binding and the usage text, so the three cannot drift apart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/settings.h"
#include "common/cidr.h"
#include "common/flags.h"
#include "common/go_value.h"
#include "common/log.h"
#include "common/readfile.h"
#include "common/strbuf.h"

#define S(field) offsetof(struct capture_settings, field)

static int set_value(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err);
static int set_rule_value(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err);
static int set_bool(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err);
static int set_rule_bool(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err);

/* One row: a value (owned text) or a boolean; rules: whether it shapes the rules, so that it
 * counts as a capture flag for --cleanup-only's scope. */
#define FLAG(short_, name_, env_, alias_, kind_, field, rules, help_) \
        { .short_name = (short_), .name = (name_), .env = (env_), .env_alias = (alias_), .kind = (kind_), \
          .offset = S(field), .help = (help_), \
          .set = (kind_) == FLAGS_BOOL ? ((rules) ? set_rule_bool : set_bool) : ((rules) ? set_rule_value : set_value) }

static const struct flags_opt flags[] = {
        FLAG('p', "envoy-port", NULL, NULL, FLAGS_VALUE, envoy_port, true,
          "outbound capture port: target of ISTIO_REDIRECT (default 15001)"),
        FLAG('z', "inbound-capture-port", "INBOUND_CAPTURE_PORT", NULL, FLAGS_VALUE, inbound_capture_port, true,
          "inbound capture port: target of ISTIO_IN_REDIRECT and TPROXY (default 15006)"),
        FLAG('e', "inbound-tunnel-port", "INBOUND_TUNNEL_PORT", NULL, FLAGS_VALUE, inbound_tunnel_port, true,
          "tunnel port, never captured (default 15008)"),
        FLAG('u', "proxy-uid", "PROXY_UID", NULL, FLAGS_VALUE, proxy_uid, true,
          "comma list of proxy UIDs exempt from capture (default: uid of $ENVOY_USER, else 1337)"),
        FLAG('g', "proxy-gid", "PROXY_GID", NULL, FLAGS_VALUE, proxy_gid, true,
          "comma list of proxy GIDs exempt from capture (default: the proxy UIDs)"),
        FLAG('m', "istio-inbound-interception-mode", "ISTIO_INBOUND_INTERCEPTION_MODE", NULL,
             FLAGS_VALUE, interception_mode, true,
          "inbound mode: REDIRECT (default) or TPROXY"),
        FLAG('b', "istio-inbound-ports", "ISTIO_INBOUND_PORTS", NULL, FLAGS_VALUE, inbound_ports, true,
          "inbound ports to capture: '*' for all, a comma list, or empty for none"),
        FLAG('d', "istio-local-exclude-ports", "ISTIO_LOCAL_EXCLUDE_PORTS", NULL,
             FLAGS_VALUE, local_exclude_ports, true,
          "inbound ports not captured (only with -b '*')"),
        FLAG('c', "istio-exclude-interfaces", "ISTIO_EXCLUDE_INTERFACES", NULL, FLAGS_VALUE, exclude_interfaces, true,
          "interfaces whose traffic is never captured"),
        FLAG('i', "istio-service-cidr", "ISTIO_SERVICE_CIDR", NULL, FLAGS_VALUE, service_cidr, true,
          "outbound CIDRs to capture: '*' for all, a comma list, or empty for none"),
        FLAG('x', "istio-service-exclude-cidr", "ISTIO_SERVICE_EXCLUDE_CIDR", NULL,
             FLAGS_VALUE, service_exclude_cidr, true,
          "outbound CIDRs never captured"),
        FLAG('q', "istio-outbound-ports", "ISTIO_OUTBOUND_PORTS", NULL, FLAGS_VALUE, outbound_ports, true,
          "outbound ports always captured"),
        FLAG('o', "istio-local-outbound-ports-exclude", "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE", NULL,
             FLAGS_VALUE, outbound_ports_exclude, true,
          "outbound ports never captured (TCP and UDP)"),
        FLAG('k', "kube-virt-interfaces", "KUBE_VIRT_INTERFACES", NULL, FLAGS_VALUE, kube_virt_interfaces, true,
          "interfaces whose inbound traffic is treated as outbound (KubeVirt)"),
        FLAG('t', "istio-inbound-tproxy-mark", "ISTIO_INBOUND_TPROXY_MARK", NULL, FLAGS_VALUE, tproxy_mark, true,
          "fwmark for TPROXY (default 1337)"),
        FLAG('r', "istio-inbound-tproxy-route-table", "ISTIO_INBOUND_TPROXY_ROUTE_TABLE", NULL,
             FLAGS_VALUE, tproxy_route_table, true,
          "routing table for TPROXY (default 133)"),
        FLAG('n', "dry-run", "DRY_RUN", NULL, FLAGS_BOOL, dry_run, false,
          "print the iptables-restore input and change nothing"),
        FLAG(0, "iptables-probe-port", "IPTABLES_PROBE_PORT", NULL, FLAGS_VALUE, probe_port, false,
          "port --run-validation connects to (default 15002)"),
        FLAG(0, "probe-timeout", "PROBE_TIMEOUT", NULL, FLAGS_VALUE, probe_timeout, false,
          "how long --run-validation tries (Go duration, default 5s)"),
        FLAG(0, "skip-rule-apply", "SKIP_RULE_APPLY", NULL, FLAGS_BOOL, skip_rule_apply, false,
          "apply no rules or routes (with --run-validation, when a CNI plugin applied them)"),
        FLAG(0, "run-validation", "RUN_VALIDATION", NULL, FLAGS_BOOL, run_validation, false,
          "after applying, check that redirection works; exit 126 if not"),
        FLAG(0, "redirect-dns", "REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE", FLAGS_BOOL, redirect_dns, true,
          "capture DNS to the resolvers of resolv.conf to port 15053"),
        FLAG(0, "capture-all-dns", "CAPTURE_ALL_DNS", NULL, FLAGS_BOOL, capture_all_dns, true,
          "capture all port-53 traffic, not only to the resolvers"),
        FLAG(0, "drop-invalid", "DROP_INVALID", "INVALID_DROP", FLAGS_BOOL, drop_invalid, true,
          "drop packets conntrack marks INVALID"),
        FLAG(0, "dual-stack", "DUAL_STACK", "ISTIO_DUAL_STACK", FLAGS_BOOL, dual_stack, true,
          "--ipv6=auto turns IPv6 on when any address is IPv6, not only the first"),
        FLAG(0, "network-namespace", "NETWORK_NAMESPACE", NULL, FLAGS_VALUE, network_namespace, false,
          "path of the network namespace to program (entered before anything else)"),
        FLAG(0, "cni-mode", "CNI_MODE", NULL, FLAGS_BOOL, cni_mode, false,
          "run iptables with a private mount namespace and a per-namespace xtables lock"),
        FLAG(0, "reconcile", "RECONCILE", NULL, FLAGS_BOOL, reconcile, false,
          "replace rules that differ from these settings, atomically"),
        FLAG(0, "cleanup-only", "CLEANUP_ONLY", NULL, FLAGS_BOOL, cleanup_only, false,
          "remove the rules (and TPROXY routes) these settings create; with no capture flags, every ISTIO_* chain"),
        FLAG(0, "force-apply", "FORCE_APPLY", NULL, FLAGS_BOOL, force_apply, false,
          "apply without checking the current state first"),
        FLAG(0, "native-nftables", "NATIVE_NFTABLES", NULL, FLAGS_BOOL, native_nftables, false,
          "use nftables directly (not available yet: rejected)"),
        FLAG(0, "force-iptables-binary", "FORCE_IPTABLES_BINARY", NULL, FLAGS_VALUE, force_iptables_binary, false,
          "use this iptables variant: legacy or nft (default: detect)"),
        FLAG(0, "log_output_level", NULL, NULL, FLAGS_VALUE, log_output_level, false,
          "Istio log levels, e.g. default:info"),
        FLAG(0, "log_as_json", NULL, NULL, FLAGS_BOOL, log_as_json, false,
          "log JSON lines"),
        FLAG(0, "ipv6", NULL, NULL, FLAGS_VALUE, ipv6, false,
          "IPv6 rules: auto (from the namespace's addresses), true or false"),
        FLAG(0, "resolv-conf", NULL, NULL, FLAGS_VALUE, resolv_conf, false,
          "file naming the DNS servers for --redirect-dns (default /etc/resolv.conf)"),
        FLAG('h', "help", NULL, NULL, FLAGS_BOOL, help, false,
          "show this help"),
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static int warn_positional(void *ctx, const char *arg, struct strbuf *err);
/* pflag's forms: a single-dash word is short names ("-nh"), as istio-iptables reads it. */
static const struct flags_table table = FLAGS_TABLE(flags, FLAGS_PFLAG, warn_positional);

static char **flag_str(void *s, const struct flags_opt *f)
{
        return (char **)((char *)s + f->offset);
}

static bool *flag_bool(void *s, const struct flags_opt *f)
{
        return (bool *)((char *)s + f->offset);
}

static int set_str(char **dst, const char *v)
{
        char *d = strdup(v);

        if (!d)
                return -ENOMEM;
        free(*dst);
        *dst = d;
        return 0;
}

int capture_settings_init(struct capture_settings *s)
{
        static const struct {
                size_t offset;
                const char *value;
        } defaults[] = {
                { S(envoy_port), "15001" },
                { S(inbound_capture_port), "15006" },
                { S(inbound_tunnel_port), "15008" },
                { S(proxy_uid), "" },
                { S(proxy_gid), "" },
                { S(interception_mode), "" },
                { S(inbound_ports), "" },
                { S(local_exclude_ports), "" },
                { S(exclude_interfaces), "" },
                { S(service_cidr), "" },
                { S(service_exclude_cidr), "" },
                { S(outbound_ports), "" },
                { S(outbound_ports_exclude), "" },
                { S(kube_virt_interfaces), "" },
                { S(tproxy_mark), "1337" },
                { S(tproxy_route_table), "133" },
                { S(probe_port), "15002" },
                { S(probe_timeout), "5s" },
                { S(network_namespace), "" },
                { S(force_iptables_binary), "" },
                { S(log_output_level), "default:info" },
                { S(ipv6), "auto" },
                { S(resolv_conf), "/etc/resolv.conf" },
                { S(owner_groups_include), "*" },
                { S(owner_groups_exclude), "" },
                { S(loopback_cidr), "127.0.0.1/32" },
                { S(envoy_user), "istio-proxy" },
        };

        memset(s, 0, sizeof(*s));
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (set_str((char **)((char *)s + defaults[i].offset), defaults[i].value) < 0) {
                        capture_settings_deinit(s);
                        return -ENOMEM;
                }
        /* DRY_RUN_FILE_PATH stays NULL: unset means no file. */
        return 0;
}

void capture_settings_deinit(struct capture_settings *s)
{
        for (size_t i = 0; i < N_FLAGS; i++)
                if (flags[i].kind == FLAGS_VALUE)
                        free(*flag_str(s, &flags[i]));
        free(s->owner_groups_include);
        free(s->owner_groups_exclude);
        free(s->loopback_cidr);
        free(s->envoy_user);
        free(s->dry_run_file);
        strv_deinit(&s->uids);
        strv_deinit(&s->gids);
        strv_deinit(&s->inbound_port_list);
        strv_deinit(&s->local_exclude_list);
        strv_deinit(&s->exclude_ifs);
        strv_deinit(&s->kube_virt_ifs);
        strv_deinit(&s->include_v4);
        strv_deinit(&s->include_v6);
        strv_deinit(&s->exclude_v4);
        strv_deinit(&s->exclude_v6);
        strv_deinit(&s->outbound_port_list);
        strv_deinit(&s->outbound_exclude_list);
        strv_deinit(&s->owner_groups);
        strv_deinit(&s->owner_groups_excl);
        strv_deinit(&s->dns_v4);
        strv_deinit(&s->dns_v6);
        strv_deinit(&s->warnings);
        memset(s, 0, sizeof(*s));
}

static int set_value(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        return set_str(flag_str(ctx, o), v);
}

static int set_rule_value(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        int r = set_value(ctx, o, v, shown, err);

        if (r == 0)
                ((struct capture_settings *)ctx)->capture_flags_given = true;
        return r;
}

static int set_bool(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        bool b;

        /* pflag's words (strconv.ParseBool underneath). */
        if (go_value_bool(v, &b) < 0)
                return flags_problem(err, "invalid argument \"%s\" for \"%s\" flag: not a boolean", v, shown);
        *flag_bool(ctx, o) = b;
        return 0;
}

static int set_rule_bool(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        int r = set_bool(ctx, o, v, shown, err);

        if (r == 0)
                ((struct capture_settings *)ctx)->capture_flags_given = true;
        return r;
}

static int apply_env_value(struct capture_settings *s, const struct flags_opt *f, const char *name, const char *v)
{
        struct strbuf unused = STRBUF_NULL;
        bool b;
        int r;

        /* Istio's pkg/flag ignores a variable that is not a boolean, with a warning. */
        if (f->kind == FLAGS_BOOL && go_value_bool(v, &b) < 0) {
                char *w;

                if (asprintf(&w, "ignoring %s=\"%s\": not a boolean", name, v) < 0)
                        return -ENOMEM;
                return strv_push_take(&s->warnings, w);
        }
        r = f->set(s, f, v, name, &unused);
        strbuf_deinit(&unused);
        return r;
}

int capture_settings_load_env(struct capture_settings *s, char *const *env)
{
        static const struct {
                const char *name;
                size_t offset;
                bool shapes_rules;
        } env_only[] = {
                { "ISTIO_OUTBOUND_OWNER_GROUPS", S(owner_groups_include), true },
                { "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE", S(owner_groups_exclude), true },
                { "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", S(loopback_cidr), true },
                { "ENVOY_USER", S(envoy_user), false },
                { "DRY_RUN_FILE_PATH", S(dry_run_file), false },
        };
        int r;

        for (size_t i = 0; i < N_FLAGS; i++) {
                const struct flags_opt *f = &flags[i];
                const char *v;

                /* Primary first, alias second: the alias wins, as in Istio's pkg/flag. */
                if (f->env && (v = flags_getenv(env, f->env)) && (r = apply_env_value(s, f, f->env, v)) < 0)
                        return r;
                if (f->env_alias && (v = flags_getenv(env, f->env_alias)) &&
                    (r = apply_env_value(s, f, f->env_alias, v)) < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(env_only) / sizeof(env_only[0]); i++) {
                const char *v = flags_getenv(env, env_only[i].name);
                /* Set but empty counts as set (an empty owner-group list disables capture). */
                if (!v)
                        continue;
                if ((r = set_str((char **)((char *)s + env_only[i].offset), v)) < 0)
                        return r;
                if (env_only[i].shapes_rules)
                        s->capture_flags_given = true;
        }
        return 0;
}

/* cobra without an Args validator ignores positional arguments; so do we, loudly. */
static int warn_positional(void *ctx, const char *arg, struct strbuf *err)
{
        char *w;

        if (asprintf(&w, "ignoring positional argument \"%s\"", arg) < 0)
                return -ENOMEM;
        return strv_push_take(&((struct capture_settings *)ctx)->warnings, w);
}

int capture_settings_parse_args(struct capture_settings *s, int argc, char *const *argv,
                                char *err, size_t errlen)
{
        struct strbuf p = STRBUF_NULL;
        int r = flags_parse(&table, s, argc, argv, &p);

        if (r == -EINVAL)
                snprintf(err, errlen, "%s", strbuf_str(&p));
        strbuf_deinit(&p);
        return r;
}

void capture_settings_usage(FILE *f)
{
        fputs("Usage: pilotfish iptables [flags]\n\n"
              "Programs the pod's packet filter so that inbound TCP goes to the sidecar's inbound\n"
              "port and outbound TCP to its outbound port, as Istio's istio-iptables does.\n\nFlags:\n", f);
        flags_usage(&table, f);
        fputs("\nEnvironment only: ISTIO_OUTBOUND_OWNER_GROUPS, ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE,\n"
              "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, ENVOY_USER, DRY_RUN_FILE_PATH.\n"
              "See docs/cli/iptables.md.\n", f);
}

/* ---- resolution and validation ---- */

struct problems {
        struct strbuf text;
        int count;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
        va_list ap;

        if (p->count++)
                strbuf_puts(&p->text, "; ");
        va_start(ap, fmt);
        strbuf_vprintf(&p->text, fmt, ap);
        va_end(ap);
}

static bool parse_uint(const char *v, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long n;

        if (!*v || *v < '0' || *v > '9')
                return false;
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno || *end || n > max)
                return false;
        *ret = n;
        return true;
}

/* A port as pasted into --dport: a number, or a range "a:b" (iptables' own syntax). */
static bool valid_port_item(const char *v)
{
        const char *colon = strchr(v, ':');
        unsigned long a, b;

        if (!colon)
                return parse_uint(v, 65535, &a);
        {
                char first[16];
                size_t n = (size_t)(colon - v);
                if (n == 0 || n >= sizeof(first))
                        return false;
                memcpy(first, v, n);
                first[n] = '\0';
                return parse_uint(first, 65535, &a) && parse_uint(colon + 1, 65535, &b) && a <= b;
        }
}

static void split_ports(struct problems *p, const char *flag, const char *value, struct strv *out)
{
        strv_split(out, value, ',');
        for (size_t i = 0; i < out->n; i++)
                if (!valid_port_item(out->v[i]))
                        problem(p, "%s: invalid port \"%s\" in \"%s\" (want a number 0-65535 or a range a:b)",
                                flag, out->v[i], value);
}

static void single_port(struct problems *p, const char *flag, const char *value)
{
        unsigned long n;

        if (!parse_uint(value, 65535, &n) || n == 0)
                problem(p, "%s: invalid port \"%s\" (want 1-65535)", flag, value);
}

/* A user or group for -m owner: a number or a name iptables can look up. */
static bool valid_owner_item(const char *v)
{
        size_t n = strlen(v);

        if (n == 0 || n > 64)
                return false;
        for (; *v; v++)
                if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
                      *v == '_' || *v == '-' || *v == '.'))
                        return false;
        return true;
}

static void split_owners(struct problems *p, const char *flag, const char *value, struct strv *out)
{
        strv_split(out, value, ',');
        for (size_t i = 0; i < out->n; i++)
                if (!valid_owner_item(out->v[i]))
                        problem(p, "%s: invalid user or group \"%s\" in \"%s\"", flag, out->v[i], value);
}

/* Interface names as the kernel allows them (IFNAMSIZ, no '/', no whitespace), '+' wildcard ok. */
static void split_ifaces(struct problems *p, const char *flag, const char *value, struct strv *out)
{
        strv_split(out, value, ',');
        for (size_t i = 0; i < out->n; i++) {
                const char *v = out->v[i];
                bool ok = strlen(v) < IFNAMSIZ;
                for (const char *c = v; *c && ok; c++)
                        ok = *c > ' ' && *c < 0x7f && *c != '/' && *c != '!' && *c != '"' && *c != '\'';
                if (!ok)
                        problem(p, "%s: invalid interface name \"%s\"", flag, v);
        }
}

static void split_cidrs(struct problems *p, const char *flag, const char *value, struct strv *v4,
                        struct strv *v6, bool *ret_has_loopback)
{
        struct strv items = STRV_NULL;

        strv_split(&items, value, ',');
        for (size_t i = 0; i < items.n; i++) {
                struct cidr c;
                char buf[80];

                if (cidr_parse(items.v[i], &c) < 0) {
                        problem(p, "%s: invalid CIDR \"%s\"%s", flag, items.v[i],
                                strchr(items.v[i], '/') ? "" : " (a prefix length is required, e.g. /32)");
                        continue;
                }
                cidr_format(&c, buf, sizeof(buf));
                strv_push(c.family == AF_INET ? v4 : v6, buf);
                if (ret_has_loopback && cidr_is_loopback(&c))
                        *ret_has_loopback = true;
        }
        strv_deinit(&items);
}

/* --probe-timeout, read by Istio with pflag's DurationVar (time.ParseDuration): what Go
 * accepts, except a negative value, which would give validation no time at all. A fraction of
 * a millisecond rounds up, so a duration that is not zero never becomes none. */
static void probe_timeout(struct problems *p, const char *v, long *ret_ms)
{
        const char *why = NULL;
        int64_t ns;

        if (go_value_duration(v, &ns, &why) < 0)
                problem(p, "--probe-timeout: invalid duration \"%s\" (%s; e.g. 5s, 500ms, 1m30s)", v, why);
        else if (ns < 0)
                problem(p, "--probe-timeout: negative duration \"%s\" (a timeout is 0 or more)", v);
        else
                *ret_ms = (long)(ns / 1000000 + (ns % 1000000 != 0));
}

/* The largest resolv.conf read: glibc reads lines of any length, but a real one is a few
 * hundred bytes, and a limit keeps --resolv-conf /dev/zero from eating memory. */
#define RESOLV_CONF_MAX (1u << 20)

static int read_dns_servers(struct capture_settings *s, struct problems *p)
{
        char *text, *line, *next, why[128];
        size_t len;
        int r = readfile_path(s->resolv_conf, RESOLV_CONF_MAX, &text, &len, NULL);

        if (r < 0) {
                problem(p, "reading DNS servers from %s: %s", s->resolv_conf,
                        readfile_strerror(r, RESOLV_CONF_MAX, why, sizeof(why)));
                return r;
        }
        /* Whole lines, however long: the tail of a long comment must not read as a server. */
        for (line = text; line < text + len; line = next) {
                char *nl = memchr(line, '\n', (size_t)(text + len - line));
                char *save = NULL, *key, *val;
                struct cidr c;

                next = nl ? nl + 1 : text + len;
                if (nl)
                        *nl = '\0';
                key = strtok_r(line, " \t\r", &save);
                if (!key || strcmp(key, "nameserver") != 0)
                        continue;
                val = strtok_r(NULL, " \t\r", &save);
                /* Unparsable servers are dropped; the others are pasted as written, as Istio
                 * does (its goldens hold "::127.0.0.53", not Go's canonical "::7f00:35"). */
                if (!val || ip_parse(val, &c) < 0)
                        continue;
                strv_push(c.family == AF_INET ? &s->dns_v4 : &s->dns_v6, val);
        }
        free(text);
        return 0;
}

/*
 * Istio's IPv6 decision (SEMANTICS.md section 5): scan the namespace's addresses, skipping
 * loopback and link-local; IPv6 is on when the first usable one is IPv6, or with --dual-stack
 * when any is. No usable address at all is an error, as in Istio.
 */
static int detect_ipv6(struct capture_settings *s, struct problems *p)
{
        struct ifaddrs *ifa_list, *ifa;
        bool found = false, v6 = false;

        if (getifaddrs(&ifa_list) < 0) {
                problem(p, "listing local addresses to decide on IPv6: %s", strerror(errno));
                return -errno;
        }
        for (ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
                const struct sockaddr *sa = ifa->ifa_addr;
                bool is6;

                if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
                        continue;
                is6 = sa->sa_family == AF_INET6;
                if (is6) {
                        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                        if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MC_LINKLOCAL(a))
                                continue;
                } else {
                        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
                        if ((a >> 24) == 127 || (a >> 16) == 0xa9fe || (a >> 8) == 0xe00000)
                                continue;
                }
                if (!found) {
                        found = true;
                        v6 = is6;
                        if (!s->dual_stack)
                                break;
                }
                if (is6)
                        v6 = true;
        }
        freeifaddrs(ifa_list);
        if (!found) {
                problem(p, "no valid local IP address found to decide on IPv6 (give the namespace an address, or pass --ipv6=true|false)");
                return -EADDRNOTAVAIL;
        }
        s->enable_ipv6 = v6;
        return 0;
}

static void default_proxy_ids(struct capture_settings *s)
{
        if (s->proxy_uid[0] == '\0') {
                struct passwd *pw = getpwnam(s->envoy_user);
                char buf[32];

                if (pw) {
                        snprintf(buf, sizeof(buf), "%u", (unsigned)pw->pw_uid);
                        set_str(&s->proxy_uid, buf);
                } else {
                        set_str(&s->proxy_uid, "1337");
                }
        }
        if (s->proxy_gid[0] == '\0')
                set_str(&s->proxy_gid, s->proxy_uid);
}

int capture_settings_resolve(struct capture_settings *s, char *err, size_t errlen)
{
        struct problems p = { .text = STRBUF_NULL, .count = 0 };
        unsigned long n;
        int r = 0;

        if (s->native_nftables)
                problem(&p, "--native-nftables: the native nftables backend is not implemented yet; "
                            "leave it off to use iptables-restore (legacy or nft)");

        if (strcmp(s->interception_mode, "TPROXY") == 0)
                s->mode = CAPTURE_MODE_TPROXY;
        else if (strcmp(s->interception_mode, "REDIRECT") == 0 || s->interception_mode[0] == '\0')
                s->mode = CAPTURE_MODE_REDIRECT;
        else
                problem(&p, "-m/--istio-inbound-interception-mode: invalid mode \"%s\" (want REDIRECT or TPROXY)",
                        s->interception_mode);

        if (strcmp(s->ipv6, "auto") == 0)
                s->ipv6_mode = CAPTURE_IPV6_AUTO;
        else if (strcmp(s->ipv6, "true") == 0)
                s->ipv6_mode = CAPTURE_IPV6_TRUE, s->enable_ipv6 = true;
        else if (strcmp(s->ipv6, "false") == 0)
                s->ipv6_mode = CAPTURE_IPV6_FALSE, s->enable_ipv6 = false;
        else
                problem(&p, "--ipv6: invalid value \"%s\" (want auto, true or false)", s->ipv6);

        if (s->force_iptables_binary[0] && strcmp(s->force_iptables_binary, "legacy") != 0 &&
            strcmp(s->force_iptables_binary, "nft") != 0)
                problem(&p, "--force-iptables-binary: invalid value \"%s\" (want legacy or nft)",
                        s->force_iptables_binary);

        {
                enum log_level lvl;
                if (log_parse_output_level(s->log_output_level, &lvl) < 0)
                        problem(&p, "--log_output_level: invalid value \"%s\" (want scope:level, level one of debug, info, warn, error, none)",
                                s->log_output_level);
        }

        single_port(&p, "-p/--envoy-port", s->envoy_port);
        single_port(&p, "-z/--inbound-capture-port", s->inbound_capture_port);
        single_port(&p, "-e/--inbound-tunnel-port", s->inbound_tunnel_port);
        if (!parse_uint(s->probe_port, 65535, &n))
                problem(&p, "--iptables-probe-port: invalid port \"%s\"", s->probe_port);
        else
                s->probe_port_num = (unsigned)n;
        probe_timeout(&p, s->probe_timeout, &s->probe_timeout_ms);
        if (!parse_uint(s->tproxy_mark, UINT32_MAX, &n))
                problem(&p, "-t/--istio-inbound-tproxy-mark: invalid mark \"%s\" (want 0-4294967295)", s->tproxy_mark);
        else
                s->mark = (unsigned)n;
        if (!parse_uint(s->tproxy_route_table, UINT32_MAX, &n) || n == 0)
                problem(&p, "-r/--istio-inbound-tproxy-route-table: invalid table \"%s\" (want 1-4294967295)",
                        s->tproxy_route_table);
        else
                s->route_table = (unsigned)n;

        default_proxy_ids(s);
        split_owners(&p, "-u/--proxy-uid", s->proxy_uid, &s->uids);
        split_owners(&p, "-g/--proxy-gid", s->proxy_gid, &s->gids);

        if (strcmp(s->inbound_ports, "*") == 0)
                s->inbound_all = true;
        else
                split_ports(&p, "-b/--istio-inbound-ports", s->inbound_ports, &s->inbound_port_list);
        split_ports(&p, "-d/--istio-local-exclude-ports", s->local_exclude_ports, &s->local_exclude_list);
        split_ports(&p, "-q/--istio-outbound-ports", s->outbound_ports, &s->outbound_port_list);
        split_ports(&p, "-o/--istio-local-outbound-ports-exclude", s->outbound_ports_exclude,
                    &s->outbound_exclude_list);
        split_ifaces(&p, "-c/--istio-exclude-interfaces", s->exclude_interfaces, &s->exclude_ifs);
        split_ifaces(&p, "-k/--kube-virt-interfaces", s->kube_virt_interfaces, &s->kube_virt_ifs);

        if (strcmp(s->service_exclude_cidr, "*") == 0)
                problem(&p, "-x/--istio-service-exclude-cidr: \"*\" is not allowed (it would exclude all outbound traffic; use -i '' instead)");
        else
                split_cidrs(&p, "-x/--istio-service-exclude-cidr", s->service_exclude_cidr, &s->exclude_v4,
                            &s->exclude_v6, NULL);
        if (strcmp(s->service_cidr, "*") == 0)
                s->outbound_all = true;
        else
                split_cidrs(&p, "-i/--istio-service-cidr", s->service_cidr, &s->include_v4, &s->include_v6,
                            &s->include_has_loopback);

        if (strcmp(s->owner_groups_include, "*") == 0) {
                s->owner_groups_all = true;
                split_owners(&p, "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE", s->owner_groups_exclude,
                             &s->owner_groups_excl);
        } else {
                split_owners(&p, "ISTIO_OUTBOUND_OWNER_GROUPS", s->owner_groups_include, &s->owner_groups);
                if (s->owner_groups.n > 64)
                        problem(&p, "ISTIO_OUTBOUND_OWNER_GROUPS: %zu groups given, at most 64 are allowed",
                                s->owner_groups.n);
        }

        {
                struct cidr c;
                if (cidr_parse(s->loopback_cidr, &c) < 0 || c.family != AF_INET || !cidr_is_loopback(&c) ||
                    c.prefix_len < 8)
                        problem(&p, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: invalid value \"%s\" (want an IPv4 loopback CIDR with a prefix length of 8-32, e.g. 127.0.0.1/32)",
                                s->loopback_cidr);
                else
                        cidr_format(&c, s->loopback_v4, sizeof(s->loopback_v4));
        }

        /* System inputs only once the flags are known to be good. */
        if (p.count == 0 && s->redirect_dns && !s->capture_all_dns)
                r = read_dns_servers(s, &p);
        /* Cleanup looks at both families whatever the addresses say: what an earlier run with
         * IPv6 on added must go, and a namespace being torn down may have no address left. */
        if (p.count == 0 && s->ipv6_mode == CAPTURE_IPV6_AUTO && s->cleanup_only)
                s->enable_ipv6 = true;
        else if (p.count == 0 && s->ipv6_mode == CAPTURE_IPV6_AUTO)
                r = detect_ipv6(s, &p);

        if (p.text.error)
                r = p.text.error;
        else if (p.count)
                r = r < 0 ? r : -EINVAL;
        if (p.count)
                snprintf(err, errlen, "%s", strbuf_str(&p.text));
        strbuf_deinit(&p.text);
        return r;
}
