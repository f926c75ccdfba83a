/*
 * HTTP/1.x request-head parser for the admin, health and telemetry endpoints; see http.h.
 *
 * The parser walks the buffer once with a cursor and checks for the end of input before every
 * byte it reads, so a truncated head is reported as -EAGAIN from wherever the data stops and no
 * byte at or past len is ever touched. Each header's meaning (Content-Length, Transfer-Encoding,
 * Host, Connection) is checked as soon as its line is complete, so a smuggling attempt fails on
 * the line that makes it, before the rest of the head arrives. Only the checks that need the
 * whole head (a missing Host) wait for the empty line. Callers re-parse from the start when more
 * bytes arrive; HTTP_HEAD_MAX bounds what that costs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/http.h"

struct cursor {
        const char *p;
        const char *end;
};

/* RFC 9110 section 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                return true;
        switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
                return true;
        default:
                return false;
        }
}

/*
 * Bytes allowed in the request-target. RFC 3986 allows fewer, but Envoy-style admin queries
 * carry regexes ("/stats?filter=http|tcp") that clients send unescaped. '#' is refused because
 * a fragment is never sent, and a component that stripped it would see a different path.
 */
static bool is_target_char(unsigned char c)
{
        return c > 0x20 && c < 0x7f && c != '#';
}

