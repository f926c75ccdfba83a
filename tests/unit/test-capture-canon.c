/*
 * canon_rule() against what the kernel really printed. For every iptables and CNI case of the
 * conformance corpus that was observed (observed-save-{legacy,nft}), the restore blocks of
 * `expected` are replayed into a model of the tables (appends and "-I CHAIN N" inserts, each
 * rule canonicalised), and every chain must then hold exactly the rules iptables-save printed,
 * in order. A case whose restore the observation host refused (a group name it did not have)
 * must be refused by canon_rule at the same rule. Then a few direct examples, including the
 * refusals. Run by hand without TEST_DATA_DIR, the corpus is a skip (a failure under CI=true).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture/canon.h"
#include "capture/saved.h"
#include "common/strv.h"
#include "file.h"
#include "tap.h"

#define SIM_MAX_FAMILIES 2
#define SIM_MAX_TABLES 8
#define SIM_MAX_CHAINS 64

struct sim_chain {
        char name[64];
        bool declared;          /* had a -N line */
        struct strv rules;      /* canonical, in final order */
};

struct sim_table {
        char name[32];
        struct sim_chain chain[SIM_MAX_CHAINS];
        size_t n_chains;
};

struct sim_family {
        struct sim_table table[SIM_MAX_TABLES];
        size_t n_tables;
        char error[512];        /* first problem while replaying, "" if none */
};

struct sim {
        struct sim_family fam[SIM_MAX_FAMILIES];
        size_t n_fams;
        size_t n_rules;
        size_t n_not_fixed;     /* rules whose canonical form does not canonicalise to itself */
};

static void sim_free(struct sim *s)
{
        for (size_t f = 0; f < s->n_fams; f++)
                for (size_t t = 0; t < s->fam[f].n_tables; t++)
                        for (size_t c = 0; c < s->fam[f].table[t].n_chains; c++)
                                strv_deinit(&s->fam[f].table[t].chain[c].rules);
        free(s);
}

static struct sim_chain *sim_chain(struct sim_family *fam, struct sim_table *t, const char *name)
{
        for (size_t i = 0; i < t->n_chains; i++)
                if (strcmp(t->chain[i].name, name) == 0)
                        return &t->chain[i];
        if (t->n_chains >= SIM_MAX_CHAINS || strlen(name) >= sizeof(t->chain[0].name)) {
                snprintf(fam->error, sizeof(fam->error), "too many chains / name too long: %s", name);
                return NULL;
        }
        snprintf(t->chain[t->n_chains].name, sizeof(t->chain[0].name), "%s", name);
        return &t->chain[t->n_chains++];
}

/* Canonicalises spec and places it at 0-based pos (SIZE_MAX: append). */
static void sim_add(struct sim *s, struct sim_family *fam, int family, struct sim_chain *c,
                    size_t pos, const char *spec)
{
        char *canon = NULL, *again = NULL;
        int r;

        s->n_rules++;
        r = canon_rule(spec, family, &canon);
        if (r < 0) {
                if (!fam->error[0])
                        snprintf(fam->error, sizeof(fam->error), "canon_rule(\"%s\") = %s", spec, strerror(-r));
                return;
        }
        if (canon_rule(canon, family, &again) < 0 || strcmp(again, canon) != 0) {
                printf("# not a fixed point: [%s] -> [%s] -> [%s]\n", spec, canon, again ? again : "(error)");
                s->n_not_fixed++;
        }
        free(again);
        if (pos == SIZE_MAX)
                pos = c->rules.n;
        if (pos > c->rules.n) {
                snprintf(fam->error, sizeof(fam->error), "insert position %zu beyond chain %s", pos + 1, c->name);
                free(canon);
                return;
        }
        if (strv_push_take(&c->rules, canon) < 0)
                abort();
        memmove(&c->rules.v[pos + 1], &c->rules.v[pos], (c->rules.n - 1 - pos) * sizeof(char *));
        c->rules.v[pos] = canon;
}

/*
 * Replays the restore blocks of an `expected` file. Tables come in alphabetical order inside
 * one restore input and every family's input has nat, so a table name that does not sort
 * after the previous one starts the next family (v4 first, then v6).
 */
static struct sim *sim_replay(const char *text)
{
        struct sim *s = calloc(1, sizeof(*s));
        struct sim_family *fam = NULL;
        struct sim_table *t = NULL;
        char *copy = strdup(text), *save = NULL;

        if (!s || !copy)
                abort();
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char chain[128];
                int family;
                int off = 0;
                unsigned pos;

