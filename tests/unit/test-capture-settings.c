/*
 * Unit tests for capture/settings.c: istio-iptables' flags and environment
 * (../shared/conformance/istio-iptables/SEMANTICS.md section 2) and pilotfish's stricter
 * validation. Every test passes its own envp array, so nothing depends on the caller's
 * environment, and every test that resolves passes --ipv6=false (or true) so no test scans
 * the host's addresses. The one system input left, the resolv.conf file, is a temp file.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/settings.h"
#include "common/strv.h"
#include "tap.h"

#define ARGV(...) ((char *const[]){ "iptables", __VA_ARGS__, NULL })
#define ENVP(...) ((char *const[]){ __VA_ARGS__, NULL })
#define NO_ARGS ((char *const[]){ "iptables", NULL })
#define NO_ENV ((char *const *)NULL)

/* A user name no system has, so ENVOY_USER lookups fall back to 1337. */
#define NO_SUCH_USER "ENVOY_USER=pilotfish-test-no-such-user"

static char err[4096];
static char resolv_path[64];

static int count_args(char *const *argv)
{
        int n = 0;

        while (argv[n])
                n++;
        return n;
}

/* init + env + argv. The settings must be deinit'ed by the caller whatever the result. */
static int parse(struct capture_settings *s, char *const *env, char *const *argv)
{
        int r;

        err[0] = '\0';
        r = capture_settings_init(s);
        if (r < 0)
                return r;
        r = capture_settings_load_env(s, env);
        if (r < 0)
                return r;
        return capture_settings_parse_args(s, count_args(argv), argv, err, sizeof(err));
}

/* parse() with "--ipv6=false" first (a later --ipv6 in argv wins), then resolve. */
static int parse_resolve(struct capture_settings *s, char *const *env, char *const *argv)
{
        char *args[64];
        int n = count_args(argv), r;

        if (n + 2 > (int)(sizeof(args) / sizeof(args[0])))
                abort();
        args[0] = argv[0];
        args[1] = (char *)"--ipv6=false";
        for (int i = 1; i <= n; i++)
                args[i + 1] = argv[i];
        r = parse(s, env, args);
        if (r < 0)
                return r;
        return capture_settings_resolve(s, err, sizeof(err));
}

/* Prints a TAP diagnostic line, escaping bytes that would end the line or confuse a terminal. */
static void diag(int r, const char *text, const char *note)
{
        printf("# r=%d err=\"", r);
        for (const unsigned char *c = (const unsigned char *)text; *c; c++)
                if (*c < 0x20 || *c >= 0x7f)
                        printf("\\x%02x", *c);
                else
                        putchar(*c);
        printf("\"%s\n", note);
}

/* Joins a strv with ',' for comparisons ("" when empty). */
static const char *joined(const struct strv *sv)
{
        static char buf[4096];
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sv->n; i++)
                off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "", sv->v[i]);
        return buf;
}

/* Expects resolve (or parse) to fail with -EINVAL and an error text naming `needle`. */
static void expect_invalid(char *const *env, char *const *argv, const char *needle, const char *what)
{
        struct capture_settings s;
        int r = parse_resolve(&s, env, argv);
        bool ok = r == -EINVAL && strstr(err, needle);

        diag(r, err, ok ? "" : " (want -EINVAL naming the value)");
        tap_ok(ok, "%s", what);
        capture_settings_deinit(&s);
}

static void expect_valid(char *const *env, char *const *argv, const char *what)
{
        struct capture_settings s;
        int r = parse_resolve(&s, env, argv);

        if (r != 0)
                diag(r, err, "");
        tap_ok(r == 0, "%s", what);
        capture_settings_deinit(&s);
}

/* Parses argv and checks -p's text. */
static void expect_envoy_port(char *const *argv, const char *want, const char *what)
{
        struct capture_settings s;
        int r = parse(&s, NO_ENV, argv);

        if (r < 0)
                diag(r, err, "");
        TAP_STREQ(r == 0 ? s.envoy_port : "(parse failed)", want, "%s", what);
        capture_settings_deinit(&s);
}

/* ---- defaults ---- */

static void test_defaults(void)
{
        struct capture_settings s;
        int r = parse_resolve(&s, ENVP(NO_SUCH_USER), NO_ARGS);

        tap_ok(r == 0 && strcmp(s.envoy_port, "15001") == 0 && strcmp(s.inbound_capture_port, "15006") == 0 &&
               strcmp(s.inbound_tunnel_port, "15008") == 0 && s.mark == 1337 && s.route_table == 133 &&
               s.probe_port_num == 15002 && s.probe_timeout_ms == 5000 && s.mode == CAPTURE_MODE_REDIRECT &&
               s.owner_groups_all && strcmp(s.loopback_v4, "127.0.0.1/32") == 0 && !s.dry_run &&
               !s.inbound_all && s.inbound_port_list.n == 0 && !s.outbound_all && s.include_v4.n == 0,
               "with no flags and no env, the values are Istio's defaults (15001/15006/15008, mark 1337, table 133, probe 15002 for 5s, REDIRECT, owner groups '*')");
        capture_settings_deinit(&s);
}

/* ---- flag forms (Go pflag) ---- */

static void test_flag_forms(void)
{
        expect_envoy_port(ARGV("-p", "1"), "1", "short flag with a separate value: -p 1");
        expect_envoy_port(ARGV("-p1"), "1", "short flag with an attached value: -p1");
        expect_envoy_port(ARGV("-p=1"), "1", "short flag with '=': -p=1");
        expect_envoy_port(ARGV("--envoy-port", "1"), "1", "long flag with a separate value: --envoy-port 1");
        expect_envoy_port(ARGV("--envoy-port=1"), "1", "long flag with '=': --envoy-port=1");
        expect_envoy_port(ARGV("-p", "1", "-p", "2"), "2", "a repeated flag: the last one wins");
        expect_envoy_port(ARGV("--envoy-port="), "", "--envoy-port= sets the empty string (validation comes later)");
        expect_envoy_port(ARGV("--", "-p", "1"), "15001", "\"--\" ends the flags: what follows is not parsed");
        expect_envoy_port(ARGV("stray", "-p", "1"), "1", "a positional argument is ignored and parsing goes on (cobra without Args)");
        expect_envoy_port(ARGV("-", "-p", "1"), "1", "a lone \"-\" is a positional argument, not a flag");
}

