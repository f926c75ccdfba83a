/*
 * Unit tests for capture/plan.c and capture/restore.c: the properties of the rule plan and
 * its iptables-restore text that the conformance corpus (which compares whole outputs)
 * does not name one by one. Rendered text is replayed through a small model of
 * iptables-restore --noflush on empty tables (-N, -A, -I N with iptables' index check,
 * jump targets that must exist), so "the last -I 1 written ends up first" is checked on the
 * resulting chain, not on the text. Istio's builder goldens
 * (tests/data/istio-iptables/builder-*) are replayed through restore_render with
 * their calls transcribed and their fake table "table" renamed to a real one.
 *
 * Settings come from capture_settings_* with --ipv6=false|true, so no host scan happens;
 * DNS servers come from a temp resolv.conf.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/plan.h"
#include "capture/restore.h"
#include "capture/settings.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "tap.h"

#define ARGV(...) ((char *const[]){ "iptables", __VA_ARGS__, NULL })
#define ENVP(...) ((char *const[]){ __VA_ARGS__, NULL })
#define NO_ARGS ((char *const[]){ "iptables", NULL })
#define BASE_ENV ENVP("ENVOY_USER=pilotfish-test-no-such-user")

static char resolv_path[64];
static char resolv_arg[96];

/* A built configuration: settings, plan and the restore text of each family. */
struct built {
        struct capture_settings s;
        struct plan p;
        char *text[_PLAN_FAMILY_MAX];
        int r;
        char err[2048];
};

static char *render(const struct plan *p, enum plan_family fam)
{
        struct strbuf out = STRBUF_NULL;
        char *t;

        if (restore_render(p, fam, &out) < 0) {
                strbuf_deinit(&out);
                return NULL;
        }
        t = strdup(strbuf_str(&out));
        strbuf_deinit(&out);
        return t;
}

/* Parses argv after "--ipv6=false" (a later --ipv6 wins), resolves, plans and renders. */
static int build(struct built *b, char *const *env, char *const *argv)
{
        char *args[64];
        int n = 0;

        memset(b, 0, sizeof(*b));
        args[n++] = argv[0];
        args[n++] = (char *)"--ipv6=false";
        args[n++] = resolv_arg;
        for (int i = 1; argv[i]; i++) {
                if (n >= (int)(sizeof(args) / sizeof(args[0])) - 1)
                        abort();
                args[n++] = argv[i];
        }
        args[n] = NULL;
        b->r = capture_settings_init(&b->s);
        if (b->r == 0)
                b->r = capture_settings_load_env(&b->s, env);
        if (b->r == 0)
                b->r = capture_settings_parse_args(&b->s, n, args, b->err, sizeof(b->err));
        if (b->r == 0)
                b->r = capture_settings_resolve(&b->s, b->err, sizeof(b->err));
        if (b->r == 0)
                b->r = plan_build(&b->s, &b->p);
        if (b->r == 0) {
                b->text[PLAN_V4] = render(&b->p, PLAN_V4);
                b->text[PLAN_V6] = render(&b->p, PLAN_V6);
                if (!b->text[PLAN_V4] || !b->text[PLAN_V6])
                        b->r = -ENOMEM;
        }
        if (b->r != 0)
                printf("# build failed: %d %s\n", b->r, b->err);
        return b->r;
}

static void built_free(struct built *b)
{
        plan_deinit(&b->p);
        capture_settings_deinit(&b->s);
        free(b->text[PLAN_V4]);
        free(b->text[PLAN_V6]);
}

static bool has_line(const char *text, const char *line)
{
        size_t n = strlen(line);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

/* Counts the lines that start with prefix and end with suffix. */
static size_t count_lines(const char *text, const char *prefix, const char *suffix)
{
        size_t count = 0, lp = strlen(prefix), ls = strlen(suffix);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                size_t n = strcspn(p, "\n");
                if (n >= lp + ls && strncmp(p, prefix, lp) == 0 && strncmp(p + n - ls, suffix, ls) == 0)
                        count++;
        }
        return count;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The "* table" headers of a restore text, joined with ','. */
static const char *table_order(const char *text)
{
        static char buf[256];
        size_t off = 0;

        buf[0] = '\0';
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (p[0] == '*' && p[1] == ' ') {
                        size_t n = strcspn(p + 2, "\n");
                        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%.*s", off ? "," : "", (int)n, p + 2);
                }
        return buf;
}

/* The -N lines of one table's block, joined with ','. */
static const char *declared_in(const char *text, const char *table)
{
        static char buf[512];
        size_t off = 0;
        bool in = false;

        buf[0] = '\0';
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                size_t n = strcspn(p, "\n");
                if (p[0] == '*' && p[1] == ' ')
                        in = n - 2 == strlen(table) && strncmp(p + 2, table, n - 2) == 0;
                else if (in && strncmp(p, "-N ", 3) == 0)
                        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%.*s", off ? "," : "", (int)n - 3, p + 3);
        }
        return buf;
}

/* ---- a model of iptables-restore --noflush on empty tables ---- */

#define SIM_CHAINS 32

struct sim_chain {
        char name[32];
        struct strv rules;
};

struct sim_table {
        char name[16];
        struct sim_chain chains[SIM_CHAINS];
        size_t n;
};

struct sim {
        struct sim_table tables[4];
        size_t n;
        char error[256];
};

