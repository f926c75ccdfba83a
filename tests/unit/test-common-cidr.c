/*
 * Unit tests for common/cidr.c: Istio parses -i/-x with Go's netip.ParsePrefix and pastes
 * prefix.String() into the rules, so every accept/reject decision and every byte of the
 * canonical text here is checked against what Go does (go/src/net/netip/netip.go:
 * ParsePrefix, Addr.String). Each input is also parsed from the very end of a page whose
 * successor is PROT_NONE, at every truncation point, so a parser that reads one byte past
 * the terminator crashes instead of passing by luck.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cidr.h"
#include "tap.h"

/* Returns the canonical text of a parsed prefix, or "(error N)". */
static const char *fmt_prefix(const char *in, char *buf, size_t len)
{
        struct cidr c;
        int r = cidr_parse(in, &c);

        if (r < 0)
                snprintf(buf, len, "(error %d)", r);
        else
                cidr_format(&c, buf, len);
        return buf;
}

static void test_ipv4_prefix_parses(void)
{
        struct cidr c;
        char buf[80];
        int r = cidr_parse("10.0.0.0/8", &c);

        cidr_format(&c, buf, sizeof(buf));
        tap_ok(r == 0 && c.family == AF_INET && c.prefix_len == 8 && strcmp(buf, "10.0.0.0/8") == 0,
               "an IPv4 prefix parses to AF_INET with its length and formats back unchanged");
}

static void test_host_bits_kept(void)
{
        char buf[80];

        TAP_STREQ(fmt_prefix("10.1.2.3/8", buf, sizeof(buf)), "10.1.2.3/8",
                  "host bits are kept as written, as netip.Prefix.String() prints them (no masking)");
}

static void test_prefix_required(void)
{
        struct cidr c;

        tap_ok(cidr_parse("10.0.0.1", &c) == -EINVAL && cidr_parse("2001:db8::1", &c) == -EINVAL,
               "a bare address without /len is rejected with -EINVAL (ParsePrefix: no '/')");
}

static void test_ipv4_leading_zeros_rejected(void)
{
        struct cidr c;

        tap_ok(cidr_parse("010.0.0.1/8", &c) == -EINVAL && cidr_parse("10.0.0.01/32", &c) == -EINVAL &&
               cidr_parse("10.00.0.1/32", &c) == -EINVAL,
               "IPv4 octets with a leading zero are rejected (netip refuses them as ambiguous octal)");
}

static void test_ipv4_bad_forms_rejected(void)
{
        static const char *const bad[] = { "256.0.0.0/8", "1.2.3/24", "1.2.3.4.5/32", "0x7f.0.0.1/8",
                                           "1.2.3.-4/32", " 1.2.3.4/32", "1.2.3.4 /32", "1..2.3/8" };
        struct cidr c;
        bool ok = true;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (cidr_parse(bad[i], &c) != -EINVAL) {
                        printf("# accepted: \"%s\"\n", bad[i]);
                        ok = false;
                }
        tap_ok(ok, "malformed IPv4 addresses (out of range, short, hex, spaces) are rejected");
}

static void test_length_bounds(void)
{
        struct cidr c;

        tap_ok(cidr_parse("1.2.3.4/32", &c) == 0 && cidr_parse("1.2.3.4/0", &c) == 0 &&
               cidr_parse("1.2.3.4/33", &c) == -EINVAL,
               "IPv4 lengths 0..32 are accepted and /33 is rejected");
        tap_ok(cidr_parse("::/128", &c) == 0 && cidr_parse("::/0", &c) == 0 && cidr_parse("::/129", &c) == -EINVAL,
               "IPv6 lengths 0..128 are accepted and /129 is rejected");
}

static void test_length_syntax(void)
{
        static const char *const bad[] = { "1.2.3.4/08", "1.2.3.4/00", "::1/0128", "1.2.3.4/", "1.2.3.4/+8",
                                           "1.2.3.4/-1", "1.2.3.4/ 8", "1.2.3.4/8 ", "1.2.3.4/8/8", "1.2.3.4/3a",
                                           "1.2.3.4/1000", "/8", "/", "", "1.2.3.4/0x8" };
        struct cidr c;
        bool ok = true;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (cidr_parse(bad[i], &c) != -EINVAL) {
                        printf("# accepted: \"%s\"\n", bad[i]);
                        ok = false;
                }
        tap_ok(ok, "the length is plain decimal: \"/08\", signs, spaces, hex, empty and a second '/' are rejected");
}