static void test_string_flag_takes_next_arg(void)
{
        struct capture_settings s;
        int r = parse(&s, NO_ENV, ARGV("--envoy-port", "--dry-run"));

        tap_ok(r == 0 && strcmp(s.envoy_port, "--dry-run") == 0 && !s.dry_run,
               "a string flag takes the next argument even when it looks like a flag, as pflag does");
        capture_settings_deinit(&s);
}

static void test_bool_forms(void)
{
        struct capture_settings s;
        int r;

        r = parse(&s, NO_ENV, ARGV("--dry-run"));
        tap_ok(r == 0 && s.dry_run, "a bare long bool flag sets it: --dry-run");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--dry-run", "--dry-run=false"));
        tap_ok(r == 0 && !s.dry_run, "--dry-run=false clears it again");
        capture_settings_deinit(&s);

        r = parse(&s, ENVP("DRY_RUN=true"), ARGV("--dry-run=false"));
        tap_ok(r == 0 && !s.dry_run, "--dry-run=false overrides DRY_RUN=true from the environment");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-n"));
        tap_ok(r == 0 && s.dry_run, "the short bool -n sets --dry-run");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-n", "-n=false"));
        tap_ok(r == 0 && !s.dry_run, "-n=false clears it");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-np15009"));
        tap_ok(r == 0 && s.dry_run && strcmp(s.envoy_port, "15009") == 0,
               "short flags combine: -np15009 is -n plus -p 15009");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--dry-run", "false"));
        tap_ok(r == 0 && s.dry_run, "a bool flag never takes the next argument: \"--dry-run false\" is true plus a positional");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--redirect-dns=T", "--capture-all-dns=1", "--drop-invalid=TRUE", "--dual-stack=True"));
        tap_ok(r == 0 && s.redirect_dns && s.capture_all_dns && s.drop_invalid && s.dual_stack,
               "bool flag values use Go's ParseBool spellings (T, 1, TRUE, True)");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--dry-run=yes"));
        tap_ok(r == -EINVAL && strstr(err, "yes") && strstr(err, "dry-run"),
               "--dry-run=yes is -EINVAL naming the value and the flag");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-n="));
        tap_ok(r == -EINVAL, "-n= (an empty bool value) is -EINVAL, as ParseBool(\"\") fails");
        capture_settings_deinit(&s);
}

static void test_every_flag_parses(void)
{
        static const struct {
                const char *arg;
                size_t offset;
                const char *want;
        } cases[] = {
#define F(arg, field, want) { arg, offsetof(struct capture_settings, field), want }
                F("-z=1", inbound_capture_port, "1"),
                F("--inbound-capture-port=2", inbound_capture_port, "2"),
                F("-e3", inbound_tunnel_port, "3"),
                F("--inbound-tunnel-port=4", inbound_tunnel_port, "4"),
                F("-u5", proxy_uid, "5"),
                F("--proxy-uid=6", proxy_uid, "6"),
                F("-g7", proxy_gid, "7"),
                F("--proxy-gid=8", proxy_gid, "8"),
                F("-mTPROXY", interception_mode, "TPROXY"),
                F("--istio-inbound-interception-mode=X", interception_mode, "X"),
                F("-b*", inbound_ports, "*"),
                F("--istio-inbound-ports=80", inbound_ports, "80"),
                F("-d22", local_exclude_ports, "22"),
                F("--istio-local-exclude-ports=23", local_exclude_ports, "23"),
                F("-ceth0", exclude_interfaces, "eth0"),
                F("--istio-exclude-interfaces=eth1", exclude_interfaces, "eth1"),
                F("-i10.0.0.0/8", service_cidr, "10.0.0.0/8"),
                F("--istio-service-cidr=*", service_cidr, "*"),
                F("-x1.1.0.0/16", service_exclude_cidr, "1.1.0.0/16"),
                F("--istio-service-exclude-cidr=2.2.0.0/16", service_exclude_cidr, "2.2.0.0/16"),
                F("-q443", outbound_ports, "443"),
                F("--istio-outbound-ports=444", outbound_ports, "444"),
                F("-o25", outbound_ports_exclude, "25"),
                F("--istio-local-outbound-ports-exclude=26", outbound_ports_exclude, "26"),
                F("-keth2", kube_virt_interfaces, "eth2"),
                F("--kube-virt-interfaces=eth3", kube_virt_interfaces, "eth3"),
                F("-t9", tproxy_mark, "9"),
                F("--istio-inbound-tproxy-mark=10", tproxy_mark, "10"),
                F("-r11", tproxy_route_table, "11"),
                F("--istio-inbound-tproxy-route-table=12", tproxy_route_table, "12"),
                F("--iptables-probe-port=13", probe_port, "13"),
                F("--probe-timeout=14s", probe_timeout, "14s"),
                F("--network-namespace=/proc/1/ns/net", network_namespace, "/proc/1/ns/net"),
                F("--force-iptables-binary=nft", force_iptables_binary, "nft"),
                F("--log_output_level=default:debug", log_output_level, "default:debug"),
                F("--ipv6=true", ipv6, "true"),
                F("--resolv-conf=/x", resolv_conf, "/x"),
#undef F
        };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct capture_settings s;
                int r = parse(&s, NO_ENV, ARGV((char *)cases[i].arg));
                const char *got = r == 0 ? *(char **)((char *)&s + cases[i].offset) : "(failed)";

                if (strcmp(got, cases[i].want) != 0) {
                        printf("# %s: got \"%s\" (%s)\n", cases[i].arg, got, err);
                        ok = false;
                }
                capture_settings_deinit(&s);
        }
        tap_ok(ok, "every string flag of SEMANTICS.md section 2 sets its field, by short and by long name");
}

