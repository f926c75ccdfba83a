/*
 * iptables-save parser; see saved.h. One pass over the lines, no recursion. Each table keeps a
 * small open-addressing index of its chains while it is being parsed, so an "-A" line finds its
 * chain in O(1) however the input interleaves chains; the index is dropped at COMMIT. Growth of
 * the chain array doubles at powers of two, which keeps the public struct free of a capacity
 * field.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture/saved.h"
#include "common/strbuf.h"

struct saved_index {
        size_t *slot;   /* chain index + 1; 0 is empty */
        size_t cap;     /* a power of two, or 0 */
};

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Takes the next blank-separated token of [*p, end); returns false when there is none. */
static bool next_token(const char **p, const char *end, const char **ret_tok, size_t *ret_len)
{
        const char *s = *p, *e;

        while (s < end && is_blank(*s))
                s++;
        if (s == end)
                return false;
        e = s;
        while (e < end && !is_blank(*e))
                e++;
        *ret_tok = s;
        *ret_len = (size_t)(e - s);
        *p = e;
        return true;
}

static bool token_is(const char *tok, size_t len, const char *word)
{
        return strlen(word) == len && memcmp(tok, word, len) == 0;
}

static size_t hash_name(const char *s, size_t len)
{
        uint64_t h = 1469598103934665603ull;   /* FNV-1a */

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)s[i];
                h *= 1099511628211ull;
        }
        return (size_t)h;
}

static void index_reset(struct saved_index *idx)
{
        free(idx->slot);
        idx->slot = NULL;
        idx->cap = 0;
}

static bool chain_name_is(const struct saved_chain *c, const char *name, size_t len)
{
        return strlen(c->name) == len && memcmp(c->name, name, len) == 0;
}

/* Returns the chain's position in t, or -1. */
static long index_find(const struct saved_index *idx, const struct saved_table *t,
                       const char *name, size_t len)
{
        if (idx->cap == 0)
                return -1;
        for (size_t i = hash_name(name, len) & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
                size_t v = idx->slot[i];

                if (v == 0)
                        return -1;
                if (chain_name_is(&t->chains[v - 1], name, len))
                        return (long)(v - 1);
        }
}

static void index_put(struct saved_index *idx, const struct saved_table *t, size_t pos)
{
        const char *name = t->chains[pos].name;
        size_t i = hash_name(name, strlen(name)) & (idx->cap - 1);

        while (idx->slot[i] != 0)
                i = (i + 1) & (idx->cap - 1);
        idx->slot[i] = pos + 1;
}

/* Makes room for t->n_chains + 1 entries at a load factor of at most one half. */
static int index_reserve(struct saved_index *idx, const struct saved_table *t)
{
        size_t cap;
        size_t *slot;

        if ((t->n_chains + 1) * 2 <= idx->cap)
                return 0;
        cap = idx->cap ? idx->cap * 2 : 64;
        slot = calloc(cap, sizeof(*slot));
        if (!slot)
                return -ENOMEM;
        free(idx->slot);
        idx->slot = slot;
        idx->cap = cap;
        for (size_t i = 0; i < t->n_chains; i++)
                index_put(idx, t, i);
        return 0;
}

/* Appends a chain; the array grows to 8, 16, 32, ... entries. */
static int table_add_chain(struct saved_table *t, struct saved_index *idx,
                           const char *name, size_t name_len,
                           const char *policy, size_t policy_len)
{
        size_t n = t->n_chains;
        struct saved_chain *c;
        int r;

        if (n >= SAVED_MAX_CHAINS)
                return -EBADMSG;
        if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
                size_t cap = n ? n * 2 : 8;

                c = realloc(t->chains, cap * sizeof(*c));
                if (!c)
                        return -ENOMEM;
                t->chains = c;
        }
        r = index_reserve(idx, t);
        if (r < 0)
                return r;

        c = &t->chains[n];
        *c = (struct saved_chain) { .name = strndup(name, name_len),
                                    .policy = strndup(policy, policy_len),
                                    .rules = STRV_NULL };
        if (!c->name || !c->policy) {
                free(c->name);
                free(c->policy);
                return -ENOMEM;
        }
        t->n_chains++;
        index_put(idx, t, n);
        return 0;
}

