/*
 * `pilotfish proxy` settings; see settings.h. One common/flags table drives parsing,
 * environment binding and usage text; every default goes through the same setter as a
 * value given, so a default cannot be something the flag would refuse.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flags.h"
#include "common/go_value.h"
#include "common/strbuf.h"
#include "proxy/settings.h"

/* What parsing needs besides the settings: whether a closer flag set the log level. */
struct parse_ctx {
        struct proxy_settings s;
        bool level_given, proxy_level_given;
};

static bool parse_u64(const char *v, uint64_t max, uint64_t *ret)
{
        char *end;
        unsigned long long n;

        if (!*v || *v < '0' || *v > '9')
                return false;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end || n > max)
                return false;
        *ret = n;
        return true;
}

static void *field(void *ctx, const struct flags_opt *o)
{
        return (char *)ctx + o->offset;
}

static int set_port(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        uint64_t n;

        if (!parse_u64(v, 65535, &n) || n == 0)
                return flags_problem(err, "%s: invalid port \"%s\" (want 1-65535)", shown, v);
        *(unsigned *)field(ctx, o) = (unsigned)n;
        return 0;
}

static int set_uint(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        uint64_t n;

        if (!parse_u64(v, UINT_MAX, &n))
                return flags_problem(err, "%s: invalid number \"%s\"", shown, v);
        *(unsigned *)field(ctx, o) = (unsigned)n;
        return 0;
}

/* A Go duration (common/go_value.h), as every duration flag of Istio's binaries is read; none
 * of these may be negative. Milliseconds are the loop's clock: a fraction of one rounds up, so
 * a duration that is not zero never becomes "none". */
static int set_duration(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        const char *why = NULL;
        int64_t ns;

        if (go_value_duration(v, &ns, &why) < 0)
                return flags_problem(err, "%s: invalid duration \"%s\" (%s; e.g. 10s, 500ms, 1m30s)", shown, v, why);
        if (ns < 0)
                return flags_problem(err, "%s: invalid duration \"%s\" (negative)", shown, v);
        *(uint64_t *)field(ctx, o) = (uint64_t)ns / 1000000 + ((uint64_t)ns % 1000000 != 0);
        return 0;
}

/* A string into a char array of o->max bytes. */
static int set_string(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        size_t n = strlen(v);

        if (n >= o->max)
                return flags_problem(err, "%s: value too long (%zu bytes, at most %lu)", shown, n, o->max - 1);
        memcpy(field(ctx, o), v, n + 1);
        return 0;
}

static int set_log_level(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        ((struct parse_ctx *)ctx)->level_given = true;
        return set_string(ctx, o, v, shown, err);
}

static int set_proxy_log_level(void *ctx, const struct flags_opt *o, const char *v, const char *shown,
                               struct strbuf *err)
{
        ((struct parse_ctx *)ctx)->proxy_level_given = true;
        return set_string(ctx, o, v, shown, err);
}

static int set_mode(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        if (strcmp(v, "TPROXY") != 0 && strcmp(v, "REDIRECT") != 0)
                return flags_problem(err, "%s: invalid mode \"%s\" (want REDIRECT or TPROXY)", shown, v);
        *(bool *)field(ctx, o) = strcmp(v, "TPROXY") == 0;
        return 0;
}

static int set_access_log(void *ctx, const struct flags_opt *o, const char *v, const char *shown, struct strbuf *err)
{
        static const char *const names[] = {
                [PROXY_ACCESS_LOG_OFF] = "off", [PROXY_ACCESS_LOG_TEXT] = "text", [PROXY_ACCESS_LOG_JSON] = "json",
        };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(v, names[i]) == 0) {
                        *(enum proxy_access_log *)field(ctx, o) = (enum proxy_access_log)i;
                        return 0;
                }
        return flags_problem(err, "%s: invalid value \"%s\" (want off, text or json)", shown, v);
}

static int positional(void *ctx, const char *arg, struct strbuf *err)
{
        /* "sidecar" (Istio's proxy type) is the one argument accepted. */
        if (strcmp(arg, "sidecar") != 0)
                return flags_problem(err, "unexpected argument \"%s\" (only \"sidecar\" is accepted)", arg);
        return 0;
}

