/*
 * Checks and repairs after a parse of untrusted YAML or JSON, for what libfyaml 0.7.12 does
 * not do well: refusing duplicate keys without comparing every key with every other, and
 * reading single-quoted scalars with consecutive '' escapes. See yaml.h.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/yaml.h"

struct key_ref {
        const char *s;
        size_t len;
        struct fy_node *node;
};

static size_t key_pos(struct fy_node *key)
{
        struct fy_token *t = fy_node_get_scalar_token(key);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;

        return m ? m->input_pos : 0;
}

static int cmp_key_ref(const void *a, const void *b)
{
        const struct key_ref *x = a, *y = b;
        int r = yaml_keycmp(x->s, x->len, y->s, y->len);

        if (r)
                return r;
        /* Equal keys in document order, so the one reported is the later one. */
        return key_pos(x->node) < key_pos(y->node) ? -1 : key_pos(x->node) > key_pos(y->node);
}

static void duplicate_found(struct strbuf *why, const struct key_ref *k)
{
        struct fy_token *t = fy_node_get_scalar_token(k->node);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;

        strbuf_puts(why, "duplicate key ");
        {
                char *copy = strndup(k->s, k->len);
                json_str(why, copy ? copy : "");
                free(copy);
        }
        if (m)
                strbuf_printf(why, " at line %d, column %d", m->line + 1, m->column + 1);
}

/* One mapping: pairwise when small, sorted when large (never quadratic in its size). */
static bool map_has_duplicate(struct fy_node *map, struct strbuf *why)
{
        int n = fy_node_mapping_item_count(map);
        struct key_ref small[16], *k = n <= 16 ? small : calloc((size_t)n, sizeof(*k));
        struct fy_node_pair *p;
        void *iter = NULL;
        int m = 0;
        bool dup = false;

        if (!k) {
                strbuf_puts(why, "out of memory checking for duplicate keys");
                return true;
        }
        while ((p = fy_node_mapping_iterate(map, &iter))) {
                struct fy_node *key = fy_node_pair_key(p);

                /* Kubernetes objects are JSON, whose keys are strings; and libfyaml 0.7.12 writes
                 * a list as a key ("? - x") in a form it cannot read back (the fuzzer found
                 * `&a": [x]`, an anchor named a": on a list key). */
                if (key && (fy_node_is_sequence(key) || fy_node_is_mapping(key))) {
                        strbuf_puts(why, "a list or a mapping as a key (the keys of a Kubernetes object are strings)");
                        dup = true;
                        break;
                }
                /* Only scalar keys take part in the duplicate check. */
                if (!key || !fy_node_is_scalar(key) || fy_node_is_alias(key))
                        continue;
                k[m].s = fy_node_get_scalar(key, &k[m].len);
                k[m].node = key;
                if (k[m].s)
                        m++;
        }
        if (m <= 16) {
                for (int i = 1; i < m && !dup; i++)
                        for (int j = 0; j < i && !dup; j++)
                                if (k[i].len == k[j].len && memcmp(k[i].s, k[j].s, k[i].len) == 0) {
                                        duplicate_found(why, &k[i]);
                                        dup = true;
                                }
        } else if (!dup) {
                qsort(k, (size_t)m, sizeof(*k), cmp_key_ref);
                for (int i = 1; i < m && !dup; i++)
                        if (k[i].len == k[i - 1].len && memcmp(k[i].s, k[i - 1].s, k[i].len) == 0) {
                                duplicate_found(why, &k[i]);
                                dup = true;
                        }
        }
        if (k != small)
                free(k);
        return dup;
}

struct node_stack {
        struct fy_node **v;
        size_t n, cap;
};

/* Pushes a mapping or sequence (scalars and aliases have no keys below them). */
static int push_container(struct node_stack *st, struct fy_node *n)
{
        if (!n || fy_node_is_scalar(n) || fy_node_is_alias(n))
                return 0;
        if (st->n == st->cap) {
                size_t cap = st->cap ? 2 * st->cap : 64;
                struct fy_node **v = realloc(st->v, cap * sizeof(*v));

                if (!v)
                        return -1;
                st->v = v;
                st->cap = cap;
        }
        st->v[st->n++] = n;
        return 0;
}

