/*
 * Unit tests for inject/proxy_config.c's checks of proxy.istio.io/config: drainDuration and
 * terminationDrainDuration are read as Istio's jsonpb reads a google.protobuf.Duration string,
 * with Go's time.ParseDuration (common/go_value.h), sign included; the old check took "1..5s"
 * and "5s5", which Go refuses. holdApplicationUntilProxyStarts stays a JSON boolean (true or
 * false), not ParseBool.
 */
#include <errno.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/proxy_config.h"
#include "tap.h"

static int parse(const char *text, struct proxy_config *pc, struct strbuf *err)
{
        strbuf_deinit(err);
        return proxy_config_parse(text, pc, err);
}

static void test_drain_durations(void)
{
        static const char *const ok[] = { "5s", "1m30s", "1.5h", ".5s", "1.s", "-1s", "+5s", "0", "1h2m3.5s",
                                          "12\xc2\xb5s" };
        static const char *const bad[] = { "5", "1..5s", "5s5", "1d", "1e3s", "", "9223372036854775808ns", "5 s" };
        struct strbuf err = STRBUF_NULL;
        struct proxy_config pc;

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char text[128];
                int r;

                snprintf(text, sizeof(text), "{\"drainDuration\": \"%s\", \"terminationDrainDuration\": \"%s\"}", ok[i], ok[i]);
                r = parse(text, &pc, &err);
                tap_ok(r == 0, "drainDuration and terminationDrainDuration \"%s\" are taken, as Go takes them: %s", ok[i],
                       strbuf_str(&err));
                proxy_config_free(&pc);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[128];
                int r;

                snprintf(text, sizeof(text), "terminationDrainDuration: \"%s\"", bad[i]);
                r = parse(text, &pc, &err);
                tap_ok(r == -EINVAL && strstr(strbuf_str(&err), "proxy.istio.io/config") &&
                       strstr(strbuf_str(&err), "terminationDrainDuration"),
                       "terminationDrainDuration \"%s\" is refused, the annotation and the field named: %s", bad[i],
                       strbuf_str(&err));
        }
        strbuf_deinit(&err);
}

static void test_hold_is_a_json_boolean(void)
{
        struct strbuf err = STRBUF_NULL;
        struct proxy_config pc;
        int r = parse("holdApplicationUntilProxyStarts: true", &pc, &err);

        tap_ok(r == 0 && pc.hold, "holdApplicationUntilProxyStarts: true holds");
        proxy_config_free(&pc);
        r = parse("holdApplicationUntilProxyStarts: \"1\"", &pc, &err);
        tap_ok(r == -EINVAL && strstr(strbuf_str(&err), "holdApplicationUntilProxyStarts"),
               "\"1\" (a ParseBool spelling, not a JSON boolean) is refused");
        strbuf_deinit(&err);
}

int main(void)
{
        test_drain_durations();
        test_hold_is_a_json_boolean();
        return tap_done();
}
