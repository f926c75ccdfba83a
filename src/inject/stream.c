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
#include "common/utf8.h"
#include "inject/inject.h"
#include "inject/stream.h"
#include "inject/yaml.h"

/* libfyaml's diagnostics go into a buffer, never to stderr: the caller decides what to say. */
static void diag_collect(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
        strbuf_append(user, buf, len);
}

int inject_stream(const struct inject_config *c, const char *name, const char *input, size_t len,
                  struct strbuf *out, struct strbuf *notes, struct strbuf *err)
{
        struct strbuf diagnostics = STRBUF_NULL, dup = STRBUF_NULL;
        size_t bad;
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
        if ((bad = utf8_invalid_at(input, len)) < len) {
                strbuf_printf(err, "%s: not valid YAML or JSON: byte %zu is not UTF-8\n", name, bad + 1);
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
                fyp = fy_parser_create(&(struct fy_parse_cfg){ .flags = YAML_PARSE_FLAGS, .diag = diag });
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
                if (yaml_repair(d, input, len, &dup)) {
                        strbuf_printf(err, "%s: not valid YAML or JSON: %s\n", name, strbuf_str(&dup));
                        fy_parse_document_destroy(fyp, d);
                        failed++;
                        break;
                }
                failed += inject_document(c, d, notes, err);
                text = yaml_fix_empty_items(d) < 0 ? NULL : fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 | FYECF_WIDTH_INF |
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
                /* libfyaml's error, first line only: "<source>:LINE:COL: error: what": keep LINE,
                 * COL and what. Warnings (an unknown %directive) may come before it. */
                const char *msg = strbuf_str(&diagnostics), *at = strstr(msg, ": error: "), *pos = at;
                const char *nl = strchr(at ? at : msg, '\n');
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
        strbuf_deinit(&dup);
        if (out->error) {
                strbuf_printf(err, "%s: the output is too large\n", name);
                failed++;
        }
        return failed ? -EINVAL : 0;
}