                if (line[0] == '*') {
                        const char *name = line + 1 + strspn(line + 1, " ");

                        if (!fam || (fam->n_tables > 0 && strcmp(name, fam->table[fam->n_tables - 1].name) <= 0)) {
                                if (s->n_fams >= SIM_MAX_FAMILIES)
                                        abort();
                                fam = &s->fam[s->n_fams++];
                        }
                        if (fam->n_tables >= SIM_MAX_TABLES)
                                abort();
                        t = &fam->table[fam->n_tables++];
                        snprintf(t->name, sizeof(t->name), "%s", name);
                        continue;
                }
                if (!t)
                        continue;       /* "iptables-save" lines of the dry-run transcript */
                if (strcmp(line, "COMMIT") == 0) {
                        t = NULL;
                        continue;
                }
                family = s->n_fams == 2 ? AF_INET6 : AF_INET;
                if (sscanf(line, "-N %127s", chain) == 1) {
                        struct sim_chain *c = sim_chain(fam, t, chain);
                        if (c)
                                c->declared = true;
                } else if (sscanf(line, "-A %127s %n", chain, &off) == 1 && off > 0) {
                        struct sim_chain *c = sim_chain(fam, t, chain);
                        if (c)
                                sim_add(s, fam, family, c, SIZE_MAX, line + off);
                } else if (sscanf(line, "-I %127s %u %n", chain, &pos, &off) == 2 && off > 0 && pos > 0) {
                        struct sim_chain *c = sim_chain(fam, t, chain);
                        if (c)
                                sim_add(s, fam, family, c, pos - 1, line + off);
                } else if (!fam->error[0]) {
                        snprintf(fam->error, sizeof(fam->error), "unexpected restore line: %s", line);
                }
        }
        free(copy);
        return s;
}

/* The text between "### <header>" and the next "### " line, or NULL when absent. */
static char *section(const char *text, const char *header)
{
        char want[128];
        const char *p, *end;

        snprintf(want, sizeof(want), "### %s\n", header);
        p = strstr(text, want);
        if (!p)
                return NULL;
        p += strlen(want);
        end = strstr(p, "\n### ");
        return strndup(p, end ? (size_t)(end - p) + 1 : strlen(p));
}

static bool rules_equal(const struct strv *want, const struct strv *got, const char *table, const char *chain)
{
        size_t n = want->n > got->n ? want->n : got->n;
        bool ok = want->n == got->n;

        for (size_t i = 0; i < n; i++) {
                const char *w = i < want->n ? want->v[i] : "(none)";
                const char *g = i < got->n ? got->v[i] : "(none)";

                if (strcmp(w, g) != 0) {
                        printf("# %s/%s rule %zu\n#   want: %s\n#   got:  %s\n", table, chain, i + 1, w, g);
                        ok = false;
                }
        }
        return ok;
}

/* Every chain of every observed table must hold exactly the replayed rules. */
static bool compare(const struct sim_family *fam, const struct saved *obs)
{
        static const struct strv none = STRV_NULL;
        bool ok = true;

        for (size_t i = 0; i < fam->n_tables; i++) {
                const struct sim_table *t = &fam->table[i];
                const struct saved_table *ot = saved_find_table(obs, t->name);

                if (!ot) {
                        printf("# table %s missing from the save output\n", t->name);
                        ok = false;
                        continue;
                }
                for (size_t c = 0; c < t->n_chains; c++) {
                        const struct saved_chain *oc = saved_find_chain(ot, t->chain[c].name);

                        if (!oc) {
                                printf("# chain %s/%s missing\n", t->name, t->chain[c].name);
                                ok = false;
                                continue;
                        }
                        if (t->chain[c].declared && strcmp(oc->policy, "-") != 0) {
                                printf("# chain %s/%s: policy %s, want -\n", t->name, t->chain[c].name, oc->policy);
                                ok = false;
                        }
                        ok = rules_equal(&t->chain[c].rules, &oc->rules, t->name, oc->name) && ok;
                }
        }
        /* Nothing else may have rules: the observation netns started empty. */
        for (size_t i = 0; i < obs->n_tables; i++) {
                const struct saved_table *ot = &obs->tables[i];
                const struct sim_table *t = NULL;

                for (size_t j = 0; j < fam->n_tables; j++)
                        if (strcmp(fam->table[j].name, ot->name) == 0)
                                t = &fam->table[j];
                for (size_t c = 0; c < ot->n_chains; c++) {
                        bool known = false;

                        for (size_t k = 0; t && k < t->n_chains; k++)
                                known = known || strcmp(t->chain[k].name, ot->chains[c].name) == 0;
                        if (!known)
                                ok = rules_equal(&none, &ot->chains[c].rules, ot->name, ot->chains[c].name) && ok;
                }
        }
        return ok;
}