static struct sim_chain *sim_chain(struct sim_table *t, const char *name, size_t len, bool create)
{
        for (size_t i = 0; i < t->n; i++)
                if (strlen(t->chains[i].name) == len && strncmp(t->chains[i].name, name, len) == 0)
                        return &t->chains[i];
        if (!create || t->n == SIM_CHAINS || len >= sizeof(t->chains[0].name))
                return NULL;
        memcpy(t->chains[t->n].name, name, len);
        t->chains[t->n].name[len] = '\0';
        return &t->chains[t->n++];
}

static bool is_builtin_chain(const char *name, size_t len)
{
        static const char *const b[] = { "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING" };

        for (size_t i = 0; i < 5; i++)
                if (strlen(b[i]) == len && strncmp(b[i], name, len) == 0)
                        return true;
        return false;
}

static void sim_free(struct sim *m)
{
        for (size_t i = 0; i < m->n; i++)
                for (size_t k = 0; k < m->tables[i].n; k++)
                        strv_deinit(&m->tables[i].chains[k].rules);
        m->n = 0;
}

static bool sim_fail(struct sim *m, const char *line, size_t n, const char *why)
{
        snprintf(m->error, sizeof(m->error), "%s: \"%.*s\"", why, (int)n, line);
        return false;
}

/* Inserts a copy of spec at 0-based index pos of sv. */
static int strv_insert(struct strv *sv, size_t pos, const char *spec, size_t len)
{
        char *copy = strndup(spec, len);
        int r = strv_push_take(sv, copy);

        if (r < 0)
                return r;
        memmove(&sv->v[pos + 1], &sv->v[pos], (sv->n - 1 - pos) * sizeof(char *));
        sv->v[pos] = copy;
        return 0;
}

/*
 * Applies a restore text. Fails (with m->error) on what iptables-restore would refuse or on
 * a structural rule of Istio's format: -N after a rule, a duplicate -N, a rule in an
 * undeclared chain, an -I index past the end, a jump to an undeclared chain, a missing
 * COMMIT, or a line with a double or trailing space (an empty substitution).
 */
static bool sim_apply(struct sim *m, const char *text)
{
        struct sim_table *t = NULL;
        bool rules_started = false;

        memset(m, 0, sizeof(*m));
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                const char *next = p[n] ? p + n + 1 : p + n;

                if (memmem(p, n, "  ", 2) || (n && p[n - 1] == ' '))
                        return sim_fail(m, p, n, "double or trailing space");
                if (p[0] == '*' && p[1] == ' ') {
                        if (t)
                                return sim_fail(m, p, n, "table header before COMMIT");
                        if (m->n == 4 || n - 2 >= sizeof(t->name))
                                return sim_fail(m, p, n, "bad table");
                        t = &m->tables[m->n++];
                        memcpy(t->name, p + 2, n - 2);
                        t->name[n - 2] = '\0';
                        rules_started = false;
                } else if (n == 6 && strncmp(p, "COMMIT", 6) == 0) {
                        if (!t)
                                return sim_fail(m, p, n, "COMMIT outside a table");
                        t = NULL;
                } else if (!t) {
                        return sim_fail(m, p, n, "line outside a table");
                } else if (strncmp(p, "-N ", 3) == 0) {
                        if (rules_started)
                                return sim_fail(m, p, n, "-N after a rule");
                        if (is_builtin_chain(p + 3, n - 3) || sim_chain(t, p + 3, n - 3, false))
                                return sim_fail(m, p, n, "chain already exists");
                        if (!sim_chain(t, p + 3, n - 3, true))
                                return sim_fail(m, p, n, "too many chains");
                } else if (strncmp(p, "-A ", 3) == 0 || strncmp(p, "-I ", 3) == 0) {
                        const char *name = p + 3, *rest;
                        size_t len = strcspn(name, " \n");
                        struct sim_chain *c;
                        size_t pos;
                        const char *target;
                        size_t tlen;
                        char spec[1024];

                        rules_started = true;
                        if (is_builtin_chain(name, len))
                                c = sim_chain(t, name, len, true);
                        else if (!(c = sim_chain(t, name, len, false)))
                                return sim_fail(m, p, n, "no such chain");
                        if (!c)
                                return sim_fail(m, p, n, "too many chains");
                        rest = name + len + 1;
                        pos = c->rules.n;
                        if (p[1] == 'I') {
                                char *end;
                                unsigned long idx = strtoul(rest, &end, 10);
                                if (end == rest || *end != ' ' || idx == 0 || idx > c->rules.n + 1)
                                        return sim_fail(m, p, n, "index of insertion too big");
                                pos = idx - 1;
                                rest = end + 1;
                        }
                        if ((size_t)(p + n - rest) >= sizeof(spec))
                                return sim_fail(m, p, n, "rule too long");
                        memcpy(spec, rest, (size_t)(p + n - rest));
                        spec[p + n - rest] = '\0';
                        target = plan_rule_jump_target(spec, &tlen);
                        if (target && !sim_chain(t, target, tlen, false))
                                return sim_fail(m, p, n, "jump to a chain not declared");
                        if (strv_insert(&c->rules, pos, spec, strlen(spec)) < 0)
                                return sim_fail(m, p, n, "out of memory");
                } else {
                        return sim_fail(m, p, n, "unknown line");
                }
                p = next;
        }
        if (t)
                return sim_fail(m, "", 0, "missing COMMIT at the end");
        return true;
}

