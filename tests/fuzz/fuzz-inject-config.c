/*
 * Fuzz target for the injector's config file (inject/settings.c): what `pilotfish inject
 * --config` and `pilotfish webhook --config` read, the webhook's from a ConfigMap. The input is
 * the file's bytes, parsed with inject_config_parse(), the function inject_config_load() hands
 * the file's contents to once it has read them (common/readfile.c; reading from a pipe is the
 * e2e tests' job: `--config <(cat cfg.yaml)` with two keys was a segmentation fault in libfyaml).
 *
 * Besides "no crash, no leak, no sanitizer report", what must hold for any input:
 *   - parsing is deterministic: the same bytes give the same result, message and settings;
 *   - a refusal says why (a non-empty message) and is -EINVAL or -ENOMEM;
 *   - an accepted config round-trips: inject_config_write() gives a file that parses to the
 *     same settings (written again byte for byte the same), and a pod injected with the
 *     written config comes out exactly as with the original one.
 * A broken invariant aborts, so the fuzzer reports it like a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "inject/settings.h"
#include "inject/stream.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pod[] =
        "apiVersion: v1\n"
        "kind: Pod\n"
        "metadata: {name: web, namespace: shop, labels: {app: web}}\n"
        "spec:\n"
        "  initContainers: [{name: setup, image: busybox}]\n"
        "  containers:\n"
        "  - name: web\n"
        "    image: example/web\n"
        "    ports: [{containerPort: 8080}]\n"
        "    readinessProbe: {httpGet: {path: /ready, port: 8080}}\n";

static bool same(const struct strbuf *a, const struct strbuf *b)
{
        return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

/* Injects the fixed pod with c: the output and error text, joined, in ret. */
static void inject(const struct inject_config *c, struct strbuf *ret)
{
        struct strbuf out = STRBUF_NULL, notes = STRBUF_NULL, err = STRBUF_NULL;
        int r = inject_stream(c, "pod.yaml", pod, sizeof(pod) - 1, &out, &notes, &err);

        strbuf_printf(ret, "%d\n%s\n%s", r, strbuf_str(&out), strbuf_str(&err));
        strbuf_deinit(&out);
        strbuf_deinit(&notes);
        strbuf_deinit(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct inject_config c1, c2, c3;
        struct strbuf t1 = STRBUF_NULL, t2 = STRBUF_NULL, t3 = STRBUF_NULL, i1 = STRBUF_NULL, i3 = STRBUF_NULL;
        char err1[1024] = "", err2[1024] = "", err3[1024] = "";
        int r1, r2, r3;

        log_set_level(LOG_LEVEL_ERROR);
        inject_config_init(&c1);
        inject_config_init(&c2);
        inject_config_init(&c3);
        r1 = inject_config_parse(&c1, "fuzz", (const char *)data, size, err1, sizeof(err1));
        r2 = inject_config_parse(&c2, "fuzz", (const char *)data, size, err2, sizeof(err2));
        if (r1 != r2 || strcmp(err1, err2) != 0)
                fprintf(stderr, "first parse: %d %s\nsecond parse: %d %s\n", r1, err1, r2, err2);
        CHECK(r1 == r2 && strcmp(err1, err2) == 0);
        if (r1 < 0) {
                CHECK(err1[0] != '\0');
                CHECK(r1 == -EINVAL || r1 == -ENOMEM);
                goto out;
        }
        CHECK(inject_config_write(&c1, &t1) == 0 && inject_config_write(&c2, &t2) == 0);
        CHECK(same(&t1, &t2));
        r3 = inject_config_parse(&c3, "written", t1.s, t1.len, err3, sizeof(err3));
        if (r3 < 0)
                fprintf(stderr, "the written config is refused: %s\n--- written:\n%s\n", err3, strbuf_str(&t1));
        CHECK(r3 == 0);
        CHECK(inject_config_write(&c3, &t3) == 0);
        if (!same(&t1, &t3))
                fprintf(stderr, "--- written:\n%s\n--- written again:\n%s\n", strbuf_str(&t1), strbuf_str(&t3));
        CHECK(same(&t1, &t3));
        inject(&c1, &i1);
        inject(&c3, &i3);
        if (!same(&i1, &i3))
                fprintf(stderr, "--- injected with the config:\n%s\n--- with the written one:\n%s\n", strbuf_str(&i1),
                        strbuf_str(&i3));
        CHECK(same(&i1, &i3));
out:
        strbuf_deinit(&t1);
        strbuf_deinit(&t2);
        strbuf_deinit(&t3);
        strbuf_deinit(&i1);
        strbuf_deinit(&i3);
        inject_config_deinit(&c1);
        inject_config_deinit(&c2);
        inject_config_deinit(&c3);
        return 0;
}