static void test_every_bool_flag_parses(void)
{
        static const struct {
                const char *arg;
                size_t offset;
        } cases[] = {
#define B(arg, field) { arg, offsetof(struct capture_settings, field) }
                B("--skip-rule-apply", skip_rule_apply), B("--run-validation", run_validation),
                B("--redirect-dns", redirect_dns),       B("--capture-all-dns", capture_all_dns),
                B("--drop-invalid", drop_invalid),       B("--dual-stack", dual_stack),
                B("--cni-mode", cni_mode),               B("--reconcile", reconcile),
                B("--cleanup-only", cleanup_only),       B("--force-apply", force_apply),
                B("--native-nftables", native_nftables), B("--log_as_json", log_as_json),
                B("--help", help),                       B("-h", help),
                B("-n", dry_run),
#undef B
        };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct capture_settings s;
                int r = parse(&s, NO_ENV, ARGV((char *)cases[i].arg));

                if (r != 0 || !*(bool *)((char *)&s + cases[i].offset)) {
                        printf("# %s not set (%s)\n", cases[i].arg, err);
                        ok = false;
                }
                capture_settings_deinit(&s);
        }
        tap_ok(ok, "every bool flag of SEMANTICS.md section 2 sets its field");
}

static void test_unknown_flags(void)
{
        struct capture_settings s;
        int r;

        r = parse(&s, NO_ENV, ARGV("--no-such-flag=1"));
        tap_ok(r == -EINVAL && strstr(err, "no-such-flag"), "an unknown long flag is -EINVAL naming it");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-Z"));
        tap_ok(r == -EINVAL && strstr(err, "'Z'"), "an unknown shorthand is -EINVAL naming it");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--envoy_port=1"));
        tap_ok(r == -EINVAL && strstr(err, "envoy_port"), "flag names are exact: --envoy_port is not --envoy-port");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--inbound-interception-mode=TPROXY"));
        tap_ok(r == -EINVAL, "names Istio only registers as env vars are not flags (--inbound-interception-mode)");
        capture_settings_deinit(&s);
}

static void test_missing_values(void)
{
        struct capture_settings s;
        int r;

        r = parse(&s, NO_ENV, ARGV("-p"));
        tap_ok(r == -EINVAL && strstr(err, "'p'"), "a short string flag at the end without a value is -EINVAL naming it");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("--istio-service-cidr"));
        tap_ok(r == -EINVAL && strstr(err, "istio-service-cidr"),
               "a long string flag at the end without a value is -EINVAL naming it");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-np"));
        tap_ok(r == -EINVAL && strstr(err, "-np"), "a string shorthand last in a group without a value is -EINVAL");
        capture_settings_deinit(&s);
}

/* ---- environment ---- */

static void test_env_binding(void)
{
        static const struct {
                const char *env;
                size_t offset;
                const char *want;
        } cases[] = {
#define E(env, field, want) { env, offsetof(struct capture_settings, field), want }
                E("INBOUND_CAPTURE_PORT=1", inbound_capture_port, "1"),
                E("INBOUND_TUNNEL_PORT=2", inbound_tunnel_port, "2"),
                E("PROXY_UID=3", proxy_uid, "3"),
                E("PROXY_GID=4", proxy_gid, "4"),
                E("ISTIO_INBOUND_INTERCEPTION_MODE=TPROXY", interception_mode, "TPROXY"),
                E("ISTIO_INBOUND_PORTS=*", inbound_ports, "*"),
                E("ISTIO_LOCAL_EXCLUDE_PORTS=22", local_exclude_ports, "22"),
                E("ISTIO_EXCLUDE_INTERFACES=eth0", exclude_interfaces, "eth0"),
                E("ISTIO_SERVICE_CIDR=10.0.0.0/8", service_cidr, "10.0.0.0/8"),
                E("ISTIO_SERVICE_EXCLUDE_CIDR=1.1.0.0/16", service_exclude_cidr, "1.1.0.0/16"),
                E("ISTIO_OUTBOUND_PORTS=443", outbound_ports, "443"),
                E("ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE=25", outbound_ports_exclude, "25"),
                E("KUBE_VIRT_INTERFACES=eth1", kube_virt_interfaces, "eth1"),
                E("ISTIO_INBOUND_TPROXY_MARK=5", tproxy_mark, "5"),
                E("ISTIO_INBOUND_TPROXY_ROUTE_TABLE=6", tproxy_route_table, "6"),
                E("IPTABLES_PROBE_PORT=7", probe_port, "7"),
                E("PROBE_TIMEOUT=8s", probe_timeout, "8s"),
                E("NETWORK_NAMESPACE=/x", network_namespace, "/x"),
                E("FORCE_IPTABLES_BINARY=legacy", force_iptables_binary, "legacy"),
                E("ISTIO_OUTBOUND_OWNER_GROUPS=java", owner_groups_include, "java"),
                E("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=ftp", owner_groups_exclude, "ftp"),
                E("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/8", loopback_cidr, "127.0.0.1/8"),
                E("ENVOY_USER=envoy", envoy_user, "envoy"),
                E("DRY_RUN_FILE_PATH=/tmp/x", dry_run_file, "/tmp/x"),
#undef E
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct capture_settings s;
                int r = parse(&s, ENVP((char *)cases[i].env), NO_ARGS);
                const char *got = r == 0 ? *(char **)((char *)&s + cases[i].offset) : "(failed)";

                TAP_STREQ(got, cases[i].want, "env %s binds its setting", cases[i].env);
                capture_settings_deinit(&s);
        }
}

