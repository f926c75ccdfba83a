/*
 * Unit tests for inject/traffic.c: the istio-init arguments built from pod annotations and
 * the validation of the capture annotations (../shared/conformance/istio-inject/SEMANTICS.md
 * sections 4.1 and 4.4). Golden cases transcribe the `args:` of the istio-init (or
 * istio-validation) container of tests/data/istio-inject/expected/<file> from
 * "-p" to the end, with the annotations of the matching inputs/ file and the settings of
 * INDEX.md's "Config variants" table; each test names its file.
 *
 * Annotations are a NULL-terminated { key, value, key, value, ..., NULL } list; a key that
 * is not listed is absent, a key listed with "" is present and empty.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/strv.h"
#include "inject/traffic.h"
#include "tap.h"

#define ANN(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ANN ((const char *const[]){ NULL })
#define WANT(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *kv_get(void *ctx, const char *key)
{
        const char *const *kv = ctx;

        for (size_t i = 0; kv[i]; i += 2)
                if (strcmp(kv[i], key) == 0)
                        return kv[i + 1];
        return NULL;
}

static struct inject_annotations annotations(const char *const *kv)
{
        return (struct inject_annotations){ .get = kv_get, .ctx = (void *)kv };
}

static struct inject_traffic_defaults defaults(void)
{
        struct inject_traffic_defaults d;

        inject_traffic_defaults_init(&d);
        return d;
}

/* Prints an argv on one line, empty arguments as "", for diagnostics. */
static void print_argv(const char *label, const char *const *v, size_t n)
{
        printf("# %s:", label);
        for (size_t i = 0; i < n; i++)
                printf(" %s", v[i][0] ? v[i] : "\"\"");
        printf("\n");
}

/* Builds the arguments and compares them with want, element by element. */
static void check_args(const char *const *kv, const struct inject_traffic_defaults *d, const char *const *want,
                       const char *what)
{
        struct inject_annotations a = annotations(kv);
        struct strv argv = STRV_NULL;
        size_t nwant = 0;
        bool eq;
        int r;

        while (want[nwant])
                nwant++;
        r = inject_traffic_args(&a, d, &argv);
        eq = r == 0 && argv.n == nwant;
        for (size_t i = 0; eq && i < nwant; i++)
                eq = strcmp(argv.v[i], want[i]) == 0;
        if (!eq) {
                printf("# r=%d\n", r);
                print_argv("got ", (const char *const *)argv.v, argv.n);
                print_argv("want", want, nwant);
        }
        tap_ok(eq, "%s", what);
        strv_deinit(&argv);
}

/* The value that follows flag in the built arguments, or NULL when the flag is absent. */
static char *flag_value(const char *const *kv, const struct inject_traffic_defaults *d, const char *flag)
{
        struct inject_annotations a = annotations(kv);
        struct strv argv = STRV_NULL;
        char *v = NULL;

        if (inject_traffic_args(&a, d, &argv) == 0)
                for (size_t i = 0; i + 1 < argv.n; i++)
                        if (strcmp(argv.v[i], flag) == 0) {
                                v = strdup(argv.v[i + 1]);
                                break;
                        }
        strv_deinit(&argv);
        return v;
}

static void check_flag(const char *const *kv, const struct inject_traffic_defaults *d, const char *flag,
                       const char *want, const char *what)
{
        char *v = flag_value(kv, d, flag);

        if (want)
                TAP_STREQ(v, want, "%s", what);
        else {
                if (v)
                        printf("# %s unexpectedly present: [%s]\n", flag, v);
                tap_ok(!v, "%s", what);
        }
        free(v);
}

/* Validates and returns the message (caller frees); *ret_bad gets the count. */
static char *validate(const char *const *kv, int *ret_bad)
{
        struct inject_annotations a = annotations(kv);
        struct strbuf err = STRBUF_NULL;
        char *msg;

        *ret_bad = inject_validate_traffic(&a, &err);
        msg = strdup(strbuf_str(&err));
        strbuf_deinit(&err);
        return msg;
}

static bool accepts(const char *key, const char *value)
{
        int bad;
        char *msg = validate(ANN(key, value), &bad);

        if (bad != 0 || msg[0])
                printf("# rejected: %s\n", msg);
        free(msg);
        return bad == 0;
}

/* True when value is rejected with exactly one message that contains every word of want. */
static bool rejects(const char *key, const char *value, const char *want)
{
        int bad;
        char *msg = validate(ANN(key, value), &bad);
        bool ok = bad == 1 && strstr(msg, want) != NULL;

        if (!ok)
                printf("# bad=%d msg: %s\n# want substring: %s\n", bad, msg, want);
        free(msg);
        return ok;
}

/* ---- arguments ---- */

