/*
 * Fuzz target for the webhook's request bodies (webhook/review.c and the injector under it):
 * whatever the API server, or anyone who reaches port 15017, sends. The input is the body.
 *
 * Besides "no crash, no leak, no sanitizer report", what must hold for any input:
 *   - the answer is one JSON object (libfyaml parses it) with a response.allowed boolean;
 *   - an answer that allows with a patch names patchType JSONPatch, and one that denies has a
 *     non-empty status.message;
 *   - the same body sent again gets the same answer byte for byte (the second time an
 *     injection comes from the answer cache, webhook/answer_cache.h).
 * A broken invariant aborts, so the fuzzer reports it like a crash.
 */
#include <libfyaml.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "inject/settings.h"
#include "inject/yaml.h"
#include "webhook/answer_cache.h"
#include "webhook/review.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct strbuf out = STRBUF_NULL, why = STRBUF_NULL, again = STRBUF_NULL;
        struct inject_config c;
        struct fy_document *d;
        struct fy_node *resp;
        const char *allowed, *msg;

        log_set_level(LOG_LEVEL_ERROR);
        if (!answer_cache_enabled())
                answer_cache_init(8);
        inject_config_init(&c);
        review_handle(&c, (const char *)data, size, "/inject", &out);
        CHECK(!out.error && out.len > 0);
        review_handle(&c, (const char *)data, size, "/inject", &again);
        CHECK(again.len == out.len && memcmp(again.s, out.s, out.len) == 0);
        strbuf_deinit(&again);
        d = yaml_parse_quiet(out.s, out.len, &why);
        if (!d)
                fprintf(stderr, "answer is not JSON (%s):\n%s\n", strbuf_str(&why), strbuf_str(&out));
        CHECK(d && yaml_is_map(fy_document_root(d)));
        resp = yaml_get(fy_document_root(d), "response");
        allowed = yaml_get_str(resp, "allowed");
        CHECK(allowed && (strcmp(allowed, "true") == 0 || strcmp(allowed, "false") == 0));
        if (strcmp(allowed, "true") == 0 && yaml_get(resp, "patch")) {
                const char *pt = yaml_get_str(resp, "patchType");
                CHECK(pt && strcmp(pt, "JSONPatch") == 0);
        }
        if (strcmp(allowed, "false") == 0) {
                msg = yaml_get_str(yaml_get(resp, "status"), "message");
                CHECK(msg && *msg);
        }
        fy_document_destroy(d);
        strbuf_deinit(&out);
        strbuf_deinit(&why);
        inject_config_deinit(&c);
        return 0;
}