/*
 * A family whose restore iptables refused on the observation host: it named a group that
 * host did not have ("owner: Bad value for \"--gid-owner\" option: \"java\""), and it keeps
 * no save output to compare with. canon_rule() must refuse that same rule (it takes numeric
 * IDs only, as iptables-save prints them), so the replay of the family stops there too.
 */
static void check_refused(const struct sim *s, size_t f, const char *observed, const char *name,
                          const char *fam_name, const char *backend)
{
        const char *tool = f == 0 ? "iptables-" : "ip6tables-";
        char opt[64] = "", val[128] = "", want[200];
        const char *line = observed;

        /* The backend's message for this family: its own tool's line, "iptables-..." or "ip6tables-...". */
        for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *bad = strstr(line, "Bad value for \"");
                const char *eol = strchr(line, '\n');

                if (strncmp(line, tool, strlen(tool)) == 0 && bad && (!eol || bad < eol) &&
                    sscanf(bad, "Bad value for \"%63[^\"]\" option: \"%127[^\"]\"", opt, val) == 2)
                        break;
        }
        snprintf(want, sizeof(want), "%s %s", opt, val);
        if (!val[0])
                printf("# no \"Bad value for\" line from %s... in the observation\n", tool);
        else if (f >= s->n_fams || !strstr(s->fam[f].error, want))
                printf("# replay error: [%s]\n# want a refusal of a rule with [%s]\n",
                       f < s->n_fams ? s->fam[f].error : "(no such family)", want);
        tap_ok(val[0] && f < s->n_fams && strncmp(s->fam[f].error, "canon_rule(", 11) == 0 &&
               strstr(s->fam[f].error, want) && strstr(s->fam[f].error, strerror(EINVAL)),
               "%s %s %s: the rule iptables-restore refused on the observation host (%s \"%s\") is refused by canon_rule too",
               name, fam_name, backend, opt, val);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_case(const char *dir, const char *name, size_t *n_rules, size_t *n_not_fixed)
{
        static const char *const backends[] = { "legacy", "nft" };
        char path[4096 + 512];
        char *expected;
        struct sim *s;

        snprintf(path, sizeof(path), "%s/%s/expected", dir, name);
        expected = read_text(path);
        if (!expected) {
                tap_ok(false, "%s: read %s", name, path);
                return;
        }
        s = sim_replay(expected);
        *n_rules += s->n_rules;
        *n_not_fixed += s->n_not_fixed;

        for (size_t b = 0; b < 2; b++) {
                char *observed;

                snprintf(path, sizeof(path), "%s/%s/observed-save-%s", dir, name, backends[b]);
                observed = read_text(path);
                if (!observed) {
                        tap_ok(false, "%s: read %s", name, path);
                        continue;
                }
                for (size_t f = 0; f < SIM_MAX_FAMILIES; f++) {
                        const char *fam_name = f == 0 ? "v4" : "v6";
                        char header[64], failed[64];
                        struct saved obs = SAVED_NULL;
                        char *text;
                        int r;

                        snprintf(header, sizeof(header), "%s-%s-save", f == 0 ? "iptables" : "ip6tables", backends[b]);
                        snprintf(failed, sizeof(failed), "V%c RESTORE FAILED", f == 0 ? '4' : '6');
                        text = section(observed, header);
                        if (!text && f >= s->n_fams)
                                continue;
                        if (strstr(observed, failed)) {
                                check_refused(s, f, observed, name, fam_name, backends[b]);
                                free(text);
                                continue;
                        }
                        if (!text || f >= s->n_fams) {
                                tap_ok(false, "%s %s %s: restore blocks and save sections do not pair up",
                                       name, fam_name, backends[b]);
                                free(text);
                                continue;
                        }
                        if (s->fam[f].error[0]) {
                                printf("# %s\n", s->fam[f].error);
                                tap_ok(false, "%s %s %s: canonical rules equal the saved rules", name, fam_name, backends[b]);
                                free(text);
                                continue;
                        }
                        r = saved_parse(text, &obs);
                        if (r < 0)
                                printf("# saved_parse: %s\n", strerror(-r));
                        tap_ok(r == 0 && compare(&s->fam[f], &obs),
                               "%s %s %s: canonical rules equal the saved rules", name, fam_name, backends[b]);
                        saved_deinit(&obs);
                        free(text);
                }
                free(observed);
        }
        sim_free(s);
        free(expected);
}

