/*
 * istio-init arguments and capture-annotation validation; see traffic.h.
 *
 * Istio trims with Go's strings.TrimSpace, which knows Unicode white space, not just ASCII;
 * the trimming here does the same so that " 15020" (with a no-break space) is treated
 * exactly as Istio treats it. Number syntax is Go's strconv.ParseUint in base 10: digits
 * only, no sign, leading zeros allowed. CIDRs go through cidr_parse(), which follows
 * netip.ParsePrefix as Istio's validator does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/go_value.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "inject/traffic.h"

void inject_traffic_defaults_init(struct inject_traffic_defaults *d)
{
        *d = (struct inject_traffic_defaults){
                .outbound_port = 15001,
                .inbound_port = 15006,
                .proxy_uid = "1337",
                .interception_mode = "REDIRECT",
                .include_ip_ranges = "*",
                .exclude_ip_ranges = "",
                .include_inbound_ports = "*",
                .exclude_inbound_ports = "",
                .include_outbound_ports = "",
                .exclude_outbound_ports = "",
                .status_port = "15020",
                .log_level = "default:info",
        };
}

static const char *ann(const struct inject_annotations *a, const char *key)
{
        return a->get(a->ctx, key);
}

static const char *str_or_empty(const char *s)
{
        return s ? s : "";
}

/* Istio's `annotation` template function: the annotation when the key is present, even if "". */
static const char *ann_or(const struct inject_annotations *a, const char *key, const char *def)
{
        const char *v = ann(a, key);

        return v ? v : str_or_empty(def);
}

/* ---- Go strings.TrimSpace ---- */

/*
 * Length of the multi-byte UTF-8 white space (Go's unicode.IsSpace beyond ASCII) that
 * [s, s + n) starts with, or 0. The set: U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000.
 */
