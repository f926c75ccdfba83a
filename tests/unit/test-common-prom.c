/*
 * Unit tests for common/prom.c, the metrics printer of the proxy and the webhook: the text
 * format's escaping (HELP: backslash and newline; label values: those and the double quote),
 * samples with and without labels and each value kind, histogram bounds in their shortest
 * exact form, the JSON walk (strings escaped by json_str), a document written in pieces into
 * different buffers being the same document, and a buffer's limit reported by prom_end().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "common/strbuf.h"
#include "tap.h"

static const char *bound(double v, struct strbuf *b)
{
        b->len = 0;
        if (b->s)
                b->s[0] = '\0';
        prom_bound(b, v);
        return strbuf_str(b);
}

static void test_text(void)
{
        struct strbuf b = STRBUF_NULL;
        struct prom_printer p = PROM_PRINTER_INIT(&b, PROM_FORMAT_TEXT);
        const struct prom_label l[] = { { "a", "x\"y\\z\nw" }, { "b", "plain" } };

        prom_begin(&p);
        prom_family(&p, "m_total", "counter", "Help with \\ and \" and\nnewline");
        prom_sample(&p, l, 2, PROM_U64(18446744073709551615ull));
        prom_sample(&p, NULL, 0, PROM_I64(-5));
        prom_family(&p, "g", "gauge", "G");
        prom_sample(&p, NULL, 0, PROM_F64(1.5));
        tap_ok(prom_end(&p) == 0, "a text document ends without error");
        TAP_STREQ(strbuf_str(&b),
                  "# HELP m_total Help with \\\\ and \" and\\nnewline\n"
                  "# TYPE m_total counter\n"
                  "m_total{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 18446744073709551615\n"
                  "m_total -5\n"
                  "# HELP g G\n"
                  "# TYPE g gauge\n"
                  "g 1.500000\n",
                  "HELP escapes backslash and newline, label values also the double quote; values print whole");
        strbuf_deinit(&b);
}

static void test_bounds(void)
{
        struct strbuf b = STRBUF_NULL;

        TAP_STREQ(bound(0.5, &b), "0.5", "0.5 prints as 0.5");
        TAP_STREQ(bound(3600000, &b), "3600000", "an integer bound prints without exponent or decimals");
        TAP_STREQ(bound(0.1, &b), "0.1", "0.1 prints as 0.1, not its 17-digit expansion");
        TAP_STREQ(bound(0.1 + 0.2, &b), "0.30000000000000004", "a bound that needs 17 digits to read back gets them");
        strbuf_deinit(&b);
}

static void test_json(void)
{
        struct strbuf b = STRBUF_NULL;
        struct prom_printer p = PROM_PRINTER_INIT(&b, PROM_FORMAT_JSON);
        const struct prom_label l[] = { { "k", "v\x01\"" } };

        prom_begin(&p);
        prom_end(&p);
        TAP_STREQ(strbuf_str(&b), "{\"metrics\":[]}\n", "an empty JSON document is one empty list");
        b.len = 0;
        p = (struct prom_printer)PROM_PRINTER_INIT(&b, PROM_FORMAT_JSON);
        prom_begin(&p);
        prom_family(&p, "a", "counter", "h\"");
        prom_family(&p, "b", "gauge", "g");
        prom_sample(&p, l, 1, PROM_U64(1));
        prom_sample(&p, NULL, 0, PROM_I64(2));
        prom_end(&p);
        TAP_STREQ(strbuf_str(&b),
                  "{\"metrics\":[{\"name\":\"a\",\"type\":\"counter\",\"help\":\"h\\\"\",\"samples\":[]},"
                  "{\"name\":\"b\",\"type\":\"gauge\",\"help\":\"g\",\"samples\":[{\"labels\":{\"k\":\"v\\u0001\\\"\"},\"value\":1},"
                  "{\"labels\":{},\"value\":2}]}]}\n",
                  "JSON families and samples, every string escaped (a control character as \\u0001)");
        strbuf_deinit(&b);
}

static void test_pieces(void)
{
        struct strbuf whole = STRBUF_NULL, piece = STRBUF_NULL, joined = STRBUF_NULL;
        const double bounds[] = { 1, 2 };
        const uint64_t cum[] = { 1, 3 };
        const struct prom_label l[] = { { "x", "y" } };

        for (int fmt = PROM_FORMAT_TEXT; fmt <= PROM_FORMAT_JSON; fmt++) {
                struct prom_printer a = PROM_PRINTER_INIT(&whole, (enum prom_format)fmt);
                struct prom_printer p = PROM_PRINTER_INIT(&piece, (enum prom_format)fmt);

                whole.len = joined.len = 0;
                /* The same calls, the second printer moved to a fresh buffer after each. */
                for (int round = 0; round < 2; round++) {
                        struct prom_printer *q = round ? &p : &a;

#define STEP(call) do { call; if (round) { strbuf_append(&joined, strbuf_str(&piece), piece.len); \
                                strbuf_deinit(&piece); piece = (struct strbuf)STRBUF_NULL; p.out = &piece; } } while (0)
                        STEP(prom_begin(q));
                        STEP(prom_family(q, "h", "histogram", "H"));
                        STEP(prom_histogram(q, l, 1, bounds, 2, cum, 4, PROM_U64(9)));
                        STEP(prom_histogram(q, NULL, 0, bounds, 2, cum, 3, PROM_F64(0.25)));
                        STEP(prom_family(q, "c", "counter", "C"));
                        STEP(prom_sample(q, l, 1, PROM_U64(7)));
                        STEP(prom_end(q));
#undef STEP
                }
                tap_ok(strcmp(strbuf_str(&whole), strbuf_str(&joined)) == 0,
                       "%s written in pieces into fresh buffers is the document written in one",
                       fmt == PROM_FORMAT_TEXT ? "text" : "JSON");
        }
        strbuf_deinit(&whole);
        strbuf_deinit(&piece);
        strbuf_deinit(&joined);
}

static void test_limit(void)
{
        struct strbuf b = STRBUF_NULL;
        struct prom_printer p = PROM_PRINTER_INIT(&b, PROM_FORMAT_TEXT);
        int r;

        b.limit = 40;
        prom_begin(&p);
        prom_family(&p, "a_family_with_a_long_name", "counter", "and a long help text, past the limit");
        prom_sample(&p, NULL, 0, PROM_U64(1));
        r = prom_end(&p);
        tap_ok(r == -ENOBUFS, "a document past the buffer's limit ends with -ENOBUFS (got %d)", r);
        strbuf_deinit(&b);
}

int main(void)
{
        test_text();
        test_bounds();
        test_json();
        test_pieces();
        test_limit();
        return tap_done();
}
