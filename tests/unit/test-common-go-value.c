/*
 * Unit tests for common/go_value.c. The duration cases are Go's own (go/src/time/time_test.go
 * parseDurationTests and parseDurationErrorTests), plus the ones Istio's values meet (".5s",
 * "1.s", "1e3s", "1d"), so every accept/refuse decision and every nanosecond matches
 * time.ParseDuration; the boolean cases are strconv's atob_test.go. Each duration is also parsed
 * from the very end of a page whose successor is PROT_NONE, so a read past the terminator
 * crashes instead of passing by luck.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/go_value.h"
#include "guard.h"
#include "tap.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static struct guard guard;

/* s copied so that its NUL is the last byte before a PROT_NONE page. */
static const char *at_guard(const char *s)
{
        return guard_copy(&guard, s, strlen(s) + 1);
}

static void test_go_accepts(void)
{
        static const struct {
                const char *in;
                int64_t ns;
        } cases[] = {
                { "0", 0 }, { "5s", 5 * SEC }, { "30s", 30 * SEC }, { "1478s", 1478 * SEC },
                { "-5s", -5 * SEC }, { "+5s", 5 * SEC }, { "-0", 0 }, { "+0", 0 },
                { "5.0s", 5 * SEC }, { "5.6s", 5 * SEC + 600 * MS }, { "5.s", 5 * SEC }, { ".5s", 500 * MS },
                { "1.0s", SEC }, { "1.00s", SEC }, { "1.004s", SEC + 4 * MS }, { "1.0040s", SEC + 4 * MS },
                { "100.00100s", 100 * SEC + MS },
                { "10ns", 10 }, { "11us", 11 * US }, { "12\xc2\xb5s", 12 * US }, { "12\xce\xbcs", 12 * US },
                { "13ms", 13 * MS }, { "14s", 14 * SEC }, { "15m", 15 * MIN }, { "16h", 16 * HOUR },
                { "3h30m", 3 * HOUR + 30 * MIN }, { "10.5s4m", 4 * MIN + 10 * SEC + 500 * MS },
                { "-2m3.4s", -(2 * MIN + 3 * SEC + 400 * MS) },
                { "1h2m3s4ms5us6ns", HOUR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6 },
                { "39h9m14.425s", 39 * HOUR + 9 * MIN + 14 * SEC + 425 * MS },
                { "52763797000ns", 52763797000LL },
                { "0.3333333333333333333h", 20 * MIN },
                { "9007199254740993ns", (1LL << 53) + 1 },
                { "9223372036854775807ns", INT64_MAX },
                { "9223372036854775.807us", INT64_MAX },
                { "9223372036s854ms775us807ns", INT64_MAX },
                { "-9223372036854775808ns", INT64_MIN },
                { "-9223372036854775.808us", INT64_MIN },
                { "-9223372036s854ms775us808ns", INT64_MIN },
                { "-2562047h47m16.854775808s", INT64_MIN },
                { "0.100000000000000000000h", 6 * MIN },
                { "0.830103483285477580700h", 49 * MIN + 48 * SEC + 372539827 },
                /* the brief's and Istio's: */
                { "1h2m3.5s", HOUR + 2 * MIN + 3 * SEC + 500 * MS }, { "1.s", SEC }, { "-1.5h", -(HOUR + 30 * MIN) },
                { "1m30s", 90 * SEC }, { "500ms", 500 * MS },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t ns = 42;
                const char *why = NULL;
                int r = go_value_duration(at_guard(cases[i].in), &ns, &why);

                if (r != 0)
                        printf("# %s: %d (%s)\n", cases[i].in, r, why);
                else if (ns != cases[i].ns)
                        printf("# %s: %lld, want %lld\n", cases[i].in, (long long)ns, (long long)cases[i].ns);
                tap_ok(r == 0 && ns == cases[i].ns, "\"%s\" is %lld ns, as in Go", cases[i].in, (long long)cases[i].ns);
        }
}