/* With no annotations the chart defaults give SEMANTICS 4.1's default argument list. */
static void test_defaults(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"),
                   "defaults: -p 15001 -z 15006 -u 1337 -m REDIRECT -i * -x \"\" -b * -d 15090,15021,15020");
}

/* Zero ports and an empty UID fall back as the template's `default` filter does; NULL strings count as "". */
static void test_zero_defaults_fall_back(void)
{
        struct inject_traffic_defaults d = defaults();

        d.outbound_port = 0;
        d.inbound_port = 0;
        d.proxy_uid = "";
        d.interception_mode = NULL;
        d.exclude_ip_ranges = NULL;
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"),
                   "port 0, empty UID, no mode and a NULL -x default fall back to 15001, 15006, 1337, REDIRECT, \"\"");
        d = defaults();
        d.outbound_port = 15101;
        d.inbound_port = 15106;
        check_flag(NO_ANN, &d, "-p", "15101", "-p follows the mesh proxyListenPort");
        check_flag(NO_ANN, &d, "-z", "15106", "-z follows the mesh proxyInboundListenPort");
}

/* The four -d examples SEMANTICS 4.1 gives, and the duplicate rule around them. */
static void test_status_port_examples(void)
{
        struct inject_traffic_defaults d = defaults();

        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6"), &d, "-d", "15090,15021,4,5,6,15020",
                   "-d: 4,5,6 + status 15020 -> 15090,15021,4,5,6,15020");
        check_flag(ANN(INJECT_ANN_STATUS_PORT, "123"), &d, "-d", "15090,15021,123",
                   "-d: status 123 -> 15090,15021,123");
        check_flag(ANN(INJECT_ANN_STATUS_PORT, "0"), &d, "-d", "15090,15021",
                   "-d: status 0 and no excludes -> 15090,15021");
        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4,15020,6"), &d, "-d", "15090,15021,4,15020,6",
                   "-d: a user-listed 15020 is not added twice");
        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4, 15020"), &d, "-d", "15090,15021,4,15020,15020",
                   "-d: ' 15020' (with a space) does not count as listed, so 15020 is added");
        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6", INJECT_ANN_STATUS_PORT, "0"), &d, "-d",
                   "15090,15021,4,5,6", "-d: status 0 with excludes keeps the excludes only");
        check_flag(ANN(INJECT_ANN_STATUS_PORT, " 123 "), &d, "-d", "15090,15021,123",
                   "-d: the status port is trimmed before use");
        check_flag(ANN(INJECT_ANN_STATUS_PORT, "\xc2\xa0" "123\xe3\x80\x80"), &d, "-d", "15090,15021,123",
                   "-d: Unicode white space (U+00A0, U+3000) is trimmed as Go's TrimSpace does");
        check_flag(ANN(INJECT_ANN_STATUS_PORT, " 0 "), &d, "-d", "15090,15021",
                   "-d: ' 0 ' trims to 0 and adds nothing");
        d.status_port = "";
        check_flag(NO_ANN, &d, "-d", "15090,15021", "-d: an empty default status port adds nothing");
        d.status_port = NULL;
        check_flag(NO_ANN, &d, "-d", "15090,15021", "-d: a NULL default status port adds nothing");
}

/* When the status port is added the list is trimmed and empty entries dropped; otherwise it is kept as written. */
static void test_exclude_inbound_rewrite(void)
{
        struct inject_traffic_defaults d = defaults();
        struct inject_annotations a;
        struct strbuf out = STRBUF_NULL;

        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, " 4 ,,5, "), &d, "-d", "15090,15021,4,5,15020",
                   "-d: appending trims entries and drops empty ones");
        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "15020, 4,,5"), &d, "-d", "15090,15021,15020, 4,,5",
                   "-d: an already listed status port leaves the list as written");
        check_flag(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4, ,5", INJECT_ANN_STATUS_PORT, "0"), &d, "-d",
                   "15090,15021,4, ,5", "-d: with no status port the list is kept as written");
        d.exclude_inbound_ports = "7,8";
        check_flag(NO_ANN, &d, "-d", "15090,15021,7,8,15020", "-d: values.excludeInboundPorts is used when no annotation");

        a = annotations(ANN(INJECT_ANN_EXCLUDE_IN_PORTS, "4,5"));
        tap_ok(inject_traffic_exclude_inbound(&a, &d, &out) == 0, "exclude_inbound returns 0");
        TAP_STREQ(strbuf_str(&out), "4,5,15020", "exclude_inbound: the list without 15090,15021 (the CNI annotation value)");
        strbuf_deinit(&out);
}