/* Calls visit on every mapping and sequence of d, depth first, with a stack of our own (no
 * recursion, so no C stack bound); stops at the first non-zero return and returns it. */
static int walk(struct fy_document *d, int (*visit)(struct fy_node *n, void *user), void *user)
{
        struct node_stack st = { 0 };
        int r = push_container(&st, fy_document_root(d));

        while (!r && st.n > 0) {
                struct fy_node *n = st.v[--st.n], *it;
                struct fy_node_pair *p;
                void *iter = NULL;

                r = visit(n, user);
                if (fy_node_is_mapping(n)) {
                        while (!r && (p = fy_node_mapping_iterate(n, &iter)))
                                r = push_container(&st, fy_node_pair_value(p));
                } else {
                        while (!r && (it = fy_node_sequence_iterate(n, &iter)))
                                r = push_container(&st, it);
                }
        }
        free(st.v);
        return r;
}

static int visit_duplicates(struct fy_node *n, void *why)
{
        return fy_node_is_mapping(n) && map_has_duplicate(n, why) ? 1 : 0;
}

static bool duplicate_key(struct fy_document *d, struct strbuf *why)
{
        int r = walk(d, visit_duplicates, why);

        if (r < 0)
                strbuf_puts(why, "out of memory checking for duplicate keys");
        return r != 0;
}

/*
 * libfyaml 0.7.12 reads two or more consecutive '' escapes of a single-quoted scalar wrongly
 * ('x''''y' reads as x''' instead of x''y), and its emitter writes some that it read right
 * wrongly ('''''' holds two quotes and comes out holding three), so a value would change on
 * its way through `pilotfish inject` (found by the fuzzer). Every single-quoted scalar with
 * '''' in its source is replaced by a double-quoted one holding the text decoded here. That
 * includes multi-line ones, which libfyaml reads with bytes it never wrote (uninitialised heap
 * memory, as valgrind shows; found by fuzz-inject-config), folding their lines as YAML 1.2
 * section 7.3 says.
 */
struct quote_fix {
        struct fy_document *d;
        const char *text;
        size_t len;
};

static bool is_white(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The value of a single-quoted scalar with '''' in its source, decoded here; NULL for any
 * other node. */
static char *quoted_right(const struct quote_fix *q, struct fy_node *n)
{
        struct fy_token *t;
        const struct fy_mark *a, *b;
        const char *src;
        size_t srclen, k = 0;
        char *v;

        if (!n || !fy_node_is_scalar(n) || fy_node_is_alias(n) || fy_node_get_style(n) != FYNS_SINGLE_QUOTED ||
            !(t = fy_node_get_scalar_token(n)) || !(a = fy_token_start_mark(t)) || !(b = fy_token_end_mark(t)) ||
            b->input_pos < a->input_pos || b->input_pos > q->len)
                return NULL;
        src = q->text + a->input_pos;
        srclen = b->input_pos - a->input_pos;
        if (!memmem(src, srclen, "''''", 4))
                return NULL;
        if (!(v = malloc(srclen + 1)))
                return NULL;
        for (size_t i = 0; i < srclen;) {
                size_t j = i, breaks = 0;

                if (!is_white(src[i])) {
                        v[k++] = src[i];
                        i += src[i] == '\'' && i + 1 < srclen && src[i + 1] == '\'' ? 2 : 1;
                        continue;
                }
                /* A run of white space is kept as it is within a line. With line breaks in it,
                 * the spaces around them go, and one break folds to a space, n breaks to n - 1
                 * newlines (the empty lines between); \r\n is one break. */
                for (; j < srclen && is_white(src[j]); j++)
                        if (src[j] == '\n' || (src[j] == '\r' && (j + 1 == srclen || src[j + 1] != '\n')))
                                breaks++;
                if (breaks == 0) {
                        memcpy(v + k, src + i, j - i);
                        k += j - i;
                } else if (breaks == 1) {
                        v[k++] = ' ';
                } else {
                        memset(v + k, '\n', breaks - 1);
                        k += breaks - 1;
                }
                i = j;
        }
        v[k] = '\0';
        return v;
}

