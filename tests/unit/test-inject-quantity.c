/*
 * Unit tests for inject/quantity.c: Istio validates the proxy resource annotations with
 * resource.ParseQuantity and the injected pod prints them with Quantity.String(), so every
 * accept/reject decision and every byte of expected output here is worked out from
 * apimachinery's code (k8s.io/apimachinery/pkg/api/resource/quantity.go) or taken from its own
 * tables (quantity_test.go TestQuantityParse, TestQuantityString, TestQuantityParseEmit). No
 * Go toolchain runs here, so nothing is compared live against Kubernetes. The quantities
 * found in the conformance goldens (tests/data/istio-inject) are checked one by
 * one with the file they come from. Inputs are also parsed from the very end of a page whose successor is
 * PROT_NONE, at every truncation point, so reading past the terminator crashes the test.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "inject/quantity.h"
#include "tap.h"

struct io {
        const char *in, *want;
};

/* Returns what quantity_canonical() prints for in, or "(error N: why)". */
static const char *canon(const char *in, char *buf, size_t len)
{
        const char *why = NULL;
        int r = quantity_canonical(in, buf, len, &why);

        if (r < 0)
                snprintf(buf, len, "(error %d: %s)", r, why ? why : "no reason");
        return buf;
}

/* Checks a table of input -> printed text, one TAP line per row. */
static void check_table(const struct io *t, size_t n, const char *what)
{
        for (size_t i = 0; i < n; i++) {
                char buf[256];

                TAP_STREQ(canon(t[i].in, buf, sizeof(buf)), t[i].want, "%s: \"%s\" prints as \"%s\"", what, t[i].in,
                          t[i].want);
        }
}