static int saved_add_table(struct saved *s, const char *name, size_t len)
{
        struct saved_table *v;
        char *copy;

        for (size_t i = 0; i < s->n_tables; i++)
                if (strlen(s->tables[i].name) == len && memcmp(s->tables[i].name, name, len) == 0)
                        return -EBADMSG;
        if (s->n_tables >= SAVED_MAX_TABLES)
                return -EBADMSG;
        copy = strndup(name, len);
        if (!copy)
                return -ENOMEM;
        v = realloc(s->tables, (s->n_tables + 1) * sizeof(*v));
        if (!v) {
                free(copy);
                return -ENOMEM;
        }
        s->tables = v;
        v[s->n_tables++] = (struct saved_table) { .name = copy, .chains = NULL, .n_chains = 0 };
        return 0;
}

/* ":NAME POLICY [pkts:bytes]", the counters optional. */
static int parse_chain_line(struct saved_table *t, struct saved_index *idx,
                            const char *p, const char *end)
{
        const char *name, *policy, *counters, *extra;
        size_t name_len, policy_len, counters_len, extra_len;

        p++;    /* ':' */
        if (p == end || is_blank(*p))
                return -EBADMSG;
        if (!next_token(&p, end, &name, &name_len) ||
            !next_token(&p, end, &policy, &policy_len))
                return -EBADMSG;
        if (next_token(&p, end, &counters, &counters_len)) {
                if (counters_len < 2 || counters[0] != '[' || counters[counters_len - 1] != ']')
                        return -EBADMSG;
                if (next_token(&p, end, &extra, &extra_len))
                        return -EBADMSG;
        }
        if (index_find(idx, t, name, name_len) >= 0)
                return -EBADMSG;
        return table_add_chain(t, idx, name, name_len, policy, policy_len);
}

/* "-A CHAIN spec...", the spec possibly empty. */
static int parse_rule_line(struct saved_table *t, struct saved_index *idx,
                           const char *p, const char *end)
{
        const char *chain, *spec;
        size_t chain_len;
        char *copy;
        long pos;
        int r;

        p += 2; /* "-A" */
        if (p == end || !is_blank(*p))
                return -EBADMSG;
        if (!next_token(&p, end, &chain, &chain_len))
                return -EBADMSG;
        spec = p;
        while (spec < end && is_blank(*spec))
                spec++;

        pos = index_find(idx, t, chain, chain_len);
        if (pos < 0) {
                r = table_add_chain(t, idx, chain, chain_len, "-", 1);
                if (r < 0)
                        return r;
                pos = (long)t->n_chains - 1;
        }
        copy = strndup(spec, (size_t)(end - spec));
        if (!copy)
                return -ENOMEM;
        return strv_push_take(&t->chains[pos].rules, copy);
}

/*
 * Handles one line, already stripped of surrounding blanks and known not to be empty or a
 * comment. *t is the open table (NULL between COMMIT and the next "*table").
 */
