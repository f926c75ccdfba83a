/*
 * Command-line flags for the subcommands: one table per subcommand of {long name, short name,
 * takes a value or not, environment variables, usage text, setter}, from which parsing, the
 * environment binding and the usage text all come, so the three cannot drift apart.
 *
 * The forms are those Istio's binaries accept (Go's flag package and cobra's pflag):
 *   --name V   --name=V   -name V   -name=V   (a flag that takes a value)
 *   --name     --name=false   -name=true     (a boolean: a bare flag is true; a value must be
 *                                             strconv.ParseBool's, and never the next argument)
 *   -x V   -xV   -x=V   -abc (booleans grouped, the last may take a value)   (short names)
 *   --  ends the flags; "-" alone is an argument; arguments may come between flags (cobra).
 * A single-dash word is a long name when one matches it exactly (Go's flag package; a one-letter
 * word is a short name first, when a short name is that letter); with
 * FLAGS_PFLAG it is always a group of short names, as pflag reads it ("-dry-run" is -d with
 * the value "ry-run"), for the commands whose Istio counterpart is pflag's. Abbreviations of
 * long names are never taken (getopt_long took them; Go does not).
 *
 * Command lines are untrusted input: nothing here reads past an argument's NUL, every problem
 * is reported with the flag as written and the value echoed, and parsing goes on after one
 * so that every problem is named in one message. Fuzzed by tests/fuzz/fuzz-flags.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct strbuf;
struct flags_opt;

/*
 * Stores a flag's value into ctx. value is the text given (a bare boolean: "true"); shown is
 * how the user wrote the flag ("--port", "-p", "PILOTFISH_PORT") for the message. Returns 0,
 * or -EINVAL with one problem appended to err through flags_problem() (naming shown and value),
 * or another negative errno (-ENOMEM), which stops parsing.
 */
typedef int flags_set_fn(void *ctx, const struct flags_opt *o, const char *value, const char *shown,
                         struct strbuf *err);

enum flags_kind {
        FLAGS_VALUE = 0,        /* takes a value */
        FLAGS_BOOL,             /* takes none, or =BOOL */
};

struct flags_opt {
        const char *name;       /* long name, without dashes */
        char short_name;        /* 0: none */
        enum flags_kind kind;
        const char *env;        /* read by flags_env(), or NULL */
        const char *env_alias;  /* read after env, so it wins when both are set (Istio's pkg/flag) */
        const char *metavar;    /* usage: "--config FILE"; NULL: "VALUE" for a FLAGS_VALUE flag */
        const char *def;        /* usage: "(default ...)", or NULL */
        const char *help;       /* usage: one line */
        flags_set_fn *set;      /* NULL: flags_set_str or flags_set_bool, by kind */
        size_t offset;          /* where the default setters store, in ctx */
        unsigned long min, max; /* flags_set_uint's bounds */
};

enum {
        FLAGS_PFLAG = 1 << 0,   /* a single-dash word is always short names (see above) */
};

struct flags_table {
        const struct flags_opt *opts;
        size_t n;
        unsigned mode;          /* FLAGS_* */
        /* Called for each argument that is not a flag; NULL: each is a problem ("unexpected
         * argument"). Same contract as flags_set_fn, without the flag. */
        int (*positional)(void *ctx, const char *arg, struct strbuf *err);
};

#define FLAGS_TABLE(opts_, mode_, positional_) \
        { .opts = (opts_), .n = sizeof(opts_) / sizeof((opts_)[0]), .mode = (mode_), .positional = (positional_) }

/*
 * Parses argv[1] .. argv[argc - 1] (argv[0] is the command) against t, calling the setters in
 * order with ctx. Returns 0; -EINVAL when any argument was a problem (an unknown flag, a missing
 * value, a bad boolean, whatever a setter refused), every one named in err, "; " between them;
 * or a setter's other negative errno at once.
 */
int flags_parse(const struct flags_table *t, void *ctx, int argc, char *const *argv, struct strbuf *err);

/*
 * For a subcommand's main function, the command line's edge: parses as flags_parse() does; on
 * a problem writes "Error: PROBLEMS", a blank line and the usage to stderr and returns -1;
 * when *help is true after parsing (the table's --help row sets it), writes the usage to
 * stdout and returns 1; else returns 0.
 */
int flags_parse_main(const struct flags_table *t, void *ctx, int argc, char *const *argv, const bool *help,
                     void (*usage)(FILE *f));

/*
 * Applies the environment (envp style) for every flag with a variable: env, then env_alias.
 * Call it before flags_parse(), so that a flag wins over its variable. A variable set to ""
 * is applied like any other value. Returns as flags_parse() does.
 */
int flags_env(const struct flags_table *t, void *ctx, char *const *env, struct strbuf *err);

/* The value of variable name in env (envp style), or NULL. */
const char *flags_getenv(char *const *env, const char *name);

/* Writes one line per flag: "  -x, --name METAVAR   help (default D) [$ENV]", aligned. */
void flags_usage(const struct flags_table *t, FILE *f);

/* Appends one problem to err, "; " after any before it. Returns -EINVAL. */
int flags_problem(struct strbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Default setters. flags_set_str stores value (borrowed: argv's or env's text, not copied) as
 * a const char * at o->offset; flags_set_bool parses it with go_value_bool into a bool;
 * flags_set_uint takes decimal digits only, o->min .. o->max, into an unsigned. */
int flags_set_str(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err);
int flags_set_bool(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err);
int flags_set_uint(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err);
