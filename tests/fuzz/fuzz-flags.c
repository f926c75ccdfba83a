/*
 * Fuzz target for common/flags.c, the command-line parser of the subcommands (argv and the
 * environment are untrusted input). The input is cut into items as fuzz-iptables-argv.c does
 * (on NUL bytes if it holds any, else on newlines; one trailing separator ignored; leading
 * NAME=VALUE items are the environment, the rest the arguments after the command), then
 * parsed against a table with every kind of flag (values, booleans, numbers, short names,
 * a variable with an alias), in Go mode and in FLAGS_PFLAG mode. Invariants:
 *
 * - the result is 0 with no message, or -EINVAL with one (never a crash, never another code);
 * - parsing is deterministic (twice, the same settings and the same message);
 * - a value stored is a pointer into the input's own items (never a copy or a stray pointer);
 * - accepted settings written back as --name=value arguments parse to the same settings.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flags.h"
#include "common/strbuf.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENV 32

struct ctx {
        const char *file, *url, *mode;
        bool dry, verbose, help;
        unsigned port, n;
        size_t npos;
};

static int count_pos(void *c, const char *arg, struct strbuf *err)
{
        ((struct ctx *)c)->npos++;
        return 0;
}

#define O(f) offsetof(struct ctx, f)
static const struct flags_opt opts[] = {
        { .name = "filename", .short_name = 'f', .env = "F_FILE", .env_alias = "F_FILE2", .offset = O(file), .help = "" },
        { .name = "url", .offset = O(url), .help = "" },
        { .name = "mode", .short_name = 'm', .env = "F_MODE", .offset = O(mode), .help = "" },
        { .name = "dry-run", .short_name = 'n', .kind = FLAGS_BOOL, .env = "F_DRY", .offset = O(dry), .help = "" },
        { .name = "verbose", .short_name = 'v', .kind = FLAGS_BOOL, .offset = O(verbose), .help = "" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "" },
        { .name = "port", .short_name = 'p', .set = flags_set_uint, .env = "F_PORT", .offset = O(port), .min = 1,
          .max = 65535, .help = "" },
        { .name = "timeoutSeconds", .set = flags_set_uint, .offset = O(n), .min = 0, .max = 4294967295u, .help = "" },
};
#undef O
static const struct flags_table tables[2] = { FLAGS_TABLE(opts, 0, count_pos), FLAGS_TABLE(opts, FLAGS_PFLAG, NULL) };

static bool is_env_item(const char *s)
{
        const char *p = s;

        if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
                return false;
        for (p++; *p && *p != '='; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return *p == '=';
}

static int parse(const struct flags_table *t, char *const *env, int argc, char *const *argv, struct ctx *c,
                 struct strbuf *err)
{
        int r;

        *c = (struct ctx){ .port = 15001 };
        r = flags_env(t, c, env, err);
        if (r == 0 || r == -EINVAL) {
                int r2 = flags_parse(t, c, argc, argv, err);
                r = r < 0 ? r : r2;
        }
        return r;
}

static bool inside(const char *p, const char *buf, size_t size)
{
        return !p || (p >= buf && p <= buf + size);
}

static bool same(const struct ctx *a, const struct ctx *b)
{
        const char *sa[3] = { a->file, a->url, a->mode }, *sb[3] = { b->file, b->url, b->mode };

        for (size_t i = 0; i < 3; i++)
                if ((!sa[i]) != (!sb[i]) || (sa[i] && strcmp(sa[i], sb[i]) != 0))
                        return false;
        return a->dry == b->dry && a->verbose == b->verbose && a->help == b->help && a->port == b->port && a->n == b->n;
}

/* The settings as arguments again: --name=value for each set string, the bools and numbers. */
static void round_trip(const struct flags_table *t, const struct ctx *c)
{
        char *argv[16], nums[2][40], *strs[3] = { NULL, NULL, NULL };
        const char *names[3] = { "filename", "url", "mode" }, *vals[3] = { c->file, c->url, c->mode };
        struct strbuf err = STRBUF_NULL;
        struct ctx again;
        int argc = 0, r;

        argv[argc++] = (char *)"cmd";
        for (size_t i = 0; i < 3; i++)
                if (vals[i]) {
                        CHECK(asprintf(&strs[i], "--%s=%s", names[i], vals[i]) > 0);
                        argv[argc++] = strs[i];
                }
        argv[argc++] = c->dry ? (char *)"--dry-run" : (char *)"--dry-run=false";
        argv[argc++] = c->verbose ? (char *)"--verbose=true" : (char *)"--verbose=0";
        argv[argc++] = c->help ? (char *)"--help=T" : (char *)"--help=F";
        snprintf(nums[0], sizeof(nums[0]), "--port=%u", c->port);
        snprintf(nums[1], sizeof(nums[1]), "--timeoutSeconds=%u", c->n);
        argv[argc++] = nums[0];
        argv[argc++] = nums[1];
        argv[argc] = NULL;
        r = parse(t, (char *[]){ NULL }, argc, argv, &again, &err);
        CHECK(r == 0 && err.len == 0);
        CHECK(same(c, &again));
        strbuf_deinit(&err);
        for (size_t i = 0; i < 3; i++)
                free(strs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char sep = size && memchr(data, '\0', size) ? '\0' : '\n';
        char *buf, **items, *env[MAX_ENV + 1], **argv;
        size_t n_items = 0, start = 0, n_env = 0, i = 0;
        int argc = 1;

        buf = malloc(size + 1);
        items = calloc(size + 2, sizeof(char *));
        argv = calloc(size + 3, sizeof(char *));
        CHECK(buf && items && argv);
        if (size)
                memcpy(buf, data, size);
        buf[size] = '\0';
        for (size_t k = 0; k <= size && size > 0; k++)
                if (k == size || buf[k] == sep) {
                        if (k == size && start == size)
                                break;
                        buf[k] = '\0';
                        items[n_items++] = buf + start;
                        start = k + 1;
                }
        for (; i < n_items && n_env < MAX_ENV && is_env_item(items[i]); i++)
                env[n_env++] = items[i];
        env[n_env] = NULL;
        argv[0] = (char *)"cmd";
        for (; i < n_items; i++)
                argv[argc++] = items[i];
        argv[argc] = NULL;

        for (size_t t = 0; t < 2; t++) {
                struct strbuf e1 = STRBUF_NULL, e2 = STRBUF_NULL;
                struct ctx c1, c2;
                int r1 = parse(&tables[t], env, argc, argv, &c1, &e1);
                int r2 = parse(&tables[t], env, argc, argv, &c2, &e2);

                CHECK(r1 == 0 || r1 == -EINVAL);
                CHECK(e1.error == 0);
                CHECK((r1 == 0) == (e1.len == 0));
                CHECK(r1 == r2 && same(&c1, &c2) && e1.len == e2.len && memcmp(strbuf_str(&e1), strbuf_str(&e2), e1.len) == 0);
                CHECK(inside(c1.file, buf, size) && inside(c1.url, buf, size) && inside(c1.mode, buf, size));
                if (r1 == 0)
                        round_trip(&tables[t], &c1);
                strbuf_deinit(&e1);
                strbuf_deinit(&e2);
        }
        free(buf);
        free(items);
        free(argv);
        return 0;
}