/* RFC 9110 section 5.5: field-vchar (VCHAR / obs-text), SP and HTAB. */
static bool is_value_char(unsigned char c)
{
        return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static bool is_ows(unsigned char c)
{
        return c == ' ' || c == '\t';
}

static unsigned char ascii_lower(unsigned char c)
{
        return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool ascii_case_eq(const char *a, size_t a_len, const char *b)
{
        size_t b_len = strlen(b);

        if (a_len != b_len)
                return false;
        for (size_t i = 0; i < a_len; i++)
                if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
                        return false;
        return true;
}

/* Consumes CRLF or a bare LF. */
static int parse_eol(struct cursor *c)
{
        if (c->p == c->end)
                return -EAGAIN;
        if (*c->p == '\n') {
                c->p++;
                return 0;
        }
        if (*c->p != '\r')
                return -EBADMSG;
        if (c->p + 1 == c->end)
                return -EAGAIN;
        if (c->p[1] != '\n')
                return -EBADMSG;
        c->p += 2;
        return 0;
}

/* Consumes one token followed by the byte delim (not part of the token). */
static int parse_token(struct cursor *c, char delim, const char **ret, size_t *ret_len)
{
        const char *start = c->p;

        for (;;) {
                if (c->p == c->end)
                        return -EAGAIN;
                if (*c->p == delim)
                        break;
                if (!is_tchar((unsigned char)*c->p))
                        return -EBADMSG;
                c->p++;
        }
        if (c->p == start)
                return -EBADMSG;
        *ret = start;
        *ret_len = (size_t)(c->p - start);
        c->p++;
        return 0;
}

static int parse_request_line(struct cursor *c, struct http_request *req)
{
        static const char version[] = "HTTP/1.";
        const char *q;
        int r;

        /* RFC 9112 section 2.2: ignore empty lines before the request line (a stray CRLF after a body). */
        while (c->p < c->end && (*c->p == '\r' || *c->p == '\n')) {
                r = parse_eol(c);
                if (r < 0)
                        return r;
        }

        r = parse_token(c, ' ', &req->method, &req->method_len);
        if (r < 0)
                return r;

        req->target = c->p;
        for (;;) {
                if (c->p == c->end)
                        return -EAGAIN;
                if (*c->p == ' ')
                        break;
                /* Origin form only: the endpoints are local paths, and absolute or authority form would be a proxy request. */
                if (c->p == req->target && *c->p != '/')
                        return -EBADMSG;
                if (!is_target_char((unsigned char)*c->p))
                        return -EBADMSG;
                c->p++;
        }
        req->target_len = (size_t)(c->p - req->target);
        if (req->target_len == 0)
                return -EBADMSG;
        c->p++;

        q = memchr(req->target, '?', req->target_len);
        req->path = req->target;
        req->path_len = q ? (size_t)(q - req->target) : req->target_len;
        req->query = q ? q + 1 : req->target + req->target_len;
        req->query_len = req->target_len - req->path_len - (q ? 1 : 0);

        for (size_t i = 0; i < sizeof(version) - 1; i++) {
                if (c->p == c->end)
                        return -EAGAIN;
                if (*c->p != version[i])
                        return -EBADMSG;
                c->p++;
        }
        if (c->p == c->end)
                return -EAGAIN;
        if (*c->p != '0' && *c->p != '1')
                return -EBADMSG;
        req->minor_version = *c->p - '0';
        c->p++;

        return parse_eol(c);
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6), no sign, no list, no overflow. */
static int parse_content_length(const char *s, size_t len, uint64_t *ret)
{
        uint64_t v = 0;

        if (len == 0)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

struct head_state {
        bool seen_host;
        bool seen_te;
        bool conn_close;
        bool conn_keep_alive;
};

/* Records the "close" and "keep-alive" options of a Connection list; other options are ignored. */
static void scan_connection(const char *s, size_t len, struct head_state *st)
{
        size_t i = 0;

        while (i < len) {
                size_t start, end;

                while (i < len && (is_ows((unsigned char)s[i]) || s[i] == ','))
                        i++;
                start = i;
                while (i < len && s[i] != ',')
                        i++;
                end = i;
                while (end > start && is_ows((unsigned char)s[end - 1]))
                        end--;
                if (ascii_case_eq(s + start, end - start, "close"))
                        st->conn_close = true;
                else if (ascii_case_eq(s + start, end - start, "keep-alive"))
                        st->conn_keep_alive = true;
        }
}

/*
 * Applies the headers that decide where the request ends. Both framing headers, a repeated one,
 * or a coding list are refused rather than resolved: RFC 9112 section 6.3 lets a server pick
 * one, but a proxy in front of it may have picked the other.
 */
static int apply_header(const struct http_header *h, struct http_request *req, struct head_state *st)
{
        if (ascii_case_eq(h->name, h->name_len, "content-length")) {
                if (req->has_content_length || st->seen_te)
                        return -EBADMSG;
                if (parse_content_length(h->value, h->value_len, &req->content_length) < 0)
                        return -EBADMSG;
                req->has_content_length = true;
        } else if (ascii_case_eq(h->name, h->name_len, "transfer-encoding")) {
                /* RFC 9112 section 6.1: an HTTP/1.0 recipient cannot have framed this message the same way. */
                if (st->seen_te || req->has_content_length || req->minor_version == 0)
                        return -EBADMSG;
                if (!ascii_case_eq(h->value, h->value_len, "chunked"))
                        return -EBADMSG;
                st->seen_te = true;
                req->chunked = true;
        } else if (ascii_case_eq(h->name, h->name_len, "host")) {
                if (st->seen_host)
                        return -EBADMSG;
                st->seen_host = true;
        } else if (ascii_case_eq(h->name, h->name_len, "connection"))
                scan_connection(h->value, h->value_len, st);
        return 0;
}

/* Parses one header line into *h; c->p is at a byte that is neither CR nor LF. */
static int parse_header(struct cursor *c, struct http_header *h)
{
        const char *end;
        int r;

        /* RFC 9112 sections 2.2 and 5.2: obs-fold, and whitespace before the first header, are refused. */
        if (is_ows((unsigned char)*c->p))
                return -EBADMSG;
        /* A name followed by anything but ':' (including whitespace before it, RFC 9112 section 5.1) is malformed. */
        r = parse_token(c, ':', &h->name, &h->name_len);
        if (r < 0)
                return r;

        while (c->p < c->end && is_ows((unsigned char)*c->p))
                c->p++;
        h->value = c->p;
        for (;;) {
                if (c->p == c->end)
                        return -EAGAIN;
                if (*c->p == '\r' || *c->p == '\n')
                        break;
                if (!is_value_char((unsigned char)*c->p))
                        return -EBADMSG;
                c->p++;
        }
        end = c->p;
        while (end > h->value && is_ows((unsigned char)end[-1]))
                end--;
        h->value_len = (size_t)(end - h->value);

        return parse_eol(c);
}

static int parse_head(const char *buf, size_t len, struct http_request *req)
{
        struct cursor c = { .p = buf, .end = buf + len };
        struct head_state st = { 0 };
        int r;

        memset(req, 0, sizeof(*req));
        r = parse_request_line(&c, req);
        if (r < 0)
                return r;

        for (;;) {
                struct http_header h;

                if (c.p == c.end)
                        return -EAGAIN;
                if (*c.p == '\r' || *c.p == '\n') {
                        r = parse_eol(&c);
                        if (r < 0)
                                return r;
                        break;
                }
                r = parse_header(&c, &h);
                if (r < 0)
                        return r;
                if (req->n_headers == HTTP_MAX_HEADERS)
                        return -EBADMSG;
                r = apply_header(&h, req, &st);
                if (r < 0)
                        return r;
                req->headers[req->n_headers++] = h;
        }

        if (req->minor_version == 1 && !st.seen_host)
                return -EBADMSG;
        req->keep_alive = req->minor_version == 1 ? !st.conn_close : st.conn_keep_alive && !st.conn_close;
        return (int)(c.p - buf);
}

int http_parse_request(const char *buf, size_t len, struct http_request *ret)
{
        int r;

        /* buf may be NULL when empty, and NULL + 0 is undefined. */
        if (len == 0)
                return -EAGAIN;
        r = parse_head(buf, len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX, ret);
        if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
                return -E2BIG;
        return r;
}

bool http_query_get(const struct http_request *r, const char *name, const char **ret_value, size_t *ret_len)
{
        size_t name_len = strlen(name);
        const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;

        while (p && p < end) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                const char *stop = amp ? amp : end;
                const char *eq = memchr(p, '=', (size_t)(stop - p));
                const char *key_end = eq ? eq : stop;

                if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
                        if (ret_value)
                                *ret_value = eq ? eq + 1 : key_end;
                        if (ret_len)
                                *ret_len = eq ? (size_t)(stop - eq - 1) : 0;
                        return true;
                }
                p = amp ? amp + 1 : end;
        }
        if (ret_value)
                *ret_value = NULL;
        if (ret_len)
                *ret_len = 0;
        return false;
}

const struct http_header *http_header_find(const struct http_request *r, const char *name)
{
        for (size_t i = 0; i < r->n_headers; i++)
                if (ascii_case_eq(r->headers[i].name, r->headers[i].name_len, name))
                        return &r->headers[i];
        return NULL;
}

const char *http_status_reason(int status)
{
        switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 426: return "Upgrade Required";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "";
        }
}
