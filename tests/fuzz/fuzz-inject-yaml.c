/*
 * Fuzz target for the injector's input path (inject/stream.c and everything under it): the
 * YAML or JSON documents `pilotfish inject -f` reads, and that the webhook will take from the
 * API server. The input is the file's bytes, injected with the built-in configuration.
 *
 * Besides "no crash, no leak, no sanitizer report", what must hold for any input:
 *   - a failure says why (the error text is not empty) and a success says nothing there;
 *   - a success is stable: injecting the output again succeeds and gives the same bytes (the
 *     re-injection contract of SEMANTICS.md 2.3, which `kubectl apply` of injected manifests
 *     and the webhook's reinvocation rely on).
 * A broken invariant aborts, so the fuzzer reports it like a crash.
 */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct strbuf out = STRBUF_NULL, notes = STRBUF_NULL, err = STRBUF_NULL;
        struct strbuf out2 = STRBUF_NULL, notes2 = STRBUF_NULL, err2 = STRBUF_NULL;
        struct inject_config c;
        int r;

        /* Warnings about odd annotation values are expected; keep the run quiet. */
        log_set_level(LOG_LEVEL_ERROR);
        inject_config_init(&c);
        r = inject_stream(&c, "fuzz", (const char *)data, size, &out, &notes, &err);
        if (r < 0) {
                CHECK(err.len > 0);
        } else {
                CHECK(err.len == 0);
                r = inject_stream(&c, "fuzz-again", out.s ? out.s : "", out.len, &out2, &notes2, &err2);
                if (r < 0)
                        fprintf(stderr, "second injection failed:\n%s\n--- first output:\n%s\n", strbuf_str(&err2),
                                strbuf_str(&out));
                CHECK(r == 0);
                if (out.len != out2.len || (out.len && memcmp(out.s, out2.s, out.len) != 0))
                        fprintf(stderr, "--- first output:\n%s\n--- second output:\n%s\n", strbuf_str(&out),
                                strbuf_str(&out2));
                CHECK(out.len == out2.len && (out.len == 0 || memcmp(out.s, out2.s, out.len) == 0));
        }
        strbuf_deinit(&out);
        strbuf_deinit(&notes);
        strbuf_deinit(&err);
        strbuf_deinit(&out2);
        strbuf_deinit(&notes2);
        strbuf_deinit(&err2);
        inject_config_deinit(&c);
        return 0;
}
