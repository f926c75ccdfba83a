/*
 * iptables variant selection and invocation; see backend.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/backend.h"
#include "common/exec.h"
#include "common/log.h"
#include "common/strbuf.h"

static void backend_names(struct backend *b, enum plan_family fam, const char *variant)
{
        const char *base = fam == PLAN_V4 ? "iptables" : "ip6tables";

        snprintf(b->variant, sizeof(b->variant), "%s", variant);
        if (variant[0]) {
                snprintf(b->save, sizeof(b->save), "%s-%s-save", base, variant);
                snprintf(b->restore, sizeof(b->restore), "%s-%s-restore", base, variant);
        } else {
                snprintf(b->save, sizeof(b->save), "%s-save", base);
                snprintf(b->restore, sizeof(b->restore), "%s-restore", base);
        }
}

static struct exec_options backend_exec_options(const struct backend *b, const char *stdin_text,
                                                const char **env_buf)
{
        struct exec_options o = { .stdin_text = stdin_text, .env_extra = NULL, .private_mounts = b->cni_mode };

        if (b->lockfile) {
                env_buf[0] = b->lockfile;
                env_buf[1] = NULL;
                o.env_extra = env_buf;
        }
        return o;
}

/* "iptables-save v1.8.9 (legacy)" -> 1.8.9 >= 1.6.2 */
static bool version_takes_wait(const char *text)
{
        const char *v = strstr(text, " v");
        int a = 0, b = 0, c = 0;

        if (!v || sscanf(v + 2, "%d.%d.%d", &a, &b, &c) < 2)
                return false;
        return a > 1 || (a == 1 && (b > 6 || (b == 6 && c >= 2)));
}

struct probe {
        char why[256];          /* why it is not usable */
        bool usable;
        bool has_rules;
        bool is_nft;
        bool wait;
};

static void backend_probe(struct backend *b, struct probe *ret)
{
        const char *save_argv[] = { b->save, NULL };
        const char *ver_argv[] = { b->save, "--version", NULL };
        struct exec_result r = EXEC_RESULT_NULL;
        const char *env[2];
        struct exec_options o = backend_exec_options(b, NULL, env);
        size_t lines = 0;

        int k;

        memset(ret, 0, sizeof(*ret));
        k = exec_run(save_argv, &o, &r);
        if (k < 0 || r.status != 0) {
                size_t n;

                if (k == -ENOENT)
                        snprintf(ret->why, sizeof(ret->why), "%s: not found in PATH", b->save);
                else if (k < 0)
                        snprintf(ret->why, sizeof(ret->why), "%s: cannot run: %s", b->save, strerror(-k));
                else
                        snprintf(ret->why, sizeof(ret->why), "%s: exit %d: %s", b->save, r.status, r.err);
                n = strlen(ret->why);
                while (n && ret->why[n - 1] == '\n')
                        ret->why[--n] = '\0';
                log_debug("%s", ret->why);
                exec_result_deinit(&r);
                return;
        }
        for (const char *p = r.out; *p; p++)
                lines += *p == '\n';
        /* Istio's "existing rules" test: a non-empty dump. */
        ret->has_rules = lines >= 3;
        exec_result_deinit(&r);

        if (exec_run(ver_argv, &o, &r) == 0 && r.status == 0) {
                ret->is_nft = strstr(r.out, "nf_tables") != NULL;
                ret->wait = !ret->is_nft && version_takes_wait(r.out);
        }
        exec_result_deinit(&r);
        ret->usable = true;
}