/* An annotation that is present but empty overrides a non-empty default. */
static void test_presence_beats_default(void)
{
        struct inject_traffic_defaults d = defaults();

        d.exclude_ip_ranges = "10.0.0.0/8";
        d.exclude_inbound_ports = "9,10";
        d.include_outbound_ports = "443";
        d.exclude_outbound_ports = "25";
        check_args(ANN(INJECT_ANN_INCLUDE_IP_RANGES, "", INJECT_ANN_EXCLUDE_IP_RANGES, "",
                       INJECT_ANN_INCLUDE_IN_PORTS, "", INJECT_ANN_EXCLUDE_IN_PORTS, "",
                       INJECT_ANN_INCLUDE_OUT_PORTS, "", INJECT_ANN_EXCLUDE_OUT_PORTS, "",
                       INJECT_ANN_AGENT_LOG_LEVEL, ""), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "", "-x", "",
                        "-b", "", "-d", "15090,15021,15020", "-q", "", "-o", "", "--log_output_level="),
                   "empty annotations override non-empty defaults (-i, -x, -b, -d, -q, -o, log level)");
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "10.0.0.0/8",
                        "-b", "*", "-d", "15090,15021,9,10,15020", "-q", "443", "-o", "25",
                        "--log_output_level=default:info"),
                   "without annotations the non-empty defaults apply, -q and -o included");
        check_flag(ANN(INJECT_ANN_AGENT_LOG_LEVEL, "default:debug,ads:warn"), &d, "-x", "10.0.0.0/8",
                   "an unrelated annotation leaves -x at its default");
}

/* -q, -o, -k and -c appear only when their annotation is present (or -q/-o default is non-empty). */
static void test_optional_flags(void)
{
        struct inject_traffic_defaults d = defaults();

        check_flag(NO_ANN, &d, "-q", NULL, "no -q without annotation or default");
        check_flag(NO_ANN, &d, "-o", NULL, "no -o without annotation or default");
        check_flag(NO_ANN, &d, "-k", NULL, "no -k without annotation");
        check_flag(NO_ANN, &d, "-c", NULL, "no -c without annotation");
        check_flag(ANN(INJECT_ANN_INCLUDE_OUT_PORTS, "3306"), &d, "-q", "3306", "-q from includeOutboundPorts");
        check_flag(ANN(INJECT_ANN_EXCLUDE_INTERFACES, "eth1"), &d, "-c", "eth1", "-c from excludeInterfaces");
        check_flag(ANN(INJECT_ANN_EXCLUDE_INTERFACES, ""), &d, "-c", "", "-c \"\" when excludeInterfaces is present and empty");
        check_args(ANN(INJECT_ANN_EXCLUDE_INTERFACES, "eth2", INJECT_ANN_KUBEVIRT_INTERFACES, "net1",
                       INJECT_ANN_EXCLUDE_OUT_PORTS, "7", INJECT_ANN_INCLUDE_OUT_PORTS, "8"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "-q", "8", "-o", "7", "-k", "net1", "-c", "eth2",
                        "--log_output_level=default:info"),
                   "optional flags come in the order -q -o -k -c, before --log_output_level");
}

/* istio.io/reroute-virtual-interfaces wins over the deprecated kubevirtInterfaces, even when empty. */
static void test_reroute_wins(void)
{
        struct inject_traffic_defaults d = defaults();

        check_flag(ANN(INJECT_ANN_KUBEVIRT_INTERFACES, "net1", INJECT_ANN_REROUTE_INTERFACES, "net0ps2"), &d, "-k",
                   "net0ps2", "-k from reroute-virtual-interfaces when both are set");
        check_flag(ANN(INJECT_ANN_KUBEVIRT_INTERFACES, "net1", INJECT_ANN_REROUTE_INTERFACES, ""), &d, "-k", "",
                   "an empty reroute-virtual-interfaces still wins (presence, not emptiness)");
        check_flag(ANN(INJECT_ANN_KUBEVIRT_INTERFACES, "net1,net2"), &d, "-k", "net1,net2",
                   "-k from kubevirtInterfaces alone");
}