/* Checks that every input is refused with -EINVAL and, when want_why is set, that exact reason. */
static void check_rejected(const char *const *bad, size_t n, const char *want_why, const char *what)
{
        bool ok = true;

        for (size_t i = 0; i < n; i++) {
                struct quantity q;
                const char *why = NULL;
                int r = quantity_parse(bad[i], &q, &why);

                if (r != -EINVAL || !why || (want_why && strcmp(why, want_why) != 0)) {
                        printf("# \"%s\": got %d (%s)\n", bad[i], r, why ? why : "no reason");
                        ok = false;
                }
        }
        tap_ok(ok, "%s", what);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char err_format[] =
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
static const char err_numeric[] = "unable to parse numeric part of quantity";
static const char err_suffix[] = "unable to parse quantity's suffix";

static void test_brief_examples(void)
{
        /*
         * The canonical forms the injector relies on (SEMANTICS.md section 5). "1e3" stays
         * "1e3": String() keeps the exponent format, and ParseQuantity caches this input as
         * canonical (quantity_test.go TestQuantityString: {1, 3, DecimalExponent} -> "1e3").
         */
        static const struct io t[] = {
                { "1000m", "1" },  { "2000m", "2" },   { "1024Mi", "1Gi" }, { "4000m", "4" },
                { "100m", "100m" }, { "128Mi", "128Mi" }, { "0.5", "500m" },  { "1.5Gi", "1536Mi" },
                { "1e3", "1e3" },  { "0", "0" },
        };
        check_table(t, N(t), "canonical form");
}

static void test_golden_quantities(void)
{
        static const struct io t[] = {
                /* chart defaults, in every default golden (e.g. expected/hello.yaml.injected) */
                { "100m", "100m" }, { "128Mi", "128Mi" }, { "2000m", "2" }, { "1024Mi", "1Gi" },
                /* inputs/resource_annotations.yaml -> expected/resource_annotations.yaml.injected */
                { "1000m", "1" }, { "1Gi", "1Gi" }, { "2Gi", "2Gi" },
                /* inputs/traffic-annotations.yaml (proxyCPU 4000m) -> cpu: "4" */
                { "4000m", "4" },
                /* config/proxy-resources-memory-null.iop.yaml -> proxy-resources-memory-null.yaml.injected */
                { "50m", "50m" },
                /* config/proxy-resources-mixed-null.iop.yaml (ephemeral-storage 1Gi, memory 500Mi) */
                { "500Mi", "500Mi" },
                /* config/proxy-resources-null.iop.yaml -> proxy-resources-null{,-no-init}.yaml.injected */
                { "150Mi", "150Mi" },
                /* config/proxy-resources-zero.iop.yaml: cpu "0" -> cpu: "0" */
                { "0", "0" },
                /* inputs/gateway-with-default-container.yaml -> gateway-with-default-container.yaml.injected */
                { "20m", "20m" }, { "80Mi", "80Mi" },
                /* inputs/merge-probers.yaml: user resources already canonical */
                { "2", "2" },
                /* inputs/proxy-override.yaml: cpu 123m and 3000m -> "123m" and "3" */
                { "123m", "123m" }, { "3000m", "3" },
                /* admission/v1-pod-create-job-annotated-dryrun.json: proxyCPU 50m, proxyMemory 64Mi, limit 256Mi */
                { "64Mi", "64Mi" }, { "256Mi", "256Mi" },
        };
        check_table(t, N(t), "golden");
}

static void test_negative(void)
{
        static const struct io t[] = {
                { "-100m", "-100m" }, { "-1000m", "-1" },    { "-1024Mi", "-1Gi" }, { "-1.5Gi", "-1536Mi" },
                { "-0.5", "-500m" },  { "-1e3", "-1e3" },   { "-1000e0", "-1e3" }, { "-0.0000000001", "-1n" },
                { "-1.5Ki", "-1536" }, { "-.001Ki", "-1024m" },
        };
        struct quantity q;
        const char *why;

        check_table(t, N(t), "negative");
        tap_ok(quantity_parse("-0.5", &q, &why) == 0 && q.negative && q.whole == 0 && q.nano == 500000000 &&
               q.format == QUANTITY_DECIMAL_SI,
               "-0.5 parses to negative, 0 whole units and 500000000 nanounits, decimal SI");
}

static void test_zero(void)
{
        static const struct io t[] = {
                { "0", "0" },   { "00", "0" },   { "0.000", "0" }, { ".0", "0" },   { "-0", "0" },
                { "+0", "0" },  { "0n", "0" },   { "0u", "0" },    { "0m", "0" },   { "0k", "0" },
                { "0M", "0" },  { "0G", "0" },   { "0T", "0" },    { "0P", "0" },   { "0E", "0" },
                { "0Ki", "0" }, { "0Mi", "0" },  { "0Gi", "0" },   { "0Ti", "0" },  { "0Pi", "0" },
                { "0Ei", "0" }, { "0e3", "0" },  { "0E-3", "0" },  { "-0.0Mi", "0" }, { "0e2147483647", "0" },
        };
        struct quantity q;
        const char *why;

        check_table(t, N(t), "zero");
        tap_ok(quantity_parse("-0Ki", &q, &why) == 0 && !q.negative && q.whole == 0 && q.nano == 0 &&
               q.format == QUANTITY_BINARY_SI,
               "-0Ki is zero, not negative, and keeps the binary format");
}

static void test_decimal_si(void)
{
        /* quantity_test.go TestQuantityString alternates and TestQuantityParse */
        static const struct io t[] = {
                { "1000M", "1G" },     { "0.001T", "1G" },     { "1000000k", "1G" },  { "1000000000", "1G" },
                { "1000u", "1m" },     { "1.08", "1080m" },    { "1080000000n", "1080m" }, { "50k", "50k" },
                { "8.1k", "8100" },    { "100.0350", "100035m" }, { "10.0350M", "10035k" }, { "0.0005k", "500m" },
                { ".0001k", "100m" },  { "5.4440T", "5444G" }, { "2.5P", "2500T" },   { "1.01E", "1010P" },
                { "9.01", "9010m" },   { "0.001", "1m" },      { "1.0", "1" },        { "1.0G", "1G" },
                { "1000P", "1E" },     { "7.1234560M", "7123456" },
        };
        check_table(t, N(t), "decimal SI");
}

static void test_exponent_format_kept(void)
{
        static const struct io t[] = {
                { "1.5e3", "1500" },   { "1000e0", "1e3" },  { "10e-4", "1e-3" },   { "0.5e-1", "50e-3" },
                { "1.3E+6", "1300e3" }, { "1.2e3", "1200" }, { "1.40e9", "1400e6" }, { "0.5e0", "500e-3" },
                { "1E18", "1E18" },    { "1e-9", "1e-9" },   { "1e-10", "1e-9" },   { "1.1E-9", "2e-9" },
                { "0.5e-9", "1e-9" },  { "1e+3", "1e+3" },   { "1e0003", "1e0003" }, { "100e1", "1e3" },
                { "-.484785E-7466", "-1e-9" }, { "1e-2147483647", "1e-9" },
        };
        check_table(t, N(t), "decimal exponent");
}

static void test_rounding(void)
{
        /* ParseQuantity rounds up (away from zero) to whole nanounits; quantity_test.go "Things that saturate/round" */
        static const struct io t[] = {
                { "0.0000000001", "1n" }, { "0.0000000005", "1n" },   { "0.00000000050", "1n" }, { "0.9n", "1n" },
                { "3.001n", "4n" },       { "0.00000012345", "124n" }, { "0.00000012354", "124n" },
                { "1.0000000001", "1000000001n" },
        };
        check_table(t, N(t), "rounding");
}

static void test_binary(void)
{
        /*
         * A binary value is printed with a binary suffix only when it is whole and at least
         * 1024 in magnitude; otherwise it falls back to decimal SI (quantity.go CanonicalizeBytes,
         * TestQuantityParseEmit).
         */
        static const struct io t[] = {
                { "1Ki", "1Ki" },          { "8Ki", "8Ki" },           { "1000Ki", "1000Ki" },  { "1024Ki", "1Mi" },
                { "1048576Ki", "1Gi" },    { "1024Gi", "1Ti" },        { "1024Ti", "1Pi" },     { "1024Pi", "1Ei" },
                { "3Ei", "3Ei" },          { "1.5Ki", "1536" },        { "0.5Ki", "512" },      { "0.5Mi", "512Ki" },
                { "1.5Mi", "1536Ki" },     { "300Mi", "300Mi" },       { "307200Ki", "300Mi" }, { "1025024Mi", "1001Gi" },
                { "0.05Gi", "53687091200m" }, { "100.035Ki", "102435840m" }, { "1.0001Ki", "1024102400u" },
                { ".001Ki", "1024m" },     { ".000001Ki", "1024u" },   { ".000000001Ki", "1024n" },
                { ".000000000001Ki", "2n" }, { "1.0Ki", "1Ki" },        { "2048.000Ki", "2Mi" },
                { "9.5000000001Gi", "10200547328107374183n" },
        };
        struct quantity q;
        const char *why;

        check_table(t, N(t), "binary SI");
        tap_ok(quantity_parse("1.5Gi", &q, &why) == 0 && !q.negative && q.whole == 1610612736ULL && q.nano == 0 &&
               q.format == QUANTITY_BINARY_SI,
               "1.5Gi parses to 1610612736 whole units in binary format");
        tap_ok(quantity_parse("0.000000000001Ki", &q, &why) == 0 && q.whole == 0 && q.nano == 2 &&
               q.format == QUANTITY_DECIMAL_SI,
               "a binary value below 1 becomes decimal SI at parse time, as ParseQuantity does");
}

static void test_verbatim_cache(void)
{
        /*
         * ParseQuantity keeps the input as the printed text when its fast path takes it as
         * canonical: decimal with a scale that is a multiple of 3, a first digit that is not 0
         * and no trailing "000"; binary with a mantissa that is not a multiple of 8. String()
         * then echoes the input, sign and leading zeros included.
         */
        static const struct io t[] = {
                { "+1Ki", "+1Ki" },    { "01Ki", "01Ki" },      { "1.Ki", "1.Ki" },      { "+8Ki", "8Ki" },
                { "+100m", "+100m" },  { "0100m", "0100m" },    { "1.500k", "1.500k" },  { "+1000m", "1" },
                { "1E3", "1E3" },      { "1500e0", "1500e0" },  { "+0.5", "500m" },      { "1.100", "1.100" },
                { "0.500", "500m" },   { "12e6", "12e6" },      { "+2", "+2" },     { "1.", "1." },          { "1.G", "1.G" },
                { "100.035k", "100.035k" }, { "10.035M", "10.035M" }, { "5.444T", "5.444T" },
                /* past the fast path's precision estimate the text is rebuilt */
                { "+12345678901Ki", "+12345678901Ki" }, { "+123456789011Ki", "123456789011Ki" },
                { "+100000000000000001", "+100000000000000001" },
                { "+1000000000000000001", "1000000000000000001" },
                { "+1Pi", "1Pi" },
        };
        check_table(t, N(t), "verbatim cache");
}

static void test_digitless(void)
{
        /*
         * A number with no digit is zero on ParseQuantity's fast path ("." "-" "m" "Ki") but
         * an ErrNumeric on the slow path (exponents below nano, Pi and Ei), where inf.Dec wants
         * a digit.
         */
        static const struct io t[] = {
                { ".", "0" },   { "+", "0" },  { "-", "0" },   { "-.", "0" }, { "m", "0" },  { "n", "0" },
                { "E", "0" },   { "Ki", "0" }, { "Ti", "0" },  { "+.m", "0" }, { "e5", "0" }, { ".e-9", "0" },
        };
        static const char *const bad[] = { "Pi", "Ei", ".e-10", "-.Ei", "e-12" };

        check_table(t, N(t), "digitless");
        check_rejected(bad, N(bad), err_numeric,
                       "a number with no digit on the slow path (Pi, Ei, below nano) is ErrNumeric");
}

static void test_limits(void)
{
        static const struct io t[] = {
                { "9223372036854775807", "9223372036854775807" },
                { "9.223372036854775807E", "9223372036854775807" },
                { "9223372036854775807000m", "9223372036854775807" },
                { "9E", "9E" },
                { "-9223372036854775807", "-9223372036854775807" },
                /* binary values are capped at 2^63-1 (quantity_test.go: 9Ei and 9223372036854775807Ki) */
                { "9Ei", "9223372036854775807" },
                { "8Ei", "9223372036854775807" },
                { "7Ei", "7Ei" },
                { "9223372036854775807Ki", "9223372036854775807" },
                { "-9Ei", "-9223372036854775807" },
                { "99999999999999999999999999999999999999999999Ki", "9223372036854775807" },
                { "8191.999Pi", "9223370910954868965376m" },
        };
        static const char *const too_big[] = { "9223372036854775808", "9223372036854775807.000000001", "1e19", "10E",
                                               "1e2147483647", "-9223372036854775808", "12E", "9.223372036854775808E",
                                               "99999999999999999999999999999999999999" };
        static const char *const exp_range[] = { "1e2147483648", "1e-2147483648", "1e99999999999999999999" };

        check_table(t, N(t), "limit");
        check_rejected(too_big, N(too_big), "magnitude exceeds 2^63-1",
                       "decimal and exponent values above 2^63-1 in magnitude are refused");
        check_rejected(exp_range, N(exp_range), "exponent out of range (beyond +-2147483647)",
                       "exponents beyond the int32 apimachinery stores them in are refused");
}

static void test_rejected_format(void)
{
        /* quantity_test.go's invalid list and the brief's: all ErrFormatWrong */
        static const char *const bad[] = { "",       "abc",   "1.2.3", "12Mb",   " 1",    "1 ",    " 100m", "100m ",
                                           "1 Gi",   "1.1.M", "1+1.0M", "0.1am", "aoeu",  "-a1",   "1e3x",  "1Ki5x",
                                           "0x10",   "1,5",   "\xef\xbc\x91", "1_000", "1KI" };

        check_rejected(bad, N(bad), err_format,
                       "malformed numbers (empty, letters, two points, unknown unit letters, blanks) are ErrFormatWrong");
}

static void test_rejected_suffix(void)
{
        static const char *const bad[] = { "1e",  "1E+",  "1e-",  "-3.01e-", "0.1mi", ".5i",   "1i",   "-3.01i", "1ki",
                                           "--1", "1kk",  "1mm",  "1Mii",    "1-3",   "1+",    "1Ee3", "1eKi",   "1k3",
                                           "1Ki3", "1ee3", "1mi" };

        check_rejected(bad, N(bad), err_suffix, "unknown suffixes and exponents without digits are ErrSuffix");
}

static void test_rejected_control(void)
{
        static const char *const bad[] = { "1\n", "100m\"\n  - name: injected", "\t1", "1\r", "1\x7f", "\x1b[0m1",
                                           "1\x01", "1Gi\n" };

        check_rejected(bad, N(bad), "contains a control character",
                       "control characters (newline, tab, CR, DEL, ESC) are refused before parsing");
}

static void test_length(void)
{
        char s[QUANTITY_TEXT_MAX + 1], buf[QUANTITY_TEXT_MAX];
        const char *why = NULL;

        /* 60 zeros and "0.5": 63 bytes, not cached (the mantissa starts with 0) */
        memset(s, '0', QUANTITY_TEXT_MAX - 4);
        memcpy(s + QUANTITY_TEXT_MAX - 4, "0.5", 4);
        TAP_STREQ(canon(s, buf, sizeof(buf)), "500m", "an input of %d bytes is accepted", QUANTITY_TEXT_MAX - 1);
        /* 62 zeros and "1": cached, so String() echoes all 63 bytes */
        memset(s, '0', QUANTITY_TEXT_MAX - 2);
        memcpy(s + QUANTITY_TEXT_MAX - 2, "1", 2);
        TAP_STREQ(canon(s, buf, sizeof(buf)), s, "a cached input of %d bytes is echoed whole", QUANTITY_TEXT_MAX - 1);
        memcpy(s + QUANTITY_TEXT_MAX - 2, "1m", 3);
        tap_ok(quantity_canonical(s, buf, sizeof(buf), &why) == -EINVAL && why &&
               strcmp(why, "longer than 63 bytes") == 0,
               "an input of %d bytes is refused", QUANTITY_TEXT_MAX);
}

static void test_longest_output_fits(void)
{
        static const char *const in[] = { "-9223372036854775806.999999999", "-9223372036854775806.999999999e0",
                                           "-0.000000001e0", "-9223372036854775806.000000001Ki" };
        bool ok = true;

        for (size_t i = 0; i < N(in); i++) {
                char buf[256];

                canon(in[i], buf, sizeof(buf));
                if (buf[0] == '(' || strlen(buf) >= QUANTITY_TEXT_MAX) {
                        printf("# \"%s\" -> \"%s\"\n", in[i], buf);
                        ok = false;
                }
        }
        tap_ok(ok, "the longest canonical texts (28 digits and a suffix) fit QUANTITY_TEXT_MAX");
}

static void test_small_buffer(void)
{
        char buf[5];
        const char *why;

        memset(buf, 'x', sizeof(buf));
        tap_ok(quantity_canonical("+100m", buf, 4, &why) == 0 && strcmp(buf, "+10") == 0 && buf[4] == 'x',
               "a short buffer gets a truncated, terminated text and nothing is written past it");
        memset(buf, 'x', sizeof(buf));
        tap_ok(quantity_canonical("1.5Mi", buf, 3, &why) == 0 && strcmp(buf, "15") == 0 && buf[3] == 'x',
               "the canonical (uncached) path truncates the same way");
}

static void test_error_leaves_buffer(void)
{
        char buf[16] = "untouched";
        const char *why = NULL;

        struct quantity q;

        tap_ok(quantity_canonical("1.2.3", buf, sizeof(buf), &why) == -EINVAL && strcmp(buf, "untouched") == 0 &&
               why != NULL,
               "quantity_canonical leaves the buffer alone on error and sets a reason");
        tap_ok(quantity_parse("1e19", &q, &why) == -EINVAL && q.whole == 0 && q.nano == 0 && !q.negative &&
               q.verbatim[0] == '\0',
               "a refused quantity leaves *ret zeroed, even when refused after the arithmetic");
        tap_ok(quantity_parse("abc", &q, NULL) == -EINVAL && quantity_parse("1Gi", &q, NULL) == 0,
               "why may be NULL");
}

static char *guard_page;
static size_t page_size;

/* Copies the first n bytes of s so that their terminating NUL is the last byte before a PROT_NONE page. */
static const char *at_page_end(const char *s, size_t n)
{
        char *p = guard_page + page_size - (n + 1);

        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

static bool setup_guard(void)
{
        long ps = sysconf(_SC_PAGESIZE);

        page_size = ps > 0 ? (size_t)ps : 4096;
        guard_page = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_page == MAP_FAILED)
                return false;
        return mprotect(guard_page + page_size, page_size, PROT_NONE) == 0;
}

/* valid[] lists the truncation lengths that are themselves valid input. */
static void check_truncations(const char *s, const size_t *valid, size_t n_valid)
{
        size_t len = strlen(s);
        bool ok = true;

        for (size_t n = 0; n <= len; n++) {
                struct quantity q;
                const char *why;
                bool want = false;
                int r = quantity_parse(at_page_end(s, n), &q, &why);

                for (size_t i = 0; i < n_valid; i++)
                        want |= valid[i] == n;
                if ((r == 0) != want) {
                        printf("# \"%.*s\": got %d\n", (int)n, s, r);
                        ok = false;
                }
        }
        tap_ok(ok, "every truncation of \"%s\" placed against a PROT_NONE page gives the right verdict", s);
}

static void test_truncations(void)
{
        /* "-" alone is zero to ParseQuantity; "-1.5e" and "-1.5e-" have an exponent without digits */
        static const size_t neg_exp[] = { 1, 2, 3, 4, 7 };
        /* "1", "12", ... "123.45", "123.45M" (mega) and "123.45Mi" */
        static const size_t bin[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        /* "1", "10", "100" and "100m" */
        static const size_t milli[] = { 1, 2, 3, 4 };

        if (!setup_guard()) {
                tap_ok(false, "could not map a guard page");
                return;
        }
        check_truncations("-1.5e-3", neg_exp, N(neg_exp));
        check_truncations("123.45Mi", bin, N(bin));
        check_truncations("100m", milli, N(milli));
        munmap(guard_page, 2 * page_size);
}

int main(void)
{
        test_brief_examples();
        test_golden_quantities();
        test_negative();
        test_zero();
        test_decimal_si();
        test_exponent_format_kept();
        test_rounding();
        test_binary();
        test_verbatim_cache();
        test_digitless();
        test_limits();
        test_rejected_format();
        test_rejected_suffix();
        test_rejected_control();
        test_length();
        test_longest_output_fits();
        test_small_buffer();
        test_error_leaves_buffer();
        test_truncations();
        return tap_done();
}