/* The corpus: every observed iptables/CNI case, both families, both backends. */
static void test_corpus(void)
{
        const char *data = getenv("TEST_DATA_DIR");
        char dir[4096], path[4096 + 512];
        struct strv names = STRV_NULL;
        size_t n_rules = 0, n_not_fixed = 0;
        struct dirent *de;
        DIR *d;

        if (!data) {
                tap_skip("TEST_DATA_DIR not set (meson test sets it)", "conformance corpus");
                return;
        }
        snprintf(dir, sizeof(dir), "%s/istio-iptables", data);
        d = opendir(dir);
        if (!d) {
                tap_ok(false, "open %s", dir);
                return;
        }
        while ((de = readdir(d))) {
                FILE *f;

                if (de->d_name[0] == '.' || strncmp(de->d_name, "nft-", 4) == 0 ||
                    strncmp(de->d_name, "builder-", 8) == 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/observed-save-legacy", dir, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                fclose(f);
                snprintf(path, sizeof(path), "%s/%s/observed-save-nft", dir, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                fclose(f);
                if (strv_push(&names, de->d_name) < 0)
                        abort();
        }
        closedir(d);
        if (names.n)
                qsort(names.v, names.n, sizeof(char *), cmp_names);
        tap_ok(names.n >= 30, "corpus has the observed cases (%zu)", names.n);

        for (size_t i = 0; i < names.n; i++)
                check_case(dir, names.v[i], &n_rules, &n_not_fixed);
        tap_ok(n_rules > 500 && n_not_fixed == 0,
               "the canonical form of all %zu corpus rules canonicalises to itself", n_rules);
        strv_deinit(&names);
}

struct example {
        int family;
        const char *in;
        const char *want;
};

/* The renderings called out in SEMANTICS.md section 6, one by one. */
static void test_examples(void)
{
        static const struct example ex[] = {
                { AF_INET, "-p tcp --dport 15008 -j RETURN", "-p tcp -m tcp --dport 15008 -j RETURN" },
                { AF_INET, "-o lo -s 127.0.0.6/32 -j RETURN", "-s 127.0.0.6/32 -o lo -j RETURN" },
                { AF_INET, "-o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
                  "! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT" },
                { AF_INET, "-o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT",
                  "! -d 127.0.0.1/32 -o lo -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT" },
                { AF_INET, "-j MARK --set-mark 1337", "-j MARK --set-xmark 0x539/0xffffffff" },
                { AF_INET, "-j MARK --set-mark 0x1/0xff", "-j MARK --set-xmark 0x1/0xff" },
                { AF_INET, "-p tcp -m mark --mark 1337 -j RETURN", "-p tcp -m mark --mark 0x539 -j RETURN" },
                { AF_INET, "-p tcp -i lo -m mark ! --mark 1338 -j RETURN", "-i lo -p tcp -m mark ! --mark 0x53a -j RETURN" },
                { AF_INET, "! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006",
                  "! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff" },
                { AF_INET6, "! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006",
                  "! -d ::1/128 -p tcp -j TPROXY --on-port 15006 --on-ip :: --tproxy-mark 0x539/0xffffffff" },
                { AF_INET, "-p tcp -m mark --mark 1337 -j CONNMARK --save-mark",
                  "-p tcp -m mark --mark 0x539 -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff" },
                { AF_INET, "-p tcp -m connmark --mark 1337 -j CONNMARK --restore-mark",
                  "-p tcp -m connmark --mark 0x539 -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff" },
                { AF_INET, "-p udp --dport 53 -d 127.0.0.53/32 -j REDIRECT --to-port 15053",
                  "-d 127.0.0.53/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053" },
                { AF_INET, "-p udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2",
                  "-p udp -m udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2" },
                { AF_INET, "-p tcp --dport 15008 --sport 1 -j RETURN", "-p tcp -m tcp --sport 1 --dport 15008 -j RETURN" },
                { AF_INET, "-p tcp -m conntrack --ctstate ESTABLISHED,RELATED -j ISTIO_DIVERT",
                  "-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT" },
                { AF_INET, "-m owner ! --gid-owner 1 -m owner ! --gid-owner 2 -j RETURN",
                  "-m owner ! --gid-owner 1 -m owner ! --gid-owner 2 -j RETURN" },
                { AF_INET, "-m owner ! --gid-owner 888 -m owner ! --gid-owner 202 -j RETURN",
                  "-m owner ! --gid-owner 888 -m owner ! --gid-owner 202 -j RETURN" },
                { AF_INET, "-p tcp -m owner --uid-owner 1337 --dport 80 -j RETURN",
                  "-p tcp -m owner --uid-owner 1337 -m tcp --dport 80 -j RETURN" },
                { AF_INET, "-d 127.0.0.1 -j RETURN", "-d 127.0.0.1/32 -j RETURN" },
                { AF_INET, "-d 127.0.0.1/8 -j RETURN", "-d 127.0.0.0/8 -j RETURN" },
                { AF_INET, "-d 0.0.0.0/0 -j RETURN", "-j RETURN" },
                { AF_INET6, "-p tcp -s ::6 -i lo -j RETURN", "-s ::6/128 -i lo -p tcp -j RETURN" },
                { AF_INET6, "-d 2001:DB8:0:0::1/32 -j RETURN", "-d 2001:db8::/32 -j RETURN" },
                { AF_INET, "-i eth+ -j ISTIO_REDIRECT", "-i eth+ -j ISTIO_REDIRECT" },
                { AF_INET, "-j CT --zone 0", "-j CT" },
                { AF_INET, "", "" },
        };

        for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
                char *got = NULL;
                int r = canon_rule(ex[i].in, ex[i].family, &got);

                if (r < 0)
                        printf("# canon_rule: %s\n", strerror(-r));
                TAP_STREQ(got, ex[i].want, "%s \"%s\"", ex[i].family == AF_INET ? "v4" : "v6", ex[i].in);
                free(got);
        }
}

/* What canon_rule() must refuse instead of guessing. */
static void test_refusals(void)
{
        static const char *const bad[] = {
                "-m owner --gid-owner java -j RETURN",          /* a name: resolved at apply time */
                "-m owner ! --uid-owner nobody -j RETURN",
                "-f foo -b bar",                                /* the builder corpus' placeholders */
                "-p tcp --dport 53 --dport 54 -j RETURN",
                "--dport 53 -p tcp -j RETURN",
                "! -p tcp --dport 53 -j RETURN",
                "-d ::1/128 -j RETURN",                         /* v6 address in a v4 rule */
                "-d 10.0.0.0/33 -j RETURN",
                "-d 10.0.0.0/8 -d 11.0.0.0/8 -j RETURN",
                "-p icmp -j RETURN",
                "-j LOG",
                "-j RETURN extra",
                "-j",
                "-m multiport --dports 1,2 -j RETURN",
                "-p tcp -m multiport --dports 1,2 --sports 3 -j RETURN",
                "-p tcp -m udp --dport 1 -j RETURN",
                "-m owner -j RETURN",
                "-m nosuchmatch -j RETURN",
                "-j TPROXY --on-port 1",
                "-p tcp -j TPROXY --tproxy-mark 1",
                "-j REDIRECT --to-ports 15001",
                "-j MARK",
                "-j MARK --set-mark 1 --set-mark 2",
                "-j CONNMARK --save-mark --mask 1 --nfmask 2",
                "-j CT --zone 65536",
                "-p tcp --dport 65536 -j RETURN",
                "-p tcp --dport 0:65535 -j RETURN",
                "-p tcp\t--dport 1 -j RETURN",
                "-m comment --comment \"x\" -j RETURN",
                "! ! -d 1.2.3.4 -j RETURN",
                "! -j RETURN",
                "-p tcp --dport",
                "-m conntrack --ctstate BOGUS -j RETURN",
                "-m conntrack --ctstate RELATED, -j RETURN",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *got = NULL;
                int r = canon_rule(bad[i], AF_INET, &got);

                if (r == 0)
                        printf("# accepted as [%s]\n", got);
                tap_ok(r == -EINVAL && !got, "refuses \"%s\"", bad[i]);
                free(got);
        }
}

/* Limits: a long spec and many tokens are refused, the family must be one of the two. */
static void test_limits(void)
{
        char *spec = malloc(8192), *got = NULL;
        size_t len = 0;

        if (!spec)
                abort();
        while (len < 8000)
                len += (size_t)sprintf(spec + len, "-m mark --mark 1 ");
        spec[len] = '\0';
        tap_ok(canon_rule(spec, AF_INET, &got) == -EINVAL && !got, "refuses a spec over 4096 bytes");
        spec[17 * 17] = '\0';
        tap_ok(canon_rule(spec, AF_INET, &got) == -EINVAL && !got, "refuses 17 matches");
        spec[16 * 17] = '\0';
        tap_ok(canon_rule(spec, AF_INET, &got) == 0 && got, "takes 16 matches");
        free(got);
        got = NULL;
        tap_ok(canon_rule("-j RETURN", AF_UNIX, &got) == -EINVAL && !got, "refuses an unknown family");
        free(spec);
}

int main(void)
{
        test_examples();
        test_refusals();
        test_limits();
        test_corpus();
        return tap_done();
}