/* TPROXY always runs with -u 1337, whatever the proxy UID; other modes use the proxy UID. */
static void test_tproxy(void)
{
        struct inject_traffic_defaults d = defaults();
        struct inject_annotations a;

        d.proxy_uid = "1000629999";
        check_flag(ANN(INJECT_ANN_INTERCEPTION_MODE, "TPROXY"), &d, "-u", "1337", "TPROXY annotation: -u 1337");
        check_flag(ANN(INJECT_ANN_INTERCEPTION_MODE, "TPROXY"), &d, "-m", "TPROXY", "TPROXY annotation: -m TPROXY");
        check_flag(NO_ANN, &d, "-u", "1000629999", "REDIRECT: -u is the proxy UID");
        d.interception_mode = "TPROXY";
        check_flag(NO_ANN, &d, "-u", "1337", "TPROXY from mesh config: -u 1337");
        check_flag(ANN(INJECT_ANN_INTERCEPTION_MODE, "REDIRECT"), &d, "-u", "1000629999",
                   "a REDIRECT annotation over a TPROXY mesh default uses the proxy UID");

        a = annotations(ANN(INJECT_ANN_INTERCEPTION_MODE, "NONE"));
        TAP_STREQ(inject_traffic_mode(&a, &d), "NONE", "inject_traffic_mode: the annotation wins");
        a = annotations(NO_ANN);
        TAP_STREQ(inject_traffic_mode(&a, &d), "TPROXY", "inject_traffic_mode: else the mesh default");
        d.interception_mode = "";
        TAP_STREQ(inject_traffic_mode(&a, &d), "REDIRECT", "inject_traffic_mode: else REDIRECT");
}

/* The trailing switches: --log_as_json, then CNI's pair or --force-apply, then --native-nftables. */
static void test_trailing_switches(void)
{
        struct inject_traffic_defaults d = defaults();

        d.log_as_json = true;
        d.force_apply = true;
        d.native_nftables = true;
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info", "--log_as_json",
                        "--force-apply", "--native-nftables"),
                   "--log_as_json --force-apply --native-nftables after --log_output_level");
        d.cni = true;
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info", "--log_as_json",
                        "--run-validation", "--skip-rule-apply", "--native-nftables"),
                   "CNI mode: --run-validation --skip-rule-apply, and --force-apply is dropped");
}

/* The arguments appended after what argv already holds. */
static void test_appends(void)
{
        struct inject_traffic_defaults d = defaults();
        struct inject_annotations a = annotations(NO_ANN);
        struct strv argv = STRV_NULL;

        tap_ok(strv_push(&argv, "istio-iptables") == 0 && inject_traffic_args(&a, &d, &argv) == 0 &&
               argv.n == 18 && strcmp(argv.v[0], "istio-iptables") == 0 && strcmp(argv.v[1], "-p") == 0 &&
               argv.v[18] == NULL,
               "arguments are appended after the caller's argv[0], NULL-terminated");
        strv_deinit(&argv);
}

/* ---- goldens ---- */

/* expected/traffic-annotations.yaml.injected: default config. */
static void test_golden_traffic_annotations(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(ANN("sidecar.istio.io/proxyCPU", "4000m",
                       INJECT_ANN_INCLUDE_IN_PORTS, "1,2,3",
                       INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6",
                       INJECT_ANN_EXCLUDE_OUT_PORTS, "7,8,9",
                       INJECT_ANN_INCLUDE_IP_RANGES, "127.0.0.1/24,10.96.0.1/24",
                       INJECT_ANN_EXCLUDE_IP_RANGES, "10.96.0.2/24,10.96.0.3/24"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                        "-i", "127.0.0.1/24,10.96.0.1/24", "-x", "10.96.0.2/24,10.96.0.3/24",
                        "-b", "1,2,3", "-d", "15090,15021,4,5,6,15020", "-o", "7,8,9",
                        "--log_output_level=default:info"),
                   "golden traffic-annotations.yaml.injected");
}

/* expected/traffic-params.yaml.injected: the values carry the ranges and ports, statusPort=0. */
static void test_golden_traffic_params(void)
{
        struct inject_traffic_defaults d = defaults();

        d.include_ip_ranges = "127.0.0.1/24,10.96.0.1/24";
        d.exclude_ip_ranges = "10.96.0.2/24,10.96.0.3/24";
        d.exclude_inbound_ports = "4,5,6";
        d.status_port = "0";
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                        "-i", "127.0.0.1/24,10.96.0.1/24", "-x", "10.96.0.2/24,10.96.0.3/24",
                        "-b", "*", "-d", "15090,15021,4,5,6", "--log_output_level=default:info"),
                   "golden traffic-params.yaml.injected");
}

/* expected/traffic-annotations-empty-includes.yaml.injected: default config. */
static void test_golden_empty_includes(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(ANN(INJECT_ANN_INCLUDE_IN_PORTS, "",
                       INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6",
                       INJECT_ANN_INCLUDE_IP_RANGES, "",
                       INJECT_ANN_EXCLUDE_IP_RANGES, "10.96.0.2/24,10.96.0.3/24"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                        "-i", "", "-x", "10.96.0.2/24,10.96.0.3/24",
                        "-b", "", "-d", "15090,15021,4,5,6,15020", "--log_output_level=default:info"),
                   "golden traffic-annotations-empty-includes.yaml.injected");
}

