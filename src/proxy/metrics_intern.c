/*
 * Intern tables; see metrics_intern.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proxy/metrics_intern.h"

#define METRICS_INTERN_NONE UINT32_MAX

/*
 * Hash chains hold id + 1, so that 0 ends a chain and the arrays can be fresh anonymous
 * memory: their pages stay untouched (and out of an idle proxy's RSS) until used. The
 * destination table is sized for 10,000 values; a pod that talks to ten costs a few pages.
 */
#define METRICS_INTERN_LINK(id) ((id) + 1)
#define METRICS_INTERN_ID(link) ((link) - 1)

struct metrics_intern_entry {
        _Atomic uint32_t next;          /* hash chain (id + 1); published with release stores */
        uint32_t refs;                  /* under the lock */
        uint32_t list_next;             /* the retired list or the free list, under the lock */
        uint32_t hash;
        uint8_t len;
        uint8_t key[METRICS_INTERN_KEY_MAX];
        char *text;
};

struct metrics_intern {
        uint32_t capacity;
        uint32_t mask;                  /* buckets - 1 */
        uint32_t used;                  /* ids below this have been given out at some time */
        uint32_t free_head;             /* released ids, reused first */
        uint32_t retired_head;
        _Atomic uint32_t live;
        size_t entries_size, buckets_size;      /* of the two mappings */
        struct metrics_intern_entry *entries;
        _Atomic uint32_t *buckets;      /* id + 1 of each chain's head, 0 for none */
};

/* Zeroed memory the kernel maps on first touch (calloc clears what it takes from the heap). */
static void *metrics_intern_map(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        return p == MAP_FAILED ? NULL : p;
}

/* FNV-1a: the keys are a few bytes, and a port scan varies only the last two. */
static uint32_t metrics_intern_hash(const void *key, size_t len)
{
        const uint8_t *p = key;
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 16777619u;
        }
        return h ^ (h >> 16);
}

struct metrics_intern *metrics_intern_new(uint32_t capacity)
{
        struct metrics_intern *t;
        uint32_t n = 16;

        if (capacity == 0 || capacity > (1u << 31))
                return NULL;
        /* Chains of about one: a power of two above capacity / 0.75. */
        while (n < capacity + capacity / 3)
                n *= 2;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->capacity = capacity;
        t->mask = n - 1;
        t->free_head = METRICS_INTERN_NONE;
        t->retired_head = METRICS_INTERN_NONE;
        atomic_init(&t->live, 0);
        t->entries_size = (size_t)capacity * sizeof(*t->entries);
        t->buckets_size = (size_t)n * sizeof(*t->buckets);
        t->entries = metrics_intern_map(t->entries_size);
        t->buckets = metrics_intern_map(t->buckets_size);
        if (!t->entries || !t->buckets)
                return metrics_intern_free(t);
        return t;
}

struct metrics_intern *metrics_intern_free(struct metrics_intern *t)
{
        if (!t)
                return NULL;
        if (t->entries) {
                for (uint32_t i = 0; i < t->used; i++)
                        free(t->entries[i].text);
                munmap(t->entries, t->entries_size);
        }
        if (t->buckets)
                munmap((void *)t->buckets, t->buckets_size);
        free(t);
        return NULL;
}

static int metrics_intern_lookup(const struct metrics_intern *t, const void *key, size_t len, uint32_t h)
{
        uint32_t link;

        /* Acquire pairs with the inserter's release: the entry's key is complete. */
        for (link = atomic_load_explicit(&t->buckets[h & t->mask], memory_order_acquire); link;
             link = atomic_load_explicit(&t->entries[METRICS_INTERN_ID(link)].next, memory_order_acquire)) {
                const struct metrics_intern_entry *e = &t->entries[METRICS_INTERN_ID(link)];

                if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
                        return (int)METRICS_INTERN_ID(link);
        }
        return -ENOENT;
}

int metrics_intern_find(const struct metrics_intern *t, const void *key, size_t len)
{
        if (len > METRICS_INTERN_KEY_MAX)
                return -ENOENT;
        return metrics_intern_lookup(t, key, len, metrics_intern_hash(key, len));
}

int metrics_intern_get_locked(struct metrics_intern *t, const void *key, size_t len, const char *text)
{
        struct metrics_intern_entry *e;
        uint32_t h, id, b;
        int r;

        if (len > METRICS_INTERN_KEY_MAX)
                return -EINVAL;
        h = metrics_intern_hash(key, len);
        r = metrics_intern_lookup(t, key, len, h);
        if (r >= 0) {
                t->entries[r].refs++;
                return r;
        }
        if (t->free_head != METRICS_INTERN_NONE)
                id = t->free_head;
        else if (t->used < t->capacity)
                id = t->used;
        else
                return -ENOSPC;
        e = &t->entries[id];
        e->text = strdup(text);
        if (!e->text)
                return -ENOMEM;
        if (id == t->free_head)
                t->free_head = e->list_next;
        else
                t->used++;
        e->refs = 1;
        e->hash = h;
        e->len = (uint8_t)len;
        memcpy(e->key, key, len);
        b = h & t->mask;
        atomic_store_explicit(&e->next, atomic_load_explicit(&t->buckets[b], memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&t->buckets[b], METRICS_INTERN_LINK(id), memory_order_release);
        atomic_fetch_add_explicit(&t->live, 1, memory_order_relaxed);
        return (int)id;
}

void metrics_intern_ref_locked(struct metrics_intern *t, uint32_t id)
{
        t->entries[id].refs++;
}

void metrics_intern_unref_locked(struct metrics_intern *t, uint32_t id)
{
        struct metrics_intern_entry *e = &t->entries[id];
        _Atomic uint32_t *link;
        uint32_t cur;

        if (--e->refs > 0)
                return;
        /* Unlink: the predecessor now skips e; a reader standing on e still goes on from it. */
        link = &t->buckets[e->hash & t->mask];
        while ((cur = atomic_load_explicit(link, memory_order_relaxed)) != METRICS_INTERN_LINK(id))
                link = &t->entries[METRICS_INTERN_ID(cur)].next;
        atomic_store_explicit(link, atomic_load_explicit(&e->next, memory_order_relaxed), memory_order_release);
        e->list_next = t->retired_head;
        t->retired_head = id;
        atomic_fetch_sub_explicit(&t->live, 1, memory_order_relaxed);
}

uint32_t metrics_intern_retired_take_locked(struct metrics_intern *t)
{
        uint32_t b = t->retired_head;

        t->retired_head = METRICS_INTERN_NONE;
        return b;
}

void metrics_intern_release_locked(struct metrics_intern *t, uint32_t batch)
{
        while (batch != METRICS_INTERN_NONE) {
                struct metrics_intern_entry *e = &t->entries[batch];
                uint32_t next = e->list_next;

                free(e->text);
                e->text = NULL;
                e->list_next = t->free_head;
                t->free_head = batch;
                batch = next;
        }
}

const char *metrics_intern_text(const struct metrics_intern *t, uint32_t id)
{
        return t->entries[id].text;
}

const uint8_t *metrics_intern_key(const struct metrics_intern *t, uint32_t id, size_t *ret_len)
{
        *ret_len = t->entries[id].len;
        return t->entries[id].key;
}

uint32_t metrics_intern_count(const struct metrics_intern *t)
{
        return atomic_load_explicit(&t->live, memory_order_relaxed);
}
