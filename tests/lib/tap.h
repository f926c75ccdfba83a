/*
 * Minimal TAP producer for unit tests: `ok N - description` lines and a plan at the end, so
 * Meson's TAP protocol counts each behaviour separately.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tap_ok(bool cond, const char *fmt, ...)
{
        va_list ap;

        printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        if (!cond)
                tap_failed++;
        fflush(stdout);
}

static inline void tap_skip_all(const char *why)
{
        printf("1..0 # SKIP %s\n", why);
}

static inline int tap_done(void)
{
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}

/* Compares two strings and prints both on a mismatch. */
#define TAP_STREQ(got, want, ...) do { \
        const char *tap_g_ = (got), *tap_w_ = (want); \
        bool tap_eq_ = tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0; \
        if (!tap_eq_) \
                printf("# got:  [%s]\n# want: [%s]\n", tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)"); \
        tap_ok(tap_eq_, __VA_ARGS__); \
} while (0)