/* A double-quoted scalar of d holding value (which is then freed). */
static struct fy_node *quoted_node(struct fy_document *d, char *value)
{
        struct strbuf b = STRBUF_NULL;
        struct fy_node *n;

        json_str(&b, value);
        free(value);
        n = b.error ? NULL : yaml_build(d, strbuf_str(&b));
        strbuf_deinit(&b);
        return n;
}

static int visit_quotes(struct fy_node *n, void *user)
{
        const struct quote_fix *q = user;
        void *iter = NULL;
        struct fy_node *fixed;
        char *v;

        if (fy_node_is_mapping(n)) {
                struct fy_node_pair *p;

                /* Setting a pair's key or value leaves the pair where it is: safe mid-iteration. */
                while ((p = fy_node_mapping_iterate(n, &iter))) {
                        if ((v = quoted_right(q, fy_node_pair_key(p))) &&
                            (!(fixed = quoted_node(q->d, v)) || fy_node_pair_set_key(p, fixed) != 0))
                                return -1;
                        if ((v = quoted_right(q, fy_node_pair_value(p))) &&
                            (!(fixed = quoted_node(q->d, v)) || fy_node_pair_set_value(p, fixed) != 0))
                                return -1;
                }
        } else {
                struct fy_node *it, *next;

                /* An item is replaced by inserting the new one before it and removing it. */
                for (it = fy_node_sequence_iterate(n, &iter); it; it = next) {
                        next = fy_node_sequence_iterate(n, &iter);
                        if (!(v = quoted_right(q, it)))
                                continue;
                        if (!(fixed = quoted_node(q->d, v)) || fy_node_sequence_insert_before(n, it, fixed) != 0)
                                return -1;
                        fy_node_free(fy_node_sequence_remove(n, it));
                }
        }
        return 0;
}

static int fix_quotes(struct fy_document *d, const char *text, size_t len)
{
        struct quote_fix q = { .d = d, .text = text, .len = len };
        struct fy_node *fixed;
        char *v;

        /* Two escapes in a row need four quotes in a row somewhere in the text. */
        if (!memmem(text, len, "''''", 4))
                return 0;
        /* A document that is one scalar has no mapping or list to be fixed in. */
        if ((v = quoted_right(&q, fy_document_root(d))) &&
            (!(fixed = quoted_node(d, v)) || fy_document_set_root(d, fixed) != 0))
                return -ENOMEM;
        return walk(d, visit_quotes, &q) < 0 ? -ENOMEM : 0;
}

/*
 * libfyaml 0.7.12 writes an empty sequence item ("-" with nothing after it) under a key at the
 * key's own indentation, where its parser then refuses it ("did not find expected node
 * content"), so `pilotfish inject` could write a document it cannot read back (the fuzzer
 * found `: -`). Such items become an explicit null, which means the same.
 */
static int visit_empty_items(struct fy_node *n, void *d)
{
        struct fy_node *it, *next, *null;
        void *iter = NULL;
        size_t len;

        if (!fy_node_is_sequence(n))
                return 0;
        for (it = fy_node_sequence_iterate(n, &iter); it; it = next) {
                next = fy_node_sequence_iterate(n, &iter);
                if (!fy_node_is_scalar(it) || fy_node_is_alias(it) || fy_node_get_style(it) != FYNS_PLAIN ||
                    !fy_node_get_scalar(it, &len) || len != 0)
                        continue;
                if (!(null = fy_node_create_scalar(d, "null", 4)) || fy_node_sequence_insert_before(n, it, null) != 0)
                        return -1;
                fy_node_free(fy_node_sequence_remove(n, it));
        }
        return 0;
}

int yaml_fix_empty_items(struct fy_document *d)
{
        return walk(d, visit_empty_items, d) < 0 ? -ENOMEM : 0;
}

bool yaml_repair(struct fy_document *d, const char *text, size_t len, struct strbuf *why)
{
        if (duplicate_key(d, why))
                return true;
        if (fix_quotes(d, text, len) < 0) {
                strbuf_puts(why, "out of memory");
                return true;
        }
        return false;
}
