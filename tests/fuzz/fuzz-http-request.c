/*
 * Fuzz target for proxy/http.c: the request heads that reach the health (15021), telemetry
 * (15090) and status (15020) ports from the pod network. The input is the raw bytes a client
 * sent, parsed as one buffer.
 *
 * Besides "no crash, no sanitizer report", the target checks what must hold for any input:
 *   - the result is a head length in 1..min(size, HTTP_HEAD_MAX), -EAGAIN (only when size is
 *     below HTTP_HEAD_MAX), -EBADMSG or -E2BIG;
 *   - for a head: every pointer lies inside the head, path and query lie inside the target with
 *     path + "?" + query == target, method and header names are tokens, values carry no CR, LF
 *     or edge whitespace, at most HTTP_MAX_HEADERS headers, chunked and Content-Length are
 *     exclusive, minor_version is 0 or 1, and http_query_get/http_header_find answer from
 *     inside the request;
 *   - the result depends only on the head: parsing exactly the head gives the same length,
 *     and a few shorter prefixes (copied to heap buffers of their exact size, so ASan sees an
 *     over-read) give -EAGAIN.
 * A broken invariant aborts, so the fuzzer reports it like a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static bool span_inside(const char *p, size_t n, const char *buf, size_t len)
{
        return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static bool is_token(const char *p, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];

                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      strchr("!#$%&'*+-.^_`|~", c)) || c == '\0')
                        return false;
        }
        return true;
}

/* Parses the first n bytes from a heap copy of exactly n bytes and returns the result. */
static int parse_prefix(const char *buf, size_t n)
{
        struct http_request req;
        char *copy = malloc(n ? n : 1);
        int r;

        CHECK(copy);
        if (n)
                memcpy(copy, buf, n);
        r = http_parse_request(copy, n, &req);
        free(copy);
        return r;
}

static void check_request(const char *buf, size_t head, const struct http_request *req)
{
        const char *v;
        size_t vl;

        CHECK(span_inside(req->method, req->method_len, buf, head) && is_token(req->method, req->method_len));
        CHECK(span_inside(req->target, req->target_len, buf, head) && req->target_len > 0);
        CHECK(req->path == req->target && req->path_len <= req->target_len);
        CHECK(req->path_len > 0 && req->path[0] == '/' && !memchr(req->path, '?', req->path_len));
        if (req->path_len < req->target_len) {
                CHECK(req->target[req->path_len] == '?');
                CHECK(req->query == req->path + req->path_len + 1);
                CHECK(req->path_len + 1 + req->query_len == req->target_len);
        } else {
                CHECK(req->query == req->target + req->target_len && req->query_len == 0);
        }
        for (size_t i = 0; i < req->target_len; i++)
                CHECK(req->target[i] > 0x20 && req->target[i] < 0x7f && req->target[i] != '#');
        CHECK(req->minor_version == 0 || req->minor_version == 1);
        CHECK(req->n_headers <= HTTP_MAX_HEADERS);
        CHECK(!(req->chunked && req->has_content_length));
        CHECK(!(req->chunked && req->minor_version == 0));
        CHECK(!(req->keep_alive && req->minor_version == 0 && !http_header_find(req, "connection")));

        for (size_t i = 0; i < req->n_headers; i++) {
                const struct http_header *h = &req->headers[i];

                CHECK(span_inside(h->name, h->name_len, buf, head) && is_token(h->name, h->name_len));
                CHECK(span_inside(h->value, h->value_len, buf, head));
                CHECK(!memchr(h->value, '\r', h->value_len) && !memchr(h->value, '\n', h->value_len));
                if (h->value_len)
                        CHECK(h->value[0] != ' ' && h->value[0] != '\t' && h->value[h->value_len - 1] != ' ' &&
                              h->value[h->value_len - 1] != '\t');
        }
        CHECK(req->minor_version == 0 || http_header_find(req, "Host"));
        if (req->has_content_length)
                CHECK(http_header_find(req, "content-length"));
        if (req->chunked)
                CHECK(http_header_find(req, "TRANSFER-ENCODING"));

        /* Look up every parameter name the query holds, and a few fixed ones. */
        for (const char *p = req->query, *end = req->query + req->query_len; p < end;) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                const char *stop = amp ? amp : end;
                const char *eq = memchr(p, '=', (size_t)(stop - p));
                char name[64];
                size_t n = (size_t)((eq ? eq : stop) - p);

                if (n < sizeof(name) && !memchr(p, '\0', n)) {
                        memcpy(name, p, n);
                        name[n] = '\0';
                        CHECK(http_query_get(req, name, &v, &vl));
                        CHECK(span_inside(v, vl, req->query, req->query_len));
                }
                p = amp ? amp + 1 : end;
        }
        if (http_query_get(req, "level", &v, &vl) || http_query_get(req, "format", &v, &vl))
                CHECK(span_inside(v, vl, req->query, req->query_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        struct http_request req;
        int r = http_parse_request(buf, size, &req);
        size_t head;

        CHECK(r > 0 || r == -EAGAIN || r == -EBADMSG || r == -E2BIG);
        CHECK(r != -EAGAIN || size < HTTP_HEAD_MAX);
        CHECK(r != -E2BIG || size >= HTTP_HEAD_MAX);
        if (r <= 0)
                return 0;

        head = (size_t)r;
        CHECK(head <= size && head <= HTTP_HEAD_MAX);
        check_request(buf, head, &req);

        CHECK(parse_prefix(buf, head) == r);
        CHECK(parse_prefix(buf, head - 1) == -EAGAIN);
        CHECK(parse_prefix(buf, head / 2) == -EAGAIN);
        CHECK(parse_prefix(buf, 0) == -EAGAIN);
        return 0;
}