/* expected/traffic-annotations-wildcards.yaml.injected: default config. */
static void test_golden_wildcards(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(ANN(INJECT_ANN_INCLUDE_IN_PORTS, "*",
                       INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6",
                       INJECT_ANN_INCLUDE_IP_RANGES, "*",
                       INJECT_ANN_EXCLUDE_IP_RANGES, "10.96.0.2/24,10.96.0.3/24"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                        "-i", "*", "-x", "10.96.0.2/24,10.96.0.3/24",
                        "-b", "*", "-d", "15090,15021,4,5,6,15020", "--log_output_level=default:info"),
                   "golden traffic-annotations-wildcards.yaml.injected");
}

/* expected/status_annotations.yaml.injected and status_annotations_zeroport.yaml.injected: default config. */
static void test_golden_status_annotations(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(ANN(INJECT_ANN_STATUS_PORT, "123",
                       INJECT_ANN_READINESS_DELAY, "100",
                       INJECT_ANN_READINESS_PERIOD, "200",
                       INJECT_ANN_READINESS_FAILURES, "300",
                       "readiness.status.sidecar.istio.io/applicationPorts", "1,2,3"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,123", "--log_output_level=default:info"),
                   "golden status_annotations.yaml.injected");
        check_args(ANN(INJECT_ANN_STATUS_PORT, "0",
                       INJECT_ANN_READINESS_DELAY, "100",
                       INJECT_ANN_READINESS_PERIOD, "200",
                       INJECT_ANN_READINESS_FAILURES, "300",
                       "readiness.status.sidecar.istio.io/applicationPorts", "1,2,3"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021", "--log_output_level=default:info"),
                   "golden status_annotations_zeroport.yaml.injected");
}

/* expected/kubevirtInterfaces.yaml.injected and reroute-virtual-interfaces.yaml.injected: values statusPort=123. */
static void test_golden_virtual_interfaces(void)
{
        struct inject_traffic_defaults d = defaults();

        d.status_port = "123";
        check_args(ANN(INJECT_ANN_KUBEVIRT_INTERFACES, "net1"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,123", "-k", "net1", "--log_output_level=default:info"),
                   "golden kubevirtInterfaces.yaml.injected");
        check_args(ANN(INJECT_ANN_REROUTE_INTERFACES, "net0ps2", INJECT_ANN_KUBEVIRT_INTERFACES, "net1"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,123", "-k", "net0ps2", "--log_output_level=default:info"),
                   "golden reroute-virtual-interfaces.yaml.injected");
}

/* expected/reroute-virtual-interfaces_list.yaml.injected: default config. */
static void test_golden_reroute_list(void)
{
        struct inject_traffic_defaults d = defaults();

        check_args(ANN(INJECT_ANN_REROUTE_INTERFACES, "net1ps5,net2qr9"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "-k", "net1ps5,net2qr9",
                        "--log_output_level=default:info"),
                   "golden reroute-virtual-interfaces_list.yaml.injected");
}

/* expected/hello-tproxy.yaml.injected: hello.yaml with mesh defaultConfig.interceptionMode=TPROXY. */
static void test_golden_hello_tproxy(void)
{
        struct inject_traffic_defaults d = defaults();

        d.interception_mode = "TPROXY";
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "TPROXY", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"),
                   "golden hello-tproxy.yaml.injected");
}

/* expected/hello.yaml.cni.injected: CNI on, so istio-validation with --run-validation --skip-rule-apply. */
static void test_golden_hello_cni(void)
{
        struct inject_traffic_defaults d = defaults();

        d.cni = true;
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info",
                        "--run-validation", "--skip-rule-apply"),
                   "golden hello.yaml.cni.injected");
}

/*
 * expected/hello-openshift.yaml.injected and hello-openshift-tproxy.yaml.injected: CNI on,
 * OpenShift proxy UID 1000629999 from the namespace range; TPROXY still gives -u 1337.
 */
static void test_golden_openshift(void)
{
        struct inject_traffic_defaults d = defaults();

        d.cni = true;
        d.proxy_uid = "1000629999";
        check_args(NO_ANN, &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1000629999", "-m", "REDIRECT", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info",
                        "--run-validation", "--skip-rule-apply"),
                   "golden hello-openshift.yaml.injected");
        check_args(ANN(INJECT_ANN_INTERCEPTION_MODE, "TPROXY"), &d,
                   WANT("-p", "15001", "-z", "15006", "-u", "1337", "-m", "TPROXY", "-i", "*", "-x", "",
                        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info",
                        "--run-validation", "--skip-rule-apply"),
                   "golden hello-openshift-tproxy.yaml.injected");
}

/* ---- validation ---- */

