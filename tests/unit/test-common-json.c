/*
 * Unit tests for common/json.c and common/utf8.c: the one JSON string escaper writes valid
 * JSON (RFC 8259) for any bytes. Well-formed UTF-8 passes through untouched (the injector's
 * goldens depend on it), control characters are escaped, and each byte that is not part of a
 * well-formed sequence becomes \ufffd, as Go's encoding/json writes it. Every input is also
 * escaped from the end of a page whose successor is PROT_NONE, so a sequence cut short at the
 * end of the input cannot be read past.
 */
#include <stdint.h>
#include <string.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "common/utf8.h"
#include "guard.h"
#include "tap.h"

static struct guard guard;

/* Escapes n bytes placed right before the PROT_NONE page; returns the text (static). */
static const char *esc(const char *s, size_t n)
{
        static struct strbuf b = STRBUF_NULL;
        strbuf_deinit(&b);
        json_strn(&b, guard_copy(&guard, s, n), n);
        return b.error ? "(error)" : strbuf_str(&b);
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

static void test_plain_and_named_escapes(void)
{
        TAP_STREQ(ESC("pilotfish"), "\"pilotfish\"", "plain ASCII is quoted and otherwise unchanged");
        TAP_STREQ(ESC(""), "\"\"", "the empty string is \"\"");
        TAP_STREQ(ESC("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"", "'\"' and '\\' are escaped, '/' is not");
        TAP_STREQ(ESC("\n\r\t"), "\"\\n\\r\\t\"", "newline, return and tab are escaped by name");
        TAP_STREQ(ESC("\x01\x1f\x7f\b\f"), "\"\\u0001\\u001f\\u007f\\u0008\\u000c\"",
                  "other control characters and DEL are \\u00XX");
        TAP_STREQ(ESC("a\0b"), "\"a\\u0000b\"", "a NUL within the length is \\u0000, and does not end the text");
}

static void test_valid_utf8_passes(void)
{
        TAP_STREQ(ESC("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f"), "\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f\"",
                  "two-, three- and four-byte sequences pass through unescaped");
        TAP_STREQ(ESC("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
                  "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"",
                  "the edges of each range (U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+10000, U+10FFFF) are valid");
        TAP_STREQ(ESC("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"", "U+FFFD itself is valid and passes");
}

static void test_invalid_bytes_become_fffd(void)
{
        TAP_STREQ(ESC("a\xff" "b"), "\"a\\ufffdb\"", "a byte that never starts UTF-8 (FF) is \\ufffd");
        TAP_STREQ(ESC("\x80\xbf"), "\"\\ufffd\\ufffd\"", "stray continuation bytes are one \\ufffd each");
        TAP_STREQ(ESC("\xc0\xaf\xc1\xbf"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "overlong two-byte forms (C0, C1) are refused byte by byte");
        TAP_STREQ(ESC("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"", "an overlong three-byte form is refused");
        TAP_STREQ(ESC("\xf0\x80\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "an overlong four-byte form is refused");
        TAP_STREQ(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"", "a surrogate (U+D800) is refused");
        TAP_STREQ(ESC("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "past U+10FFFF is refused");
        TAP_STREQ(ESC("\xf5\x80\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "F5 and above never start a sequence");
        TAP_STREQ(ESC("x\xe2\x82"), "\"x\\ufffd\\ufffd\"", "a sequence cut short by the end of the input is refused, no read past it");
        TAP_STREQ(ESC("\xe2\x82x"), "\"\\ufffd\\ufffdx\"", "a sequence cut short by an ASCII byte is refused, the ASCII byte kept");
        TAP_STREQ(ESC("\xc3\xa9\xc3"), "\"\xc3\xa9\\ufffd\"", "a valid sequence before a cut one is kept");
        TAP_STREQ(ESC("\xe2\x82\"\xac"), "\"\\ufffd\\ufffd\\\"\\ufffd\"", "a quote inside a broken sequence is still escaped");
}

static void test_utf8_seq_len(void)
{
        tap_ok(utf8_seq_len((const unsigned char *)"a", 1) == 1 &&
               utf8_seq_len((const unsigned char *)"\xc3\xa9", 2) == 2 &&
               utf8_seq_len((const unsigned char *)"\xe2\x82\xac", 3) == 3 &&
               utf8_seq_len((const unsigned char *)"\xf0\x9f\x90\x9f", 4) == 4,
               "utf8_seq_len gives the length of a well-formed sequence");
        tap_ok(utf8_seq_len((const unsigned char *)"\xe2\x82\xac", 2) == 0 &&
               utf8_seq_len((const unsigned char *)"\xc3\xa9", 1) == 0,
               "utf8_seq_len is 0 when len cuts the sequence short, whatever follows in memory");
}

/* Every string of up to three bytes drawn from a set that covers each class of byte: the
 * output never holds a raw control character, a raw byte outside UTF-8, or an unescaped
 * quote; and input that is valid UTF-8 without specials comes out as it went in. */
static void test_exhaustive_short_inputs(void)
{
        static const unsigned char bytes[] = { 0x00, 0x09, 0x1f, '"', '\\', 'a', 0x7f, 0x80, 0xbf, 0xc0, 0xc2,
                                               0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x90, 0x8f };
        size_t nb = sizeof(bytes), bad = 0;

        for (size_t len = 1; len <= 3; len++) {
                size_t total = 1;
                for (size_t i = 0; i < len; i++)
                        total *= nb;
                for (size_t k = 0; k < total; k++) {
                        char in[3];
                        const unsigned char *o;
                        size_t x = k, olen;

                        for (size_t i = 0; i < len; i++, x /= nb)
                                in[i] = (char)bytes[x % nb];
                        o = (const unsigned char *)esc(in, len);
                        olen = strlen((const char *)o);
                        if (o[0] != '"' || o[olen - 1] != '"')
                                bad++;
                        for (size_t i = 1; i + 1 < olen;) {
                                size_t n = utf8_seq_len(o + i, olen - 1 - i);
                                if (n == 0 || o[i] < 0x20 || o[i] == '"') {
                                        bad++;
                                        break;
                                }
                                if (o[i] == '\\')
                                        n = o[i + 1] == 'u' ? 6 : 2;
                                i += n;
                        }
                }
        }
        tap_ok(bad == 0, "all %zu inputs of 1-3 bytes from 22 byte classes give a quoted, escaped, well-formed string (%zu bad)",
               nb + nb * nb + nb * nb * nb, bad);
}

/* utf8_invalid_at, what the injector checks whole documents with before libfyaml sees them. */
static void test_utf8_invalid_at(void)
{
        static const struct {
                const char *text;
                size_t len, want;
        } cases[] = {
                { "plain ascii", 11, 11 },
                { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 14 },
                { "ab\xc3", 3, 2 },                    /* a sequence cut short at the end */
                { "ab\x80" "cd", 5, 2 },                /* a stray continuation byte */
                { "\xc0\xafx", 3, 0 },                /* an overlong '/' */
                { "ok\xed\xa0\x80", 5, 2 },          /* a surrogate, U+D800 */
                { "ok\xf4\x90\x80\x80", 6, 2 },      /* past U+10FFFF */
                { "", 0, 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t got = utf8_invalid_at(cases[i].text, cases[i].len);
                tap_ok(got == cases[i].want, "utf8_invalid_at: case %zu is %zu (got %zu)", i, cases[i].want, got);
        }
}

int main(void)
{
        if (guard_init(&guard) < 0) {
                tap_skip_all("no guard page");
                return 1;
        }
        test_plain_and_named_escapes();
        test_valid_utf8_passes();
        test_invalid_bytes_become_fffd();
        test_utf8_seq_len();
        test_exhaustive_short_inputs();
        test_utf8_invalid_at();
        return tap_done();
}