static size_t wide_space(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *)s;

        if (n >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
                return 2;
        if (n < 3)
                return 0;
        if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
                return 3;
        if (p[0] == 0xe2 && p[1] == 0x80 &&
            ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
                return 3;
        if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
                return 3;
        if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
                return 3;
        return 0;
}

static bool ascii_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Narrows [*s, *s + *n) to its text without leading and trailing white space. */
static void go_trim(const char **s, size_t *n)
{
        size_t k;

        while (*n > 0) {
                if (ascii_space(**s))
                        k = 1;
                else
                        k = wide_space(*s, *n);
                if (k == 0)
                        break;
                *s += k;
                *n -= k;
        }
        while (*n > 0) {
                if (ascii_space((*s)[*n - 1]))
                        k = 1;
                else if (*n >= 2 && wide_space(*s + *n - 2, 2) == 2)
                        k = 2;
                else if (*n >= 3 && wide_space(*s + *n - 3, 3) == 3)
                        k = 3;
                else
                        break;
                *n -= k;
        }
}

/* ---- the arguments ---- */

const char *inject_traffic_mode(const struct inject_annotations *a, const struct inject_traffic_defaults *d)
{
        const char *v = ann(a, INJECT_ANN_INTERCEPTION_MODE);

        if (v)
                return v;
        return d->interception_mode && d->interception_mode[0] ? d->interception_mode : "REDIRECT";
}

int inject_traffic_exclude_inbound(const struct inject_annotations *a, const struct inject_traffic_defaults *d,
                                   struct strbuf *out)
{
        const char *list = ann_or(a, INJECT_ANN_EXCLUDE_IN_PORTS, d->exclude_inbound_ports);
        const char *port = ann_or(a, INJECT_ANN_STATUS_PORT, d->status_port);
        size_t port_len = strlen(port);
        bool first = true;

        go_trim(&port, &port_len);
        if (port_len == 0 || (port_len == 1 && port[0] == '0'))
                return strbuf_puts(out, list);

        /* Istio compares the untrimmed entries: " 15020" does not count as listed. */
        for (const char *e = list;; e++) {
                size_t n = strcspn(e, ",");

                if (n == port_len && memcmp(e, port, n) == 0)
                        return strbuf_puts(out, list);
                e += n;
                if (*e == '\0')
                        break;
        }

        for (const char *e = list;; e++) {
                size_t n = strcspn(e, ",");
                const char *t = e;
                size_t tn = n;

                go_trim(&t, &tn);
                if (tn > 0) {
                        if (!first)
                                strbuf_puts(out, ",");
                        strbuf_append(out, t, tn);
                        first = false;
                }
                e += n;
                if (*e == '\0')
                        break;
        }
        if (!first)
                strbuf_puts(out, ",");
        strbuf_append(out, port, port_len);
        return out->error;
}

/* An argv under construction whose first error sticks, so the caller checks once. */
struct args {
        struct strv *argv;
        int error;
};

static void arg(struct args *b, const char *s)
{
        if (b->error == 0)
                b->error = strv_push(b->argv, s);
}

static void argf(struct args *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argf(struct args *b, const char *fmt, ...)
{
        struct strbuf s = STRBUF_NULL;
        va_list ap;

        if (b->error)
                return;
        va_start(ap, fmt);
        strbuf_vprintf(&s, fmt, ap);
        va_end(ap);
        if (s.error) {
                b->error = s.error == -ENOBUFS ? -ENOMEM : s.error;
                strbuf_deinit(&s);
                return;
        }
        /* strv_push_take() frees the string on failure. */
        b->error = strv_push_take(b->argv, strbuf_steal(&s));
}

int inject_traffic_args(const struct inject_annotations *a, const struct inject_traffic_defaults *d,
                        struct strv *argv)
{
        struct args b = { .argv = argv, .error = 0 };
        struct strbuf excl = STRBUF_NULL;
        const char *mode = inject_traffic_mode(a, d);
        const char *v;

        /* The template's `default` filter: a zero port or an empty UID falls back too. */
        arg(&b, "-p");
        argf(&b, "%u", d->outbound_port ? d->outbound_port : 15001u);
        arg(&b, "-z");
        argf(&b, "%u", d->inbound_port ? d->inbound_port : 15006u);
        arg(&b, "-u");
        /*
         * In TPROXY mode the proxy runs as uid 0 with gid 1337 (SEMANTICS 4.2), and
         * istio-iptables defaults -g to the -u list, so 1337 is what matches its traffic.
         */
        if (strcmp(mode, "TPROXY") == 0)
                arg(&b, "1337");
        else
                arg(&b, d->proxy_uid && d->proxy_uid[0] ? d->proxy_uid : "1337");
        arg(&b, "-m");
        arg(&b, mode);
        arg(&b, "-i");
        arg(&b, ann_or(a, INJECT_ANN_INCLUDE_IP_RANGES, d->include_ip_ranges));
        arg(&b, "-x");
        arg(&b, ann_or(a, INJECT_ANN_EXCLUDE_IP_RANGES, d->exclude_ip_ranges));
        arg(&b, "-b");
        arg(&b, ann_or(a, INJECT_ANN_INCLUDE_IN_PORTS, d->include_inbound_ports));

        /* 15090 (Envoy's Prometheus port) and 15021 (health) are never captured. */
        arg(&b, "-d");
        if (inject_traffic_exclude_inbound(a, d, &excl) < 0) {
                if (b.error == 0)
                        b.error = -ENOMEM;
        } else if (excl.len > 0) {
                argf(&b, "15090,15021,%s", strbuf_str(&excl));
        } else {
                arg(&b, "15090,15021");
        }
        strbuf_deinit(&excl);

        v = ann(a, INJECT_ANN_INCLUDE_OUT_PORTS);
        if (v || str_or_empty(d->include_outbound_ports)[0]) {
                arg(&b, "-q");
                arg(&b, v ? v : d->include_outbound_ports);
        }
        v = ann(a, INJECT_ANN_EXCLUDE_OUT_PORTS);
        if (v || str_or_empty(d->exclude_outbound_ports)[0]) {
                arg(&b, "-o");
                arg(&b, v ? v : d->exclude_outbound_ports);
        }
        /* The newer name wins; kubevirtInterfaces is its deprecated spelling. */
        v = ann(a, INJECT_ANN_REROUTE_INTERFACES);
        if (!v)
                v = ann(a, INJECT_ANN_KUBEVIRT_INTERFACES);
        if (v) {
                arg(&b, "-k");
                arg(&b, v);
        }
        v = ann(a, INJECT_ANN_EXCLUDE_INTERFACES);
        if (v) {
                arg(&b, "-c");
                arg(&b, v);
        }

        argf(&b, "--log_output_level=%s", ann_or(a, INJECT_ANN_AGENT_LOG_LEVEL, d->log_level));
        if (d->log_as_json)
                arg(&b, "--log_as_json");
        /*
         * In CNI mode the node plugin has applied the rules; the container only proves that
         * redirection works. Force-apply is meaningless then, so Istio drops it.
         */
        if (d->cni) {
                arg(&b, "--run-validation");
                arg(&b, "--skip-rule-apply");
        } else if (d->force_apply) {
                arg(&b, "--force-apply");
        }
        if (d->native_nftables)
                arg(&b, "--native-nftables");
        return b.error;
}

/* ---- validation ---- */

/*
 * Each check_*() gets a present annotation's value and says whether it is fine. When it is
 * not, it writes into why what exactly is wrong, naming the bad element; the caller puts
 * "<rule> invalid: " in front.
 */

/*
 * Go strconv.ParseUint(s, 10, bits) on [s, s + n): 0, -EINVAL for a syntax error (empty,
 * a sign, anything but digits), -ERANGE when the value exceeds max.
 */
static int parse_uint(const char *s, size_t n, uint64_t max)
{
        uint64_t v = 0;
        bool over = false;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (!over) {
                        v = v * 10 + (uint64_t)(s[i] - '0');
                        over = v > max;
                }
        }
        return over ? -ERANGE : 0;
}

/* One port, already trimmed. */
static bool port_ok(const char *s, size_t n, struct strbuf *why)
{
        int r = parse_uint(s, n, 65535);

        if (r == 0)
                return true;
        if (n == 0)
                strbuf_puts(why, "the port is empty");
        else if (r == -ERANGE)
                strbuf_printf(why, "port '%.*s' is out of 0..65535", (int)n, s);
        else
                strbuf_printf(why, "'%.*s' is not a port number (decimal digits only)", (int)n, s);
        return false;
}

static bool check_interception_mode(const char *v, struct strbuf *why)
{
        if (strcmp(v, "REDIRECT") == 0 || strcmp(v, "TPROXY") == 0 || strcmp(v, "NONE") == 0)
                return true;
        strbuf_puts(why, "must be REDIRECT, TPROXY or NONE (upper case)");
        return false;
}

static bool check_status_port(const char *v, struct strbuf *why)
{
        size_t n = strlen(v);

        go_trim(&v, &n);
        return port_ok(v, n, why);
}

/* The readiness annotations: ParseUint(v, 10, 32) with no trimming. */
static bool check_uint32(const char *v, struct strbuf *why)
{
        int r = parse_uint(v, strlen(v), UINT32_MAX);

        if (r == -ERANGE)
                strbuf_puts(why, "the number is out of 0..4294967295");
        else if (r < 0)
                strbuf_puts(why, "not an unsigned decimal number (digits only: no sign, no spaces)");
        return r == 0;
}

static bool check_bool(const char *v, struct strbuf *why)
{
        bool b;

        if (go_value_bool(v, &b) == 0)
                return true;
        strbuf_puts(why, "not a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)");
        return false;
}

/* One entry of a CIDR list, as netip.ParsePrefix takes it: untrimmed, length required. */
static bool cidr_ok(const char *e, size_t n, bool star_alone, struct strbuf *why)
{
        char buf[64], *slash;
        struct cidr c;

        if (n == 0) {
                strbuf_puts(why, "empty entry (stray ',')");
                return false;
        }
        if (n == 1 && e[0] == '*') {
                strbuf_puts(why, star_alone ? "'*' is only allowed as the whole value" : "'*' is not allowed here");
                return false;
        }
        /* Within the entry only: strcspn over the rest of the list made a long one quadratic. */
        if (memchr(e, ' ', n) || memchr(e, '\t', n) || memchr(e, '\n', n) || memchr(e, '\v', n) ||
            memchr(e, '\f', n) || memchr(e, '\r', n)) {
                strbuf_printf(why, "'%.*s' contains white space", (int)n, e);
                return false;
        }
        /* The longest prefix text, "ffff:...:255.255.255.255/128", is 49 bytes. */
        if (n < sizeof(buf)) {
                memcpy(buf, e, n);
                buf[n] = '\0';
                if (cidr_parse(buf, &c) == 0)
                        return true;
                slash = strrchr(buf, '/');
                if (!slash && ip_parse(buf, &c) == 0) {
                        strbuf_printf(why, "'%s' lacks a prefix length (ADDR/LEN)", buf);
                        return false;
                }
                if (slash) {
                        *slash = '\0';
                        if (ip_parse(buf, &c) == 0) {
                                strbuf_printf(why, "'%s/%s' has a bad prefix length (want 0..%u, no leading zero)",
                                              buf, slash + 1, c.family == AF_INET ? 32u : 128u);
                                return false;
                        }
                }
        }
        strbuf_printf(why, "'%.*s' is not a CIDR prefix (ADDR/LEN)", (int)n, e);
        return false;
}

/*
 * A CIDR list as Istio's validator reads it: split on ',' with no trimming, so spaces, empty
 * entries and bare addresses all fail. "" is an empty list.
 */
static bool cidr_list_ok(const char *v, bool star_alone, struct strbuf *why)
{
        if (v[0] == '\0' || (star_alone && strcmp(v, "*") == 0))
                return true;
        for (const char *e = v;; e++) {
                size_t n = strcspn(e, ",");

                if (!cidr_ok(e, n, star_alone, why))
                        return false;
                e += n;
                if (*e == '\0')
                        return true;
        }
}

static bool check_cidrs_or_star(const char *v, struct strbuf *why)
{
        return cidr_list_ok(v, true, why);
}

static bool check_cidrs(const char *v, struct strbuf *why)
{
        return cidr_list_ok(v, false, why);
}

/*
 * A port list: the whole value trimmed ("" or blank is an empty list), split on ',', each
 * entry trimmed and parsed. An empty entry fails, as ParseUint("") does in Istio.
 */
static bool port_list_ok(const char *v, bool star_alone, struct strbuf *why)
{
        size_t len = strlen(v);
        const char *end;

        go_trim(&v, &len);
        if (len == 0 || (star_alone && len == 1 && v[0] == '*'))
                return true;
        end = v + len;
        for (const char *e = v;;) {
                const char *comma = memchr(e, ',', (size_t)(end - e));
                const char *t = e;
                size_t n = (size_t)((comma ? comma : end) - e);

                go_trim(&t, &n);
                if (n == 1 && t[0] == '*') {
                        strbuf_puts(why, star_alone ? "'*' is only allowed as the whole value" :
                                                      "'*' is not allowed here");
                        return false;
                }
                if (n == 0) {
                        strbuf_puts(why, "empty entry (stray ',')");
                        return false;
                }
                if (!port_ok(t, n, why))
                        return false;
                if (!comma)
                        return true;
                e = comma + 1;
        }
}

static bool check_ports_or_star(const char *v, struct strbuf *why)
{
        return port_list_ok(v, true, why);
}

static bool check_ports(const char *v, struct strbuf *why)
{
        return port_list_ok(v, false, why);
}

static bool ifname_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
}

