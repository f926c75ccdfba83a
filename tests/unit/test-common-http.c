/*
 * Unit tests for proxy/http.c, the request-head parser behind the admin (15000), health (15021),
 * telemetry (15090) and status (15020) ports. Every input is copied so that its last byte is the
 * last byte before a PROT_NONE page, so a parser that reads one byte past len crashes instead of
 * passing by luck; every truncation point of several valid requests must give -EAGAIN
 * (picohttpparser test.c does the same). The smuggling cases follow RFC 9112 section 11.2 and
 * the classic CL.TE / TE.CL / CL.CL shapes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/http.h"
#include "tap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Room for the largest input: the -E2BIG tests go past HTTP_HEAD_MAX. */
#define GUARD_DATA_MAX (4 * HTTP_HEAD_MAX)

static char *guard_map;
static size_t guard_data_size, page_size;

static bool setup_guard(void)
{
        long ps = sysconf(_SC_PAGESIZE);

        page_size = ps > 0 ? (size_t)ps : 4096;
        guard_data_size = (GUARD_DATA_MAX + page_size - 1) / page_size * page_size;
        guard_map = mmap(NULL, guard_data_size + page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_map == MAP_FAILED) {
                guard_map = NULL;
                return false;
        }
        return mprotect(guard_map + guard_data_size, page_size, PROT_NONE) == 0;
}

/* Copies n bytes of s so that the last one sits right before the PROT_NONE page. */
static const char *at_guard(const char *s, size_t n)
{
        char *p = guard_map + guard_data_size - n;

        if (n)
                memcpy(p, s, n);
        return p;
}

static int parse_n(const char *s, size_t n, struct http_request *req)
{
        return http_parse_request(at_guard(s, n), n, req);
}

static int parse(const char *s, struct http_request *req)
{
        return parse_n(s, strlen(s), req);
}