/* No annotations, or only unrelated ones, or the goldens' annotations: nothing to report. */
static void test_validate_clean(void)
{
        int bad;
        char *msg = validate(NO_ANN, &bad);

        tap_ok(bad == 0 && msg[0] == '\0', "no annotations: valid, no message");
        free(msg);
        msg = validate(ANN(INJECT_ANN_INCLUDE_IN_PORTS, "1,2,3", INJECT_ANN_EXCLUDE_IN_PORTS, "4,5,6",
                           INJECT_ANN_EXCLUDE_OUT_PORTS, "7,8,9",
                           INJECT_ANN_INCLUDE_IP_RANGES, "127.0.0.1/24,10.96.0.1/24",
                           INJECT_ANN_EXCLUDE_IP_RANGES, "10.96.0.2/24,10.96.0.3/24",
                           INJECT_ANN_STATUS_PORT, "123", INJECT_ANN_READINESS_DELAY, "100",
                           INJECT_ANN_READINESS_PERIOD, "200", INJECT_ANN_READINESS_FAILURES, "300",
                           INJECT_ANN_REROUTE_INTERFACES, "net0ps2", INJECT_ANN_KUBEVIRT_INTERFACES, "net1",
                           "sidecar.istio.io/proxyCPU", "not-checked-here"), &bad);
        tap_ok(bad == 0 && msg[0] == '\0', "the corpus's valid traffic annotations pass");
        free(msg);
}

static void test_validate_interception_mode(void)
{
        tap_ok(accepts(INJECT_ANN_INTERCEPTION_MODE, "REDIRECT") && accepts(INJECT_ANN_INTERCEPTION_MODE, "TPROXY") &&
               accepts(INJECT_ANN_INTERCEPTION_MODE, "NONE"), "interceptionMode: REDIRECT, TPROXY, NONE accepted");
        tap_ok(rejects(INJECT_ANN_INTERCEPTION_MODE, "redirect", "interceptionMode invalid"),
               "interceptionMode: lower-case 'redirect' rejected (case-sensitive)");
        tap_ok(rejects(INJECT_ANN_INTERCEPTION_MODE, "", "REDIRECT, TPROXY or NONE"),
               "interceptionMode: empty rejected");
}

static void test_validate_status_port(void)
{
        tap_ok(accepts(INJECT_ANN_STATUS_PORT, "15020") && accepts(INJECT_ANN_STATUS_PORT, " 123 ") &&
               accepts(INJECT_ANN_STATUS_PORT, "0") && accepts(INJECT_ANN_STATUS_PORT, "65535"),
               "status port: 15020, ' 123 ', 0, 65535 accepted");
        tap_ok(rejects(INJECT_ANN_STATUS_PORT, "65536", "port '65536' is out of 0..65535"),
               "status port: 65536 rejected as out of range");
        tap_ok(rejects(INJECT_ANN_STATUS_PORT, "-1", "'-1' is not a port number"), "status port: -1 rejected");
        tap_ok(rejects(INJECT_ANN_STATUS_PORT, "", "statusPort invalid: the port is empty"),
               "status port: empty rejected");
}

static void test_validate_readiness(void)
{
        tap_ok(accepts(INJECT_ANN_READINESS_DELAY, "0") && accepts(INJECT_ANN_READINESS_PERIOD, "4294967295") &&
               accepts(INJECT_ANN_READINESS_FAILURES, "007"),
               "readiness: 0, 4294967295, 007 accepted (uint32, leading zeros allowed)");
        tap_ok(rejects(INJECT_ANN_READINESS_PERIOD, "4294967296", "periodSeconds invalid: the number is out of"),
               "readiness periodSeconds: 2^32 rejected");
        tap_ok(rejects(INJECT_ANN_READINESS_DELAY, " 5", "initialDelaySeconds invalid: not an unsigned decimal"),
               "readiness initialDelaySeconds: ' 5' rejected (no trimming)");
        tap_ok(rejects(INJECT_ANN_READINESS_FAILURES, "+3", "failureThreshold invalid"),
               "readiness failureThreshold: '+3' rejected");
}