#define O(f) offsetof(struct parse_ctx, s.f)
#define SZ(f) sizeof(((struct proxy_settings *)0)->f)

static const struct flags_opt opts[] = {
        { .name = "outbound-port", .env = "PILOTFISH_OUTBOUND_PORT", .set = set_port, .offset = O(outbound_port),
          .metavar = "PORT", .def = "15001", .help = "outbound capture listener" },
        { .name = "inbound-port", .env = "PILOTFISH_INBOUND_PORT", .set = set_port, .offset = O(inbound_port),
          .metavar = "PORT", .def = "15006", .help = "inbound capture listener" },
        { .name = "health-port", .env = "PILOTFISH_HEALTH_PORT", .set = set_port, .offset = O(health_port),
          .metavar = "PORT", .def = "15021", .help = "GET /healthz/ready" },
        { .name = "prometheus-port", .env = "PILOTFISH_PROMETHEUS_PORT", .set = set_port, .offset = O(prometheus_port),
          .metavar = "PORT", .def = "15090", .help = "GET /stats/prometheus" },
        { .name = "status-port", .env = "PILOTFISH_STATUS_PORT", .set = set_port, .offset = O(status_port),
          .metavar = "PORT", .def = "15020", .help = "merged metrics and application probes" },
        { .name = "admin-port", .env = "PILOTFISH_ADMIN_PORT", .set = set_port, .offset = O(admin_port),
          .metavar = "PORT", .def = "15000", .help = "admin endpoints, on 127.0.0.1 only" },
        { .name = "workers", .env = "PILOTFISH_WORKERS", .set = set_uint, .offset = O(workers), .metavar = "N",
          .def = "0", .help = "worker threads; 0 is one per CPU the process may use" },
        { .name = "connect-timeout", .env = "PILOTFISH_CONNECT_TIMEOUT", .set = set_duration,
          .offset = O(connect_timeout_ms), .metavar = "DURATION", .def = "10s", .help = "upstream connect timeout" },
        { .name = "idle-timeout", .env = "PILOTFISH_IDLE_TIMEOUT", .set = set_duration, .offset = O(idle_timeout_ms),
          .metavar = "DURATION", .def = "1h", .help = "close a connection with no traffic for this long; 0 never" },
        { .name = "drain-duration", .env = "PILOTFISH_DRAIN_DURATION", .set = set_duration, .offset = O(drain_ms),
          .metavar = "DURATION", .def = "45s",
          .help = "longest drain before exiting (Istio's terminationDrainDuration is 5s by default)" },
        { .name = "max-connections", .env = "PILOTFISH_MAX_CONNECTIONS", .set = set_uint,
          .offset = O(max_connections), .metavar = "N", .def = "100000",
          .help = "connections over this are reset (response flag UO)" },
        { .name = "proxy-uid", .env = "PILOTFISH_PROXY_UID", .set = set_uint, .offset = O(proxy_uid), .metavar = "UID",
          .def = "1337", .help = "the UID the capture rules exempt; the proxy must run as it" },
        { .name = "proxy-gid", .env = "PILOTFISH_PROXY_GID", .set = set_uint, .offset = O(proxy_gid), .metavar = "GID",
          .def = "1337", .help = "the GID the capture rules exempt" },
        { .name = "allow-any-uid", .env = "PILOTFISH_ALLOW_ANY_UID", .kind = FLAGS_BOOL, .offset = O(allow_any_uid),
          .help = "skip the UID/GID check (outside a pod; its own traffic may be captured again)" },
        { .name = "inbound-interception-mode", .env = "INBOUND_INTERCEPTION_MODE", .set = set_mode, .offset = O(tproxy),
          .metavar = "MODE", .def = "REDIRECT", .help = "REDIRECT or TPROXY, as given to pilotfish iptables -m" },
        { .name = "access-log", .env = "PILOTFISH_ACCESS_LOG", .set = set_access_log, .offset = O(access_log),
          .metavar = "FORMAT", .def = "off", .help = "one line per closed connection on stdout: off, text or json" },
        { .name = "log-level", .env = "PILOTFISH_LOG_LEVEL", .set = set_log_level, .offset = O(log_level),
          .max = SZ(log_level), .metavar = "LEVEL", .def = "info", .help = "debug, info, warn, error" },
        { .name = "domain", .set = set_string, .offset = O(domain), .max = SZ(domain), .metavar = "DOMAIN",
          .help = "Istio's; accepted (the DNS domain of the pod)" },
        { .name = "proxyLogLevel", .set = set_proxy_log_level, .offset = O(proxy_log_level), .max = SZ(proxy_log_level),
          .metavar = "LEVEL", .help = "Istio's; sets the log level when neither --log-level nor --log_output_level is given" },
        { .name = "proxyComponentLogLevel", .set = set_string, .offset = O(proxy_component_log_level),
          .max = SZ(proxy_component_log_level), .metavar = "LEVELS", .def = "misc:error",
          .help = "Istio's; accepted (Envoy component levels)" },
        { .name = "log_output_level", .set = set_log_level, .offset = O(log_level), .max = SZ(log_level),
          .metavar = "LEVELS", .help = "Istio's; default:LEVEL sets the log level" },
        { .name = "help", .kind = FLAGS_BOOL, .offset = O(help), .help = "show this help" },
};
#undef O
#undef SZ