static bool span_eq(const char *p, size_t n, const char *want)
{
        return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
        return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void test_get_without_query(void)
{
        static const char in[] = "GET /healthz/ready HTTP/1.1\r\nHost: 10.0.0.5:15021\r\nUser-Agent: kube-probe/1.29\r\n\r\n";
        struct http_request req;
        int r = parse(in, &req);

        tap_ok(r == (int)strlen(in) && span_eq(req.method, req.method_len, "GET") &&
               span_eq(req.target, req.target_len, "/healthz/ready") && span_eq(req.path, req.path_len, "/healthz/ready") &&
               req.query_len == 0 && req.query == req.target + req.target_len && req.minor_version == 1 &&
               req.n_headers == 2 && span_eq(req.headers[0].name, req.headers[0].name_len, "Host") &&
               span_eq(req.headers[0].value, req.headers[0].value_len, "10.0.0.5:15021") &&
               span_eq(req.headers[1].value, req.headers[1].value_len, "kube-probe/1.29") &&
               !req.has_content_length && !req.chunked && req.keep_alive,
               "a kubelet readiness probe parses: method, target, path, empty query, version 1, both headers, whole length");
}

static void test_get_with_query(void)
{
        static const char in[] = "GET /stats?format=json HTTP/1.1\r\nHost: localhost:15000\r\n\r\n";
        struct http_request req;
        int r = parse(in, &req);

        tap_ok(r == (int)strlen(in) && span_eq(req.target, req.target_len, "/stats?format=json") &&
               span_eq(req.path, req.path_len, "/stats") && span_eq(req.query, req.query_len, "format=json") &&
               req.path == req.target && req.query == req.target + 7,
               "a target with a query splits into path and query, both pointing into the target");
}

static void test_query_split_on_first_question_mark(void)
{
        struct http_request req;
        int r = parse("GET /stats?filter=a?b& HTTP/1.1\r\nHost: x\r\n\r\n", &req);
        int r2;
        bool empty_query;

        tap_ok(r > 0 && span_eq(req.path, req.path_len, "/stats") && span_eq(req.query, req.query_len, "filter=a?b&"),
               "the query starts after the first '?' and keeps any later '?'");
        r2 = parse("GET /stats? HTTP/1.1\r\nHost: x\r\n\r\n", &req);
        empty_query = r2 > 0 && span_eq(req.path, req.path_len, "/stats") && req.query_len == 0 &&
                      req.query == req.target + req.target_len;
        tap_ok(empty_query, "a target ending in '?' has the path before it and an empty query");
}

static void test_post_with_content_length(void)
{
        static const char head[] = "POST /logging?level=debug HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n";
        static const char in[] = "POST /logging?level=debug HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello";
        struct http_request req;
        int r = parse(in, &req);

        tap_ok(r == (int)strlen(head) && span_eq(req.method, req.method_len, "POST") && req.has_content_length &&
               req.content_length == 5 && !req.chunked,
               "a POST with Content-Length reports the length and returns the head's length, stopping before the body");
}

static void test_http10(void)
{
        static const char in[] = "GET /stats/prometheus HTTP/1.0\r\n\r\n";
        struct http_request req;
        int r = parse(in, &req);

        tap_ok(r == (int)strlen(in) && req.minor_version == 0 && req.n_headers == 0 && !req.keep_alive,
               "an HTTP/1.0 request without any header (not even Host) parses, with minor_version 0");
}

static void test_bare_lf(void)
{
        static const char in[] = "GET /connections HTTP/1.1\nHost: a\nAccept: */*\n\n";
        static const char mixed[] = "GET /connections HTTP/1.1\r\nHost: a\nAccept: */*\r\n\n";
        struct http_request req;
        int r = parse(in, &req);
        bool lf_ok = r == (int)strlen(in) && req.n_headers == 2 && span_eq(req.headers[1].value, req.headers[1].value_len, "*/*");

        tap_ok(lf_ok, "bare LF line ends are accepted and not left in values");
        r = parse(mixed, &req);
        tap_ok(r == (int)strlen(mixed) && req.n_headers == 2, "CRLF and bare LF may be mixed within one head");
}

static void test_leading_empty_lines(void)
{
        static const char in[] = "\r\n\nGET /healthz/ready HTTP/1.1\r\nHost: a\r\n\r\n";
        struct http_request req;
        int r = parse(in, &req);

        tap_ok(r == (int)strlen(in) && req.method == req.target - 4 && span_eq(req.method, req.method_len, "GET"),
               "empty lines before the request line are skipped and counted in the returned length (RFC 9112 2.2)");
}

static void test_value_whitespace(void)
{
        struct http_request req;
        int r = parse("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v 1 \t\r\nX-B:\r\nX-C:   \r\n\r\n", &req);

        tap_ok(r > 0 && req.n_headers == 4 && span_eq(req.headers[0].value, req.headers[0].value_len, "a") &&
               span_eq(req.headers[1].value, req.headers[1].value_len, "v 1") && req.headers[2].value_len == 0 &&
               req.headers[3].value_len == 0,
               "leading and trailing SP/HTAB are trimmed from values, inner spaces kept, empty values allowed");
}

static void test_obs_text_in_value(void)
{
        struct http_request req;

        tap_ok(parse("GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xc3\xa9\r\n\r\n", &req) > 0,
               "bytes >= 0x80 are accepted in a header value (obs-text)");
}

static void test_pipelined_rest_ignored(void)
{
        static const char head[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        static const char in[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
        static const char garbage[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n\x01\x02 not http";
        struct http_request req;
        int r1 = parse(in, &req);
        int r2 = parse(garbage, &req);

        tap_ok(r1 == (int)strlen(head) && r2 == (int)strlen(head) && span_eq(req.path, req.path_len, "/a"),
               "bytes after the empty line (a pipelined request or garbage) do not change the result");
}

static void test_admin_endpoints(void)
{
        static const struct {
                const char *method, *target, *path, *query;
        } eps[] = {
                { "GET", "/healthz/ready", "/healthz/ready", "" },
                { "GET", "/stats/prometheus", "/stats/prometheus", "" },
                { "GET", "/stats?format=json", "/stats", "format=json" },
                { "GET", "/connections", "/connections", "" },
                { "POST", "/logging?level=debug", "/logging", "level=debug" },
                { "POST", "/drain", "/drain", "" },
                { "POST", "/quitquitquit", "/quitquitquit", "" },
        };
        bool ok = true;

        for (size_t i = 0; i < ARRAY_SIZE(eps); i++) {
                char in[256];
                struct http_request req;
                int n = snprintf(in, sizeof(in), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:15000\r\n%s\r\n", eps[i].method,
                                 eps[i].target, strcmp(eps[i].method, "POST") == 0 ? "Content-Length: 0\r\n" : "");
                int r = parse(in, &req);

                if (r != n || !span_eq(req.method, req.method_len, eps[i].method) ||
                    !span_eq(req.path, req.path_len, eps[i].path) || !span_eq(req.query, req.query_len, eps[i].query)) {
                        printf("# %s %s: got %d\n", eps[i].method, eps[i].target, r);
                        ok = false;
                }
        }
        tap_ok(ok, "a request for every admin, health and metrics endpoint parses to the expected method, path and query");
}

static int keep_alive_of(const char *in)
{
        struct http_request req;

        if (parse(in, &req) < 0)
                return -1;
        return req.keep_alive;
}

static void test_keep_alive(void)
{
        tap_ok(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 1,
               "HTTP/1.1 is keep-alive by default");
        tap_ok(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") == 0,
               "HTTP/1.1 with Connection: close is not keep-alive");
        tap_ok(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n") == 0,
               "close is found case-insensitively anywhere in a Connection list");
        tap_ok(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n") == 0,
               "close wins over keep-alive, also across two Connection headers");
        tap_ok(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, x-close\r\n\r\n") == 1,
               "only the whole option \"close\" counts, not a token containing it");
        tap_ok(keep_alive_of("GET / HTTP/1.0\r\n\r\n") == 0,
               "HTTP/1.0 is not keep-alive by default");
        tap_ok(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == 1,
               "HTTP/1.0 with Connection: keep-alive (any case) is keep-alive");
        tap_ok(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n") == 0,
               "HTTP/1.0 with both keep-alive and close is not keep-alive");
}

static void test_max_headers(void)
{
        char in[2048];
        struct http_request req;
        size_t n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\n");
        int r;

        for (int i = 1; i < HTTP_MAX_HEADERS; i++)
                n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: %d\r\n", i, i);
        n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
        r = parse_n(in, n, &req);
        tap_ok(r == (int)n && req.n_headers == HTTP_MAX_HEADERS &&
               span_eq(req.headers[HTTP_MAX_HEADERS - 1].name, req.headers[HTTP_MAX_HEADERS - 1].name_len, "X-31"),
               "exactly HTTP_MAX_HEADERS headers are accepted and all kept");
        n -= 2;
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-one-too-many: 1\r\n\r\n");
        tap_ok(parse_n(in, n, &req) == -EBADMSG, "HTTP_MAX_HEADERS + 1 headers are refused with -EBADMSG");
}

/* len is 0 for a NUL-terminated input, or the length of one with an embedded NUL. */
static const struct {
        const char *in;
        const char *what;
        size_t len;
} malformed[] = {
        { "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "a method with a non-token byte" },
        { " GET / HTTP/1.1\r\nHost: a\r\n\r\n", "an empty method (request line starting with a space)" },
        { "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "HTAB instead of SP after the method" },
        { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "two spaces after the method (empty target)" },
        { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "a space after the version" },
        { "GET /\r\nHost: a\r\n\r\n", "a request line without a version (HTTP/0.9)" },
        { "GET stats HTTP/1.1\r\nHost: a\r\n\r\n", "a target not starting with '/'" },
        { "GET http://a/stats HTTP/1.1\r\nHost: a\r\n\r\n", "an absolute-form target" },
        { "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "an asterisk-form target" },
        { "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", "an authority-form target" },
        { "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "a fragment in the target" },
        { "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "a control byte in the target" },
        { "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "DEL in the target" },
        { "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "a non-ASCII byte in the target" },
        { "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "version HTTP/1.2" },
        { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "version HTTP/2.0" },
        { "GET / http/1.1\r\nHost: a\r\n\r\n", "a lower-case version" },
        { "GET / HTTP/1.10\r\nHost: a\r\n\r\n", "a version with an extra digit" },
        { "GET / HTTP/1.1\rHost: a\r\n\r\n", "a CR not followed by LF ending the request line" },
        { "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "a bare CR inside a header value" },
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", "a CR not followed by LF in the empty line" },
        { "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "a CR not followed by LF before the request line" },
        { "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "a header line without a colon" },
        { "GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n", "a header with an empty name" },
        { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace between a header name and the colon" },
        { "GET / HTTP/1.1\r\nX\"y: a\r\nHost: a\r\n\r\n", "a header name with a non-token byte" },
        { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "obs-fold (a continuation line starting with SP)" },
        { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", "obs-fold with HTAB" },
        { "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "whitespace before the first header" },
        { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", "a control byte in a header value" },
        { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", "DEL in a header value" },
        { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", "NUL in a header value",
          sizeof("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n") - 1 },
        { "GET / HTTP/1.1\r\n\r\n", "an HTTP/1.1 request without Host" },
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two Host headers" },
        { "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", "two Host headers in HTTP/1.0, differing only in case" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
          "duplicate Content-Length with different values" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
          "duplicate Content-Length even with equal values" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", "a Content-Length list" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "a negative Content-Length" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "a Content-Length with a plus sign" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
          "a Content-Length of 2^64 (overflow)" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
          "a Content-Length far beyond 64 bits" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", "an empty Content-Length" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", "a hexadecimal Content-Length" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", "a Content-Length with an inner space" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
          "Content-Length then Transfer-Encoding (CL.TE)" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
          "Transfer-Encoding then Content-Length (TE.CL)" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
          "Transfer-Encoding: chunked, identity (chunked not last)" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
          "a transfer-coding other than chunked" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "Transfer-Encoding: identity" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", "Transfer-Encoding: xchunked" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
          "Transfer-Encoding sent twice" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", "an empty Transfer-Encoding" },
        { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
          "Transfer-Encoding with a space before the colon" },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n",
          "Transfer-Encoding with a vertical tab before the value" },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n 6\r\n\r\n",
          "a Content-Length continued by obs-fold" },
};

static size_t malformed_len(size_t i)
{
        return malformed[i].len ? malformed[i].len : strlen(malformed[i].in);
}

static void test_malformed(void)
{
        for (size_t i = 0; i < ARRAY_SIZE(malformed); i++) {
                struct http_request req;
                int r = parse_n(malformed[i].in, malformed_len(i), &req);

                if (r != -EBADMSG)
                        printf("# got %d\n", r);
                tap_ok(r == -EBADMSG, "refused with -EBADMSG: %s", malformed[i].what);
        }
}

static void test_malformed_truncations(void)
{
        bool ok = true;

        for (size_t i = 0; i < ARRAY_SIZE(malformed); i++) {
                size_t n = malformed_len(i);

                for (size_t k = 0; k < n; k++) {
                        struct http_request req;
                        int r = parse_n(malformed[i].in, k, &req);

                        if (r != -EAGAIN && r != -EBADMSG) {
                                printf("# %s, first %zu bytes: got %d\n", malformed[i].what, k, r);
                                ok = false;
                        }
                }
        }
        tap_ok(ok, "every prefix of every malformed request gives -EAGAIN or -EBADMSG, never a head");
}

static void test_content_length_limits(void)
{
        struct http_request req;
        int r = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", &req);
        bool max_ok = r > 0 && req.has_content_length && req.content_length == UINT64_MAX;

        tap_ok(max_ok, "a Content-Length of 2^64-1 is the largest accepted");
        r = parse("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: \t007 \r\n\r\n", &req);
        tap_ok(r > 0 && req.content_length == 7, "Content-Length is matched in any case, trimmed, and may have leading zeros");
}

static void test_chunked(void)
{
        struct http_request req;
        int r = parse("POST /drain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n", &req);

        tap_ok(r > 0 && req.chunked && !req.has_content_length,
               "a lone Transfer-Encoding: chunked (any case, trailing OWS) is accepted and reported");
}

static void test_truncations(void)
{
        static const char *const valid[] = {
                "GET /stats?format=json HTTP/1.1\r\nHost: localhost:15000\r\nAccept: application/json\r\n\r\n",
                "GET /healthz/ready HTTP/1.0\nUser-Agent: probe\n\n",
                "\r\n\nPOST /logging?level=debug HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                "POST /drain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\nX-Ws: \t v \t\r\n\r\n",
                "GET /stats/prometheus HTTP/1.1\r\nHost: 10.1.2.3:15090\r\nUser-Agent: Prometheus/2.48.0\r\n"
                "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
                "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        };

        for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
                size_t n = strlen(valid[i]);
                bool ok = true;
                struct http_request req;
                int r;

                for (size_t k = 0; k < n; k++) {
                        r = parse_n(valid[i], k, &req);
                        if (r != -EAGAIN) {
                                printf("# first %zu bytes: got %d\n", k, r);
                                ok = false;
                        }
                }
                r = parse_n(valid[i], n, &req);
                if (r != (int)n) {
                        printf("# whole: got %d\n", r);
                        ok = false;
                }
                tap_ok(ok, "every truncation of valid request %zu, placed against a PROT_NONE page, gives -EAGAIN; "
                       "the whole gives its length", i + 1);
        }
}

static void test_body_truncations(void)
{
        static const char in[] = "POST /logging?level=debug HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
        size_t n = strlen(in), head = n - 4;
        bool ok = true;

        for (size_t k = head; k <= n; k++) {
                struct http_request req;
                int r = parse_n(in, k, &req);

                if (r != (int)head) {
                        printf("# first %zu bytes: got %d\n", k, r);
                        ok = false;
                }
        }
        tap_ok(ok, "once the head is complete, any amount of body after it gives the same head length");
}

static void test_pointers_inside_buffer(void)
{
        static const char in[] = "GET /stats?format=json&usedonly HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-B: c\r\n\r\n";
        size_t n = strlen(in);
        const char *buf = at_guard(in, n);
        struct http_request req;
        int r = http_parse_request(buf, n, &req);
        bool ok = r > 0 && inside(req.method, req.method_len, buf, (size_t)r) &&
                  inside(req.target, req.target_len, buf, (size_t)r) && inside(req.path, req.path_len, buf, (size_t)r) &&
                  inside(req.query, req.query_len, buf, (size_t)r);

        for (size_t i = 0; ok && i < req.n_headers; i++)
                ok = inside(req.headers[i].name, req.headers[i].name_len, buf, (size_t)r) &&
                     inside(req.headers[i].value, req.headers[i].value_len, buf, (size_t)r);
        tap_ok(ok, "every pointer in the result points into the caller's buffer, within the returned length (no copies)");
}

static void test_head_limit(void)
{
        static char in[2 * HTTP_HEAD_MAX];
        static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
        struct http_request req;
        size_t n;
        int r;

        /* A head of exactly HTTP_HEAD_MAX bytes: the pad fills the rest but "\r\n\r\n". */
        n = strlen(start);
        memcpy(in, start, n);
        memset(in + n, 'p', HTTP_HEAD_MAX - n - 4);
        memcpy(in + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
        r = parse_n(in, HTTP_HEAD_MAX, &req);
        tap_ok(r == HTTP_HEAD_MAX, "a head of exactly HTTP_HEAD_MAX bytes is accepted");

        r = parse_n(in, HTTP_HEAD_MAX - 1, &req);
        tap_ok(r == -EAGAIN, "one byte short of an HTTP_HEAD_MAX head is still -EAGAIN");

        memset(in + HTTP_HEAD_MAX - 4, 'p', sizeof(in) - (HTTP_HEAD_MAX - 4));
        r = parse_n(in, HTTP_HEAD_MAX, &req);
        tap_ok(r == -E2BIG, "HTTP_HEAD_MAX bytes without the end of the head give -E2BIG");
        memcpy(in + HTTP_HEAD_MAX + 10, "\r\n\r\n", 4);
        r = parse_n(in, HTTP_HEAD_MAX + 14, &req);
        tap_ok(r == -E2BIG, "a complete head longer than HTTP_HEAD_MAX gives -E2BIG");

        memset(in, '\n', HTTP_HEAD_MAX);
        r = parse_n(in, HTTP_HEAD_MAX, &req);
        tap_ok(r == -E2BIG, "HTTP_HEAD_MAX empty lines give -E2BIG, so skipping them is bounded too");

        memcpy(in, "GET /\x01", 6);
        r = parse_n(in, sizeof(in), &req);
        tap_ok(r == -EBADMSG, "a malformed byte early in an oversized buffer gives -EBADMSG, not -E2BIG");
}

static void test_query_get(void)
{
        struct http_request req;
        const char *v = NULL;
        size_t vl = 0;
        int r = parse("POST /logging?level=debug&x=1&flag&empty=&a=b=c&&level=info HTTP/1.1\r\nHost: a\r\n\r\n", &req);

        tap_ok(r > 0 && http_query_get(&req, "level", &v, &vl) && span_eq(v, vl, "debug") &&
               inside(v, vl, req.query, req.query_len),
               "http_query_get finds the first parameter and points into the query");
        tap_ok(http_query_get(&req, "x", &v, &vl) && span_eq(v, vl, "1"), "http_query_get finds a middle parameter");
        tap_ok(http_query_get(&req, "flag", &v, &vl) && vl == 0 && v != NULL,
               "a parameter without '=' is found with an empty value");
        tap_ok(http_query_get(&req, "empty", &v, &vl) && vl == 0, "a parameter with an empty value is found");
        tap_ok(http_query_get(&req, "a", &v, &vl) && span_eq(v, vl, "b=c"),
               "the value runs from the first '=' to the next '&'");
        tap_ok(!http_query_get(&req, "lev", &v, &vl) && v == NULL && vl == 0 && !http_query_get(&req, "levels", NULL, NULL),
               "a prefix or extension of a parameter name does not match, and a miss returns NULL/0");
        tap_ok(!http_query_get(&req, "Level", NULL, NULL), "parameter names are compared case-sensitively");

        r = parse("GET /stats HTTP/1.1\r\nHost: a\r\n\r\n", &req);
        tap_ok(r > 0 && !http_query_get(&req, "format", &v, &vl), "a target without a query has no parameters");
        r = parse("GET /stats?a%3Db=1 HTTP/1.1\r\nHost: a\r\n\r\n", &req);
        tap_ok(r > 0 && http_query_get(&req, "a%3Db", &v, &vl) && span_eq(v, vl, "1"),
               "names are not percent-decoded");
}

static void test_header_find(void)
{
        struct http_request req;
        const struct http_header *h;
        int r = parse("GET / HTTP/1.1\r\nHOST: a\r\nAccept: x\r\naccept: y\r\nHostname: z\r\n\r\n", &req);

        h = http_header_find(&req, "host");
        tap_ok(r > 0 && h == &req.headers[0], "http_header_find matches names case-insensitively");
        h = http_header_find(&req, "Accept");
        tap_ok(h && span_eq(h->value, h->value_len, "x"), "http_header_find returns the first of repeated headers");
        tap_ok(!http_header_find(&req, "Hos") && !http_header_find(&req, "Content-Length"),
               "http_header_find returns NULL for a prefix of a name and for a missing header");
}

static void test_empty_input(void)
{
        struct http_request req, zero;

        tap_ok(http_parse_request(NULL, 0, &req) == -EAGAIN && parse_n("", 0, &req) == -EAGAIN,
               "empty input, even a NULL buffer, is -EAGAIN");
        memset(&zero, 0, sizeof(zero));
        tap_ok(!http_query_get(&zero, "level", NULL, NULL) && !http_header_find(&zero, "host"),
               "lookups on a zeroed request find nothing instead of touching NULL");
}

static void test_status_reason(void)
{
        tap_ok(strcmp(http_status_reason(200), "OK") == 0 && strcmp(http_status_reason(400), "Bad Request") == 0 &&
               strcmp(http_status_reason(404), "Not Found") == 0 &&
               strcmp(http_status_reason(405), "Method Not Allowed") == 0 &&
               strcmp(http_status_reason(413), "Content Too Large") == 0 &&
               strcmp(http_status_reason(431), "Request Header Fields Too Large") == 0 &&
               strcmp(http_status_reason(500), "Internal Server Error") == 0 &&
               strcmp(http_status_reason(503), "Service Unavailable") == 0,
               "http_status_reason gives the RFC 9110 phrases for the statuses the endpoints send");
        tap_ok(strcmp(http_status_reason(299), "") == 0 && strcmp(http_status_reason(-1), "") == 0,
               "http_status_reason gives \"\" (never NULL) for an unknown code");
}

int main(void)
{
        if (!setup_guard()) {
                tap_ok(false, "could not map a guard page");
                return tap_done();
        }
        test_get_without_query();
        test_get_with_query();
        test_query_split_on_first_question_mark();
        test_post_with_content_length();
        test_http10();
        test_bare_lf();
        test_leading_empty_lines();
        test_value_whitespace();
        test_obs_text_in_value();
        test_pipelined_rest_ignored();
        test_admin_endpoints();
        test_keep_alive();
        test_max_headers();
        test_malformed();
        test_malformed_truncations();
        test_content_length_limits();
        test_chunked();
        test_truncations();
        test_body_truncations();
        test_pointers_inside_buffer();
        test_head_limit();
        test_query_get();
        test_header_find();
        test_empty_input();
        test_status_reason();
        munmap(guard_map, guard_data_size + page_size);
        return tap_done();
}
