/*
 * Command-line flags; see flags.h. One pass over argv: each argument is classified (the end
 * of the flags, an argument, a long flag, a group of short ones), its flag looked up by exact
 * name, and its value taken from "=V", the rest of a short group, or the next argument, in the
 * order Go's flag package and pflag do.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/flags.h"
#include "common/go_value.h"
#include "common/strbuf.h"

int flags_problem(struct strbuf *err, const char *fmt, ...)
{
        va_list ap;

        if (err->len)
                strbuf_puts(err, "; ");
        va_start(ap, fmt);
        strbuf_vprintf(err, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int flags_set_str(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err)
{
        *(const char **)((char *)ctx + o->offset) = value;
        return 0;
}

int flags_set_bool(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err)
{
        if (go_value_bool(value, (bool *)((char *)ctx + o->offset)) < 0)
                return flags_problem(err, "%s: invalid boolean \"%s\" (want true or false, 1 or 0, t or f)", shown,
                                     value);
        return 0;
}

int flags_set_uint(void *ctx, const struct flags_opt *o, const char *value, const char *shown, struct strbuf *err)
{
        unsigned long n;
        char *end;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (!*value || strspn(value, "0123456789") != strlen(value) || errno || n < o->min || n > o->max)
                return flags_problem(err, "%s: '%s' is not a number in %lu..%lu", shown, value, o->min, o->max);
        *(unsigned *)((char *)ctx + o->offset) = (unsigned)n;
        return 0;
}

static int set(const struct flags_opt *o, void *ctx, const char *value, const char *shown, struct strbuf *err)
{
        flags_set_fn *fn = o->set ? o->set : o->kind == FLAGS_BOOL ? flags_set_bool : flags_set_str;

        return fn(ctx, o, value, shown, err);
}

static const struct flags_opt *by_long(const struct flags_table *t, const char *name, size_t len)
{
        for (size_t i = 0; i < t->n; i++)
                if (strlen(t->opts[i].name) == len && strncmp(t->opts[i].name, name, len) == 0)
                        return &t->opts[i];
        return NULL;
}

static const struct flags_opt *by_short(const struct flags_table *t, char c)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->opts[i].short_name && t->opts[i].short_name == c)
                        return &t->opts[i];
        return NULL;
}

/* A problem (-EINVAL) is remembered and parsing goes on; anything else stops it. */
static bool keep_going(int r, bool *failed)
{
        if (r == -EINVAL)
                *failed = true;
        return r == 0 || r == -EINVAL;
}

/* A long flag: arg is what the user wrote, name the text after the dashes. *i moves past a
 * value taken from the next argument. */
static int long_flag(const struct flags_table *t, void *ctx, int argc, char *const *argv, int *i, const char *name,
                     struct strbuf *err)
{
        const char *a = argv[*i], *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name), dashes = (size_t)(name - a);
        const struct flags_opt *o = by_long(t, name, len);
        char shown[128];

        if (!o)
                return flags_problem(err, "unknown flag: %.*s", (int)(dashes + len), a);
        snprintf(shown, sizeof(shown), "%.*s%s", (int)dashes, a, o->name);
        if (eq)
                return set(o, ctx, eq + 1, shown, err);
        if (o->kind == FLAGS_BOOL)
                return set(o, ctx, "true", shown, err);
        if (*i + 1 >= argc)
                return flags_problem(err, "flag needs an argument: %s", shown);
        return set(o, ctx, argv[++*i], shown, err);
}

/* A group of short flags, "-abc": booleans, the last one possibly taking a value. */
static int short_flags(const struct flags_table *t, void *ctx, int argc, char *const *argv, int *i,
                       struct strbuf *err)
{
        const char *a = argv[*i];