static const struct flags_table table = FLAGS_TABLE(opts, 0, positional);

int proxy_settings_parse(struct proxy_settings *s, int argc, char *const *argv, char *const *env, char *err,
                         size_t errlen)
{
        struct parse_ctx c = { .level_given = false };
        struct strbuf p = STRBUF_NULL;
        int r = 0;

        for (size_t i = 0; i < table.n; i++)
                if (opts[i].def && opts[i].set)
                        opts[i].set(&c, &opts[i], opts[i].def, opts[i].name, &p);
        c.level_given = false;
        flags_env(&table, &c, env, &p);
        flags_parse(&table, &c, argc, argv, &p);
        *s = c.s;
        /* Istio's --log_output_level is "scope:level,..."; keep the default scope's level. */
        {
                char *d = strstr(s->log_level, "default:");
                if (d) {
                        char tmp[32];
                        snprintf(tmp, sizeof(tmp), "%s", d + 8);
                        tmp[strcspn(tmp, ",")] = '\0';
                        snprintf(s->log_level, sizeof(s->log_level), "%s", tmp);
                } else if (strchr(s->log_level, ':')) {
                        snprintf(s->log_level, sizeof(s->log_level), "info");
                }
        }
        /* --proxyLogLevel (Envoy's level in Istio) sets ours only when nothing closer does. */
        if (!c.level_given && c.proxy_level_given)
                snprintf(s->log_level, sizeof(s->log_level), "%s", s->proxy_log_level);
        if (s->workers > 1024)
                flags_problem(&p, "--workers: %u is too many (at most 1024)", s->workers);
        if (s->connect_timeout_ms == 0)
                flags_problem(&p, "--connect-timeout: must be more than 0");
        {
                unsigned ports[] = { s->outbound_port, s->inbound_port, s->health_port, s->prometheus_port,
                                     s->status_port, s->admin_port };
                for (size_t i = 0; i < 6; i++)
                        for (size_t j = i + 1; j < 6; j++)
                                if (ports[i] == ports[j])
                                        flags_problem(&p, "port %u is given for two listeners", ports[i]);
        }
        if (p.error) {
                r = p.error;
        } else if (p.len) {
                snprintf(err, errlen, "%s", strbuf_str(&p));
                r = -EINVAL;
        } else if (s->help) {
                r = 1;
        }
        strbuf_deinit(&p);
        return r;
}

void proxy_settings_usage(FILE *f)
{
        fputs("Usage: pilotfish proxy [sidecar] [flags]\n\n"
              "The sidecar: relays the connections the capture rules send to the outbound and inbound\n"
              "ports, and serves health and Prometheus metrics. Runs as the proxy UID/GID (1337).\n\nFlags:\n", f);
        flags_usage(&table, f);
        fputs("\nSee docs/cli/proxy.md.\n", f);
}
