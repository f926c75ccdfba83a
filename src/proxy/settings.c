/*
 * `pilotfish proxy` settings; see settings.h. One table drives parsing, environment binding
 * and usage text.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/go_value.h"
#include "common/strbuf.h"
#include "proxy/settings.h"

enum opt_type {
        OPT_PORT = 0,
        OPT_UINT,
        OPT_DURATION,
        OPT_BOOL,
        OPT_STRING,
        OPT_MODE,
        OPT_ACCESS_LOG,
};

struct opt {
        const char *name;       /* long flag, without "--" */
        const char *env;        /* PILOTFISH_... or Istio's name */
        enum opt_type type;
        size_t offset;
        size_t size;            /* for strings */
        const char *def;
        const char *help;
};

#define O(f) offsetof(struct proxy_settings, f)
#define SZ(f) sizeof(((struct proxy_settings *)0)->f)

static const struct opt opts[] = {
        { "outbound-port", "PILOTFISH_OUTBOUND_PORT", OPT_PORT, O(outbound_port), 0, "15001",
          "outbound capture listener" },
        { "inbound-port", "PILOTFISH_INBOUND_PORT", OPT_PORT, O(inbound_port), 0, "15006",
          "inbound capture listener" },
        { "health-port", "PILOTFISH_HEALTH_PORT", OPT_PORT, O(health_port), 0, "15021",
          "GET /healthz/ready" },
        { "prometheus-port", "PILOTFISH_PROMETHEUS_PORT", OPT_PORT, O(prometheus_port), 0, "15090",
          "GET /stats/prometheus" },
        { "status-port", "PILOTFISH_STATUS_PORT", OPT_PORT, O(status_port), 0, "15020",
          "merged metrics and application probes" },
        { "admin-port", "PILOTFISH_ADMIN_PORT", OPT_PORT, O(admin_port), 0, "15000",
          "admin endpoints, on 127.0.0.1 only" },
        { "workers", "PILOTFISH_WORKERS", OPT_UINT, O(workers), 0, "0",
          "worker threads; 0 is one per CPU the process may use" },
        { "connect-timeout", "PILOTFISH_CONNECT_TIMEOUT", OPT_DURATION, O(connect_timeout_ms), 0, "10s",
          "upstream connect timeout" },
        { "idle-timeout", "PILOTFISH_IDLE_TIMEOUT", OPT_DURATION, O(idle_timeout_ms), 0, "1h",
          "close a connection with no traffic for this long; 0 never" },
        { "drain-duration", "PILOTFISH_DRAIN_DURATION", OPT_DURATION, O(drain_ms), 0, "45s",
          "longest drain before exiting (Istio's terminationDrainDuration is 5s by default)" },
        { "max-connections", "PILOTFISH_MAX_CONNECTIONS", OPT_UINT, O(max_connections), 0, "100000",
          "connections over this are reset (response flag UO)" },
        { "proxy-uid", "PILOTFISH_PROXY_UID", OPT_UINT, O(proxy_uid), 0, "1337",
          "the UID the capture rules exempt; the proxy must run as it" },
        { "proxy-gid", "PILOTFISH_PROXY_GID", OPT_UINT, O(proxy_gid), 0, "1337",
          "the GID the capture rules exempt" },
        { "allow-any-uid", "PILOTFISH_ALLOW_ANY_UID", OPT_BOOL, O(allow_any_uid), 0, "false",
          "skip the UID/GID check (outside a pod; its own traffic may be captured again)" },
        { "inbound-interception-mode", "INBOUND_INTERCEPTION_MODE", OPT_MODE, O(tproxy), 0, "REDIRECT",
          "REDIRECT or TPROXY, as given to pilotfish iptables -m" },
        { "access-log", "PILOTFISH_ACCESS_LOG", OPT_ACCESS_LOG, O(access_log), 0, "off",
          "one line per closed connection on stdout: off, text or json" },
        { "log-level", "PILOTFISH_LOG_LEVEL", OPT_STRING, O(log_level), SZ(log_level), "info",
          "debug, info, warn, error" },
        { "domain", NULL, OPT_STRING, O(domain), SZ(domain), "",
          "Istio's; accepted (the DNS domain of the pod)" },
        { "proxyLogLevel", NULL, OPT_STRING, O(proxy_log_level), SZ(proxy_log_level), "",
          "Istio's; sets the log level when neither --log-level nor --log_output_level is given" },
        { "proxyComponentLogLevel", NULL, OPT_STRING, O(proxy_component_log_level),
          SZ(proxy_component_log_level), "misc:error", "Istio's; accepted (Envoy component levels)" },
        { "log_output_level", NULL, OPT_STRING, O(log_level), SZ(log_level), "info",
          "Istio's; default:LEVEL sets the log level" },
        { "help", NULL, OPT_BOOL, O(help), 0, "false", "show this help" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void problem(struct strbuf *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct strbuf *p, const char *fmt, ...)
{
        va_list ap;

        if (p->len)
                strbuf_puts(p, "; ");
        va_start(ap, fmt);
        strbuf_vprintf(p, fmt, ap);
        va_end(ap);
}

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

/* A Go duration (common/go_value.h), as every duration flag of Istio's binaries is read; none
 * of these may be negative. Milliseconds are the loop's clock: a fraction of one rounds up, so
 * a duration that is not zero never becomes "none". */
static bool parse_duration_ms(const char *v, uint64_t *ret, const char **ret_why)
{
        int64_t ns;

        if (go_value_duration(v, &ns, ret_why) < 0)
                return false;
        if (ns < 0) {
                *ret_why = "negative";
                return false;
        }
        *ret = (uint64_t)ns / 1000000 + ((uint64_t)ns % 1000000 != 0);
        return true;
}

static void set_opt(struct proxy_settings *s, const struct opt *o, const char *v, const char *where,
                    struct strbuf *p)
{
        void *field = (char *)s + o->offset;
        const char *why = NULL;
        uint64_t n;

        switch (o->type) {
        case OPT_PORT:
                if (!parse_u64(v, 65535, &n) || n == 0)
                        problem(p, "%s: invalid port \"%s\" (want 1-65535)", where, v);
                else
                        *(unsigned *)field = (unsigned)n;
                break;
        case OPT_UINT:
                if (!parse_u64(v, UINT_MAX, &n))
                        problem(p, "%s: invalid number \"%s\"", where, v);
                else
                        *(unsigned *)field = (unsigned)n;
                break;
        case OPT_DURATION:
                if (!parse_duration_ms(v, (uint64_t *)field, &why))
                        problem(p, "%s: invalid duration \"%s\" (%s; e.g. 10s, 500ms, 1m30s)", where, v, why);
                break;
        case OPT_BOOL:
                /* Go's flag package and Istio's env reading both use strconv.ParseBool. */
                if (go_value_bool(v, (bool *)field) < 0)
                        problem(p, "%s: invalid boolean \"%s\" (want true or false, 1 or 0, t or f)", where, v);
                break;
        case OPT_STRING:
                if (strlen(v) >= o->size)
                        problem(p, "%s: value too long (%zu bytes, at most %zu)", where, strlen(v), o->size - 1);
                else
                        memcpy(field, v, strlen(v) + 1);
                break;
        case OPT_MODE:
                if (strcmp(v, "TPROXY") == 0)
                        *(bool *)field = true;
                else if (strcmp(v, "REDIRECT") == 0)
                        *(bool *)field = false;
                else
                        problem(p, "%s: invalid mode \"%s\" (want REDIRECT or TPROXY)", where, v);
                break;
        case OPT_ACCESS_LOG:
                if (strcmp(v, "off") == 0)
                        *(enum proxy_access_log *)field = PROXY_ACCESS_LOG_OFF;
                else if (strcmp(v, "text") == 0)
                        *(enum proxy_access_log *)field = PROXY_ACCESS_LOG_TEXT;
                else if (strcmp(v, "json") == 0)
                        *(enum proxy_access_log *)field = PROXY_ACCESS_LOG_JSON;
                else
                        problem(p, "%s: invalid value \"%s\" (want off, text or json)", where, v);
                break;
        }
}

static const char *env_get(char *const *env, const char *name)
{
        size_t n = strlen(name);

        for (; env && *env; env++)
                if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
                        return *env + n + 1;
        return NULL;
}

int proxy_settings_parse(struct proxy_settings *s, int argc, char *const *argv, char *const *env, char *err,
                         size_t errlen)
{
        struct strbuf p = STRBUF_NULL;
        bool level_given = false, proxy_level_given = false;
        int r = 0;

        memset(s, 0, sizeof(*s));
        for (size_t i = 0; i < N_OPTS; i++)
                set_opt(s, &opts[i], opts[i].def, opts[i].name, &p);
        for (size_t i = 0; i < N_OPTS; i++) {
                const char *v = opts[i].env ? env_get(env, opts[i].env) : NULL;
                if (v) {
                        set_opt(s, &opts[i], v, opts[i].env, &p);
                        level_given |= strcmp(opts[i].name, "log-level") == 0;
                }
        }
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *name, *eq, *v;
                const struct opt *o = NULL;
                size_t len;

                if (strcmp(a, "--") == 0)
                        break;
                if (strncmp(a, "--", 2) != 0) {
                        /* "sidecar" (Istio's proxy type) is the one positional accepted. */
                        if (strcmp(a, "sidecar") != 0)
                                problem(&p, "unexpected argument \"%s\" (only \"sidecar\" is accepted)", a);
                        continue;
                }
                name = a + 2;
                eq = strchr(name, '=');
                len = eq ? (size_t)(eq - name) : strlen(name);
                for (size_t k = 0; k < N_OPTS && !o; k++)
                        if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
                                o = &opts[k];
                if (!o) {
                        problem(&p, "unknown flag --%.*s", (int)len, name);
                        continue;
                }
                if (eq)
                        v = eq + 1;
                else if (o->type == OPT_BOOL)
                        v = "true";
                else if (i + 1 < argc)
                        v = argv[++i];
                else {
                        problem(&p, "flag --%s needs a value", o->name);
                        continue;
                }
                set_opt(s, o, v, a, &p);
                if (strcmp(o->name, "log-level") == 0 || strcmp(o->name, "log_output_level") == 0)
                        level_given = true;
                if (strcmp(o->name, "proxyLogLevel") == 0)
                        proxy_level_given = true;
        }
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
        if (!level_given && proxy_level_given)
                snprintf(s->log_level, sizeof(s->log_level), "%s", s->proxy_log_level);
        if (s->workers > 1024)
                problem(&p, "--workers: %u is too many (at most 1024)", s->workers);
        if (s->connect_timeout_ms == 0)
                problem(&p, "--connect-timeout: must be more than 0");
        {
                unsigned ports[] = { s->outbound_port, s->inbound_port, s->health_port, s->prometheus_port,
                                     s->status_port, s->admin_port };
                for (size_t i = 0; i < 6; i++)
                        for (size_t j = i + 1; j < 6; j++)
                                if (ports[i] == ports[j])
                                        problem(&p, "port %u is given for two listeners", ports[i]);
        }
        if (p.len) {
                snprintf(err, errlen, "%s", strbuf_str(&p));
                r = -EINVAL;
        } else if (p.error) {
                r = p.error;
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
        for (size_t i = 0; i < N_OPTS; i++) {
                char name[64];
                snprintf(name, sizeof(name), "--%s", opts[i].name);
                fprintf(f, "  %-30s %s", name, opts[i].help);
                if (strcmp(opts[i].def, "") != 0 && opts[i].type != OPT_BOOL)
                        fprintf(f, " (default %s)", opts[i].def);
                if (opts[i].env)
                        fprintf(f, " [$%s]", opts[i].env);
                fputc('\n', f);
        }
        fputs("\nSee docs/cli/proxy.md.\n", f);
}
