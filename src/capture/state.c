/*
 * State check and replacement transactions; see state.h.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture/canon.h"
#include "capture/restore.h"
#include "capture/saved.h"
#include "capture/state.h"
#include "common/strbuf.h"

#define DIFF_MAX_LINES 12

static struct state_chain *want_chain(struct state_want *w, const char *table, const char *chain)
{
        struct state_chain *v;

        for (size_t i = 0; i < w->n; i++)
                if (strcmp(w->v[i].table, table) == 0 && strcmp(w->v[i].chain, chain) == 0)
                        return &w->v[i];
        v = realloc(w->v, (w->n + 1) * sizeof(*v));
        if (!v)
                return NULL;
        w->v = v;
        v = &w->v[w->n];
        *v = (struct state_chain){ .table = strdup(table), .chain = strdup(chain), .rules = STRV_NULL };
        if (!v->table || !v->chain) {
                free(v->table);
                free(v->chain);
                return NULL;
        }
        w->n++;
        return v;
}

static const struct state_chain *want_find(const struct state_want *w, const char *table, const char *chain)
{
        for (size_t i = 0; w && i < w->n; i++)
                if (strcmp(w->v[i].table, table) == 0 && strcmp(w->v[i].chain, chain) == 0)
                        return &w->v[i];
        return NULL;
}

/* Inserts at 0-based index `at` (clamped to the end), keeping order: what iptables -I does. */
static int strv_insert_take(struct strv *sv, size_t at, char *s)
{
        int r = strv_push_take(sv, s);

        if (r < 0)
                return r;
        if (at >= sv->n - 1)
                return 0;
        memmove(&sv->v[at + 1], &sv->v[at], (sv->n - 1 - at) * sizeof(char *));
        sv->v[at] = s;
        return 0;
}

/*
 * The kernel stores owners as numbers, so "--gid-owner java" saves as "--gid-owner 1001".
 * Resolves names the way iptables will at apply time (NSS), so the comparison works; a name
 * that does not resolve is an error here, before anything is written.
 */
static int resolve_owner_names(const char *spec, char **ret, char *err, size_t errlen)
{
        struct strbuf out = STRBUF_NULL;
        struct strv tok = STRV_NULL;
        int r = 0;

        strv_split(&tok, spec, ' ');
        for (size_t i = 0; i < tok.n; i++) {
                const char *t = tok.v[i];
                char num[32];

                if (i > 0 && (strcmp(tok.v[i - 1], "--uid-owner") == 0 || strcmp(tok.v[i - 1], "--gid-owner") == 0) &&
                    strspn(t, "0123456789") != strlen(t)) {
                        bool user = tok.v[i - 1][2] == 'u';
                        struct passwd *pw = user ? getpwnam(t) : NULL;
                        struct group *gr = user ? NULL : getgrnam(t);

                        if (!pw && !gr) {
                                snprintf(err, errlen, "%s \"%s\" does not exist (needed by \"%s\")", user ? "user" : "group",
                                         t, spec);
                                r = -ENOENT;
                                break;
                        }
                        snprintf(num, sizeof(num), "%u", user ? (unsigned)pw->pw_uid : (unsigned)gr->gr_gid);
                        t = num;
                }
                strbuf_printf(&out, "%s%s", i ? " " : "", t);
        }
        strv_deinit(&tok);
        if (r == 0 && out.error)
                r = out.error;
        if (r < 0) {
                strbuf_deinit(&out);
                return r;
        }
        *ret = strbuf_steal(&out);
        return *ret ? 0 : -ENOMEM;
}

int state_want_build(const struct plan *p, enum plan_family fam, struct state_want *ret, char *err,
                     size_t errlen)
{
        const struct plan_rules *rs = &p->family[fam];
        int family = fam == PLAN_V4 ? AF_INET : AF_INET6;

        memset(ret, 0, sizeof(*ret));
        for (size_t i = 0; i < rs->n; i++) {
                const struct plan_rule *r = &rs->v[i];
                struct state_chain *c = want_chain(ret, r->table, r->chain);
                const char *target;
                size_t len;
                char *canon = NULL;
                int k;

                if (!c)
                        goto nomem;
                /* A chain only jumped to still exists, empty. */
                if ((target = plan_rule_jump_target(r->spec, &len))) {
                        char name[64];
                        if (len < sizeof(name)) {
                                memcpy(name, target, len);
                                name[len] = '\0';
                                if (!want_chain(ret, r->table, name))
                                        goto nomem;
                                c = want_chain(ret, r->table, r->chain);
                        }
                }
                {
                        char *numeric = NULL;

                        k = resolve_owner_names(r->spec, &numeric, err, errlen);
                        if (k < 0) {
                                state_want_deinit(ret);
                                return k;
                        }
                        k = canon_rule(numeric, family, &canon);
                        free(numeric);
                }
                if (k < 0) {
                        snprintf(err, errlen, "cannot put rule \"-A %s %s\" (table %s) in canonical form: %s", r->chain,
                                 r->spec, r->table, strerror(-k));
                        state_want_deinit(ret);
                        return k;
                }
                k = r->position > 0 ? strv_insert_take(&c->rules, (size_t)r->position - 1, canon)
                                    : strv_push_take(&c->rules, canon);
                if (k < 0)
                        goto nomem;
        }
        return 0;
nomem:
        state_want_deinit(ret);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
}