/*
 * An interface list: "" is an empty list; otherwise each entry, trimmed, is a Linux
 * interface name (at most IFNAMSIZ - 1 = 15 bytes) matching ^[A-Za-z][A-Za-z0-9_.-]*$.
 */
static bool check_interfaces(const char *v, struct strbuf *why)
{
        if (v[0] == '\0')
                return true;
        for (const char *e = v;; e++) {
                size_t n = strcspn(e, ",");
                const char *t = e;
                size_t tn = n;
                bool ok;

                go_trim(&t, &tn);
                if (tn == 0) {
                        strbuf_puts(why, "empty interface name");
                        return false;
                }
                if (tn > 15) {
                        strbuf_printf(why, "interface name '%.*s' is longer than 15 characters", (int)tn, t);
                        return false;
                }
                ok = (t[0] >= 'A' && t[0] <= 'Z') || (t[0] >= 'a' && t[0] <= 'z');
                for (size_t i = 1; ok && i < tn; i++)
                        ok = ifname_char(t[i]);
                if (!ok) {
                        strbuf_printf(why, "interface name '%.*s' must start with a letter and hold only "
                                      "letters, digits, '_', '.' and '-'", (int)tn, t);
                        return false;
                }
                e += n;
                if (*e == '\0')
                        return true;
        }
}

