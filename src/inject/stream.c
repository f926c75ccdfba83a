/*
 * Document stream; see stream.h. libfyaml's parser accepts JSON as the YAML subset it is, so
 * one path reads both; documents are emitted in block style with the scalars' own quoting.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/inject.h"
#include "inject/stream.h"

/*
 * The offset of the first byte that is not well-formed UTF-8 (overlong forms, surrogates and
 * code points past U+10FFFF included), or len. YAML text is Unicode, and libfyaml 0.7 can loop
 * forever on some malformed input (a directive followed by stray continuation bytes, found by
 * the fuzzer), so nothing else reaches it.
 */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                size_t n;
                uint32_t cp, min;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                /* The lead byte says how many continuation bytes follow and the smallest code
                 * point that needs that many (anything below is an overlong form). */
                if ((c & 0xe0) == 0xc0) {
                        n = 1;
                        cp = c & 0x1f;
                        min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2;
                        cp = c & 0x0f;
                        min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3;
                        cp = c & 0x07;
                        min = 0x10000;
                } else {
                        return i;
                }
                if (len - i <= n)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += n + 1;
        }
        return len;
}

/* libfyaml's diagnostics go into a buffer, never to stderr: the caller decides what to say. */
static void diag_collect(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
        strbuf_append(user, buf, len);
}

int inject_stream(const struct inject_config *c, const char *name, const char *input, size_t len,
                  struct strbuf *out, struct strbuf *notes, struct strbuf *err)
{
        struct strbuf diagnostics = STRBUF_NULL;
        struct fy_diag_cfg dcfg;
        struct fy_diag *diag;
        struct fy_parser *fyp = NULL;
        struct fy_document *d;
        int failed = 0;

        if (!input)
                input = "";
        if (len && memchr(input, '\0', len)) {
                /* YAML forbids NUL; libfyaml would stop there and take the rest for nothing. */
                strbuf_printf(err, "%s:%zu: not valid YAML or JSON: a NUL byte\n", name,
                              (size_t)((const char *)memchr(input, '\0', len) - input) + 1);
                return -EINVAL;
        }
        if (utf8_invalid_at((const unsigned char *)input, len) < len) {
                strbuf_printf(err, "%s: not valid YAML or JSON: byte %zu is not UTF-8\n", name,
                              utf8_invalid_at((const unsigned char *)input, len) + 1);
                return -EINVAL;
        }
        fy_diag_cfg_default(&dcfg);
        dcfg.fp = NULL;
        dcfg.output_fn = diag_collect;
        dcfg.user = &diagnostics;
        dcfg.colorize = false;
        dcfg.show_source = false;
        dcfg.show_position = true;
        dcfg.show_type = false;
        dcfg.show_module = false;
        diag = fy_diag_create(&dcfg);
        if (diag)
                fyp = fy_parser_create(&(struct fy_parse_cfg){ .flags = FYPCF_QUIET, .diag = diag });
        if (!fyp || fy_parser_set_string(fyp, input, len) != 0) {
                strbuf_printf(err, "%s: cannot start the YAML parser\n", name);
                if (fyp)
                        fy_parser_destroy(fyp);
                if (diag)
                        fy_diag_unref(diag);
                return -ENOMEM;
        }
        while ((d = fy_parse_load_document(fyp))) {
                char *text;

                if (!fy_document_root(d) || fy_node_is_null(fy_document_root(d))) {
                        /* An empty document (a leading "---") vanishes, as in kube-inject. */
                        fy_parse_document_destroy(fyp, d);
                        continue;
                }
                failed += inject_document(c, d, notes, err);
                text = fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 | FYECF_WIDTH_INF |
                                                             FYECF_DOC_START_MARK_OFF | FYECF_DOC_END_MARK_OFF);
                if (!text) {
                        strbuf_printf(err, "%s: emitting a document failed\n", name);
                        failed++;
                } else {
                        strbuf_puts(out, text);
                        strbuf_puts(out, "---\n");
                        free(text);
                }
                fy_parse_document_destroy(fyp, d);
        }
        if (fy_parser_get_stream_error(fyp)) {
                /* libfyaml's message, first line only: "<source>:LINE:COL: error: what". */
                /* "<source>:LINE:COL: error: what": keep LINE, COL and what. */
                const char *msg = strbuf_str(&diagnostics), *nl = strchr(msg, '\n');
                const char *at = strstr(msg, ": error: "), *pos = at;
                unsigned line = 0, col = 0;
                int colons = 0;

                while (pos && pos > msg && colons < 2)
                        if (*--pos == ':')
                                colons++;
                if (at && colons == 2 && sscanf(pos, ":%u:%u", &line, &col) == 2)
                        strbuf_printf(err, "%s:%u:%u: not valid YAML or JSON: %.*s\n", name, line, col,
                                      (int)((nl ? nl : msg + strlen(msg)) - (at + 9)), at + 9);
                else
                        strbuf_printf(err, "%s: not valid YAML or JSON%s%.*s\n", name, *msg ? ": " : "",
                                      (int)((nl ? nl : msg + strlen(msg)) - msg), msg);
                failed++;
        }
        fy_parser_destroy(fyp);
        fy_diag_unref(diag);
        strbuf_deinit(&diagnostics);
        if (out->error) {
                strbuf_printf(err, "%s: the output is too large\n", name);
                failed++;
        }
        return failed ? -EINVAL : 0;
}