static void test_v6_canonical(void)
{
        static const struct {
                const char *in, *want;
        } cases[] = {
                { "2001:DB8:0:0::/32", "2001:db8::/32" },
                { "2001:0db8:0000:0000:0000:0000:0000:0001/128", "2001:db8::1/128" },
                { "2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128" }, /* tie: first run */
                { "0:0:1:0:0:0:0:1/128", "0:0:1::1/128" },               /* longest run */
                { "1:0:2:3:4:5:6:7/128", "1:0:2:3:4:5:6:7/128" },        /* lone zero kept */
                { "FFFF::/16", "ffff::/16" },
                { "::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128" },          /* 4in6 stays dotted */
                { "0:0:0:0:0:0:0:1/128", "::1/128" },
                { "::/0", "::/0" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[80];
                TAP_STREQ(fmt_prefix(cases[i].in, buf, sizeof(buf)), cases[i].want,
                          "IPv6 \"%s\" prints as Go's netip does: lower case, longest zero run compressed",
                          cases[i].in);
        }
}

static void test_v6_ipv4_compatible_text(void)
{
        char buf[80];

        /*
         * glibc's inet_ntop prints "::a.b.c.d" for any address whose first 96 bits are zero
         * (the deprecated IPv4-compatible form); Go prints only ::ffff:a.b.c.d dotted.
         */
        TAP_STREQ(fmt_prefix("::1:2/128", buf, sizeof(buf)), "::1:2/128",
                  "\"::1:2/128\" prints as Go's netip does, not as glibc's ::0.1.0.2");
        TAP_STREQ(fmt_prefix("::7f00:35/128", buf, sizeof(buf)), "::7f00:35/128",
                  "\"::7f00:35/128\" prints as Go's netip does, not as glibc's ::127.0.0.53");
        TAP_STREQ(fmt_prefix("0:0:1:0:0:1:0:0/128", buf, sizeof(buf)), "::1:0:0:1:0:0/128",
                  "of two equal zero runs the first is compressed");
        TAP_STREQ(fmt_prefix("2001:db8:0:1:1:1:1:1/64", buf, sizeof(buf)), "2001:db8:0:1:1:1:1:1/64",
                  "a single zero group is not compressed");
        TAP_STREQ(fmt_prefix("1::/16", buf, sizeof(buf)), "1::/16", "a trailing zero run is compressed");
}

static void test_v6_bad_forms_rejected(void)
{
        static const char *const bad[] = { "fe80::1%eth0/64", ":::/0", "1::2::3/64", "12345::/16", "g::/16",
                                           "1:2:3:4:5:6:7:8:9/128", "::ffff:01.2.3.4/128", "[::1]/128" };
        struct cidr c;
        bool ok = true;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (cidr_parse(bad[i], &c) != -EINVAL) {
                        printf("# accepted: \"%s\"\n", bad[i]);
                        ok = false;
                }
        tap_ok(ok, "malformed IPv6 prefixes (zones, double '::', 5-digit groups, brackets) are rejected");
}

static void test_family_split(void)
{
        struct cidr c4, c6, cm;

        tap_ok(cidr_parse("10.0.0.0/8", &c4) == 0 && c4.family == AF_INET && cidr_parse("fd00::/8", &c6) == 0 &&
               c6.family == AF_INET6 && cidr_parse("::ffff:10.0.0.0/104", &cm) == 0 && cm.family == AF_INET6,
               "the family follows the text: dotted is AF_INET, anything with ':' (4in6 too) is AF_INET6");
}

static void test_loopback(void)
{
        static const struct {
                const char *in;
                bool loopback;
        } cases[] = {
                { "127.0.0.1/32", true },  { "127.0.0.1/8", true }, { "127.255.255.254/32", true },
                { "126.255.255.255/32", false }, { "128.0.0.1/32", false }, { "0.0.0.0/0", false },
                { "::1/128", true },       { "::2/128", false },    { "::/0", false },
                { "10.0.0.1/32", false },  { "fe80::1/64", false },
        };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cidr c;
                if (cidr_parse(cases[i].in, &c) < 0 || cidr_is_loopback(&c) != cases[i].loopback) {
                        printf("# wrong for %s\n", cases[i].in);
                        ok = false;
                }
        }
        tap_ok(ok, "loopback is 127.0.0.0/8 by address (whatever the length) and exactly ::1 for IPv6");
}

