/*
 * Go's duration and boolean grammars; see go_value.h. The duration parser follows the
 * structure of Go's src/time/format.go ParseDuration (leadingInt, leadingFraction, unitMap)
 * step by step, overflow checks included, so the two accept and refuse the same strings and
 * compute the same nanoseconds.
 */
#include <errno.h>
#include <string.h>

#include "common/go_value.h"

#define NS_MAX_ABS ((uint64_t)1 << 63)  /* |INT64_MIN|: the largest magnitude Go allows a component */

static const struct {
        const char *name;
        uint64_t ns;
} units[] = {
        { "ns", 1 },
        { "us", 1000 },
        { "\xc2\xb5s", 1000 },          /* U+00B5 MICRO SIGN */
        { "\xce\xbcs", 1000 },          /* U+03BC GREEK SMALL LETTER MU */
        { "ms", 1000000 },
        { "s", 1000000000 },
        { "m", 60ull * 1000000000 },
        { "h", 3600ull * 1000000000 },
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Go's leadingInt: [0-9]*, refusing a value above 1<<63. */
static int leading_int(const char **s, uint64_t *ret)
{
        uint64_t x = 0;

        for (; is_digit(**s); (*s)++) {
                if (x > NS_MAX_ABS / 10)
                        return -ERANGE;
                x = x * 10 + (uint64_t)(**s - '0');
                if (x > NS_MAX_ABS)
                        return -ERANGE;
        }
        *ret = x;
        return 0;
}

/* Go's leadingFraction: [0-9]*, keeping as many digits as fit and ignoring the rest. */
static void leading_fraction(const char **s, uint64_t *ret, double *ret_scale)
{
        uint64_t x = 0;
        double scale = 1;
        bool overflow = false;

        for (; is_digit(**s); (*s)++) {
                uint64_t y;

                if (overflow)
                        continue;
                if (x > (NS_MAX_ABS - 1) / 10) {
                        overflow = true;
                        continue;
                }
                y = x * 10 + (uint64_t)(**s - '0');
                if (y > NS_MAX_ABS) {
                        overflow = true;
                        continue;
                }
                x = y;
                scale *= 10;
        }
        *ret = x;
        *ret_scale = scale;
}

static int fail(const char **ret_why, const char *why, int r)
{
        if (ret_why)
                *ret_why = why;
        return r;
}

int go_value_duration(const char *s, int64_t *ret_ns, const char **ret_why)
{
        uint64_t d = 0;
        bool neg = false;

        if (*s == '-' || *s == '+') {
                neg = *s == '-';
                s++;
        }
        if (strcmp(s, "0") == 0) {
                *ret_ns = 0;
                return 0;
        }
        if (!*s)
                return fail(ret_why, "malformed", -EINVAL);
        while (*s) {
                const char *start = s;
                uint64_t v, f = 0, unit = 0;
                double scale = 1;
                bool pre, post = false;
                size_t ulen;

                if (!(*s == '.' || is_digit(*s)))
                        return fail(ret_why, "malformed", -EINVAL);
                if (leading_int(&s, &v) < 0)
                        return fail(ret_why, "out of range", -ERANGE);
                pre = s != start;
                if (*s == '.') {
                        const char *frac = ++s;
                        leading_fraction(&s, &f, &scale);
                        post = s != frac;
                }
                if (!pre && !post)
                        return fail(ret_why, "malformed", -EINVAL);
                /* The unit is everything up to the next number: "1e3s" has the unit "e". */
                ulen = strcspn(s, ".0123456789");
                if (ulen == 0)
                        return fail(ret_why, "missing unit", -EINVAL);
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !unit; i++)
                        if (strlen(units[i].name) == ulen && memcmp(s, units[i].name, ulen) == 0)
                                unit = units[i].ns;
                if (!unit)
                        return fail(ret_why, "unknown unit", -EINVAL);
                s += ulen;
                if (v > NS_MAX_ABS / unit)
                        return fail(ret_why, "out of range", -ERANGE);
                v *= unit;
                if (f > 0) {
                        /* Go: float64 keeps a fraction of an hour exact to the nanosecond. */
                        v += (uint64_t)((double)f * ((double)unit / scale));
                        if (v > NS_MAX_ABS)
                                return fail(ret_why, "out of range", -ERANGE);
                }
                /* Go adds first and compares after, so two components of 1<<63 wrap to 0 and
                 * "9223372036854775808ns9223372036854775808ns" parses as 0 there; refused here. */
                if (v > NS_MAX_ABS - d)
                        return fail(ret_why, "out of range", -ERANGE);
                d += v;
        }
        if (neg) {
                *ret_ns = d == NS_MAX_ABS ? INT64_MIN : -(int64_t)d;
                return 0;
        }
        if (d > NS_MAX_ABS - 1)
                return fail(ret_why, "out of range", -ERANGE);
        *ret_ns = (int64_t)d;
        return 0;
}

int go_value_bool(const char *s, bool *ret)
{
        static const char *const spellings[] = {
                "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
        };

        for (size_t i = 0; s && i < sizeof(spellings) / sizeof(spellings[0]); i++) {
                if (strcmp(s, spellings[i]) == 0) {
                        *ret = i < 6;
                        return 0;
                }
        }
        return -EINVAL;
}
