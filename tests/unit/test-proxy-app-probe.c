/*
 * proxy/app_probe: ISTIO_KUBE_APP_PROBERS as the injector writes it is read (the value of
 * tests/data/istio-inject/expected/ready_live.yaml.injected, Istio's own golden), and what
 * Istio's agent would not read as one JSON object (YAML, two values, a list, cut text) is
 * refused with a reason, never half taken.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proxy/app_probe.h"
#include "tap.h"

static void test_injected_value(void)
{
        const char *json = "{\"/app-health/hello/livez\":{\"httpGet\":{\"port\":80}},"
                           "\"/app-health/hello/readyz\":{\"httpGet\":{\"port\":3333}},"
                           "\"/app-health/world/livez\":{\"httpGet\":{\"port\":90}}}";
        struct app_probes t;
        char err[256] = "";
        const struct app_probe_spec *s;
        int r = app_probes_parse(json, &t, err, sizeof(err));

        tap_ok(r == 0 && t.n == 3, "the injector's value gives three probes (got %d, %zu: %s)", r, r == 0 ? t.n : 0, err);
        s = r == 0 ? app_probes_find(&t, "/app-health/hello/readyz", strlen("/app-health/hello/readyz")) : NULL;
        tap_ok(s && s->kind == APP_PROBE_HTTP && s->port == 3333 && strcmp(s->http_path, "/") == 0,
               "/app-health/hello/readyz is an HTTP GET of / on port 3333");
        if (r == 0)
                app_probes_free(&t);
}

/* reason: whether a parser's reason must follow "not a JSON object" (a list is just that). */
static void test_refused(const char *json, const char *what, bool reason)
{
        struct app_probes t;
        char err[256] = "";
        int r = app_probes_parse(json, &t, err, sizeof(err));

        tap_ok(r == -EINVAL && strncmp(err, "not a JSON object", 17) == 0 && (strlen(err) > 17) == reason,
               "%s is refused with a reason (%s)", what, err);
        if (r == 0)
                app_probes_free(&t);
}

int main(void)
{
        test_injected_value();
        test_refused("/app-health/a/livez: {httpGet: {port: 80}}", "YAML that is not JSON", true);
        test_refused("{\"/app-health/a/livez\":{\"httpGet\":{\"port\":80}}} {}", "two JSON values", true);
        test_refused("{\"/app-health/a/livez\":{\"httpGet\":", "a cut object", true);
        test_refused("[1,2]", "a list", false);
        return tap_done();
}