static int parse_line(struct saved *s, struct saved_table **t, struct saved_index *idx,
                      const char *p, const char *end)
{
        const char *name;
        size_t len;

        if (*p == '[' && *t) {
                /* iptables-save -c: "[pkts:bytes] -A CHAIN ..." */
                const char *close = memchr(p, ']', (size_t)(end - p));

                if (!close)
                        return -EBADMSG;
                p = close + 1;
                if (p == end || !is_blank(*p))
                        return -EBADMSG;
                while (p < end && is_blank(*p))
                        p++;
                if (end - p < 2 || memcmp(p, "-A", 2) != 0)
                        return -EBADMSG;
        }

        if (*p == '*') {
                int r;

                if (*t)
                        return -EBADMSG;        /* the previous table has no COMMIT */
                p++;
                if (!next_token(&p, end, &name, &len) || p != end)
                        return -EBADMSG;
                r = saved_add_table(s, name, len);
                if (r < 0)
                        return r;
                *t = &s->tables[s->n_tables - 1];
                index_reset(idx);
                return 0;
        }
        if (token_is(p, (size_t)(end - p), "COMMIT")) {
                if (!*t)
                        return -EBADMSG;
                *t = NULL;
                index_reset(idx);
                return 0;
        }
        if (*p == ':' && *t)
                return parse_chain_line(*t, idx, p, end);
        if (end - p >= 2 && memcmp(p, "-A", 2) == 0 && *t)
                return parse_rule_line(*t, idx, p, end);
        return -EBADMSG;
}

int saved_parse(const char *text, struct saved *ret)
{
        struct saved s = SAVED_NULL;
        struct saved_index idx = { .slot = NULL, .cap = 0 };
        struct saved_table *t = NULL;
        const char *line = text;
        int r;

        while (*line) {
                const char *eol = strchr(line, '\n');
                const char *next = eol ? eol + 1 : line + strlen(line);
                const char *p = line, *end = eol ? eol : next;

                /* Trailing blanks (and a CR) are not part of a rule. */
                while (end > p && is_blank(end[-1]))
                        end--;
                while (p < end && is_blank(*p))
                        p++;
                line = next;
                if (p == end || *p == '#')
                        continue;
                r = parse_line(&s, &t, &idx, p, end);
                if (r < 0)
                        goto fail;
        }
        r = -EBADMSG;
        if (t)
                goto fail;      /* truncated: the last table has no COMMIT */

        index_reset(&idx);
        *ret = s;
        return 0;

fail:
        index_reset(&idx);
        saved_deinit(&s);
        *ret = (struct saved) SAVED_NULL;
        return r;
}

void saved_deinit(struct saved *s)
{
        for (size_t i = 0; i < s->n_tables; i++) {
                struct saved_table *t = &s->tables[i];

                for (size_t j = 0; j < t->n_chains; j++) {
                        free(t->chains[j].name);
                        free(t->chains[j].policy);
                        strv_deinit(&t->chains[j].rules);
                }
                free(t->chains);
                free(t->name);
        }
        free(s->tables);
        s->tables = NULL;
        s->n_tables = 0;
}

const struct saved_table *saved_find_table(const struct saved *s, const char *name)
{
        for (size_t i = 0; i < s->n_tables; i++)
                if (strcmp(s->tables[i].name, name) == 0)
                        return &s->tables[i];
        return NULL;
}

const struct saved_chain *saved_find_chain(const struct saved_table *t, const char *name)
{
        for (size_t i = 0; i < t->n_chains; i++)
                if (strcmp(t->chains[i].name, name) == 0)
                        return &t->chains[i];
        return NULL;
}

int saved_render_table(const struct saved_table *t, struct strbuf *out)
{
        strbuf_printf(out, "*%s\n", t->name);
        /* Counters are reset: a rollback restores rules, not statistics. */
        for (size_t i = 0; i < t->n_chains; i++)
                strbuf_printf(out, ":%s %s [0:0]\n", t->chains[i].name, t->chains[i].policy);
        for (size_t i = 0; i < t->n_chains; i++) {
                const struct saved_chain *c = &t->chains[i];

                for (size_t j = 0; j < c->rules.n; j++) {
                        if (c->rules.v[j][0])
                                strbuf_printf(out, "-A %s %s\n", c->name, c->rules.v[j]);
                        else
                                strbuf_printf(out, "-A %s\n", c->name);
                }
        }
        strbuf_puts(out, "COMMIT\n");
        return out->error;
}