static void test_env_bools(void)
{
        static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
        static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
        static const struct {
                const char *name;
                size_t offset;
        } vars[] = {
#define B(name, field) { name, offsetof(struct capture_settings, field) }
                B("DRY_RUN", dry_run),           B("SKIP_RULE_APPLY", skip_rule_apply),
                B("RUN_VALIDATION", run_validation), B("REDIRECT_DNS", redirect_dns),
                B("ISTIO_META_DNS_CAPTURE", redirect_dns), B("CAPTURE_ALL_DNS", capture_all_dns),
                B("DROP_INVALID", drop_invalid), B("INVALID_DROP", drop_invalid),
                B("DUAL_STACK", dual_stack),     B("ISTIO_DUAL_STACK", dual_stack),
                B("CNI_MODE", cni_mode),         B("RECONCILE", reconcile),
                B("CLEANUP_ONLY", cleanup_only), B("FORCE_APPLY", force_apply),
                B("NATIVE_NFTABLES", native_nftables),
#undef B
        };
        bool ok = true;

        for (size_t v = 0; v < sizeof(vars) / sizeof(vars[0]); v++)
                for (size_t k = 0; k < 12; k++) {
                        bool want = k < 6;
                        char e1[64];
                        struct capture_settings s;
                        int r;

                        snprintf(e1, sizeof(e1), "%s=%s", vars[v].name, want ? t[k] : f[k - 6]);
                        r = parse(&s, ENVP(e1), NO_ARGS);
                        if (r != 0 || *(bool *)((char *)&s + vars[v].offset) != want) {
                                printf("# %s gave the wrong value\n", e1);
                                ok = false;
                        }
                        capture_settings_deinit(&s);
                }
        tap_ok(ok, "every bool env var (aliases included) takes all twelve Go ParseBool spellings");
}

static void test_envoy_port_has_no_env(void)
{
        struct capture_settings s;
        int r = parse(&s, ENVP("ENVOY_PORT=1"), NO_ARGS);

        tap_ok(r == 0 && strcmp(s.envoy_port, "15001") == 0, "ENVOY_PORT is not honoured: -p has no env binding");
        capture_settings_deinit(&s);
}

static void test_env_names_exact(void)
{
        struct capture_settings s;
        int r = parse(&s, ENVP("INBOUND_CAPTURE_PORTX=1", "INBOUND_CAPTURE_POR=2", "inbound_capture_port=3",
                               "INBOUND_CAPTURE_PORT"), NO_ARGS);

        tap_ok(r == 0 && strcmp(s.inbound_capture_port, "15006") == 0,
               "env names match exactly (no prefix, suffix or case folding; an entry without '=' is not a value)");
        capture_settings_deinit(&s);
}

static void test_flag_beats_env(void)
{
        struct capture_settings s;
        int r = parse(&s, ENVP("INBOUND_CAPTURE_PORT=1", "ISTIO_INBOUND_PORTS=*"), ARGV("-z", "2", "-b", ""));

        tap_ok(r == 0 && strcmp(s.inbound_capture_port, "2") == 0 && strcmp(s.inbound_ports, "") == 0,
               "a flag overrides its env var, an empty flag value included");
        capture_settings_deinit(&s);
}

static void check_alias(const char *primary, const char *alias, const char *flag, size_t offset)
{
        char p_true[64], p_false[64], a_true[64], a_false[64], a_bad[64], f_false[64], f_true[64];
        struct capture_settings s;
        int r;

        snprintf(p_true, sizeof(p_true), "%s=true", primary);
        snprintf(p_false, sizeof(p_false), "%s=false", primary);
        snprintf(a_true, sizeof(a_true), "%s=true", alias);
        snprintf(a_false, sizeof(a_false), "%s=false", alias);
        snprintf(a_bad, sizeof(a_bad), "%s=yes", alias);
        snprintf(f_false, sizeof(f_false), "%s=false", flag);
        snprintf(f_true, sizeof(f_true), "%s=true", flag);

#define VAL (*(bool *)((char *)&s + offset))
        r = parse(&s, ENVP(p_false, a_true), NO_ARGS);
        tap_ok(r == 0 && VAL, "%s=true wins over %s=false (the alias beats the primary)", alias, primary);
        capture_settings_deinit(&s);

        /* Same pair, listed the other way round in envp: order of envp must not matter. */
        r = parse(&s, ENVP(a_false, p_true), NO_ARGS);
        tap_ok(r == 0 && !VAL, "%s=false wins over %s=true whatever their order in envp", alias, primary);
        capture_settings_deinit(&s);

        r = parse(&s, ENVP(p_true, a_true), ARGV(f_false));
        tap_ok(r == 0 && !VAL, "%s beats both %s and %s", f_false, primary, alias);
        capture_settings_deinit(&s);

        r = parse(&s, ENVP(p_false, a_false), ARGV(f_true));
        tap_ok(r == 0 && VAL, "%s beats %s=false and %s=false", f_true, primary, alias);
        capture_settings_deinit(&s);

        r = parse(&s, ENVP(p_true, a_bad), NO_ARGS);
        tap_ok(r == 0 && VAL, "an unparsable %s=yes is ignored, so %s=true stands", alias, primary);
        capture_settings_deinit(&s);
#undef VAL
}

static void test_alias_precedence(void)
{
        check_alias("REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE", "--redirect-dns",
                    offsetof(struct capture_settings, redirect_dns));
        check_alias("DROP_INVALID", "INVALID_DROP", "--drop-invalid", offsetof(struct capture_settings, drop_invalid));
        check_alias("DUAL_STACK", "ISTIO_DUAL_STACK", "--dual-stack", offsetof(struct capture_settings, dual_stack));
}

static void test_bad_bool_env_ignored(void)
{
        struct capture_settings s;
        int r = parse(&s, ENVP("DRY_RUN=yes", "DROP_INVALID=", "CAPTURE_ALL_DNS=on"), NO_ARGS);

        tap_ok(r == 0 && !s.dry_run && !s.drop_invalid && !s.capture_all_dns,
               "unparsable bool env values (yes, empty, on) are ignored with a warning, not an error (Istio drops fs.Set's error)");
        capture_settings_deinit(&s);
}

