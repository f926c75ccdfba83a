/*
 * common/json_doc: exactly one JSON value is a document; two values, an empty text or broken
 * JSON are refused with a reason in plain words (never libfyaml's location line, which names
 * a heap address), and nothing reaches stderr.
 */
#include <libfyaml.h>
#include <string.h>

#include "common/json_doc.h"
#include "common/strbuf.h"
#include "tap.h"

static bool parses(const char *text, const char *want_reason_part, const char *what)
{
        struct strbuf why = STRBUF_NULL;
        struct fy_document *d = json_doc_parse(text, strlen(text), &why);
        bool ok;

        if (!want_reason_part)
                ok = d && why.len == 0;
        else
                ok = !d && strstr(strbuf_str(&why), want_reason_part) && !strstr(strbuf_str(&why), "<memory");
        if (!ok)
                printf("# %s: document %p, reason [%s]\n", what, (void *)d, strbuf_str(&why));
        tap_ok(ok, "%s", what);
        if (d)
                fy_document_destroy(d);
        strbuf_deinit(&why);
        return ok;
}

static void test_one_value(void)
{
        parses("{\"app\":\"reviews\",\"version\":\"v1\"}", NULL, "an object is one document");
        parses("  [1, 2, \"three\"]\n", NULL, "a list with white space around it is one document");
        parses("{\"a\":\"1\",\"a\":\"2\"}", NULL, "a repeated key is kept (Go's decoder lets the last win)");
}

static void test_refused(void)
{
        parses("", "empty input", "an empty text is refused: empty input");
        parses("{\"a\":\"b\"} {\"c\":\"d\"}", "more than one JSON value", "two values are refused: more than one JSON value");
        parses("{\"a\":\"b\"} x", "", "text after the value is refused with a reason");
        parses("{\"a\":", "", "a cut object is refused with a reason");
        parses("{\"a\": 'b'}", "", "a single-quoted string is not JSON");
}

static void test_why_optional(void)
{
        tap_ok(json_doc_parse("{", 1, NULL) == NULL, "a NULL reason buffer is allowed");
}

int main(void)
{
        test_one_value();
        test_refused();
        test_why_optional();
        return tap_done();
}