/* The rules of table/chain after the replay, joined with '|'. */
static const char *sim_rules(struct sim *m, const char *table, const char *chain)
{
        static char buf[8192];
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < m->n; i++) {
                struct sim_chain *c;
                if (strcmp(m->tables[i].name, table) != 0)
                        continue;
                c = sim_chain(&m->tables[i], chain, strlen(chain), false);
                for (size_t k = 0; c && k < c->rules.n; k++)
                        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", k ? "|" : "", c->rules.v[k]);
        }
        return buf;
}

/* ---- a set of configurations covering every step of SEMANTICS.md section 4 ---- */

struct config {
        const char *name;
        char *env[6];
        char *argv[24];
};

static const struct config configs[] = {
        { "defaults", { NULL }, { "iptables", NULL } },
        { "redirect, all inbound, excludes, kube-virt, all outbound",
          { NULL },
          { "iptables", "-b", "*", "-d", "22,15090", "-c", "exc0", "-k", "eth1,eth2", "-i", "*", "-q", "443", "-o", "25", NULL } },
        { "tproxy, all inbound, drop invalid, exclude nic",
          { NULL },
          { "iptables", "-m", "TPROXY", "-b", "*", "-d", "22", "-c", "eth0", "--drop-invalid", NULL } },
        { "tproxy, no inbound ports", { NULL }, { "iptables", "-m", "TPROXY", "-b", "", NULL } },
        { "tproxy, port list, ipv6", { NULL }, { "iptables", "-m", "TPROXY", "-b", "80,81", "--ipv6=true", NULL } },
        { "dns from resolv.conf, uid/gid lists, ipv6",
          { NULL },
          { "iptables", "--redirect-dns", "-u", "3,4", "-g", "1,2", "--ipv6=true", "-i", "10.0.0.0/8", NULL } },
        { "capture-all dns, cidrs both families, kube-virt, ipv6",
          { NULL },
          { "iptables", "--redirect-dns", "--capture-all-dns", "-i", "10.0.0.0/8,fd00::/8", "-x", "1.1.0.0/16,fd01::/16",
            "-k", "vm0", "--ipv6=true", NULL } },
        { "owner group include list, loopback include",
          { "ISTIO_OUTBOUND_OWNER_GROUPS=java,1001", NULL },
          { "iptables", "-i", "127.0.0.1/32,10.0.0.0/8", "--ipv6=true", NULL } },
        { "owner group excludes, loopback cidr /8, tproxy dns",
          { "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=ftp", "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/8", NULL },
          { "iptables", "-m", "TPROXY", "-b", "*", "--redirect-dns", "--drop-invalid", "--ipv6=true", NULL } },
};

#define N_CONFIGS (sizeof(configs) / sizeof(configs[0]))

static int build_config(struct built *b, const struct config *c)
{
        char *env[8];
        size_t n = 0;

        env[n++] = (char *)"ENVOY_USER=pilotfish-test-no-such-user";
        for (size_t i = 0; c->env[i]; i++)
                env[n++] = c->env[i];
        env[n] = NULL;
        return build(b, env, c->argv);
}

static void test_restore_replays(void)
{
        for (size_t i = 0; i < N_CONFIGS; i++) {
                struct built b;
                bool ok = build_config(&b, &configs[i]) == 0;

                for (int f = 0; ok && f < _PLAN_FAMILY_MAX; f++) {
                        struct sim m;
                        if (!sim_apply(&m, b.text[f])) {
                                printf("# %s: %s\n", f == PLAN_V4 ? "v4" : "v6", m.error);
                                ok = false;
                        }
                        sim_free(&m);
                }
                tap_ok(ok, "%s: the restore text replays on empty tables (every -N before the rules and unique, "
                           "no builtin declared, every chain and jump target declared, every -I index valid, no empty substitution)",
                       configs[i].name);
                built_free(&b);
        }
}