        for (const char *p = a + 1; *p; p++) {
                const struct flags_opt *o = by_short(t, *p);
                char shown[3] = { '-', *p, '\0' };

                if (!o)
                        return flags_problem(err, "unknown shorthand flag: '%c' in %s", *p, a);
                if (p[1] == '=')
                        return set(o, ctx, p + 2, shown, err);
                if (o->kind == FLAGS_BOOL) {
                        int r = set(o, ctx, "true", shown, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (p[1])
                        return set(o, ctx, p + 1, shown, err);
                if (*i + 1 >= argc)
                        return flags_problem(err, "flag needs an argument: '%c' in %s", *p, a);
                return set(o, ctx, argv[++*i], shown, err);
        }
        return 0;
}

static int positional(const struct flags_table *t, void *ctx, const char *arg, struct strbuf *err)
{
        if (t->positional)
                return t->positional(ctx, arg, err);
        return flags_problem(err, "unexpected argument \"%s\"", arg);
}

int flags_parse(const struct flags_table *t, void *ctx, int argc, char *const *argv, struct strbuf *err)
{
        bool failed = false, flags_done = false;
        int r = 0;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (flags_done || a[0] != '-' || a[1] == '\0') {
                        r = positional(t, ctx, a, err);
                } else if (strcmp(a, "--") == 0) {
                        flags_done = true;
                        continue;
                } else if (a[1] == '-') {
                        r = long_flag(t, ctx, argc, argv, &i, a + 2, err);
                } else {
                        /* Go mode: a long name wins, except that a one-letter word is a short
                         * name first ("-n" is -n even when a long flag is called n). */
                        size_t len = strcspn(a + 1, "=");
                        bool is_long = !(t->mode & FLAGS_PFLAG) && by_long(t, a + 1, len) &&
                                       (len > 1 || !by_short(t, a[1]));

                        r = is_long ? long_flag(t, ctx, argc, argv, &i, a + 1, err)
                                    : short_flags(t, ctx, argc, argv, &i, err);
                }
                if (!keep_going(r, &failed))
                        return r;
        }
        if (err->error)
                return err->error;
        return failed ? -EINVAL : 0;
}

int flags_parse_main(const struct flags_table *t, void *ctx, int argc, char *const *argv, const bool *help,
                     void (*usage)(FILE *f))
{
        struct strbuf err = STRBUF_NULL;
        int r = flags_parse(t, ctx, argc, argv, &err);

        if (r < 0) {
                fprintf(stderr, "Error: %s\n\n", err.error ? strerror(-err.error) : strbuf_str(&err));
                usage(stderr);
        } else if (*help) {
                usage(stdout);
        }
        strbuf_deinit(&err);
        return r < 0 ? -1 : *help ? 1 : 0;
}

const char *flags_getenv(char *const *env, const char *name)
{
        size_t n = strlen(name);

        for (; env && *env; env++)
                if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
                        return *env + n + 1;
        return NULL;
}

int flags_env(const struct flags_table *t, void *ctx, char *const *env, struct strbuf *err)
{
        bool failed = false;

        for (size_t i = 0; i < t->n; i++) {
                const char *names[2] = { t->opts[i].env, t->opts[i].env_alias };

                for (size_t k = 0; k < 2; k++) {
                        const char *v = names[k] ? flags_getenv(env, names[k]) : NULL;
                        int r = v ? set(&t->opts[i], ctx, v, names[k], err) : 0;

                        if (!keep_going(r, &failed))
                                return r;
                }
        }
        if (err->error)
                return err->error;
        return failed ? -EINVAL : 0;
}

static void left_column(const struct flags_opt *o, char *buf, size_t len)
{
        const char *meta = o->kind == FLAGS_BOOL ? "" : o->metavar ? o->metavar : "VALUE";

        if (o->short_name)
                snprintf(buf, len, "-%c, --%s%s%s", o->short_name, o->name, *meta ? " " : "", meta);
        else
                snprintf(buf, len, "    --%s%s%s", o->name, *meta ? " " : "", meta);
}

void flags_usage(const struct flags_table *t, FILE *f)
{
        char col[128];
        int width = 0;

        for (size_t i = 0; i < t->n; i++) {
                left_column(&t->opts[i], col, sizeof(col));
                if ((int)strlen(col) > width)
                        width = (int)strlen(col);
        }
        for (size_t i = 0; i < t->n; i++) {
                const struct flags_opt *o = &t->opts[i];

                left_column(o, col, sizeof(col));
                fprintf(f, "  %-*s  %s", width, col, o->help);
                if (o->def)
                        fprintf(f, " (default %s)", o->def);
                if (o->env)
                        fprintf(f, " [$%s%s%s]", o->env, o->env_alias ? ", $" : "", o->env_alias ? o->env_alias : "");
                fputc('\n', f);
        }
}
