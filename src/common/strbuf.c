/*
 * Bounded string builder; see strbuf.h. Growth doubles, so appends are amortised O(1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

#define STRBUF_DEFAULT_LIMIT (64u * 1024 * 1024)

static int strbuf_reserve(struct strbuf *b, size_t extra)
{
        size_t limit = b->limit ? b->limit : STRBUF_DEFAULT_LIMIT;
        size_t need, cap;
        char *s;

        if (b->error)
                return b->error;
        if (extra > limit || b->len > limit - extra)
                return b->error = -ENOBUFS;
        need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap *= 2;
        s = realloc(b->s, cap);
        if (!s)
                return b->error = -ENOMEM;
        b->s = s;
        b->cap = cap;
        return 0;
}

int strbuf_append(struct strbuf *b, const char *data, size_t n)
{
        int r = strbuf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->s + b->len, data, n);
        b->len += n;
        b->s[b->len] = '\0';
        return 0;
}

int strbuf_puts(struct strbuf *b, const char *s)
{
        return strbuf_append(b, s, strlen(s));
}

int strbuf_vprintf(struct strbuf *b, const char *fmt, va_list ap)
{
        va_list aq;
        int n, r;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return b->error = -EINVAL;
        r = strbuf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = strbuf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *strbuf_str(const struct strbuf *b)
{
        return b->s ? b->s : "";
}

char *strbuf_steal(struct strbuf *b)
{
        char *s;

        if (b->error) {
                strbuf_deinit(b);
                return NULL;
        }
        s = b->s ? b->s : strdup("");
        b->s = NULL;
        b->len = b->cap = 0;
        return s;
}

void strbuf_deinit(struct strbuf *b)
{
        free(b->s);
        b->s = NULL;
        b->len = b->cap = 0;
        b->error = 0;
}