static void test_ip_parse(void)
{
        struct cidr c;
        char buf[64];

        tap_ok(ip_parse("10.96.0.10", &c) == 0 && c.family == AF_INET && c.prefix_len == 32,
               "ip_parse takes a bare IPv4 address as a /32");
        ip_format(&c, buf, sizeof(buf));
        TAP_STREQ(buf, "10.96.0.10", "ip_format prints an IPv4 address without a length");
        tap_ok(ip_parse("2001:DB8::53", &c) == 0 && c.family == AF_INET6 && c.prefix_len == 128,
               "ip_parse takes a bare IPv6 address as a /128");
        ip_format(&c, buf, sizeof(buf));
        TAP_STREQ(buf, "2001:db8::53", "ip_format prints IPv6 canonicalised");
        tap_ok(ip_parse("10.0.0.1/32", &c) == -EINVAL && ip_parse("::1/128", &c) == -EINVAL,
               "ip_parse refuses a prefix length (resolv.conf servers are plain addresses)");
        tap_ok(ip_parse("01.2.3.4", &c) == -EINVAL && ip_parse("fe80::1%eth0", &c) == -EINVAL &&
               ip_parse("", &c) == -EINVAL && ip_parse("localhost", &c) == -EINVAL &&
               ip_parse(" 1.2.3.4", &c) == -EINVAL,
               "ip_parse refuses leading zeros, zones, names, blanks and the empty string");
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
static void check_truncations(int (*parse)(const char *, struct cidr *), const char *s,
                              const size_t *valid, size_t n_valid, const char *what)
{
        size_t len = strlen(s);
        bool ok = true;

        for (size_t n = 0; n <= len; n++) {
                struct cidr c;
                bool want = false;
                int r = parse(at_page_end(s, n), &c);

                for (size_t i = 0; i < n_valid; i++)
                        want |= valid[i] == n;
                if ((r == 0) != want) {
                        printf("# \"%.*s\": got %d\n", (int)n, s, r);
                        ok = false;
                }
        }
        tap_ok(ok, "%s: every truncation of \"%s\" placed against a PROT_NONE page gives the right verdict", what, s);
}

static void test_truncations(void)
{
        static const size_t v4[] = { 10, 11 };       /* "10.0.0.0/2", "10.0.0.0/24" */
        static const size_t v6[] = { 12, 13 };       /* "2001:db8::/3", "2001:db8::/32" */
        static const size_t ip4[] = { 11, 12 };      /* "192.168.1.1", "192.168.1.10" */
        static const size_t ip6[] = { 6, 7, 9, 10, 11, 12 }; /* "fd00::", "fd00::1", "fd00::1:2"... */

        if (!setup_guard()) {
                tap_ok(false, "could not map a guard page");
                return;
        }
        check_truncations(cidr_parse, "10.0.0.0/24", v4, 2, "cidr_parse");
        check_truncations(cidr_parse, "2001:db8::/32", v6, 2, "cidr_parse");
        check_truncations(ip_parse, "192.168.1.10", ip4, 2, "ip_parse");
        check_truncations(ip_parse, "fd00::1:2345", ip6, 6, "ip_parse");
        munmap(guard_page, 2 * page_size);
}

int main(void)
{
        test_ipv4_prefix_parses();
        test_host_bits_kept();
        test_prefix_required();
        test_ipv4_leading_zeros_rejected();
        test_ipv4_bad_forms_rejected();
        test_length_bounds();
        test_length_syntax();
        test_v6_canonical();
        test_v6_ipv4_compatible_text();
        test_v6_bad_forms_rejected();
        test_family_split();
        test_loopback();
        test_ip_parse();
        test_truncations();
        return tap_done();
}