static void test_validate_ip_ranges(void)
{
        tap_ok(accepts(INJECT_ANN_INCLUDE_IP_RANGES, "*") && accepts(INJECT_ANN_INCLUDE_IP_RANGES, "") &&
               accepts(INJECT_ANN_INCLUDE_IP_RANGES, "10.0.0.0/8,fd00::/8"),
               "includeOutboundIPRanges: '*', '' and a v4/v6 list accepted");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IP_RANGES, "10.0.0.0/8, 1.2.3.0/24", "' 1.2.3.0/24' contains white space"),
               "includeOutboundIPRanges: a space after the comma fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IP_RANGES, "10.0.0.1", "'10.0.0.1' lacks a prefix length"),
               "includeOutboundIPRanges: a bare address fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IP_RANGES, "10.0.0.0/33", "'10.0.0.0/33' has a bad prefix length"),
               "includeOutboundIPRanges: /33 fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IP_RANGES, "*,10.0.0.0/8", "'*' is only allowed as the whole value"),
               "includeOutboundIPRanges: '*' inside a list fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IP_RANGES, "10.0.0.0/8,", "empty entry"),
               "includeOutboundIPRanges: a trailing comma fails");
        tap_ok(accepts(INJECT_ANN_EXCLUDE_IP_RANGES, "") && accepts(INJECT_ANN_EXCLUDE_IP_RANGES, "10.96.0.2/24,::1/128"),
               "excludeOutboundIPRanges: '' and a list accepted");
        tap_ok(rejects(INJECT_ANN_EXCLUDE_IP_RANGES, "*", "excludeIPRanges invalid: '*' is not allowed here"),
               "excludeOutboundIPRanges: '*' fails");
        tap_ok(rejects(INJECT_ANN_EXCLUDE_IP_RANGES, "10.0.0.0/8,bad", "'bad' is not a CIDR prefix (ADDR/LEN)"),
               "excludeOutboundIPRanges: a bad second entry is named");
}

static void test_validate_ports(void)
{
        tap_ok(accepts(INJECT_ANN_INCLUDE_IN_PORTS, "*") && accepts(INJECT_ANN_INCLUDE_IN_PORTS, "") &&
               accepts(INJECT_ANN_INCLUDE_IN_PORTS, " 80, 443 ") && accepts(INJECT_ANN_INCLUDE_IN_PORTS, "0,65535"),
               "includeInboundPorts: '*', '', ' 80, 443 ', '0,65535' accepted");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IN_PORTS, "80,,443", "includeInboundPorts invalid: empty entry"),
               "includeInboundPorts: an empty entry fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IN_PORTS, "80,70000", "port '70000' is out of 0..65535"),
               "includeInboundPorts: 70000 fails");
        tap_ok(rejects(INJECT_ANN_INCLUDE_IN_PORTS, "80,*", "'*' is only allowed as the whole value"),
               "includeInboundPorts: '*' inside a list fails");
        tap_ok(accepts(INJECT_ANN_EXCLUDE_IN_PORTS, "") && accepts(INJECT_ANN_EXCLUDE_IN_PORTS, "4, 5,6"),
               "excludeInboundPorts: '' and '4, 5,6' accepted");
        tap_ok(rejects(INJECT_ANN_EXCLUDE_IN_PORTS, "4,x5", "excludeInboundPorts invalid: 'x5' is not a port number"),
               "excludeInboundPorts: 'x5' fails");
        tap_ok(accepts(INJECT_ANN_EXCLUDE_OUT_PORTS, "7,8,9"), "excludeOutboundPorts: '7,8,9' accepted");
        tap_ok(rejects(INJECT_ANN_EXCLUDE_OUT_PORTS, "*", "excludeOutboundPorts invalid: '*' is not allowed here"),
               "excludeOutboundPorts: '*' fails");
        tap_ok(accepts(INJECT_ANN_INCLUDE_OUT_PORTS, "not,checked"),
               "includeOutboundPorts is not validated (Istio does not)");
}

static void test_validate_interfaces(void)
{
        static const char *const keys[] = {
                INJECT_ANN_EXCLUDE_INTERFACES, INJECT_ANN_KUBEVIRT_INTERFACES, INJECT_ANN_REROUTE_INTERFACES,
        };

        for (size_t i = 0; i < 3; i++) {
                tap_ok(accepts(keys[i], "net1") && accepts(keys[i], "eth0, net1ps5 ,br-ex.100") &&
                       accepts(keys[i], "abcdefghijklmno") && accepts(keys[i], ""),
                       "%s: names, trimmed entries, 15 chars and '' accepted", keys[i]);
                tap_ok(rejects(keys[i], "abcdefghijklmnop", "'abcdefghijklmnop' is longer than 15 characters"),
                       "%s: a 16-character name fails", keys[i]);
                tap_ok(rejects(keys[i], "eth0,1eth", "'1eth' must start with a letter"),
                       "%s: a name starting with a digit fails", keys[i]);
                tap_ok(rejects(keys[i], "eth0,,eth1", "empty interface name"), "%s: an empty entry fails", keys[i]);
                tap_ok(rejects(keys[i], "eth/0", "'eth/0' must start with a letter and hold only"),
                       "%s: '/' in a name fails", keys[i]);
        }
}

static void test_validate_merge_metrics(void)
{
        static const char *const ok[] = {
                "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
        };
        bool all = true;

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                all = accepts(INJECT_ANN_MERGE_METRICS, ok[i]) && all;
        tap_ok(all, "merge-metrics: every Go ParseBool spelling accepted");
        tap_ok(rejects(INJECT_ANN_MERGE_METRICS, "yes", "merge-metrics invalid: not a boolean"),
               "merge-metrics: 'yes' rejected");
        tap_ok(rejects(INJECT_ANN_MERGE_METRICS, "tRUE", "merge-metrics invalid"), "merge-metrics: 'tRUE' rejected");
}

