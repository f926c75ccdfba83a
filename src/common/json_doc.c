/*
 * One JSON document through libfyaml; see json_doc.h.
 */
#include <libfyaml.h>
#include <stdbool.h>
#include <string.h>

#include "common/json_doc.h"
#include "common/strbuf.h"

struct json_doc_diag {
        char first[256];        /* the first error libfyaml reported, without its location */
};

static void json_doc_diag_keep(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
        struct json_doc_diag *d = user;
        const char *at;
        size_t n;

        (void)diag;
        if (d->first[0])
                return;
        /* libfyaml's words come after "error: "; what is before names a heap address. */
        at = memmem(buf, len, "error: ", 7);
        if (!at)
                return;
        at += 7;
        n = len - (size_t)(at - buf);
        while (n && (at[n - 1] == '\n' || at[n - 1] == ' '))
                n--;
        if (n >= sizeof(d->first))
                n = sizeof(d->first) - 1;
        memcpy(d->first, at, n);
        d->first[n] = '\0';
}

struct fy_document *json_doc_parse(const char *text, size_t len, struct strbuf *why)
{
        struct json_doc_diag msg = { { 0 } };
        struct fy_diag_cfg dcfg;
        struct fy_parse_cfg cfg = {
                .flags = FYPCF_QUIET | FYPCF_JSON_FORCE | FYPCF_ALLOW_DUPLICATE_KEYS,
        };
        struct fy_document *d = NULL, *more;
        struct fy_parser *fyp = NULL;
        const char *reason = "not valid JSON";
        bool ok = false;

        if (len == 0) {
                if (why)
                        strbuf_puts(why, "empty input");
                return NULL;
        }
        fy_diag_cfg_default(&dcfg);
        dcfg.fp = NULL;
        dcfg.output_fn = json_doc_diag_keep;
        dcfg.user = &msg;
        dcfg.colorize = false;
        cfg.diag = fy_diag_create(&dcfg);
        if (!cfg.diag) {
                reason = "out of memory";
                goto out;
        }
        fyp = fy_parser_create(&cfg);
        if (!fyp || fy_parser_set_string(fyp, text, len) != 0) {
                reason = "out of memory";
                goto out;
        }
        d = fy_parse_load_document(fyp);
        if (!d || fy_parser_get_stream_error(fyp))
                goto out;
        /* Whatever follows the first value (a second one, or text libfyaml cannot read as
         * one) is the same mistake, and is worded as ours. */
        reason = "more than one JSON value";
        msg.first[0] = '\0';
        more = fy_parse_load_document(fyp);
        if (more) {
                fy_parse_document_destroy(fyp, more);
                goto out;
        }
        ok = !fy_parser_get_stream_error(fyp);
out:
        if (!ok && d) {
                fy_parse_document_destroy(fyp, d);
                d = NULL;
                msg.first[0] = '\0';
        }
        if (!ok && why)
                strbuf_puts(why, msg.first[0] ? msg.first : reason);
        fy_parser_destroy(fyp);
        if (cfg.diag)
                fy_diag_unref(cfg.diag);
        return d;
}