int backend_detect(enum plan_family fam, const char *forced, struct backend *ret, char *err, size_t errlen)
{
        struct backend legacy = { 0 }, nft = { 0 }, plain = { 0 };
        struct probe pl, pn, pp;
        const char *fam_name = fam == PLAN_V4 ? "IPv4" : "IPv6";

        backend_names(&legacy, fam, "legacy");
        backend_names(&nft, fam, "nft");
        legacy.cni_mode = nft.cni_mode = ret->cni_mode;
        legacy.lockfile = nft.lockfile = ret->lockfile;

        if (forced && forced[0]) {
                struct backend *b = strcmp(forced, "legacy") == 0 ? &legacy : &nft;
                backend_probe(b, &pl);
                if (!pl.usable) {
                        snprintf(err, errlen, "%s: --force-iptables-binary=%s is not usable: %s", fam_name, forced,
                                 pl.why);
                        return -ENOENT;
                }
                b->wait = pl.wait;
                *ret = *b;
                return 0;
        }

        backend_probe(&legacy, &pl);
        if (pl.usable && pl.has_rules) {
                legacy.wait = pl.wait;
                *ret = legacy;
                return 0;
        }
        backend_probe(&nft, &pn);
        if (pn.usable) {
                *ret = nft;
                return 0;
        }
        backend_names(&plain, fam, "");
        plain.cni_mode = ret->cni_mode;
        plain.lockfile = ret->lockfile;
        backend_probe(&plain, &pp);
        if (pp.usable) {
                plain.wait = pp.wait;
                snprintf(plain.variant, sizeof(plain.variant), "%s", pp.is_nft ? "nft" : "legacy");
                *ret = plain;
                return 0;
        }
        if (pl.usable) {
                legacy.wait = pl.wait;
                *ret = legacy;
                return 0;
        }
        snprintf(err, errlen, "%s: no usable iptables found (%s; %s; %s)", fam_name, pl.why, pn.why, pp.why);
        return -ENOENT;
}

int backend_save(const struct backend *b, char **ret_text, char *err, size_t errlen)
{
        const char *argv[] = { b->save, NULL };
        struct exec_result r = EXEC_RESULT_NULL;
        const char *env[2];
        struct exec_options o = backend_exec_options(b, NULL, env);
        int k = exec_run(argv, &o, &r);

        if (k < 0 || r.status != 0) {
                snprintf(err, errlen, "%s failed (exit %d): %s", b->save, r.status,
                         k < 0 ? strerror(-k) : r.err);
                exec_result_deinit(&r);
                return k < 0 ? k : -EIO;
        }
        *ret_text = r.out;
        r.out = NULL;
        exec_result_deinit(&r);
        return 0;
}

/*
 * iptables-restore reports "line N failed" and, for legacy, often nothing else. Quote that
 * line of our input so the message names the rule.
 */
static void quote_failed_line(const char *input, const char *stderr_text, char *err, size_t errlen)
{
        const char *p = stderr_text ? strstr(stderr_text, "line ") : NULL;
        const char *line = input;
        long n;

        if (!p || !input)
                return;
        n = strtol(p + 5, NULL, 10);
        if (n <= 0)
                return;
        for (long i = 1; i < n && line; i++) {
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        if (line && *line) {
                size_t len = strlen(err), l = strcspn(line, "\n");
                snprintf(err + len, errlen - len, " (line %ld of the input: \"%.*s\")", n, (int)l, line);
        }
}

int backend_restore(const struct backend *b, const char *input, bool noflush, char *err, size_t errlen)
{
        const char *argv[4];
        struct exec_result r = EXEC_RESULT_NULL;
        const char *env[2];
        struct exec_options o = backend_exec_options(b, input, env);
        size_t n = 0;
        int k;

        argv[n++] = b->restore;
        if (noflush)
                argv[n++] = "--noflush";
        if (b->wait)
                argv[n++] = "--wait=30";
        argv[n] = NULL;

        k = exec_run(argv, &o, &r);
        if (k < 0 || r.status != 0) {
                char *cmd = exec_argv_join(argv);
                size_t len;

                snprintf(err, errlen, "%s failed (exit %d): %s", cmd ? cmd : b->restore, r.status,
                         k < 0 ? strerror(-k) : r.err);
                len = strlen(err);
                while (len && err[len - 1] == '\n')
                        err[--len] = '\0';
                quote_failed_line(input, r.err, err, errlen);
                free(cmd);
                exec_result_deinit(&r);
                return k < 0 ? k : -EIO;
        }
        exec_result_deinit(&r);
        return 0;
}
