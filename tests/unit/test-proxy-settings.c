/*
 * Unit tests for proxy/settings.c on common/flags and common/go_value: the proxy's durations are
 * Go's (1m30s and 1.5h taken, a bare number, a sign or an unknown unit refused, naming the flag
 * and the value), its booleans are ParseBool's, Istio's own arguments pass, a flag wins over its
 * variable, and every problem is named in one message.
 */
#include <errno.h>
#include <string.h>

#include "proxy/settings.h"
#include "tap.h"

#define ARGV(...) ((char *const[]){ "proxy", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *const[]){ "proxy", __VA_ARGS__ }) / sizeof(char *)))
#define ENVP(...) ((char *const[]){ __VA_ARGS__, NULL })
#define PARSE(s, env, err, ...) proxy_settings_parse(s, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), env, err, sizeof(err))

static char *const no_env[] = { NULL };

static void test_defaults(void)
{
        struct proxy_settings s;
        char err[1024] = "";
        int r = proxy_settings_parse(&s, 1, ARGV(NULL), no_env, err, sizeof(err));

        tap_ok(r == 0 && s.outbound_port == 15001 && s.inbound_port == 15006 && s.connect_timeout_ms == 10000 &&
               s.idle_timeout_ms == 3600000 && s.drain_ms == 45000 && !s.allow_any_uid && !s.tproxy &&
               strcmp(s.log_level, "info") == 0 && strcmp(s.proxy_component_log_level, "misc:error") == 0,
               "with nothing given, the defaults of the table hold: %s", err);
}

static void test_go_durations(void)
{
        static const struct {
                const char *arg;
                uint64_t ms;
        } ok[] = {
                { "--connect-timeout=1m30s", 90000 }, { "--connect-timeout=1.5h", 5400000 },
                { "--connect-timeout=500ms", 500 }, { "--connect-timeout=.5s", 500 },
                { "--connect-timeout=500us", 1 }, { "--connect-timeout=1ns", 1 },
                { "--connect-timeout=+2s", 2000 }, { "--connect-timeout=1h2m3.5s", 3723500 },
        };
        static const char *const bad[] = { "10", "-1s", "1d", "1e3s", "", "10 s", "9223372036854775808ns" };
        struct proxy_settings s;
        char err[1024];

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int r = PARSE(&s, no_env, err, (char *)ok[i].arg);
                tap_ok(r == 0 && s.connect_timeout_ms == ok[i].ms, "%s is %llu ms (a fraction of a ms rounds up)", ok[i].arg,
                       (unsigned long long)ok[i].ms);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char arg[64], want[80];
                int r;

                snprintf(arg, sizeof(arg), "--connect-timeout=%s", bad[i]);
                snprintf(want, sizeof(want), "\"%s\"", bad[i]);
                r = PARSE(&s, no_env, err, arg);
                tap_ok(r == -EINVAL && strstr(err, "--connect-timeout") && strstr(err, want),
                       "%s is refused naming the flag and the value: %s", arg, err);
        }
        tap_ok(PARSE(&s, no_env, err, "--idle-timeout", "0") == 0 && s.idle_timeout_ms == 0, "--idle-timeout 0 is none");
        tap_ok(PARSE(&s, ENVP("PILOTFISH_DRAIN_DURATION=2m"), err, "sidecar") == 0 && s.drain_ms == 120000,
               "PILOTFISH_DRAIN_DURATION=2m is read as a Go duration");
}

static void test_bools(void)
{
        static const char *const yes[] = { "--allow-any-uid", "--allow-any-uid=true", "--allow-any-uid=T",
                                           "--allow-any-uid=1", "-allow-any-uid", "-allow-any-uid=TRUE" };
        struct proxy_settings s;
        char err[1024];
        bool ok = true;

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                ok &= PARSE(&s, no_env, err, (char *)yes[i]) == 0 && s.allow_any_uid;
        tap_ok(ok, "--allow-any-uid bare, =true, =T, =1 and in Go's single-dash forms is true");
        tap_ok(PARSE(&s, ENVP("PILOTFISH_ALLOW_ANY_UID=t"), err, "--allow-any-uid=F") == 0 && !s.allow_any_uid,
               "the flag (=F) wins over its variable (=t)");
        tap_ok(PARSE(&s, ENVP("PILOTFISH_ALLOW_ANY_UID=yes"), err, "sidecar") == -EINVAL &&
               strstr(err, "PILOTFISH_ALLOW_ANY_UID") && strstr(err, "\"yes\""),
               "a variable that is not a ParseBool spelling is refused, named with its value: %s", err);
}

static void test_istio_arguments(void)
{
        struct proxy_settings s;
        char err[1024] = "";
        int r = PARSE(&s, no_env, err, "sidecar", "--domain", "ns.svc.cluster.local", "--proxyLogLevel=warning",
                      "--proxyComponentLogLevel=misc:error", "--log_output_level=default:error");

        tap_ok(r == 0 && strcmp(s.domain, "ns.svc.cluster.local") == 0 && strcmp(s.log_level, "error") == 0,
               "Istio's injected arguments pass; --log_output_level's default scope wins over --proxyLogLevel: %s", err);
        r = PARSE(&s, no_env, err, "sidecar", "--proxyLogLevel=warning");
        tap_ok(r == 0 && strcmp(s.log_level, "warning") == 0, "--proxyLogLevel alone sets the level");
        r = PARSE(&s, ENVP("PILOTFISH_LOG_LEVEL=debug"), err, "--proxyLogLevel=warning");
        tap_ok(r == 0 && strcmp(s.log_level, "debug") == 0, "PILOTFISH_LOG_LEVEL is closer than --proxyLogLevel");
        tap_ok(PARSE(&s, no_env, err, "--help") == 1, "--help returns 1");
}

static void test_every_problem_named(void)
{
        struct proxy_settings s;
        char err[2048];
        int r = PARSE(&s, ENVP("PILOTFISH_HEALTH_PORT=99999"), err, "router", "--bogus", "--connect-timeout", "10x",
                      "--inbound-port", "70000", "--admin-port");

        tap_ok(r == -EINVAL && strstr(err, "PILOTFISH_HEALTH_PORT") && strstr(err, "99999") && strstr(err, "\"router\"") &&
               strstr(err, "--bogus") && strstr(err, "\"10x\"") && strstr(err, "\"70000\"") && strstr(err, "--admin-port"),
               "every problem, from the variables and the flags, is named in one message: %s", err);
}

int main(void)
{
        test_defaults();
        test_go_durations();
        test_bools();
        test_istio_arguments();
        test_every_problem_named();
        return tap_done();
}