/* The message format of SEMANTICS 4.4, exactly. */
static void test_validate_message_format(void)
{
        int bad;
        char *msg = validate(ANN(INJECT_ANN_EXCLUDE_OUT_PORTS, "bad"), &bad);

        TAP_STREQ(msg, "invalid value 'bad' for annotation 'traffic.sidecar.istio.io/excludeOutboundPorts': "
                       "excludeOutboundPorts invalid: 'bad' is not a port number (decimal digits only)",
                  "message: invalid value '<v>' for annotation '<k>': <why>");
        free(msg);
}

/* Every bad annotation is reported, in SEMANTICS 4.4's order, joined by "; ". */
static void test_validate_several(void)
{
        struct inject_annotations a = annotations(ANN(INJECT_ANN_MERGE_METRICS, "maybe",
                                                      INJECT_ANN_INCLUDE_IP_RANGES, "bad",
                                                      INJECT_ANN_INCLUDE_IN_PORTS, "80",
                                                      INJECT_ANN_INTERCEPTION_MODE, "tproxy"));
        struct strbuf err = STRBUF_NULL;
        const char *s, *p1, *p2, *p3;
        int bad;

        strbuf_puts(&err, "earlier problem");
        bad = inject_validate_traffic(&a, &err);
        s = strbuf_str(&err);
        p1 = strstr(s, "; invalid value 'tproxy' for annotation 'sidecar.istio.io/interceptionMode'");
        p2 = strstr(s, "; invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeOutboundIPRanges'");
        p3 = strstr(s, "; invalid value 'maybe' for annotation 'prometheus.istio.io/merge-metrics'");
        if (!(bad == 3 && p1 && p2 && p3 && p1 < p2 && p2 < p3))
                printf("# bad=%d msg: %s\n", bad, s);
        tap_ok(bad == 3, "three bad annotations counted (the good one is not)");
        tap_ok(p1 && p2 && p3 && p1 < p2 && p2 < p3 && strncmp(s, "earlier problem; ", 17) == 0,
               "all three reported in order, '; '-separated, after the text err held");
        tap_ok(!strstr(s, "includeInboundPorts"), "the valid includeInboundPorts is not mentioned");
        strbuf_deinit(&err);
}

/* The corpus's five error cases (inputs/traffic-annotations-bad-*.yaml) and their lower-cased tokens. */
static void test_validate_corpus_tokens(void)
{
        static const struct {
                const char *key, *value, *token;
        } cases[] = {
                { INJECT_ANN_EXCLUDE_IN_PORTS, "*", "excludeinboundports" },
                { INJECT_ANN_EXCLUDE_IP_RANGES, "*", "excludeipranges" },
                { INJECT_ANN_EXCLUDE_OUT_PORTS, "bad", "excludeoutboundports" },
                { INJECT_ANN_INCLUDE_IN_PORTS, "bad", "includeinboundports" },
                { INJECT_ANN_INCLUDE_IP_RANGES, "bad", "includeipranges" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int bad;
                char *msg = validate(ANN(cases[i].key, cases[i].value), &bad);

                for (char *p = msg; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                if (bad != 1 || !strstr(msg, cases[i].token))
                        printf("# bad=%d msg: %s\n", bad, msg);
                tap_ok(bad == 1 && strstr(msg, cases[i].token), "corpus error %s='%s' -> token '%s'",
                       cases[i].key, cases[i].value, cases[i].token);
                free(msg);
        }
}

int main(void)
{
        test_defaults();
        test_zero_defaults_fall_back();
        test_status_port_examples();
        test_exclude_inbound_rewrite();
        test_presence_beats_default();
        test_optional_flags();
        test_reroute_wins();
        test_tproxy();
        test_trailing_switches();
        test_appends();

        test_golden_traffic_annotations();
        test_golden_traffic_params();
        test_golden_empty_includes();
        test_golden_wildcards();
        test_golden_status_annotations();
        test_golden_virtual_interfaces();
        test_golden_reroute_list();
        test_golden_hello_tproxy();
        test_golden_hello_cni();
        test_golden_openshift();

        test_validate_clean();
        test_validate_interception_mode();
        test_validate_status_port();
        test_validate_readiness();
        test_validate_ip_ranges();
        test_validate_ports();
        test_validate_interfaces();
        test_validate_merge_metrics();
        test_validate_message_format();
        test_validate_several();
        test_validate_corpus_tokens();
        return tap_done();
}
