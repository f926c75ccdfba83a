/*
 * Minimal TAP producer for unit tests: `ok N - description` lines and a plan at the end, so
 * Meson's TAP protocol counts each behaviour separately. A subtest that cannot run here is a
 * TAP skip, except under CI=true, where every skip is a failure (STYLE.md section 7; the e2e
 * tests' lib.sh does the same): there the prerequisites are installed, so a skip hides a fault.
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

/* True under CI=true, where a skip counts as a failure. */
static inline bool tap_ci(void)
{
        const char *ci = getenv("CI");

        return ci && strcmp(ci, "true") == 0;
}

/*
 * A subtest that cannot run here because `why` (a missing prerequisite): "ok N - desc # SKIP
 * why", or under CI=true "not ok N - desc (skipped under CI=true: why)".
 */
static inline void tap_skip(const char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tap_skip(const char *why, const char *fmt, ...)
{
        bool ci = tap_ci();
        va_list ap;

        printf("%sok %d - ", ci ? "not " : "", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        if (ci) {
                printf(" (skipped under CI=true: %s)\n", why);
                tap_failed++;
        } else {
                printf(" # SKIP %s\n", why);
        }
        fflush(stdout);
}

/*
 * The whole test cannot run here because `why`: the plan "1..0 # SKIP why", after which the
 * caller returns 0. Under CI=true that is a failure: one "not ok" line and the plan instead
 * (Meson fails a TAP test with a "not ok" whatever its exit status).
 */
static inline void tap_skip_all(const char *why)
{
        if (tap_ci()) {
                printf("not ok %d - the test cannot run (skipped under CI=true: %s)\n1..%d\n", tap_n + 1, why, tap_n + 1);
                tap_n++;
                tap_failed++;
                return;
        }
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
