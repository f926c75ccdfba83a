/*
 * Unit tests for proxy/access_log.c's line format.
 *
 * Regression: the JSON access log was written with snprintf("\"client\":\"%s\"", ...), so a
 * field holding a quote, a backslash, a control character or bytes that are not UTF-8 broke
 * the line (issue 11, section 3: "the access log ... write[s] unescaped JSON, which breaks as
 * soon as a path or a user agent is logged"). Each field now goes through common/json.h; here
 * every string field holds all of those at once, and python3's json.loads (strict: no raw
 * control characters) must read the line back to exactly the expected values, with U+FFFD
 * where a byte was not UTF-8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "proxy/access_log.h"
#include "tap.h"

static const struct access_log_entry plain = {
        .time = "2026-01-02T03:04:05Z", .direction = "outbound", .client = "198.18.0.1:41000",
        .original_dst = "198.18.5.5:80", .upstream = "198.18.5.5:80", .bytes_received = 77,
        .bytes_sent = 1234, .duration_ms = 12, .termination = "upstream_reset", .response_flags = "UR",
};

static void test_text_line(void)
{
        struct strbuf b = STRBUF_NULL;

        access_log_format(&plain, false, &b);
        TAP_STREQ(strbuf_str(&b),
                  "[2026-01-02T03:04:05Z] outbound 198.18.0.1:41000 -> 198.18.5.5:80 upstream=198.18.5.5:80 "
                  "received=77 sent=1234 duration=12ms upstream_reset UR\n",
                  "the text line is what it was before the refactor");
        strbuf_deinit(&b);
}

static void test_json_line(void)
{
        struct strbuf b = STRBUF_NULL;

        access_log_format(&plain, true, &b);
        TAP_STREQ(strbuf_str(&b),
                  "{\"time\":\"2026-01-02T03:04:05Z\",\"direction\":\"outbound\",\"client\":\"198.18.0.1:41000\","
                  "\"original_dst\":\"198.18.5.5:80\",\"upstream\":\"198.18.5.5:80\",\"bytes_received\":77,"
                  "\"bytes_sent\":1234,\"duration_ms\":12,\"termination\":\"upstream_reset\",\"response_flags\":\"UR\"}\n",
                  "the JSON line for plain fields is what it was before the refactor");
        strbuf_deinit(&b);
}

static void test_null_fields(void)
{
        struct access_log_entry e = { .bytes_received = 1 };
        struct strbuf b = STRBUF_NULL;

        access_log_format(&e, true, &b);
        tap_ok(strstr(strbuf_str(&b), "\"client\":\"\"") && strstr(strbuf_str(&b), "\"bytes_received\":1"),
               "a NULL field is written as \"\"");
        strbuf_deinit(&b);
}

/* What python3 must read back from every string field. */
#define NASTY "a\"b\\c\x01\n\r\t\x7f" "d\xff\xc3\xa9\xe2\x82"
#define NASTY_PY "'a\"b\\\\c\\x01\\n\\r\\t\\x7fd\\ufffd\\u00e9\\ufffd\\ufffd'"

static void test_json_line_parses(void)
{
        static const char script[] =
                "import json, sys\n"
                "line = sys.stdin.buffer.read()\n"
                "assert line.endswith(b'\\n') and line.count(b'\\n') == 1, 'not one line'\n"
                "o = json.loads(line.decode('utf-8'))\n"
                "want = " NASTY_PY "\n"
                "for k in ('time', 'direction', 'client', 'original_dst', 'upstream', 'termination', 'response_flags'):\n"
                "    assert o[k] == want, (k, o[k])\n"
                "assert (o['bytes_received'], o['bytes_sent'], o['duration_ms']) == (18446744073709551615, 0, 5)\n"
                "assert len(o) == 10, sorted(o)\n";
        struct access_log_entry e = {
                .time = NASTY, .direction = NASTY, .client = NASTY, .original_dst = NASTY, .upstream = NASTY,
                .bytes_received = UINT64_MAX, .bytes_sent = 0, .duration_ms = 5, .termination = NASTY,
                .response_flags = NASTY,
        };
        struct strbuf b = STRBUF_NULL, cmd = STRBUF_NULL;
        char path[] = "/tmp/test-proxy-access-log-XXXXXX";
        int fd, rc = -1;

        access_log_format(&e, true, &b);
        fd = mkstemp(path);
        if (fd >= 0 && write(fd, b.s, b.len) == (ssize_t)b.len) {
                FILE *p;

                strbuf_printf(&cmd, "python3 -c \"$PY\" < %s", path);
                setenv("PY", script, 1);
                p = popen(strbuf_str(&cmd), "r");
                rc = p ? pclose(p) : -1;
        }
        if (fd >= 0) {
                close(fd);
                unlink(path);
        }
        if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 127) {
                tap_skip("python3 not found", "a JSON line with every kind of bad byte is read back by json.loads");
        } else {
                if (rc != 0)
                        printf("# line: %s", strbuf_str(&b));
                tap_ok(rc == 0, "a JSON line whose fields hold quotes, backslashes, control characters and bytes "
                                "that are not UTF-8 is one line python3's json.loads reads back exactly (U+FFFD per bad byte)");
        }
        strbuf_deinit(&b);
        strbuf_deinit(&cmd);
}

int main(void)
{
        test_text_line();
        test_json_line();
        test_null_fields();
        test_json_line_parses();
        return tap_done();
}
