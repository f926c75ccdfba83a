/*
 * Kubernetes quantities: quantity_parse() follows apimachinery's ParseQuantity and
 * quantity_format() its Quantity.String() (k8s.io/apimachinery/pkg/api/resource,
 * quantity.go and amount.go); the contract is in quantity.h.
 *
 * The arithmetic is done on decimal digits as text: the input's digits, doubled 10k times for
 * a binary suffix, shifted by the decimal exponent and rounded up to whole nanounits. That is
 * exact for any input up to the length limit without a big-number library, and the result
 * always fits whole + nano because a magnitude above 2^63-1 is capped or refused first.
 *
 * ParseQuantity has a fast path for short inputs, and two of its side effects are visible
 * from outside, so they are reproduced here rather than left to the general arithmetic: it
 * caches the input as the printed text when it thinks the input is canonical, and an input
 * with no digits at all (".", "-", "m") is zero there but a parse error on the slow path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "inject/quantity.h"

/* apimachinery's ErrFormatWrong, ErrNumeric and ErrSuffix, so the reason reads as Kubernetes' would. */
static const char err_format[] =
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
static const char err_numeric[] = "unable to parse numeric part of quantity";
static const char err_suffix[] = "unable to parse quantity's suffix";

#define NANOS_PER_UNIT 1000000000u
#define MAX_WHOLE ((uint64_t)INT64_MAX)
/* Digits of (2^63-1) * 10^9, the largest magnitude in nanounits. */
#define MAX_NANO_DIGITS 28
/* apimachinery stores the exponent in an int32 that it later negates. */
#define MAX_EXPONENT 2147483647LL

static const struct {
        const char *name;
        enum quantity_format format;
        int exponent;                   /* of 10; of 2 for the binary suffixes */
} suffixes[] = {
        { "", QUANTITY_DECIMAL_SI, 0 },
        { "n", QUANTITY_DECIMAL_SI, -9 },
        { "u", QUANTITY_DECIMAL_SI, -6 },
        { "m", QUANTITY_DECIMAL_SI, -3 },
        { "k", QUANTITY_DECIMAL_SI, 3 },
        { "M", QUANTITY_DECIMAL_SI, 6 },
        { "G", QUANTITY_DECIMAL_SI, 9 },
        { "T", QUANTITY_DECIMAL_SI, 12 },
        { "P", QUANTITY_DECIMAL_SI, 15 },
        { "E", QUANTITY_DECIMAL_SI, 18 },       /* looked up before "E" as an exponent: 1E is 10^18 */
        { "Ki", QUANTITY_BINARY_SI, 10 },
        { "Mi", QUANTITY_BINARY_SI, 20 },
        { "Gi", QUANTITY_BINARY_SI, 30 },
        { "Ti", QUANTITY_BINARY_SI, 40 },
        { "Pi", QUANTITY_BINARY_SI, 50 },
        { "Ei", QUANTITY_BINARY_SI, 60 },
};

/* Printed decimal-SI suffixes by exponent, -9 to 18 in steps of 3. */
static const char *const decimal_suffix[] = { "n", "u", "m", "", "k", "M", "G", "T", "P", "E" };
static const char *const binary_suffix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static int fail(const char **why, const char *reason)
{
        if (why)
                *why = reason;
        return -EINVAL;
}

/*
 * Interprets the suffix text [s, s+n). Exponents follow Go's strconv.ParseInt: an optional
 * sign and at least one digit, leading zeros allowed.
 */
static int suffix_interpret(const char *s, size_t n, enum quantity_format *ret_format, long long *ret_exp,
                            const char **why)
{
        long long e = 0;
        bool neg = false;
        size_t i = 1;

        for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++)
                if (strlen(suffixes[k].name) == n && memcmp(suffixes[k].name, s, n) == 0) {
                        *ret_format = suffixes[k].format;
                        *ret_exp = suffixes[k].exponent;
                        return 0;
                }
        if (n < 2 || (s[0] != 'e' && s[0] != 'E'))
                return fail(why, err_suffix);
        if (s[i] == '+' || s[i] == '-')
                neg = s[i++] == '-';
        if (i == n)
                return fail(why, err_suffix);
        for (; i < n; i++) {
                if (!is_digit(s[i]))
                        return fail(why, err_suffix);
                /* saturate; the input is short, so this cannot loop for long */
                if (e <= MAX_EXPONENT)
                        e = e * 10 + (s[i] - '0');
        }
        if (e > MAX_EXPONENT)
                return fail(why, "exponent out of range (beyond +-2147483647)");
        *ret_format = QUANTITY_DECIMAL_EXPONENT;
        *ret_exp = neg ? -e : e;
        return 0;
}