static void test_no_builtin_declared(void)
{
        bool ok = true;

        for (size_t i = 0; i < N_CONFIGS; i++) {
                struct built b;
                if (build_config(&b, &configs[i]) != 0) {
                        ok = false;
                        continue;
                }
                for (int f = 0; f < _PLAN_FAMILY_MAX; f++)
                        for (const char *p = b.text[f]; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                                if (strncmp(p, "-N ", 3) == 0 && !(strncmp(p + 3, "ISTIO_", 6) == 0)) {
                                        printf("# %s: %.*s\n", configs[i].name, (int)strcspn(p, "\n"), p);
                                        ok = false;
                                }
                built_free(&b);
        }
        tap_ok(ok, "every -N pilotfish writes declares an ISTIO_* chain, never a builtin chain or target");
}

/* ---- insert positions ---- */

static void test_kube_virt_insert_order(void)
{
        struct built b;
        struct sim m;

        if (build(&b, BASE_ENV, ARGV("-k", "eth1,eth2", "-i", "*", "-c", "exc0", "-b", "*")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(has_line(b.text[PLAN_V4], "-I PREROUTING 1 -i eth1 -j RETURN") &&
               has_line(b.text[PLAN_V4], "-I PREROUTING 1 -i eth2 -j ISTIO_REDIRECT") &&
               has_line(b.text[PLAN_V4], "-A PREROUTING -i exc0 -j RETURN"),
               "kube-virt rules are written as -I PREROUTING 1, -c rules as -A PREROUTING");
        sim_apply(&m, b.text[PLAN_V4]);
        TAP_STREQ(sim_rules(&m, "nat", "PREROUTING"),
                  "-i eth2 -j ISTIO_REDIRECT|-i eth1 -j ISTIO_REDIRECT|-i eth2 -j RETURN|-i eth1 -j RETURN|"
                  "-i exc0 -j RETURN|-p tcp -j ISTIO_INBOUND",
                  "after restore, nat PREROUTING is the order SEMANTICS.md section 4 observed: the last -I 1 written first, "
                  "virt REDIRECTs, virt RETURNs, then the appended rules");
        sim_free(&m);
        built_free(&b);
}

static void test_kube_virt_cidr_insert_order(void)
{
        struct built b;
        struct sim m;

        if (build(&b, BASE_ENV, ARGV("-k", "eth1,eth2", "-i", "10.0.0.0/8,20.0.0.0/8")) != 0) {
                tap_ok(false, "build");
                return;
        }
        sim_apply(&m, b.text[PLAN_V4]);
        TAP_STREQ(sim_rules(&m, "nat", "PREROUTING"),
                  "-i eth2 -d 20.0.0.0/8 -j ISTIO_REDIRECT|-i eth1 -d 20.0.0.0/8 -j ISTIO_REDIRECT|"
                  "-i eth2 -d 10.0.0.0/8 -j ISTIO_REDIRECT|-i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT|"
                  "-i eth2 -j RETURN|-i eth1 -j RETURN",
                  "with -k and a CIDR list, the per-CIDR virt jumps end up last CIDR first, last interface first, above the virt RETURNs");
        tap_ok(ends_with(sim_rules(&m, "nat", "ISTIO_OUTPUT"),
                         "|-d 10.0.0.0/8 -j ISTIO_REDIRECT|-d 20.0.0.0/8 -j ISTIO_REDIRECT"),
               "the ISTIO_OUTPUT CIDR jumps are appended in -i order and come last");
        sim_free(&m);
        built_free(&b);
}

static void test_tproxy_inbound_inserts(void)
{
        struct built b;
        struct sim m;

        if (build(&b, BASE_ENV, ARGV("-m", "TPROXY", "-b", "*", "-d", "22")) != 0) {
                tap_ok(false, "build");
                return;
        }
        sim_apply(&m, b.text[PLAN_V4]);
        TAP_STREQ(sim_rules(&m, "mangle", "ISTIO_INBOUND"),
                  "-p tcp -m mark --mark 1337 -j RETURN|-p tcp -s 127.0.0.6/32 -i lo -j RETURN|"
                  "-p tcp -i lo -m mark ! --mark 1338 -j RETURN|-p tcp --dport 22 -j RETURN|"
                  "-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT|-p tcp -j ISTIO_TPROXY",
                  "TPROXY: the -I ISTIO_INBOUND 1/2/3 tail lands above the appended mangle ISTIO_INBOUND rules, in 1, 2, 3 order");
        sim_free(&m);
        built_free(&b);
}

static void test_tproxy_tail_without_inbound(void)
{
        struct built b;
        struct sim m;

        if (build(&b, BASE_ENV, ARGV("-m", "TPROXY", "-b", "")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(has_line(b.text[PLAN_V4], "-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark") &&
               has_line(b.text[PLAN_V4], "-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN") &&
               !has_line(b.text[PLAN_V4], "-A PREROUTING -p tcp -j ISTIO_INBOUND"),
               "TPROXY with -b '' still writes the mangle tail (Istio's step 17) but no PREROUTING jump to ISTIO_INBOUND");
        TAP_STREQ(declared_in(b.text[PLAN_V4], "mangle"), "ISTIO_INBOUND",
                  "TPROXY with -b '': mangle declares ISTIO_INBOUND (used only through -I), nothing else");
        tap_ok(sim_apply(&m, b.text[PLAN_V4]) &&
               strcmp(sim_rules(&m, "mangle", "ISTIO_INBOUND"),
                      "-p tcp -m mark --mark 1337 -j RETURN|-p tcp -s 127.0.0.6/32 -i lo -j RETURN|"
                      "-p tcp -i lo -m mark ! --mark 1338 -j RETURN") == 0,
               "TPROXY with -b '': -I 1, 2, 3 into the empty ISTIO_INBOUND are each valid when executed");
        sim_free(&m);
        built_free(&b);
}

/* ---- -N declaration order ---- */

static void test_declaration_order(void)
{
        struct built b;

        if (build(&b, BASE_ENV, ARGV("-c", "eth0")) == 0)
                TAP_STREQ(declared_in(b.text[PLAN_V4], "nat"), "ISTIO_INBOUND,ISTIO_REDIRECT,ISTIO_IN_REDIRECT,ISTIO_OUTPUT",
                          "nat declares its chains in order of first use as a rule's chain (builtin PREROUTING skipped)");
        built_free(&b);

        if (build(&b, BASE_ENV, ARGV("-m", "TPROXY", "-b", "*", "--drop-invalid")) == 0)
                TAP_STREQ(declared_in(b.text[PLAN_V4], "mangle"), "ISTIO_DROP,ISTIO_DIVERT,ISTIO_TPROXY,ISTIO_INBOUND",
                          "mangle declares ISTIO_DROP (step 3) before the TPROXY chains (step 5)");
        built_free(&b);

        if (build(&b, BASE_ENV, ARGV("--redirect-dns", "--ipv6=true")) == 0) {
                TAP_STREQ(declared_in(b.text[PLAN_V4], "raw"), "ISTIO_OUTPUT_DNS,ISTIO_INBOUND",
                          "raw declares ISTIO_OUTPUT_DNS, then ISTIO_INBOUND");
                TAP_STREQ(declared_in(b.text[PLAN_V4], "nat"),
                          "ISTIO_INBOUND,ISTIO_REDIRECT,ISTIO_IN_REDIRECT,ISTIO_OUTPUT,ISTIO_OUTPUT_DNS",
                          "with DNS, nat declares ISTIO_OUTPUT_DNS after ISTIO_OUTPUT");
        }
        built_free(&b);
}

/* ---- hand-made plans: the builder goldens ---- */

struct call {
        const char *table, *chain;
        int position;
        const char *spec;
};

static void plan_from_calls(struct plan *p, enum plan_family fam, const struct call *calls, size_t n)
{
        struct plan_rules *rs = &p->family[fam];

        rs->v = calloc(n, sizeof(*rs->v));
        if (!rs->v)
                abort();
        for (size_t i = 0; i < n; i++)
                rs->v[i] = (struct plan_rule){
                        .table = strdup(calls[i].table),
                        .chain = strdup(calls[i].chain),
                        .position = calls[i].position,
                        .spec = strdup(calls[i].spec),
                };
        rs->n = n;
}

/* Reads a builder golden and renames its fake table "table" to a real one. */
static char *read_golden(const char *casename, const char *file, const char *table)
{
        const char *data = getenv("TEST_DATA_DIR");
        char path[512], line[512];
        struct strbuf out = STRBUF_NULL;
        char *ret;
        FILE *f;

        snprintf(path, sizeof(path), "%s/istio-iptables/%s/%s", data ? data : "tests/data", casename, file);
        f = fopen(path, "re");
        if (!f) {
                printf("# cannot read %s (set TEST_DATA_DIR)\n", path);
                return NULL;
        }
        while (fgets(line, sizeof(line), f)) {
                if (strcmp(line, "* table\n") == 0)
                        strbuf_printf(&out, "* %s\n", table);
                else
                        strbuf_puts(&out, line);
        }
        fclose(f);
        /* Istio compares after TrimSpace; restore_render ends with "COMMIT\n". */
        if (out.len && out.s[out.len - 1] != '\n')
                strbuf_puts(&out, "\n");
        ret = strdup(strbuf_str(&out));
        strbuf_deinit(&out);
        return ret;
}

static void check_builder_golden(const char *casename, const struct call *calls, size_t n)
{
        char *want = read_golden(casename, "expected-restore", "raw");

        for (int f = 0; f < _PLAN_FAMILY_MAX; f++) {
                struct plan p = PLAN_NULL;
                char *got;

                plan_from_calls(&p, (enum plan_family)f, calls, n);
                p.ipv6 = true;
                got = render(&p, (enum plan_family)f);
                TAP_STREQ(got, want, "builder %s (%s): restore_render writes Istio's golden, table \"table\" renamed to raw",
                          casename, f == PLAN_V4 ? "v4" : "v6 twin");
                free(got);
                plan_deinit(&p);
        }
        free(want);
}

static void test_builder_goldens(void)
{
        static const struct call append_single[] = { { "raw", "chain", 0, "-f foo -b bar" } };
        static const struct call append_multi[] = {
                { "raw", "chain", 0, "-f foo -b bar" },
                { "raw", "chain", 0, "-f fu -b bar" },
                { "raw", "chain", 0, "-f foo -b baz" },
        };
        static const struct call insert_single[] = { { "raw", "chain", 2, "-f foo -b bar" } };
        static const struct call insert_multi[] = {
                { "raw", "chain", 1, "-f foo -b bar" },
                { "raw", "chain", 2, "-f foo -b baaz" },
                { "raw", "chain", 3, "-f foo -b baz" },
        };
        static const struct call append_insert_multi[] = {
                { "raw", "chain", 0, "-f foo -b bar" },
                { "raw", "chain", 2, "-f foo -b bar" },
                { "raw", "chain", 0, "-f foo -b baz" },
        };
        static const struct call multi_v4[] = {
                { "raw", "chain", 0, "-f foo -b bar" },
                { "raw", "chain", 2, "-f foo -b bar" },
                { "raw", "chain", 0, "-f foo -b baz" },
                { "nat", "PREROUTING", 0, "-f foo -b bar" },
        };
        static const struct call multi_v6[] = {
                { "raw", "chain", 0, "-f foo -b bar" },
                { "raw", "chain", 2, "-f foo -b bar" },
                { "raw", "chain", 1, "-f foo -b bar" },
        };

        check_builder_golden("builder-append-single", append_single, 1);
        check_builder_golden("builder-append-multi", append_multi, 3);
        check_builder_golden("builder-insert-single", insert_single, 1);
        check_builder_golden("builder-insert-multi", insert_multi, 3);
        check_builder_golden("builder-append-insert-multi", append_insert_multi, 3);
        /* "table" sorts after "nat" as "raw" does, so the golden's table order carries over. */
        check_builder_golden("builder-multi-rules-new-chain-v4", multi_v4, 4);
        check_builder_golden("builder-multi-rules-new-chain-v6", multi_v6, 3);
}

static void test_undeclared_jump_targets(void)
{
        /* builder-cleanup-with-jump's v4 calls, table -> nat, table2 -> raw. */
        static const struct call calls[] = {
                { "nat", "chain", 2, "-f foo -b bar" },
                { "nat", "chain2", 0, "-f foo -b bar -j chain1" },
                { "nat", "chain2", 1, "-f foo -b baz" },
                { "raw", "chain", 0, "-f foo -b bar" },
        };
        struct plan p = PLAN_NULL;
        char *got;

        plan_from_calls(&p, PLAN_V4, calls, 4);
        got = render(&p, PLAN_V4);
        TAP_STREQ(got,
                  "* nat\n-N chain\n-N chain2\n-N chain1\n-I chain 2 -f foo -b bar\n-A chain2 -f foo -b bar -j chain1\n"
                  "-I chain2 1 -f foo -b baz\nCOMMIT\n* raw\n-N chain\n-A chain -f foo -b bar\nCOMMIT\n",
                  "-N lists chains by first use, then jump targets not declared yet (chain1); each table declares its own");
        free(got);
        plan_deinit(&p);
}

static void test_builtin_targets_not_declared(void)
{
        static const struct call calls[] = {
                { "mangle", "PREROUTING", 0, "-j RETURN" },
                { "mangle", "OUTPUT", 0, "-p tcp -j ACCEPT" },
                { "mangle", "FORWARD", 0, "-j DROP" },
                { "mangle", "INPUT", 0, "-j MARK --set-mark 1" },
                { "mangle", "POSTROUTING", 0, "-j CONNMARK --save-mark" },
        };
        struct plan p = PLAN_NULL;
        char *got;

        plan_from_calls(&p, PLAN_V4, calls, 5);
        got = render(&p, PLAN_V4);
        tap_ok(got && !strstr(got, "-N "), "builtin chains and targets (RETURN, ACCEPT, DROP, MARK with options) never get -N");
        free(got);
        plan_deinit(&p);
}

/* ---- tables ---- */

static void test_table_order_handmade(void)
{
        static const struct call calls[] = {
                { "raw", "PREROUTING", 0, "-j RETURN" },
                { "nat", "PREROUTING", 0, "-j RETURN" },
                { "mangle", "PREROUTING", 0, "-j RETURN" },
                { "filter", "INPUT", 0, "-j RETURN" },
        };
        struct plan p = PLAN_NULL;
        char *got;

        plan_from_calls(&p, PLAN_V4, calls, 4);
        got = render(&p, PLAN_V4);
        TAP_STREQ(table_order(got), "filter,mangle,nat,raw",
                  "tables are written filter, mangle, nat, raw whatever the emission order");
        tap_ok(got && strncmp(got, "* filter\n", 9) == 0, "the header is \"* <table>\", with a space");
        free(got);
        plan_deinit(&p);
}

static void test_empty_plan(void)
{
        struct plan p = PLAN_NULL;
        char *got = render(&p, PLAN_V4);

        TAP_STREQ(got, "", "an empty plan renders to nothing (no empty table blocks)");
        free(got);
}

static void test_tables_only_when_non_empty(void)
{
        static const struct {
                const char *what;
                char *argv[12];
                const char *v4, *v6;
        } cases[] = {
                { "REDIRECT defaults", { "iptables", NULL }, "nat", "" },
                { "TPROXY", { "iptables", "-m", "TPROXY", "-b", "80", NULL }, "mangle,nat", "" },
                { "DNS", { "iptables", "--redirect-dns", NULL }, "nat,raw", "" },
                { "drop-invalid", { "iptables", "--drop-invalid", NULL }, "mangle,nat", "" },
                { "TPROXY, DNS, drop-invalid, IPv6",
                  { "iptables", "-m", "TPROXY", "--redirect-dns", "--capture-all-dns", "--drop-invalid", "--ipv6=true", NULL },
                  "mangle,nat,raw", "mangle,nat,raw" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct built b;
                char got[256];

                if (build(&b, BASE_ENV, cases[i].argv) != 0) {
                        tap_ok(false, "%s: build", cases[i].what);
                        continue;
                }
                snprintf(got, sizeof(got), "%s", table_order(b.text[PLAN_V4]));
                TAP_STREQ(got, cases[i].v4, "%s: v4 writes only the tables with rules, in order (%s)", cases[i].what,
                          cases[i].v4);
                TAP_STREQ(table_order(b.text[PLAN_V6]), cases[i].v6, "%s: v6 tables are \"%s\"", cases[i].what,
                          cases[i].v6);
                built_free(&b);
        }
}

static void test_table_body_helpers(void)
{
        struct built b;
        struct strv exists = STRV_NULL;
        struct strbuf out = STRBUF_NULL;

        if (build(&b, BASE_ENV, NO_ARGS) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(restore_plan_has_table(&b.p, PLAN_V4, "nat") && !restore_plan_has_table(&b.p, PLAN_V4, "mangle") &&
               !restore_plan_has_table(&b.p, PLAN_V6, "nat"),
               "restore_plan_has_table is true only for tables holding rules of that family");
        strv_push(&exists, "ISTIO_REDIRECT");
        strv_push(&exists, "ISTIO_OUTPUT");
        restore_render_table_body(&b.p, PLAN_V4, "nat", &exists, &out);
        tap_ok(!out.error && strncmp(strbuf_str(&out), "-N ISTIO_INBOUND\n-N ISTIO_IN_REDIRECT\n-A ", 40) == 0 &&
               !strstr(strbuf_str(&out), "* nat") && !strstr(strbuf_str(&out), "COMMIT"),
               "restore_render_table_body skips -N for chains listed as existing and writes no header or COMMIT");
        strv_deinit(&exists);
        strbuf_deinit(&out);
        built_free(&b);
}

/* ---- the OUTPUT jump and DNS ---- */

static void test_output_jump(void)
{
        struct built b;

        if (build(&b, BASE_ENV, NO_ARGS) == 0)
                tap_ok(has_line(b.text[PLAN_V4], "-A OUTPUT -p tcp -j ISTIO_OUTPUT") &&
                       !has_line(b.text[PLAN_V4], "-A OUTPUT -j ISTIO_OUTPUT"),
                       "without DNS capture the OUTPUT jump is \"-p tcp -j ISTIO_OUTPUT\"");
        built_free(&b);

        if (build(&b, BASE_ENV, ARGV("--redirect-dns", "--ipv6=true")) == 0)
                tap_ok(has_line(b.text[PLAN_V4], "-A OUTPUT -j ISTIO_OUTPUT") &&
                       has_line(b.text[PLAN_V6], "-A OUTPUT -j ISTIO_OUTPUT") &&
                       !strstr(b.text[PLAN_V4], "-A OUTPUT -p tcp -j ISTIO_OUTPUT"),
                       "with DNS capture the OUTPUT jump is \"-j ISTIO_OUTPUT\" (UDP must reach ISTIO_OUTPUT), in both families");
        built_free(&b);

        if (build(&b, BASE_ENV, ARGV("--redirect-dns", "--capture-all-dns")) == 0)
                tap_ok(has_line(b.text[PLAN_V4], "-A OUTPUT -j ISTIO_OUTPUT"),
                       "with --capture-all-dns (no servers needed) the OUTPUT jump is \"-j ISTIO_OUTPUT\"");
        built_free(&b);
}

static void test_dns_without_servers(void)
{
        static char *const argv[] = { "iptables", "--redirect-dns", "--resolv-conf=/dev/null", NULL };
        struct built b;

        if (build(&b, BASE_ENV, argv) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(b.p.dns_requested_without_servers && !b.p.redirect_dns,
               "--redirect-dns with no nameserver in resolv.conf sets dns_requested_without_servers and turns DNS off");
        tap_ok(!strstr(b.text[PLAN_V4], "ISTIO_OUTPUT_DNS") && !strstr(b.text[PLAN_V4], "* raw") &&
               has_line(b.text[PLAN_V4], "-A OUTPUT -p tcp -j ISTIO_OUTPUT") &&
               has_line(b.text[PLAN_V4], "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN"),
               "with DNS off for lack of servers, the rules are exactly the non-DNS ones (no raw, no 53 exemptions)");
        built_free(&b);

        if (build(&b, BASE_ENV, ARGV("--redirect-dns")) == 0)
                tap_ok(b.p.redirect_dns && !b.p.dns_requested_without_servers,
                       "--redirect-dns with servers sets plan.redirect_dns and not the warning flag");
        built_free(&b);

        if (build(&b, BASE_ENV, NO_ARGS) == 0)
                tap_ok(!b.p.redirect_dns && !b.p.dns_requested_without_servers, "without --redirect-dns neither flag is set");
        built_free(&b);
}

static void test_dns_servers_by_family(void)
{
        struct built b;

        if (build(&b, BASE_ENV, ARGV("--redirect-dns", "--ipv6=true")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(strstr(b.text[PLAN_V4], "-d 10.96.0.10/32") && !strstr(b.text[PLAN_V4], "fd00::10") &&
               strstr(b.text[PLAN_V6], "-d fd00::10/128") && !strstr(b.text[PLAN_V6], "10.96.0.10"),
               "DNS servers go only to their own family's rules, with /32 and /128");
        built_free(&b);
}

/* ---- IPv6 on and off ---- */

static void test_ipv6_off(void)
{
        struct built b;

        if (build(&b, BASE_ENV, ARGV("-b", "*", "-i", "*", "-m", "TPROXY", "--redirect-dns")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(!b.p.ipv6 && b.p.family[PLAN_V6].n == 0 && strcmp(b.text[PLAN_V6], "") == 0 && b.p.family[PLAN_V4].n > 0,
               "with IPv6 off the v6 rule list is empty and renders to nothing, even with TPROXY and DNS on");
        built_free(&b);
}

static void test_ipv6_on(void)
{
        struct built b;

        if (build(&b, BASE_ENV, ARGV("--ipv6=true", "-m", "TPROXY", "-b", "*")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(b.p.ipv6 && has_line(b.text[PLAN_V6], "-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN") &&
               has_line(b.text[PLAN_V6], "-A ISTIO_OUTPUT -d ::1/128 -j RETURN") &&
               has_line(b.text[PLAN_V6], "-I ISTIO_INBOUND 2 -p tcp -s ::6/128 -i lo -j RETURN") &&
               has_line(b.text[PLAN_V6], "-A ISTIO_TPROXY ! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006"),
               "with IPv6 on, the versioned rules use ::6/128 and ::1/128 in the v6 list");
        tap_ok(!strstr(b.text[PLAN_V4], "::") && !strstr(b.text[PLAN_V6], "127.0.0."),
               "no IPv6 address appears in the v4 text and no 127.0.0.x in the v6 text");
        built_free(&b);
}

static void test_v4_only_include(void)
{
        struct built b;

        if (build(&b, BASE_ENV, ARGV("--ipv6=true", "-i", "10.0.0.0/8")) != 0) {
                tap_ok(false, "build");
                return;
        }
        tap_ok(has_line(b.text[PLAN_V4], "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT") &&
               count_lines(b.text[PLAN_V6], "-A ISTIO_OUTPUT ", " -j ISTIO_REDIRECT") == 0,
               "an -i list of only IPv4 CIDRs leaves IPv6 outbound unredirected (no v6 ISTIO_OUTPUT jump to ISTIO_REDIRECT)");
        built_free(&b);
}

/* ---- jump targets ---- */

static void test_jump_target(void)
{
        static const struct {
                const char *spec, *want;
        } cases[] = {
                { "-j ISTIO_REDIRECT", "ISTIO_REDIRECT" },
                { "-p tcp --dport 80 -j ISTIO_IN_REDIRECT", "ISTIO_IN_REDIRECT" },
                { "-j ISTIO_OUTPUT  ", "ISTIO_OUTPUT" },
                { "-j RETURN", NULL },
                { "-j ACCEPT", NULL },
                { "-j DROP", NULL },
                { "-j MARK --set-mark 1", NULL },
                { "-p tcp -j REDIRECT --to-ports 15001", NULL },
                { "-g ISTIO_REDIRECT", NULL },
                { "x-j ISTIO_REDIRECT", NULL },
                { "-j", NULL },
                { "", NULL },
                { "ISTIO_REDIRECT", NULL },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len = 0;
                const char *t = plan_rule_jump_target(cases[i].spec, &len);
                char got[64];

                if (t)
                        snprintf(got, sizeof(got), "%.*s", (int)len, t);
                else
                        snprintf(got, sizeof(got), "(null)");
                TAP_STREQ(got, cases[i].want ? cases[i].want : "(null)", "plan_rule_jump_target(\"%s\") is %s",
                          cases[i].spec, cases[i].want ? cases[i].want : "NULL");
        }
}

static void test_chain_predicates(void)
{
        tap_ok(plan_chain_is_builtin("PREROUTING") && plan_chain_is_builtin("RETURN") && !plan_chain_is_builtin("MARK") &&
               !plan_chain_is_builtin("ISTIO_OUTPUT") && !plan_chain_is_builtin("prerouting"),
               "plan_chain_is_builtin knows exactly Istio's list (five chains plus ACCEPT, RETURN, DROP), case-sensitively");
        tap_ok(plan_chain_is_istio("ISTIO_OUTPUT") && !plan_chain_is_istio("ISTIO") && !plan_chain_is_istio("istio_x") &&
               !plan_chain_is_istio("OUTPUT"),
               "plan_chain_is_istio matches the ISTIO_ prefix only");
}

static void test_emission_is_deterministic(void)
{
        struct built a, b;

        build_config(&a, &configs[N_CONFIGS - 1]);
        build_config(&b, &configs[N_CONFIGS - 1]);
        tap_ok(a.text[PLAN_V4] && b.text[PLAN_V4] && strcmp(a.text[PLAN_V4], b.text[PLAN_V4]) == 0 &&
               strcmp(a.text[PLAN_V6], b.text[PLAN_V6]) == 0,
               "the same settings give byte-identical restore text (the state check relies on it)");
        built_free(&a);
        built_free(&b);
}

int main(void)
{
        int fd;
        FILE *f;

        snprintf(resolv_path, sizeof(resolv_path), "/tmp/pilotfish-test-resolv.XXXXXX");
        fd = mkstemp(resolv_path);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                perror("resolv.conf");
                return 1;
        }
        fputs("nameserver 10.96.0.10\nnameserver fd00::10\n", f);
        fclose(f);
        snprintf(resolv_arg, sizeof(resolv_arg), "--resolv-conf=%s", resolv_path);

        test_restore_replays();
        test_no_builtin_declared();
        test_kube_virt_insert_order();
        test_kube_virt_cidr_insert_order();
        test_tproxy_inbound_inserts();
        test_tproxy_tail_without_inbound();
        test_declaration_order();
        test_builder_goldens();
        test_undeclared_jump_targets();
        test_builtin_targets_not_declared();
        test_table_order_handmade();
        test_empty_plan();
        test_tables_only_when_non_empty();
        test_table_body_helpers();
        test_output_jump();
        test_dns_without_servers();
        test_dns_servers_by_family();
        test_ipv6_off();
        test_ipv6_on();
        test_v4_only_include();
        test_jump_target();
        test_chain_predicates();
        test_emission_is_deterministic();

        unlink(resolv_path);
        return tap_done();
}
