/*
 * The JSON string escaper; see json.h.
 */
#include <string.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "common/utf8.h"

void json_strn(struct strbuf *b, const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s, *end = p + len;

        strbuf_puts(b, "\"");
        while (p < end) {
                /* Runs that need no escape go in one piece (most of a pod's text). */
                const unsigned char *run = p;
                size_t n = 0;

                while (p < end && *p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\' &&
                       (*p < 0x80 || (n = utf8_seq_len(p, (size_t)(end - p))) > 0))
                        p += *p < 0x80 ? 1 : n;
                if (p > run)
                        strbuf_append(b, (const char *)run, (size_t)(p - run));
                if (p == end)
                        break;
                switch (*p) {
                case '"': strbuf_puts(b, "\\\""); break;
                case '\\': strbuf_puts(b, "\\\\"); break;
                case '\n': strbuf_puts(b, "\\n"); break;
                case '\r': strbuf_puts(b, "\\r"); break;
                case '\t': strbuf_puts(b, "\\t"); break;
                default:
                        if (*p >= 0x80)
                                strbuf_puts(b, "\\ufffd");      /* not UTF-8: see json.h */
                        else
                                strbuf_printf(b, "\\u%04x", *p);
                }
                p++;
        }
        strbuf_puts(b, "\"");
}

void json_str(struct strbuf *b, const char *s)
{
        json_strn(b, s, strlen(s));
}
