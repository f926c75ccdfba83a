/*
 * A growable, NUL-terminated byte buffer with a hard size limit, for building rule text and
 * collecting child output. Every append either fits or fails with -ENOBUFS/-ENOMEM and leaves
 * the buffer as it was, so callers check once at the end (curl's dynbuf "toobig" idea).
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
        char *s;        /* always NUL-terminated once anything was appended */
        size_t len;
        size_t cap;
        size_t limit;   /* maximum len; 0 means the default of 64 MiB */
        int error;      /* first error seen, sticky */
};

#define STRBUF_NULL { .s = NULL, .len = 0, .cap = 0, .limit = 0, .error = 0 }

int strbuf_append(struct strbuf *b, const char *data, size_t n);
int strbuf_puts(struct strbuf *b, const char *s);
int strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vprintf(struct strbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns the text (never NULL: "" for an empty buffer). Owned by the buffer. */
const char *strbuf_str(const struct strbuf *b);
/* Hands the heap string to the caller (who frees it) and resets the buffer. NULL on error. */
char *strbuf_steal(struct strbuf *b);
void strbuf_deinit(struct strbuf *b);