/*
 * In the order of SEMANTICS 4.4. The rule names are Istio's wording where the corpus
 * asserts it (includeipranges, excludeipranges, includeinboundports, excludeinboundports,
 * excludeoutboundports, lower-cased).
 */
static const struct {
        const char *key;
        const char *rule;
        bool (*check)(const char *v, struct strbuf *why);
} checks[] = {
        { INJECT_ANN_INTERCEPTION_MODE, "interceptionMode", check_interception_mode },
        { INJECT_ANN_STATUS_PORT, "statusPort", check_status_port },
        { INJECT_ANN_READINESS_DELAY, "initialDelaySeconds", check_uint32 },
        { INJECT_ANN_READINESS_PERIOD, "periodSeconds", check_uint32 },
        { INJECT_ANN_READINESS_FAILURES, "failureThreshold", check_uint32 },
        { INJECT_ANN_INCLUDE_IP_RANGES, "includeIPRanges", check_cidrs_or_star },
        { INJECT_ANN_EXCLUDE_IP_RANGES, "excludeIPRanges", check_cidrs },
        { INJECT_ANN_INCLUDE_IN_PORTS, "includeInboundPorts", check_ports_or_star },
        { INJECT_ANN_EXCLUDE_IN_PORTS, "excludeInboundPorts", check_ports },
        { INJECT_ANN_EXCLUDE_OUT_PORTS, "excludeOutboundPorts", check_ports },
        { INJECT_ANN_EXCLUDE_INTERFACES, "excludeInterfaces", check_interfaces },
        { INJECT_ANN_KUBEVIRT_INTERFACES, "kubevirtInterfaces", check_interfaces },
        { INJECT_ANN_REROUTE_INTERFACES, "reroute-virtual-interfaces", check_interfaces },
        { INJECT_ANN_MERGE_METRICS, "merge-metrics", check_bool },
};

int inject_validate_traffic(const struct inject_annotations *a, struct strbuf *err)
{
        int bad = 0;

        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
                struct strbuf why = STRBUF_NULL;
                const char *v = ann(a, checks[i].key);

                if (!v || checks[i].check(v, &why)) {
                        strbuf_deinit(&why);
                        continue;
                }
                bad++;
                if (err->len > 0)
                        strbuf_puts(err, "; ");
                strbuf_printf(err, "invalid value '%s' for annotation '%s': %s invalid: %s", v, checks[i].key,
                              checks[i].rule, strbuf_str(&why));
                strbuf_deinit(&why);
        }
        return bad;
}