static void test_warnings_for_the_caller(void)
{
        struct capture_settings s;
        int r = parse(&s, ENVP("DRY_RUN=yes"), ARGV("stray", "-p", "1"));

        tap_ok(r == 0 && s.warnings.n == 2 && strstr(s.warnings.v[0], "DRY_RUN=\"yes\"") &&
               strstr(s.warnings.v[1], "\"stray\""),
               "what parsing ignores is kept in s.warnings for the subcommand to log (library code does not)");
        capture_settings_deinit(&s);
}

static void test_empty_env_counts_as_set(void)
{
        struct capture_settings s;
        int r = parse_resolve(&s, ENVP("ISTIO_OUTBOUND_OWNER_GROUPS=", NO_SUCH_USER), NO_ARGS);

        tap_ok(r == 0 && strcmp(s.owner_groups_include, "") == 0 && !s.owner_groups_all && s.owner_groups.n == 0,
               "ISTIO_OUTBOUND_OWNER_GROUPS= (set but empty) is an empty include list, not the default '*'");
        capture_settings_deinit(&s);

        r = parse(&s, ENVP("ISTIO_INBOUND_INTERCEPTION_MODE=TPROXY", "ISTIO_INBOUND_TPROXY_MARK="), NO_ARGS);
        tap_ok(r == 0 && strcmp(s.tproxy_mark, "") == 0, "a flag's env set to \"\" replaces the default too");
        capture_settings_deinit(&s);
}

static void test_capture_flags_given(void)
{
        struct capture_settings s;
        int r;

        r = parse(&s, ENVP("DRY_RUN=true", "ENVOY_USER=x"), ARGV("--dry-run", "--cni-mode"));
        tap_ok(r == 0 && !s.capture_flags_given, "dry-run, cni-mode and ENVOY_USER do not count as capture flags");
        capture_settings_deinit(&s);

        r = parse(&s, NO_ENV, ARGV("-b", "80"));
        tap_ok(r == 0 && s.capture_flags_given, "a rule-shaping flag (-b) counts as a capture flag");
        capture_settings_deinit(&s);

        r = parse(&s, ENVP("ISTIO_OUTBOUND_OWNER_GROUPS=java"), NO_ARGS);
        tap_ok(r == 0 && s.capture_flags_given, "a rule-shaping env-only variable counts as a capture flag");
        capture_settings_deinit(&s);

        r = parse(&s, ENVP("REDIRECT_DNS=maybe"), NO_ARGS);
        tap_ok(r == 0 && !s.capture_flags_given, "an ignored (unparsable) bool env does not count as a capture flag");
        capture_settings_deinit(&s);
}

/* ---- proxy UID/GID defaults ---- */

static void test_uid_default_unknown_user(void)
{
        struct capture_settings s;
        int r = parse_resolve(&s, ENVP(NO_SUCH_USER), NO_ARGS);

        tap_ok(r == 0 && strcmp(joined(&s.uids), "1337") == 0 && strcmp(joined(&s.gids), "1337") == 0,
               "with no -u and an ENVOY_USER that does not exist, the proxy UID and GID are 1337");
        capture_settings_deinit(&s);
}

static void test_uid_default_from_envoy_user(void)
{
        struct passwd *pw = getpwnam("root");
        char want[32];
        struct capture_settings s;
        int r;

        snprintf(want, sizeof(want), "%u", pw ? (unsigned)pw->pw_uid : 1337u);
        r = parse_resolve(&s, ENVP("ENVOY_USER=root"), NO_ARGS);
        tap_ok(r == 0 && strcmp(joined(&s.uids), want) == 0 && strcmp(joined(&s.gids), want) == 0,
               "with no -u, the proxy UID is ENVOY_USER's uid from the user database (root: %s), and -g follows it", want);
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP("ENVOY_USER=root", "PROXY_UID="), ARGV("-u", ""));
        tap_ok(r == 0 && strcmp(joined(&s.uids), want) == 0, "an explicitly empty -u also falls back to ENVOY_USER");
        capture_settings_deinit(&s);
}

static void test_gid_follows_final_uid(void)
{
        struct capture_settings s;
        int r;

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-u", "3,4"));
        tap_ok(r == 0 && strcmp(joined(&s.uids), "3,4") == 0 && strcmp(joined(&s.gids), "3,4") == 0,
               "without -g the GID list is the same string as -u (\"3,4\")");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP("PROXY_UID=5", NO_SUCH_USER), ARGV("-u", "6"));
        tap_ok(r == 0 && strcmp(joined(&s.gids), "6") == 0,
               "-g defaults to the final -u (the flag), not to PROXY_UID from the environment");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-u", "3", "-g", "1,2"));
        tap_ok(r == 0 && strcmp(joined(&s.uids), "3") == 0 && strcmp(joined(&s.gids), "1,2") == 0,
               "an explicit -g is kept as given");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP("PROXY_GID=7", NO_SUCH_USER), ARGV("-u", "6"));
        tap_ok(r == 0 && strcmp(joined(&s.gids), "7") == 0, "PROXY_GID from the environment is an explicit -g");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-u", "istio-proxy,1337"));
        tap_ok(r == 0 && strcmp(joined(&s.uids), "istio-proxy,1337") == 0,
               "user names are allowed in -u (iptables resolves them)");
        capture_settings_deinit(&s);
}

/* ---- lists ---- */

