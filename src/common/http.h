/*
 * HTTP/1.x request heads for the sidecar's own endpoints: admin (15000, loopback), health
 * (15021), telemetry (15090) and the merged status port (15020). Only the last three are
 * reachable from the pod network, so the input is untrusted and the parser is strict and
 * bounded rather than lenient: it reads at most HTTP_HEAD_MAX bytes, keeps at most
 * HTTP_MAX_HEADERS headers, never allocates or copies (every pointer in struct http_request
 * points into the caller's buffer, picohttpparser style) and refuses every shape on which two
 * HTTP implementations could disagree about where a request ends (RFC 9112 section 11.2,
 * request smuggling). Bodies are not decoded here; the caller reads content_length bytes after
 * the head, or refuses a chunked body.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Headers kept per request; one more is malformed. kubelet, curl and Prometheus send fewer than 10. */
#define HTTP_MAX_HEADERS 32
/* Bytes of request line plus headers read at most (nginx's default client_header_buffer is 1 KiB, large ones 8 KiB). */
#define HTTP_HEAD_MAX 8192

struct http_header {
        const char *name;       /* a token, as sent (any case) */
        size_t name_len;
        const char *value;      /* without leading or trailing SP/HTAB; may be empty */
        size_t value_len;
};

struct http_request {
        const char *method;     /* a token, case-sensitive ("GET", not "get") */
        size_t method_len;
        const char *target;     /* request-target as sent, e.g. "/stats?format=json" */
        size_t target_len;
        const char *path;       /* target up to the first '?': starts with '/', never holds '?' */
        size_t path_len;
        const char *query;      /* after the first '?'; empty (pointing at the target's end) without one */
        size_t query_len;
        int minor_version;      /* 0 or 1 */
        struct http_header headers[HTTP_MAX_HEADERS];
        size_t n_headers;
        bool has_content_length;
        uint64_t content_length;
        bool chunked;           /* Transfer-Encoding: chunked (never together with Content-Length) */
        bool keep_alive;        /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive" */
};

/*
 * Parses the request line and headers at the start of buf[0..len). Accepts:
 *   - any number of empty lines before the request line (RFC 9112 section 2.2);
 *   - "METHOD SP TARGET SP HTTP/1.0|HTTP/1.1", single spaces, METHOD a token, TARGET in origin
 *     form ("/" then visible ASCII except '#');
 *   - header lines "name:OWS value OWS", name a token, value of visible ASCII, bytes >= 0x80,
 *     SP and HTAB;
 *   - CRLF or bare LF after every line (a CR anywhere else is malformed).
 * Returns the length of the head including the empty line that ends it (bytes after it, such
 * as a body or a pipelined request, are not looked at), with *ret filled in; -EAGAIN when buf
 * holds a valid but incomplete head; -E2BIG when the first HTTP_HEAD_MAX bytes hold neither a
 * complete head nor an error (answer 431 and close); -EBADMSG (answer 400 and close) for:
 *   - a method that is not a token, a target that is empty, not in origin form or holds a
 *     control, space, '#' or non-ASCII byte, a version other than HTTP/1.0 or HTTP/1.1, extra
 *     or missing spaces in the request line;
 *   - a header line without a colon, with a name that is not a token or with whitespace before
 *     the colon; a line starting with SP/HTAB (obs-fold, or whitespace before the first header);
 *     a control character (other than HTAB) or DEL in a value; a CR not followed by LF;
 *   - more than HTTP_MAX_HEADERS headers;
 *   - Content-Length that is not 1*DIGIT fitting in 64 bits, or that appears more than once
 *     (even with equal values; a comma list is refused as not being digits);
 *   - Transfer-Encoding other than exactly one "chunked" (case-insensitive), Transfer-Encoding
 *     in an HTTP/1.0 request, or Transfer-Encoding together with Content-Length;
 *   - an HTTP/1.1 request without a Host header, or any request with two (RFC 9112 section 3.2).
 * The result depends only on buf[0..min(len, HTTP_HEAD_MAX)), so a caller can call again with
 * the same buffer once more bytes have arrived. On a negative return *ret is unspecified.
 * The pointers in *ret point into buf and are valid as long as buf is.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *ret);

/*
 * Finds the first parameter called name in the query ("level" in "level=debug&x=1"; "&" separates
 * parameters, the name is compared byte for byte, nothing is percent-decoded). Returns true and
 * points *ret_value (may be NULL) into the request's buffer, with *ret_len the value's length:
 * everything after the first '=' up to the next '&', or 0 for a parameter without '='. Returns
 * false (and NULL/0) when there is no such parameter, also for a zeroed struct http_request.
 */
bool http_query_get(const struct http_request *r, const char *name, const char **ret_value, size_t *ret_len);

/* Returns the first header whose name matches name case-insensitively (ASCII), or NULL. */
const struct http_header *http_header_find(const struct http_request *r, const char *name);

/* Returns the RFC 9110 reason phrase for status ("OK" for 200), or "" for a code it does not know. */
const char *http_status_reason(int status);