/* Doubles the little-endian decimal digit string dig[0..*n) in place; the caller leaves room for one more digit. */
static void digits_double(unsigned char *dig, size_t *n)
{
        unsigned carry = 0;

        for (size_t i = 0; i < *n; i++) {
                unsigned v = dig[i] * 2u + carry;
                dig[i] = (unsigned char)(v % 10);
                carry = v / 10;
        }
        if (carry)
                dig[(*n)++] = (unsigned char)carry;
}

/*
 * Whether ParseQuantity's fast path takes the number (num: integer digits after leading
 * zeros, counted as one digit when there are none; frac: digits after the point) and, if so,
 * whether it caches the input as the printed text. The fast path needs the value as an int64
 * mantissa with a scale of at least nano; its precision estimates are copied as they are
 * (15 - digits - 3 per binary step - 1 for binary, 18 - digits for decimal), since the cache
 * decision depends on them.
 */
static bool fast_path(const char *int_start, size_t int_len, const char *frac, size_t frac_len,
                      enum quantity_format format, long long exp, bool *ret_cache)
{
        long long num_len = int_len ? (long long)int_len : 1;
        char shifted[20];
        size_t n;

        *ret_cache = false;
        if (format == QUANTITY_BINARY_SI) {
                uint64_t v = 0;

                if (frac_len > 0 || 14 - num_len - 3 * (exp / 10) < 0)
                        return false;
                for (size_t i = 0; i < int_len; i++)
                        v = v * 10 + (uint64_t)(int_start[i] - '0');
                /* quantity.go keeps the text when the mantissa is not a multiple of 8 */
                *ret_cache = (v & 7) != 0;
                return true;
        }
        if (18 - num_len - (long long)frac_len < 0 || exp - (long long)frac_len < -9)
                return false;
        /*
         * quantity.go keeps the text when the scale is a multiple of 3 and "shifted" (the
         * integer digits, or "0", then the fraction digits; at most 18 here) neither starts
         * with 0 nor ends in 000.
         */
        if ((exp - (long long)frac_len) % 3 != 0 || int_len == 0)
                return true;
        memcpy(shifted, int_start, int_len);
        memcpy(shifted + int_len, frac, frac_len);
        n = int_len + frac_len;
        *ret_cache = n < 3 || memcmp(shifted + n - 3, "000", 3) != 0;
        return true;
}