static void test_list_parsing(void)
{
        struct capture_settings s;
        int r;

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-b", "6000,7000,", "-q", ",443,,", "-o", "25"));
        tap_ok(r == 0 && strcmp(joined(&s.inbound_port_list), "6000,7000") == 0 &&
               strcmp(joined(&s.outbound_port_list), "443") == 0 && strcmp(joined(&s.outbound_exclude_list), "25") == 0,
               "\"6000,7000,\" is two items: empty list items are dropped");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-b", ",,,"));
        tap_ok(r == 0 && !s.inbound_all && s.inbound_port_list.n == 0, "\",,,\" is an empty list (no inbound capture)");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-b", "*", "-d", "22,15090", "-i", "*"));
        tap_ok(r == 0 && s.inbound_all && s.inbound_port_list.n == 0 && s.outbound_all && s.include_v4.n == 0 &&
               strcmp(joined(&s.local_exclude_list), "22,15090") == 0,
               "'*' as the whole value of -b and -i means all");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-b", "8000:9000,80"));
        tap_ok(r == 0 && strcmp(joined(&s.inbound_port_list), "8000:9000,80") == 0,
               "a port range a:b passes through, as iptables' --dport takes it");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-c", "eth0,veth+,", "-k", "net1"));
        tap_ok(r == 0 && strcmp(joined(&s.exclude_ifs), "eth0,veth+") == 0 && strcmp(joined(&s.kube_virt_ifs), "net1") == 0,
               "interface lists split the same way and allow iptables' '+' wildcard");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-i", "10.0.0.0/8,2001:DB8::/32,", "-x", "fd00::/8,1.1.0.0/16"));
        tap_ok(r == 0 && strcmp(joined(&s.include_v4), "10.0.0.0/8") == 0 &&
               strcmp(joined(&s.include_v6), "2001:db8::/32") == 0 && strcmp(joined(&s.exclude_v4), "1.1.0.0/16") == 0 &&
               strcmp(joined(&s.exclude_v6), "fd00::/8") == 0 && !s.include_has_loopback,
               "-i and -x split by family, with IPv6 canonicalised (2001:DB8::/32 -> 2001:db8::/32)");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-i", "127.0.0.1/32"));
        tap_ok(r == 0 && s.include_has_loopback, "an IPv4 loopback CIDR in -i is noticed (it removes the lo RETURN rules)");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-i", "10.0.0.0/8,::1/128"));
        tap_ok(r == 0 && s.include_has_loopback, "an IPv6 loopback CIDR in -i is noticed too");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_OWNER_GROUPS=java,1001,"), NO_ARGS);
        tap_ok(r == 0 && !s.owner_groups_all && strcmp(joined(&s.owner_groups), "java,1001") == 0,
               "an owner-group include list is split like the others");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_OWNER_GROUPS=*", "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=ftp,1002"),
                          NO_ARGS);
        tap_ok(r == 0 && s.owner_groups_all && strcmp(joined(&s.owner_groups_excl), "ftp,1002") == 0,
               "with the include list '*', the exclude list is used");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_OWNER_GROUPS=java", "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=ftp"),
                          NO_ARGS);
        tap_ok(r == 0 && !s.owner_groups_all && s.owner_groups_excl.n == 0,
               "with an include list, the exclude list is ignored");
        capture_settings_deinit(&s);
}

static void test_wildcard_only_whole_value(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", "*,80"), "\"*\"",
                       "'*' inside a -b list is not a wildcard: it is an invalid port, named");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-i", "*,10.0.0.0/8"), "\"*\"",
                       "'*' inside a -i list is not a wildcard: it is an invalid CIDR, named");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", " *"), "\" *\"", "\" *\" is not '*': values are not trimmed");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", "80, 81"), "\" 81\"", "list items are not trimmed: \" 81\" is invalid");
}

/* ---- Istio's validation errors (SEMANTICS.md section 2) ---- */

static void test_istio_validation(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-i", "10.0.0.1"), "10.0.0.1",
                       "-i with a bare IP (no prefix length) is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-x", "10.0.0.0/8,10.0.0.1"), "10.0.0.1",
                       "-x with a bare IP (no prefix length) is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-i", "2001:db8::1"), "2001:db8::1",
                       "-i with a bare IPv6 address is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-i", "10.0.0.0/33"), "10.0.0.0/33", "-i 10.0.0.0/33 is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-x", "*"), "\"*\"", "-x '*' is -EINVAL naming '*'");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=10.0.0.1/32"), NO_ARGS, "10.0.0.1/32",
                       "a non-loopback ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=::1/128"), NO_ARGS, "::1/128",
                       "an IPv6 ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/7"), NO_ARGS, "127.0.0.1/7",
                       "an ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR shorter than /8 is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1"), NO_ARGS, "127.0.0.1",
                       "an ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR without a length is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR="), NO_ARGS, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR",
                       "an empty ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR is -EINVAL (set but empty counts as set)");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--force-iptables-binary=iptables"), "\"iptables\"",
                       "--force-iptables-binary other than legacy/nft is -EINVAL naming it");
        expect_valid(ENVP(NO_SUCH_USER), ARGV("--force-iptables-binary=legacy"), "--force-iptables-binary=legacy is valid");
        expect_valid(ENVP(NO_SUCH_USER, "FORCE_IPTABLES_BINARY=nft"), NO_ARGS, "FORCE_IPTABLES_BINARY=nft is valid");
}

static void test_loopback_cidr_accepted(void)
{
        struct capture_settings s;
        int r = parse_resolve(&s, ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/8"), NO_ARGS);

        tap_ok(r == 0 && strcmp(s.loopback_v4, "127.0.0.1/8") == 0,
               "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/8 is accepted and kept as written");
        capture_settings_deinit(&s);
        expect_valid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.10.0.0/16"), NO_ARGS,
                     "any 127.x loopback CIDR with a length of 8..32 is accepted");
}

static void test_owner_group_limit(void)
{
        char groups[64 * 8 + 64];
        char env[sizeof(groups) + 64];
        size_t off = 0;

        for (int i = 0; i < 64; i++)
                off += (size_t)snprintf(groups + off, sizeof(groups) - off, "%s%d", i ? "," : "", 1000 + i);
        snprintf(env, sizeof(env), "ISTIO_OUTBOUND_OWNER_GROUPS=%s", groups);
        expect_valid(ENVP(NO_SUCH_USER, env), NO_ARGS, "64 owner groups are accepted");
        snprintf(env, sizeof(env), "ISTIO_OUTBOUND_OWNER_GROUPS=%s,2000", groups);
        expect_invalid(ENVP(NO_SUCH_USER, env), NO_ARGS, "65",
                       "65 owner groups are -EINVAL, and the error names the count (65)");
        snprintf(env, sizeof(env), "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=%s,2000", groups);
        expect_valid(ENVP(NO_SUCH_USER, env), NO_ARGS, "the 64-group limit applies to the include list only");
}

