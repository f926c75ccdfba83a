/*
 * JSON Patch by tree difference; see jsonpatch.h. Values are written with yaml_to_json, the
 * same conversion the rest of the injector uses, and two values are equal when JSON would
 * make the same of them (key order included: a reordered mapping is still compared key by
 * key, never whole).
 */
#include <libfyaml.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/yaml.h"
#include "webhook/jsonpatch.h"

struct patch {
        struct strbuf *out;
        struct strbuf path;     /* the current JSON Pointer */
        bool first;
};

/*
 * Equal as JSON, without writing either out: the head and tail of every sequence are compared
 * this way, so it must not cost a serialisation per item.
 */
static bool same(struct fy_node *a, struct fy_node *b)
{
        bool na = !a || fy_node_is_null(a), nb = !b || fy_node_is_null(b);

        if (na || nb)
                return na && nb;
        if (fy_node_is_mapping(a) != fy_node_is_mapping(b) || fy_node_is_sequence(a) != fy_node_is_sequence(b))
                return false;
        if (fy_node_is_mapping(a)) {
                struct fy_node_pair *pa, *pb;
                void *ia = NULL, *ib = NULL;

                if (fy_node_mapping_item_count(a) != fy_node_mapping_item_count(b))
                        return false;
                while ((pa = fy_node_mapping_iterate(a, &ia))) {
                        size_t la = 0, lb = 0;
                        const char *ka, *kb;

                        pb = fy_node_mapping_iterate(b, &ib);
                        ka = yaml_scalar(fy_node_pair_key(pa), &la);
                        kb = pb ? yaml_scalar(fy_node_pair_key(pb), &lb) : NULL;
                        if (!ka || !kb || la != lb || memcmp(ka, kb, la) != 0 ||
                            !same(fy_node_pair_value(pa), fy_node_pair_value(pb)))
                                return false;
                }
                return true;
        }
        if (fy_node_is_sequence(a)) {
                struct fy_node *xa, *xb;
                void *ia = NULL, *ib = NULL;

                if (fy_node_sequence_item_count(a) != fy_node_sequence_item_count(b))
                        return false;
                while ((xa = fy_node_sequence_iterate(a, &ia))) {
                        xb = fy_node_sequence_iterate(b, &ib);
                        if (!same(xa, xb))
                                return false;
                }
                return true;
        }
        {
                size_t la = 0, lb = 0;
                const char *sa = yaml_scalar(a, &la), *sb = yaml_scalar(b, &lb);

                return sa && sb && la == lb && memcmp(sa, sb, la) == 0 &&
                       yaml_json_raw(a, sa, la) == yaml_json_raw(b, sb, lb);
        }
}

static void op(struct patch *p, const char *what, struct fy_node *value)
{
        strbuf_puts(p->out, p->first ? "{\"op\":\"" : ",{\"op\":\"");
        strbuf_puts(p->out, what);
        strbuf_puts(p->out, "\",\"path\":");
        json_strn(p->out, p->path.s ? p->path.s : "", p->path.len);
        if (value) {
                strbuf_puts(p->out, ",\"value\":");
                yaml_to_json(p->out, value);
        }
        strbuf_puts(p->out, "}");
        p->first = false;
}

/* Pushes "/key" (escaped) onto the path; returns the old length to pop back to. */
static size_t push_key(struct patch *p, const char *key, size_t len)
{
        size_t old = p->path.len;

        strbuf_puts(&p->path, "/");
        for (const char *c = key; c < key + len; c++) {
                if (*c == '~')
                        strbuf_puts(&p->path, "~0");
                else if (*c == '/')
                        strbuf_puts(&p->path, "~1");
                else
                        strbuf_append(&p->path, c, 1);
        }
        return old;
}

static size_t push_index(struct patch *p, int i)
{
        char digits[16];
        size_t old = p->path.len, n = sizeof(digits);

        /* By hand: printf was a tenth of a patch's cost. */
        do
                digits[--n] = (char)('0' + i % 10);
        while ((i /= 10) > 0 && n > 1);
        digits[--n] = '/';
        strbuf_append(&p->path, digits + n, sizeof(digits) - n);
        return old;
}

static void pop(struct patch *p, size_t len)
{
        p->path.len = len;
        if (p->path.s)
                p->path.s[len] = '\0';
}

static void diff(struct patch *p, struct fy_node *a, struct fy_node *b);

/* A mapping's keys sorted, so that looking one up costs log n: a pod's labels or annotations
 * can be hundreds of thousands of keys in a 6 MiB request, and a lookup per key by walking the
 * other mapping was quadratic (minutes of CPU for one request). */
struct key_index {
        struct key_entry {
                const char *s;
                size_t len;
                struct fy_node *value;
        } *v;
        size_t n;
};

static int cmp_key_entry(const void *a, const void *b)
{
        const struct key_entry *x = a, *y = b;

        return yaml_keycmp(x->s, x->len, y->s, y->len);
}

