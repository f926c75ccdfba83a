/*
 * Fuzz target for common/json.c, the one JSON string escaper, whose input is any bytes from
 * outside (paths, user agents, labels, pod text). The input is escaped whole (json_strn) and
 * the output checked against RFC 8259 by a strict decoder written here for the purpose:
 *
 * - it is one string: a quote, then raw characters (never a control character, '"' or '\\')
 *   or the escapes \" \\ \/ \b \f \n \r \t \uXXXX, then a quote, and nothing after;
 * - the decoded text is well-formed UTF-8, as glibc's iconv judges it (an oracle independent
 *   of common/utf8.c);
 * - when the input itself is well-formed UTF-8, the decoded text is the input, byte for byte;
 * - when it is not, every \u escape is a control character, DEL or U+FFFD, and the decoded
 *   text is no shorter than the input (each bad byte becomes three bytes of U+FFFD);
 * - json_str() of the input up to its first NUL is json_strn() of that many bytes.
 */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Whether glibc reads the n bytes at s as UTF-8 whole (overlongs and surrogates refused). */
static bool utf8_ok(const char *s, size_t n)
{
        iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
        char out[4096];
        char *in = (char *)s;
        bool ok = true;

        CHECK(cd != (iconv_t)-1);
        while (n > 0 && ok) {
                char *o = out;
                size_t olen = sizeof(out);

                if (iconv(cd, &in, &n, &o, &olen) == (size_t)-1 && errno != E2BIG)
                        ok = false;
        }
        iconv_close(cd);
        return ok;
}

/* Decodes the JSON string text (len bytes) into out, checking the grammar as it goes; only
 * the Basic Multilingual Plane is ever escaped by the escaper, so \u surrogates are refused. */
static void decode(const char *t, size_t len, struct strbuf *out, bool *ret_only_ctl_or_fffd)
{
        size_t i = 1;

        CHECK(len >= 2 && t[0] == '"' && t[len - 1] == '"');
        *ret_only_ctl_or_fffd = true;
        while (i < len - 1) {
                unsigned char c = (unsigned char)t[i];
                unsigned cp = 0;

                CHECK(c >= 0x20 && c != '"');
                if (c != '\\') {
                        strbuf_append(out, t + i, 1);
                        i++;
                        continue;
                }
                CHECK(i + 1 < len - 1);
                switch (t[i + 1]) {
                case '"': case '\\': case '/': strbuf_append(out, t + i + 1, 1); i += 2; continue;
                case 'b': strbuf_puts(out, "\b"); i += 2; continue;
                case 'f': strbuf_puts(out, "\f"); i += 2; continue;
                case 'n': strbuf_puts(out, "\n"); i += 2; continue;
                case 'r': strbuf_puts(out, "\r"); i += 2; continue;
                case 't': strbuf_puts(out, "\t"); i += 2; continue;
                case 'u': break;
                default: CHECK(!"unknown escape");
                }
                CHECK(i + 6 <= len - 1);
                for (size_t k = 2; k < 6; k++) {
                        CHECK(hex(t[i + k]) >= 0);
                        cp = cp * 16 + (unsigned)hex(t[i + k]);
                }
                CHECK(cp < 0xd800 || cp > 0xdfff);
                if (!(cp < 0x20 || cp == 0x7f || cp == 0xfffd))
                        *ret_only_ctl_or_fffd = false;
                if (cp < 0x80) {
                        char b = (char)cp;
                        strbuf_append(out, &b, 1);
                } else if (cp < 0x800) {
                        char b[2] = { (char)(0xc0 | (cp >> 6)), (char)(0x80 | (cp & 0x3f)) };
                        strbuf_append(out, b, 2);
                } else {
                        char b[3] = { (char)(0xe0 | (cp >> 12)), (char)(0x80 | ((cp >> 6) & 0x3f)),
                                      (char)(0x80 | (cp & 0x3f)) };
                        strbuf_append(out, b, 3);
                }
                i += 6;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct strbuf esc = STRBUF_NULL, dec = STRBUF_NULL, esc0 = STRBUF_NULL, esc0n = STRBUF_NULL;
        char *copy = malloc(size + 1);
        bool escapes_ok;

        CHECK(copy);
        if (size)
                memcpy(copy, data, size);
        copy[size] = '\0';

        json_strn(&esc, copy, size);
        CHECK(esc.error == 0);
        decode(esc.s, esc.len, &dec, &escapes_ok);
        CHECK(dec.error == 0);
        CHECK(utf8_ok(dec.s ? dec.s : "", dec.len));
        if (utf8_ok(copy, size))
                CHECK(dec.len == size && (size == 0 || memcmp(dec.s, copy, size) == 0));
        else
                CHECK(escapes_ok && dec.len >= size);

        json_str(&esc0, copy);
        json_strn(&esc0n, copy, strlen(copy));
        CHECK(esc0.len == esc0n.len && memcmp(esc0.s, esc0n.s, esc0.len) == 0);

        strbuf_deinit(&esc);
        strbuf_deinit(&dec);
        strbuf_deinit(&esc0);
        strbuf_deinit(&esc0n);
        free(copy);
        return 0;
}