/* ---- pilotfish's stricter validation ---- */

static void test_strict_ports(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-p", "80x"), "80x", "-p 80x is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-p", "70000"), "70000", "-p 70000 (out of range) is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-p", "0"), "-p", "-p 0 is -EINVAL (a redirect needs a real port)");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-p", ""), "-p", "an empty -p is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-p", "+80"), "+80", "-p +80 is -EINVAL (digits only)");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-z", "15006 -j ACCEPT"), "15006 -j ACCEPT",
                       "-z with rule text appended is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-e", "99999999999999999999999"), "99999999999999999999999",
                       "-e with a number that overflows unsigned long is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", "80x"), "80x", "-b 80x is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", "80,70000"), "70000", "-b with 70000 is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-b", "*", "-d", "22;reboot"), "22;reboot", "-d is validated too");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-q", "9000:8000"), "9000:8000",
                       "-q with a reversed range is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-o", ":80"), ":80", "-o with a half range is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-t", "abc"), "abc", "-t abc is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-t", "4294967296"), "4294967296", "-t above 32 bits is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-r", "0"), "\"0\"", "-r 0 is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--iptables-probe-port=70000"), "70000",
                       "--iptables-probe-port 70000 is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--probe-timeout=5"), "\"5\"",
                       "--probe-timeout without a unit is -EINVAL naming it (Go durations need one)");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--probe-timeout=5x"), "5x", "--probe-timeout=5x is -EINVAL naming it");
        expect_valid(ENVP(NO_SUCH_USER), ARGV("-t", "4294967295", "-r", "4294967295", "-b", "0,65535"),
                     "the bounds themselves (mark 2^32-1, table 2^32-1, ports 0 and 65535 in lists) are valid");
}

static void test_probe_timeout_units(void)
{
        static const struct {
                const char *in;
                long ms;
        } cases[] = { { "5s", 5000 }, { "500ms", 500 }, { "1m30s", 90000 }, { "0", 0 }, { "1.5s", 1500 }, { "1h", 3600000 } };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char arg[64];
                struct capture_settings s;
                int r;

                snprintf(arg, sizeof(arg), "--probe-timeout=%s", cases[i].in);
                r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV(arg));
                if (r != 0 || s.probe_timeout_ms != cases[i].ms) {
                        printf("# %s: r=%d ms=%ld\n", cases[i].in, r, s.probe_timeout_ms);
                        ok = false;
                }
                capture_settings_deinit(&s);
        }
        tap_ok(ok, "--probe-timeout takes Go durations (5s, 500ms, 1m30s, 0, 1.5s, 1h)");
}

static void test_strict_owners(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-u", "1337 -j ACCEPT"), "1337 -j ACCEPT",
                       "-u '1337 -j ACCEPT' (rule injection) is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-u", "1337", "-g", "1337\n-A OUTPUT -j ACCEPT"), "-g",
                       "a newline in -g (a second restore line) is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-u", "1337,\"x\""), "\"x\"", "quotes in -u are -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_OWNER_GROUPS=java ftp"), NO_ARGS, "java ftp",
                       "an owner group with a space is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER, "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=ftp!"), NO_ARGS, "ftp!",
                       "an excluded owner group with '!' is -EINVAL naming it");
}

static void test_strict_interfaces(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-c", "eth0\n-A OUTPUT -j ACCEPT"), "-c",
                       "a newline in an -c interface name is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-k", "eth0 -j ACCEPT"), "eth0 -j ACCEPT",
                       "a space in a -k interface name is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-c", "0123456789abcdef"), "0123456789abcdef",
                       "an interface name of 16 bytes (IFNAMSIZ) is -EINVAL naming it");
        expect_valid(ENVP(NO_SUCH_USER), ARGV("-c", "0123456789abcde"), "an interface name of 15 bytes is valid");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-c", "a/b"), "a/b", "'/' in an interface name is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-c", "!eth0"), "!eth0", "'!' in an interface name is -EINVAL");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-c", "\xc3\xa9th0"), "-c", "non-ASCII interface names are -EINVAL");
}

static void test_strict_other(void)
{
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-m", "redirect"), "redirect",
                       "-m redirect (wrong case) is -EINVAL naming it, where Istio silently uses REDIRECT");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("-m", "TPROXY "), "TPROXY ", "-m 'TPROXY ' is -EINVAL naming it");
        expect_valid(ENVP(NO_SUCH_USER), ARGV("-m", ""), "-m '' is REDIRECT");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--native-nftables"), "native-nftables",
                       "--native-nftables is rejected (not implemented)");
        expect_invalid(ENVP(NO_SUCH_USER, "NATIVE_NFTABLES=true"), NO_ARGS, "native-nftables",
                       "NATIVE_NFTABLES=true is rejected too");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--ipv6=maybe"), "maybe", "--ipv6=maybe is -EINVAL naming it");
        expect_invalid(ENVP(NO_SUCH_USER), ARGV("--log_output_level=default:loud"), "default:loud",
                       "an unknown log level is -EINVAL naming it");
}

static void test_all_problems_reported(void)
{
        struct capture_settings s;
        int r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("-p", "80x", "-z", "70000", "-i", "10.0.0.1"));

        tap_ok(r == -EINVAL && strstr(err, "80x") && strstr(err, "70000") && strstr(err, "10.0.0.1"),
               "resolve reports every bad value at once, not only the first");
        capture_settings_deinit(&s);
}