void state_want_deinit(struct state_want *w)
{
        for (size_t i = 0; i < w->n; i++) {
                free(w->v[i].table);
                free(w->v[i].chain);
                strv_deinit(&w->v[i].rules);
        }
        free(w->v);
        w->v = NULL;
        w->n = 0;
}

static bool has_token(const char *spec, const char *tok)
{
        size_t n = strlen(tok);

        for (const char *p = strstr(spec, tok); p; p = strstr(p + 1, tok))
                if ((p == spec || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
                        return true;
        return false;
}

static bool jumps_to_istio(const char *spec)
{
        const char *j = strstr(spec, "-j ISTIO_");

        for (; j; j = strstr(j + 1, "-j ISTIO_"))
                if (j == spec || j[-1] == ' ')
                        return true;
        return false;
}

/*
 * The rules pilotfish writes into builtin chains that do not jump to an ISTIO_ chain, by
 * their canonical shape; so a rule left by other settings is recognised as ours.
 */
static bool builtin_shape_is_ours(const char *table, const char *chain, const char *spec)
{
        bool nat_or_mangle = strcmp(table, "nat") == 0 || strcmp(table, "mangle") == 0;
        int words = 0;

        for (const char *p = spec; *p; p++)
                words += *p == ' ';
        words++;
        /* Exclude-interface and KubeVirt RETURNs: "-i IF -j RETURN", "-o IF -j RETURN". */
        if (nat_or_mangle && words == 4 && strncmp(spec, strcmp(chain, "PREROUTING") == 0 ? "-i " : "-o ", 3) == 0 &&
            has_token(spec, "RETURN") && (strcmp(chain, "PREROUTING") == 0 || strcmp(chain, "OUTPUT") == 0))
                return true;
        if (strcmp(table, "mangle") != 0)
                return false;
        /* TPROXY tail (SEMANTICS.md section 4 step 17). */
        if (has_token(spec, "CONNMARK") && (has_token(spec, "--save-mark") || has_token(spec, "--restore-mark")))
                return true;
        if (strcmp(chain, "OUTPUT") == 0 && has_token(spec, "MARK") && has_token(spec, "owner") && has_token(spec, "lo"))
                return true;
        if (strcmp(chain, "OUTPUT") == 0 && has_token(spec, "mark") && has_token(spec, "lo") &&
            has_token(spec, "RETURN"))
                return true;
        return false;
}

static bool rule_is_ours(const struct state_want *w, const char *table, const char *chain, const char *spec)
{
        const struct state_chain *c;

        if (jumps_to_istio(spec) || builtin_shape_is_ours(table, chain, spec))
                return true;
        c = want_find(w, table, chain);
        return c && strv_contains(&c->rules, spec);
}

static void diff_line(struct strbuf *diff, int *lines, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void diff_line(struct strbuf *diff, int *lines, const char *fmt, ...)
{
        va_list ap;

        if (!diff)
                return;
        if (++*lines > DIFF_MAX_LINES) {
                if (*lines == DIFF_MAX_LINES + 1)
                        strbuf_puts(diff, "  ...\n");
                return;
        }
        strbuf_puts(diff, "  ");
        va_start(ap, fmt);
        strbuf_vprintf(diff, fmt, ap);
        va_end(ap);
        strbuf_puts(diff, "\n");
}

/* Compares the "ours" part of one live chain with the wanted rules. */
static void compare_chain(const char *table, const char *chain, const struct strv *have_all, bool istio,
                          const struct state_want *w, const struct strv *want, struct strbuf *diff, int *lines)
{
        struct strv have = STRV_NULL;
        size_t i, nw = want ? want->n : 0;

        for (i = 0; have_all && i < have_all->n; i++)
                if (istio || rule_is_ours(w, table, chain, have_all->v[i]))
                        strv_push(&have, have_all->v[i]);
        for (i = 0; i < have.n || i < nw; i++) {
                const char *h = i < have.n ? have.v[i] : NULL, *x = i < nw ? want->v[i] : NULL;

                if (h && x && strcmp(h, x) == 0)
                        continue;
                if (h && x)
                        diff_line(diff, lines, "%s %s rule %zu: have \"-A %s %s\", want \"-A %s %s\"", table, chain,
                                  i + 1, chain, h, chain, x);
                else if (h)
                        diff_line(diff, lines, "%s %s: has \"-A %s %s\", which these settings do not create", table,
                                  chain, chain, h);
                else
                        diff_line(diff, lines, "%s %s: lacks \"-A %s %s\"", table, chain, chain, x);
        }
        strv_deinit(&have);
}

bool state_has_ours(const struct state_want *w, const struct saved *cur)
{
        for (size_t t = 0; t < cur->n_tables; t++) {
                const struct saved_table *st = &cur->tables[t];
                for (size_t c = 0; c < st->n_chains; c++) {
                        const struct saved_chain *sc = &st->chains[c];
                        if (plan_chain_is_istio(sc->name))
                                return true;
                        for (size_t r = 0; r < sc->rules.n; r++)
                                if (rule_is_ours(w, st->name, sc->name, sc->rules.v[r]))
                                        return true;
                }
        }
        return false;
}

enum state_verdict state_compare(const struct state_want *w, const struct saved *cur, struct strbuf *diff)
{
        int lines = 0;

        if (!state_has_ours(w, cur))
                return w->n == 0 ? STATE_IN_SYNC : STATE_CLEAN;

        /* Every wanted chain against the live one. */
        for (size_t i = 0; i < w->n; i++) {
                const struct state_chain *c = &w->v[i];
                const struct saved_table *st = saved_find_table(cur, c->table);
                const struct saved_chain *sc = st ? saved_find_chain(st, c->chain) : NULL;
                bool istio = plan_chain_is_istio(c->chain);

                if (istio && !sc) {
                        diff_line(diff, &lines, "%s: chain %s is missing", c->table, c->chain);
                        continue;
                }
                compare_chain(c->table, c->chain, sc ? &sc->rules : NULL, istio, w, &c->rules, diff, &lines);
        }
        /* Live chains holding ours that the plan does not mention at all. */
        for (size_t t = 0; t < cur->n_tables; t++) {
                const struct saved_table *st = &cur->tables[t];
                for (size_t k = 0; k < st->n_chains; k++) {
                        const struct saved_chain *sc = &st->chains[k];
                        bool istio = plan_chain_is_istio(sc->name);

                        if (want_find(w, st->name, sc->name))
                                continue;
                        if (istio)
                                diff_line(diff, &lines, "%s: chain %s exists, these settings do not create it", st->name,
                                          sc->name);
                        else
                                compare_chain(st->name, sc->name, &sc->rules, false, w, NULL, diff, &lines);
                }
        }
        return lines ? STATE_DRIFT : STATE_IN_SYNC;
}

int state_build_replace(const struct saved *cur, const struct state_want *w, const struct plan *p,
                        enum plan_family fam, struct strbuf *out, struct strv *ret_tables)
{
        for (const char *const *t = restore_tables; *t; t++) {
                const struct saved_table *st = saved_find_table(cur, *t);
                struct strv existing = STRV_NULL;
                struct strbuf body = STRBUF_NULL;
                bool install = p && restore_plan_has_table(p, fam, *t);

                if (st) {
                        /* 1. Delete our rules from every other chain, which drops every reference
                         *    to an ISTIO_ chain from outside. */
                        for (size_t c = 0; c < st->n_chains; c++) {
                                const struct saved_chain *sc = &st->chains[c];
                                if (plan_chain_is_istio(sc->name))
                                        continue;
                                for (size_t r = 0; r < sc->rules.n; r++)
                                        if (rule_is_ours(w, *t, sc->name, sc->rules.v[r]))
                                                strbuf_printf(&body, "-D %s %s\n", sc->name, sc->rules.v[r]);
                        }
                        /* 2. Flush every ISTIO_ chain (drops references between them). */
                        for (size_t c = 0; c < st->n_chains; c++)
                                if (plan_chain_is_istio(st->chains[c].name)) {
                                        strbuf_printf(&body, "-F %s\n", st->chains[c].name);
                                        strv_push(&existing, st->chains[c].name);
                                }
                        /* 3. Delete the ones the plan does not reuse. */
                        for (size_t c = 0; c < st->n_chains; c++) {
                                const char *name = st->chains[c].name;
                                if (plan_chain_is_istio(name) && !(install && want_find(w, *t, name)))
                                        strbuf_printf(&body, "-X %s\n", name);
                        }
                }
                /* 4. Install: -N only for chains that do not exist already. */
                if (install)
                        restore_render_table_body(p, fam, *t, &existing, &body);

                if (body.len) {
                        strbuf_printf(out, "* %s\n%sCOMMIT\n", *t, strbuf_str(&body));
                        if (!strv_contains(ret_tables, *t))
                                strv_push(ret_tables, *t);
                }
                strbuf_deinit(&body);
                strv_deinit(&existing);
        }
        return out->error;
}
