/*
 * Unit tests for common/flags.c: every form Istio's binaries accept (Go's flag package and
 * pflag) sets the flag it names, every refusal names the flag as written and echoes the value,
 * all problems come in one message, the environment binding's order (variable, alias, then the
 * command line), and the usage text generated from the table.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flags.h"
#include "common/strbuf.h"
#include "tap.h"

struct ctx {
        const char *file, *name;
        bool verbose, all;
        unsigned n;
        const char *pos[8];
        size_t npos;
        int nomem_after;
};

static int add_pos(void *c, const char *arg, struct strbuf *err)
{
        struct ctx *x = c;

        if (x->npos >= 8)
                return flags_problem(err, "too many arguments");
        x->pos[x->npos++] = arg;
        return 0;
}

static int nomem(void *c, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err)
{
        return -ENOMEM;
}

#define O(f) offsetof(struct ctx, f)
static const struct flags_opt opts[] = {
        { .name = "file", .short_name = 'f', .metavar = "FILE", .env = "T_FILE", .env_alias = "T_FILE_ALIAS",
          .offset = O(file), .help = "a file" },
        { .name = "name", .offset = O(name), .def = "x", .help = "a name" },
        { .name = "verbose", .short_name = 'v', .kind = FLAGS_BOOL, .env = "T_VERBOSE", .offset = O(verbose),
          .help = "talk" },
        { .name = "all", .short_name = 'a', .kind = FLAGS_BOOL, .offset = O(all), .help = "everything" },
        { .name = "n", .short_name = 'N', .set = flags_set_uint, .offset = O(n), .min = 1, .max = 100,
          .metavar = "N", .help = "a number" },
        { .name = "boom", .set = nomem, .help = "fails" },
};
#undef O
static const struct flags_table go = FLAGS_TABLE(opts, 0, add_pos);
static const struct flags_table pf = FLAGS_TABLE(opts, FLAGS_PFLAG, NULL);

#define ARGV(...) ((char *const[]){ "cmd", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *const[]){ "cmd", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(t, c, e, ...) flags_parse(t, c, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), e)

static bool file_is(const struct flags_table *t, const char *want, int argc, char *const *argv)
{
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        int r = flags_parse(t, &c, argc, argv, &e);
        bool ok = r == 0 && c.file && strcmp(c.file, want) == 0 && e.len == 0;

        if (!ok)
                printf("# r=%d file=%s err=%s\n", r, c.file ? c.file : "(null)", strbuf_str(&e));
        strbuf_deinit(&e);
        return ok;
}

static void test_value_forms(void)
{
        tap_ok(file_is(&go, "a", ARGC("--file", "a"), ARGV("--file", "a")), "--flag value");
        tap_ok(file_is(&go, "a", ARGC("--file=a"), ARGV("--file=a")), "--flag=value");
        tap_ok(file_is(&go, "a", ARGC("-file", "a"), ARGV("-file", "a")), "-flag value (Go's flag package)");
        tap_ok(file_is(&go, "a=b", ARGC("-file=a=b"), ARGV("-file=a=b")), "-flag=value, the value keeping its own '='");
        tap_ok(file_is(&go, "", ARGC("--file="), ARGV("--file=")), "--flag= is the empty value");
        tap_ok(file_is(&go, "-x", ARGC("--file", "-x"), ARGV("--file", "-x")), "the next argument is the value even when it starts with '-'");
        tap_ok(file_is(&go, "a", ARGC("-f", "a"), ARGV("-f", "a")), "-f value");
        tap_ok(file_is(&go, "a", ARGC("-fa"), ARGV("-fa")), "-fvalue");
        tap_ok(file_is(&go, "a", ARGC("-f=a"), ARGV("-f=a")), "-f=value");
        tap_ok(file_is(&pf, "a", ARGC("-fa"), ARGV("-fa")), "-fvalue with FLAGS_PFLAG too");
        tap_ok(file_is(&go, "b", ARGC("--file", "a", "--file", "b"), ARGV("--file", "a", "--file", "b")),
               "the last of a repeated flag wins");
}

static void test_bools(void)
{
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        int r;

        r = PARSE(&go, &c, &e, "--verbose", "-all");
        tap_ok(r == 0 && c.verbose && c.all, "--bool and -bool set true");
        r = PARSE(&go, &c, &e, "--verbose=false", "-all=0");
        tap_ok(r == 0 && !c.verbose && !c.all, "--bool=false and -bool=0 set false");
        r = PARSE(&go, &c, &e, "-va");
        tap_ok(r == 0 && c.verbose && c.all, "-va groups two short booleans");
        c = (struct ctx){ 0 };
        r = PARSE(&go, &c, &e, "-vf", "x");
        tap_ok(r == 0 && c.verbose && c.file && strcmp(c.file, "x") == 0, "-vf x: a boolean, then a flag taking the next argument");
        c = (struct ctx){ 0 };
        r = PARSE(&go, &c, &e, "--verbose", "false");
        tap_ok(r == 0 && c.verbose && c.npos == 1 && strcmp(c.pos[0], "false") == 0,
               "--bool false: the bool is true and \"false\" an argument, as in Go");
        r = PARSE(&go, &c, &e, "--verbose=maybe");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "--verbose") && strstr(strbuf_str(&e), "\"maybe\""),
               "--bool=maybe is -EINVAL naming the flag and the value: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        c = (struct ctx){ 0 };
        r = PARSE(&go, &c, &e, "--verbose=T", "--all=FALSE");
        tap_ok(r == 0 && c.verbose && !c.all, "a boolean's value is strconv.ParseBool's (T, FALSE)");
        strbuf_deinit(&e);
}

static void test_refusals(void)
{
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        int r;

        r = PARSE(&go, &c, &e, "--bogus");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "unknown flag: --bogus"), "an unknown flag is named: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "-bogus=1");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "'b'") && strstr(strbuf_str(&e), "-bogus=1"),
               "an unknown single-dash word is an unknown shorthand, named with its argument: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "--fil", "x");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "--fil"), "an abbreviation is not taken (getopt_long took --fil for --file)");
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "--file");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "flag needs an argument: --file"), "a value flag at the end: %s",
               strbuf_str(&e));
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "-f");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "'f' in -f"), "a short value flag at the end: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        r = PARSE(&pf, &c, &e, "stray");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "unexpected argument \"stray\""),
               "with no positional handler an argument is a problem: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        c = (struct ctx){ 0 };
        r = PARSE(&pf, &c, &e, "-file", "x");
        tap_ok(r == -EINVAL && c.file && strcmp(c.file, "ile") == 0 && strstr(strbuf_str(&e), "\"x\""),
               "FLAGS_PFLAG reads -file as pflag does: -f with the value \"ile\", then x an argument");
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "--bogus", "--n", "0", "--verbose=2", "--n=1x", "--name");
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "--bogus") && strstr(strbuf_str(&e), "'0'") &&
               strstr(strbuf_str(&e), "\"2\"") && strstr(strbuf_str(&e), "'1x'") && strstr(strbuf_str(&e), "--name"),
               "every problem is named in one message: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        r = PARSE(&go, &c, &e, "--boom", "--bogus");
        tap_ok(r == -ENOMEM && e.len == 0, "a setter's -ENOMEM stops parsing at once");
        strbuf_deinit(&e);
}

static void test_uint(void)
{
        static const char *const bad[] = { "0", "101", "-1", "+1", " 1", "1 ", "1x", "", "0x10", "99999999999999999999999" };
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        bool ok = true;

        ok &= PARSE(&go, &c, &e, "--n", "100") == 0 && c.n == 100;
        ok &= PARSE(&go, &c, &e, "-N1") == 0 && c.n == 1;
        ok &= PARSE(&go, &c, &e, "-n", "5") == 0 && c.n == 5;
        ok &= PARSE(&go, &c, &e, "-n=6") == 0 && c.n == 6;
        tap_ok(ok, "flags_set_uint takes its bounds; a one-letter long name works with one dash (-n 5, -n=6)");
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char arg[64];
                snprintf(arg, sizeof(arg), "--n=%s", bad[i]);
                c.n = 7;
                if (PARSE(&go, &c, &e, arg) != -EINVAL || c.n != 7 || !strstr(strbuf_str(&e), "1..100")) {
                        printf("# %s: %s\n", arg, strbuf_str(&e));
                        ok = false;
                }
                strbuf_deinit(&e);
        }
        tap_ok(ok, "out of bounds, signs, spaces, hex, overflow and empty are refused, the bounds named");
}

static void test_positional_and_end(void)
{
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        int r = PARSE(&go, &c, &e, "a", "--verbose", "-", "--", "--all", "-f");

        tap_ok(r == 0 && c.verbose && !c.all && c.npos == 4 && strcmp(c.pos[0], "a") == 0 && strcmp(c.pos[1], "-") == 0 &&
               strcmp(c.pos[2], "--all") == 0 && strcmp(c.pos[3], "-f") == 0,
               "arguments may come between flags, \"-\" is one, and after \"--\" everything is");
        strbuf_deinit(&e);
}

static void test_env(void)
{
        char *env[] = { "T_FILE=primary", "T_FILE_ALIAS=alias", "T_VERBOSE=1", "OTHER=x", NULL };
        char *env_bad[] = { "T_VERBOSE=yes", NULL };
        struct ctx c = { 0 };
        struct strbuf e = STRBUF_NULL;
        int r = flags_env(&go, &c, env, &e);

        tap_ok(r == 0 && strcmp(c.file, "alias") == 0 && c.verbose, "the alias wins over the primary variable");
        r = PARSE(&go, &c, &e, "--file", "flag");
        tap_ok(r == 0 && strcmp(c.file, "flag") == 0, "the flag, parsed after, wins over both");
        r = flags_env(&go, &c, env_bad, &e);
        tap_ok(r == -EINVAL && strstr(strbuf_str(&e), "T_VERBOSE") && strstr(strbuf_str(&e), "\"yes\""),
               "a bad variable is named with its value: %s", strbuf_str(&e));
        strbuf_deinit(&e);
        tap_ok(flags_getenv(env, "T_FILE") && strcmp(flags_getenv(env, "T_FILE"), "primary") == 0 &&
               !flags_getenv(env, "T_FIL") && !flags_getenv(NULL, "T_FILE"),
               "flags_getenv matches the whole name");
}

static void test_usage(void)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        flags_usage(&go, f);
        fclose(f);
        TAP_STREQ(text,
                  "  -f, --file FILE   a file [$T_FILE, $T_FILE_ALIAS]\n"
                  "      --name VALUE  a name (default x)\n"
                  "  -v, --verbose     talk [$T_VERBOSE]\n"
                  "  -a, --all         everything\n"
                  "  -N, --n N         a number\n"
                  "      --boom VALUE  fails\n",
                  "the usage is generated from the table, aligned, with defaults and variables");
        free(text);
}

int main(void)
{
        test_value_forms();
        test_bools();
        test_refusals();
        test_uint();
        test_positional_and_end();
        test_env();
        test_usage();
        return tap_done();
}