static void test_go_refuses(void)
{
        static const struct {
                const char *in;
                int r;
                const char *why;
        } cases[] = {
                { "", -EINVAL, "malformed" }, { "3", -EINVAL, "missing unit" },
                { "1", -EINVAL, "missing unit" }, { "-", -EINVAL, "malformed" },
                { "s", -EINVAL, "malformed" }, { ".", -EINVAL, "malformed" },
                { "-.", -EINVAL, "malformed" }, { ".s", -EINVAL, "malformed" },
                { "+.s", -EINVAL, "malformed" }, { "1d", -EINVAL, "unknown unit" },
                { "\x85\x85", -EINVAL, "malformed" }, { "\xff" "ff", -EINVAL, "malformed" },
                { "hello \xff" "ff world", -EINVAL, "malformed" },
                { "\xef\xbf\xbd", -EINVAL, "malformed" },
                { "1e3s", -EINVAL, "unknown unit" }, { "0x10s", -EINVAL, "unknown unit" },
                { "5 s", -EINVAL, "unknown unit" }, { " 5s", -EINVAL, "malformed" },
                { "5s ", -EINVAL, "unknown unit" }, { "1mss", -EINVAL, "unknown unit" },
                { "1S", -EINVAL, "unknown unit" }, { "--5s", -EINVAL, "malformed" },
                { "1..5s", -EINVAL, "missing unit" }, { "00", -EINVAL, "missing unit" },
                { "9223372036854775810ns", -ERANGE, "out of range" },
                { "9223372036854775808ns", -ERANGE, "out of range" },
                { "-9223372036854775809ns", -ERANGE, "out of range" },
                { "9223372036854776us", -ERANGE, "out of range" },
                { "3000000h", -ERANGE, "out of range" },
                { "9223372036854775.808us", -ERANGE, "out of range" },
                { "9223372036854ms775us808ns", -ERANGE, "out of range" },
                { "99999999999999999999999s", -ERANGE, "out of range" },
                /* Go wraps this sum to 0 and accepts it; refused here (see go_value.c). */
                { "9223372036854775808ns9223372036854775808ns", -ERANGE, "out of range" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t ns = 42;
                const char *why = NULL;
                int r = go_value_duration(at_guard(cases[i].in), &ns, &why);

                if (r != cases[i].r || !why || strcmp(why, cases[i].why) != 0)
                        printf("# r=%d why=%s\n", r, why ? why : "(null)");
                tap_ok(r == cases[i].r && ns == 42 && why && strcmp(why, cases[i].why) == 0,
                       "\"%s\" is refused (%s) and the result left alone", cases[i].in, cases[i].why);
        }
}

static void test_why_is_optional(void)
{
        int64_t ns;

        tap_ok(go_value_duration("1d", &ns, NULL) == -EINVAL && go_value_duration("5s", &ns, NULL) == 0 && ns == 5 * SEC,
               "ret_why may be NULL");
}

static void test_bool(void)
{
        static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
        static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
        static const char *const bad[] = { "", "asdf", "yes", "no", "on", "off", "y", "n", "tRUE", "fALSE",
                                           " true", "true ", "2", "01", "enabled" };
        bool ok = true, b;

        for (size_t i = 0; i < 6; i++) {
                b = false;
                ok &= go_value_bool(yes[i], &b) == 0 && b;
                b = true;
                ok &= go_value_bool(no[i], &b) == 0 && !b;
        }
        tap_ok(ok, "the twelve spellings of strconv.ParseBool parse to their value");
        ok = true;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                b = true;
                if (go_value_bool(bad[i], &b) != -EINVAL || !b) {
                        printf("# accepted \"%s\"\n", bad[i]);
                        ok = false;
                }
        }
        tap_ok(ok, "everything else (yes, on, tRUE, spaces, empty, enabled) is -EINVAL and leaves the result alone");
        tap_ok(go_value_bool(NULL, &b) == -EINVAL, "NULL is -EINVAL");
}

int main(void)
{
        if (guard_init(&guard) < 0) {
                tap_skip_all("no guard page");
                return 1;
        }
        test_go_accepts();
        test_go_refuses();
        test_why_is_optional();
        test_bool();
        return tap_done();
}