static void test_mode_and_ipv6(void)
{
        struct capture_settings s;
        int r;

        r = parse_resolve(&s, ENVP(NO_SUCH_USER, "ISTIO_INBOUND_INTERCEPTION_MODE=TPROXY"), NO_ARGS);
        tap_ok(r == 0 && s.mode == CAPTURE_MODE_TPROXY, "ISTIO_INBOUND_INTERCEPTION_MODE=TPROXY selects TPROXY");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--ipv6=true"));
        tap_ok(r == 0 && s.enable_ipv6 && s.ipv6_mode == CAPTURE_IPV6_TRUE, "--ipv6=true turns IPv6 on without a scan");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), NO_ARGS);
        tap_ok(r == 0 && !s.enable_ipv6 && s.ipv6_mode == CAPTURE_IPV6_FALSE, "--ipv6=false turns IPv6 off");
        capture_settings_deinit(&s);
}

/* ---- resolv.conf ---- */

static bool write_resolv(const char *text)
{
        FILE *f = fopen(resolv_path, "we");

        if (!f)
                return false;
        fputs(text, f);
        return fclose(f) == 0;
}

static void test_resolv_conf(void)
{
        char arg[96];
        struct capture_settings s;
        int r;

        if (!write_resolv("# comment nameserver 9.9.9.9\n"
                          "search example.com\n"
                          "nameserver 10.96.0.10\n"
                          "nameserver\t2001:DB8::53\n"
                          "nameserver 10.0.0.300\n"
                          "nameserver fe80::1%eth0\n"
                          "nameserver\n"
                          "nameserver 01.2.3.4\n"
                          "options ndots:5\n"
                          "nameserver 192.168.1.1 trailing words\n"
                          "  nameserver 8.8.8.8\n"
                          "nameserver dns.example.com\n"
                          "nameservers 7.7.7.7\n"
                          "nameserver ::1\n")) {
                tap_ok(false, "could not write %s", resolv_path);
                return;
        }
        snprintf(arg, sizeof(arg), "--resolv-conf=%s", resolv_path);
        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--redirect-dns", arg));
        tap_ok(r == 0, "a resolv.conf with unparsable nameserver lines still resolves");
        TAP_STREQ(joined(&s.dns_v4), "10.96.0.10,192.168.1.1,8.8.8.8",
                  "IPv4 servers are kept in file order; bad addresses, names, zones and comments are dropped");
        TAP_STREQ(joined(&s.dns_v6), "2001:DB8::53,::1",
                  "IPv6 servers go to their own list, as written (Istio pastes the resolv.conf text)");
        capture_settings_deinit(&s);
}

static void test_resolv_conf_long_line(void)
{
        char text[2100], arg[96];
        struct capture_settings s;
        int r;

        /* One comment line of 1100+ bytes whose tail looks like a nameserver line. */
        memset(text, 'x', sizeof(text));
        text[0] = '#';
        snprintf(text + 1023, sizeof(text) - 1023, "nameserver 6.6.6.6\nnameserver 10.0.0.1\n");
        if (!write_resolv(text)) {
                tap_ok(false, "could not write %s", resolv_path);
                return;
        }
        snprintf(arg, sizeof(arg), "--resolv-conf=%s", resolv_path);
        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--redirect-dns", arg));
        tap_ok(r == 0 && strcmp(joined(&s.dns_v4), "10.0.0.1") == 0,
               "the tail of a comment line longer than 1023 bytes is not taken as a nameserver line");
        capture_settings_deinit(&s);
}

static void test_resolv_conf_only_when_needed(void)
{
        struct capture_settings s;
        int r;

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--redirect-dns", "--capture-all-dns", "--resolv-conf=/nonexistent/resolv.conf"));
        tap_ok(r == 0 && s.dns_v4.n == 0 && s.dns_v6.n == 0,
               "with --capture-all-dns, resolv.conf is not read (a missing file is fine)");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--resolv-conf=/nonexistent/resolv.conf"));
        tap_ok(r == 0, "without --redirect-dns, resolv.conf is not read");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--redirect-dns", "--resolv-conf=/nonexistent/resolv.conf"));
        tap_ok(r < 0 && strstr(err, "/nonexistent/resolv.conf"),
               "with --redirect-dns, a missing resolv.conf is an error naming the path");
        capture_settings_deinit(&s);

        r = parse_resolve(&s, ENVP(NO_SUCH_USER), ARGV("--redirect-dns", "--resolv-conf=/dev/null"));
        tap_ok(r == 0 && s.dns_v4.n == 0 && s.dns_v6.n == 0,
               "an empty resolv.conf resolves with no servers (plan_build then turns DNS capture off)");
        capture_settings_deinit(&s);
}

int main(void)
{
        int fd;

        snprintf(resolv_path, sizeof(resolv_path), "/tmp/pilotfish-test-resolv.XXXXXX");
        fd = mkstemp(resolv_path);
        if (fd < 0) {
                perror("mkstemp");
                return 1;
        }
        close(fd);

        test_defaults();
        test_flag_forms();
        test_string_flag_takes_next_arg();
        test_bool_forms();
        test_every_flag_parses();
        test_every_bool_flag_parses();
        test_unknown_flags();
        test_missing_values();
        test_env_binding();
        test_env_bools();
        test_envoy_port_has_no_env();
        test_env_names_exact();
        test_flag_beats_env();
        test_alias_precedence();
        test_bad_bool_env_ignored();
        test_warnings_for_the_caller();
        test_empty_env_counts_as_set();
        test_capture_flags_given();
        test_uid_default_unknown_user();
        test_uid_default_from_envoy_user();
        test_gid_follows_final_uid();
        test_list_parsing();
        test_wildcard_only_whole_value();
        test_istio_validation();
        test_loopback_cidr_accepted();
        test_owner_group_limit();
        test_strict_ports();
        test_probe_timeout_units();
        test_strict_owners();
        test_strict_interfaces();
        test_strict_other();
        test_all_problems_reported();
        test_mode_and_ipv6();
        test_resolv_conf();
        test_resolv_conf_long_line();
        test_resolv_conf_only_when_needed();

        unlink(resolv_path);
        return tap_done();
}