int quantity_parse(const char *s, struct quantity *ret, const char **why)
{
        const char *p = s, *int_start, *int_end, *frac_start, *frac_end, *suf;
        /* 62 input digits, 19 more from 2^60, one spare for the last doubling */
        unsigned char dig[96];
        char nanos[MAX_NANO_DIGITS + 1];
        enum quantity_format format;
        size_t len = strlen(s), n = 0, lo = 0, m, k = 0, i;
        bool negative = false, has_digit, cache, fast, too_big = false;
        long long exp, f;
        int r;

        memset(ret, 0, sizeof(*ret));
        if (why)
                *why = NULL;
        if (len == 0)
                return fail(why, err_format);
        /* Istio refuses these before parsing, as they could break out of the template's YAML. */
        for (i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return fail(why, "contains a control character");
        if (len >= QUANTITY_TEXT_MAX)
                return fail(why, "longer than 63 bytes");

        if (*p == '+' || *p == '-')
                negative = *p++ == '-';
        int_start = p;
        while (is_digit(*p))
                p++;
        int_end = p;
        has_digit = int_end > int_start;
        while (int_start < int_end && *int_start == '0')
                int_start++;
        frac_start = frac_end = p;
        if (*p == '.') {
                frac_start = ++p;
                while (is_digit(*p))
                        p++;
                frac_end = p;
                has_digit |= frac_end > frac_start;
        }
        suf = p;
        while (*p && strchr("eEinumkKMGTP", *p))
                p++;
        if (*p == '+' || *p == '-')
                p++;
        while (is_digit(*p))
                p++;
        if (*p)
                return fail(why, err_format);
        r = suffix_interpret(suf, (size_t)(p - suf), &format, &exp, why);
        if (r < 0)
                return r;

        fast = fast_path(int_start, (size_t)(int_end - int_start), frac_start, (size_t)(frac_end - frac_start),
                         format, exp, &cache);
        /* the slow path hands the number to inf.Dec, which wants at least one digit */
        if (!has_digit && !fast)
                return fail(why, err_numeric);

        /* little-endian digits of the mantissa: fraction then integer part */
        for (const char *q = frac_end; q > frac_start;)
                dig[n++] = (unsigned char)(*--q - '0');
        for (const char *q = int_end; q > int_start;)
                dig[n++] = (unsigned char)(*--q - '0');
        while (n > 0 && dig[n - 1] == 0)
                n--;
        ret->format = format;
        if (n == 0)
                return 0;       /* zero, whatever the suffix */

        f = 9 - (long long)(frac_end - frac_start);     /* power of ten of dig[0] in nanounits */
        if (format == QUANTITY_BINARY_SI)
                for (long long b = 0; b < exp; b++)
                        digits_double(dig, &n);
        else
                f += exp;
        while (dig[lo] == 0)
                lo++;
        f += (long long)lo;
        m = n - lo;

        /*
         * nanounits = ceil(digits * 10^f). The lowest digit left is not zero, so a negative f
         * always leaves a fraction, which Kubernetes rounds up (away from zero) to one nanounit.
         */
        if (f >= 0) {
                if ((long long)m + f > MAX_NANO_DIGITS)
                        too_big = true;
                else {
                        for (i = 0; i < m; i++)
                                nanos[k++] = (char)('0' + dig[n - 1 - i]);
                        for (long long z = 0; z < f; z++)
                                nanos[k++] = '0';
                }
        } else if ((long long)m > -f) {
                size_t keep = m - (size_t)-f;

                if (keep > MAX_NANO_DIGITS)
                        too_big = true;
                else
                        for (i = 0; i < keep; i++)
                                nanos[k++] = (char)('0' + dig[n - 1 - i]);
        }
        if (!too_big) {
                size_t split = k > 9 ? k - 9 : 0;

                for (i = 0; i < split; i++)
                        ret->whole = ret->whole * 10 + (uint64_t)(nanos[i] - '0');
                for (i = split; i < k; i++)
                        ret->nano = ret->nano * 10 + (uint32_t)(nanos[i] - '0');
                if (f < 0 && ++ret->nano == NANOS_PER_UNIT) {
                        ret->nano = 0;
                        ret->whole++;
                }
                too_big = ret->whole > MAX_WHOLE || (ret->whole == MAX_WHOLE && ret->nano > 0);
        }
        if (too_big) {
                if (format != QUANTITY_BINARY_SI) {
                        memset(ret, 0, sizeof(*ret));
                        return fail(why, "magnitude exceeds 2^63-1");
                }
                /* ParseQuantity caps binary values instead: "9Ei" is 9223372036854775807 */
                ret->whole = MAX_WHOLE;
                ret->nano = 0;
        }
        /* as ParseQuantity does, so 0.000000000001Ki prints as "2n" */
        if (format == QUANTITY_BINARY_SI && ret->whole == 0)
                ret->format = QUANTITY_DECIMAL_SI;
        ret->negative = negative;
        if (fast && cache)
                memcpy(ret->verbatim, s, len + 1);
        return 0;
}

void quantity_format(const struct quantity *q, char *buf, size_t len)
{
        const char *sign = q->negative ? "-" : "";
        enum quantity_format format = q->format;
        char digits[48], *d;
        int n, e = -9;

        if (len == 0)
                return;
        if (q->verbatim[0]) {
                snprintf(buf, len, "%s", q->verbatim);
                return;
        }
        if (q->whole == 0 && q->nano == 0) {
                snprintf(buf, len, "0");
                return;
        }
        if (format == QUANTITY_BINARY_SI) {
                /* binary only for whole values of at least 1024; anything else would round */
                if (q->whole >= 1024 && q->nano == 0) {
                        uint64_t v = q->whole;
                        unsigned steps = 0;

                        while (v % 1024 == 0) {
                                v /= 1024;
                                steps++;
                        }
                        snprintf(buf, len, "%s%" PRIu64 "%s", sign, v, binary_suffix[steps]);
                        return;
                }
                format = QUANTITY_DECIMAL_SI;
        }

        /* the value in nanounits, then the largest exponent (a multiple of 3) that keeps it whole */
        n = snprintf(digits, sizeof(digits), "%" PRIu64 "%09" PRIu32, q->whole, q->nano);
        d = digits;
        while (*d == '0') {
                d++;
                n--;
        }
        while (d[n - 1] == '0') {
                n--;
                e++;
        }
        while (e % 3 != 0) {
                d[n++] = '0';
                e--;
        }
        d[n] = '\0';
        if (format == QUANTITY_DECIMAL_SI)
                snprintf(buf, len, "%s%s%s", sign, d, decimal_suffix[(e + 9) / 3]);
        else if (e == 0)
                snprintf(buf, len, "%s%s", sign, d);
        else
                snprintf(buf, len, "%s%se%d", sign, d, e);
}

int quantity_canonical(const char *s, char *buf, size_t len, const char **why)
{
        struct quantity q;
        int r = quantity_parse(s, &q, why);

        if (r < 0)
                return r;
        quantity_format(&q, buf, len);
        return 0;
}