/* Small mappings are searched in place; a NULL v means "walk the mapping". */
static void key_index_build(struct key_index *ix, struct fy_node *map)
{
        struct fy_node_pair *pr;
        void *iter = NULL;
        int n = fy_node_mapping_item_count(map);

        *ix = (struct key_index){ 0 };
        if (n <= 32 || !(ix->v = calloc((size_t)n, sizeof(*ix->v))))
                return;
        while ((pr = fy_node_mapping_iterate(map, &iter))) {
                struct key_entry *e = &ix->v[ix->n];

                if (!fy_node_is_scalar(fy_node_pair_key(pr)) || !(e->s = fy_node_get_scalar(fy_node_pair_key(pr), &e->len)))
                        continue;
                e->value = fy_node_pair_value(pr);
                ix->n++;
        }
        qsort(ix->v, ix->n, sizeof(*ix->v), cmp_key_entry);
}

/* The value of key k in map (found through ix when it was built), or NULL; *found says whether
 * the key is there at all (its value may be a null node). */
static struct fy_node *key_lookup(const struct key_index *ix, struct fy_node *map, const char *k, size_t len,
                                  bool *found)
{
        if (ix->v) {
                struct key_entry want = { .s = k, .len = len }, *e;

                e = bsearch(&want, ix->v, ix->n, sizeof(*ix->v), cmp_key_entry);
                *found = e != NULL;
                return e ? e->value : NULL;
        }
        {
                struct fy_node_pair *pr = yaml_pair(map, k, len);

                *found = pr != NULL;
                return pr ? fy_node_pair_value(pr) : NULL;
        }
}

static void diff_map(struct patch *p, struct fy_node *a, struct fy_node *b)
{
        struct key_index ia, ib;
        struct fy_node_pair *pr;
        void *iter = NULL;
        bool found;

        key_index_build(&ia, a);
        key_index_build(&ib, b);
        while ((pr = fy_node_mapping_iterate(a, &iter))) {
                size_t kl = 0;
                const char *k = yaml_scalar(fy_node_pair_key(pr), &kl);

                if (k && (key_lookup(&ib, b, k, kl, &found), !found)) {
                        size_t old = push_key(p, k, kl);
                        op(p, "remove", NULL);
                        pop(p, old);
                }
        }
        iter = NULL;
        while ((pr = fy_node_mapping_iterate(b, &iter))) {
                size_t kl = 0, old;
                const char *k = yaml_scalar(fy_node_pair_key(pr), &kl);
                struct fy_node *av;

                if (!k)
                        continue;
                av = key_lookup(&ia, a, k, kl, &found);
                old = push_key(p, k, kl);
                if (!found)
                        op(p, "add", fy_node_pair_value(pr));
                else
                        diff(p, av, fy_node_pair_value(pr));
                pop(p, old);
        }
        free(ia.v);
        free(ib.v);
}

/* A sequence's items as an array: libfyaml keeps sequences as linked lists, so indexing one
 * item by item (fy_node_sequence_get_by_index) made a list of 50,000 env entries cost 45 s. */
static struct fy_node **seq_items(struct fy_node *seq, int *n)
{
        struct fy_node **v, *it;
        void *iter = NULL;
        int i = 0;

        *n = fy_node_sequence_item_count(seq);
        v = calloc((size_t)(*n > 0 ? *n : 1), sizeof(*v));
        if (!v)
                return NULL;
        while (i < *n && (it = fy_node_sequence_iterate(seq, &iter)))
                v[i++] = it;
        *n = i;
        return v;
}

static void diff_seq(struct patch *p, struct fy_node *a, struct fy_node *b)
{
        int na, nb, head = 0, tail = 0;
        struct fy_node **va = seq_items(a, &na), **vb = seq_items(b, &nb);

        if (!va || !vb) {
                /* Out of memory: replacing the whole list is still a right answer. */
                free(va);
                free(vb);
                op(p, "replace", b);
                return;
        }
        while (head < na && head < nb && same(va[head], vb[head]))
                head++;
        while (tail < na - head && tail < nb - head && same(va[na - 1 - tail], vb[nb - 1 - tail]))
                tail++;
        if (na - head - tail == nb - head - tail) {
                /* Same shape: the items in the middle changed in place (a rewritten probe). */
                for (int i = head; i < na - tail; i++) {
                        size_t old = push_index(p, i);
                        diff(p, va[i], vb[i]);
                        pop(p, old);
                }
        } else {
                /* Items inserted or removed: take the old middle out, put the new one in. */
                for (int i = na - tail - 1; i >= head; i--) {
                        size_t old = push_index(p, i);
                        op(p, "remove", NULL);
                        pop(p, old);
                }
                for (int i = head; i < nb - tail; i++) {
                        size_t old = push_index(p, i);
                        op(p, "add", vb[i]);
                        pop(p, old);
                }
        }
        free(va);
        free(vb);
}

static void diff(struct patch *p, struct fy_node *a, struct fy_node *b)
{
        if (yaml_is_map(a) && yaml_is_map(b))
                diff_map(p, a, b);
        else if (yaml_is_seq(a) && yaml_is_seq(b))
                diff_seq(p, a, b);
        else if (!same(a, b))
                op(p, "replace", b);
}

void json_patch_diff(struct fy_node *from, struct fy_node *to, struct strbuf *out)
{
        struct patch p = { .out = out, .path = STRBUF_NULL, .first = true };

        strbuf_puts(out, "[");
        /* The root is the object itself: its path is "" and its keys start with "/". */
        strbuf_puts(&p.path, "");
        diff(&p, from, to);
        strbuf_puts(out, "]");
        strbuf_deinit(&p.path);
}
