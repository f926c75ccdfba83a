/*
 * yaml_build's per-thread memo; see build_cache.h. A small ring with a 64-bit FNV-1a hash in
 * front of the text comparison: a handful of texts repeat per request, so a linear scan over at
 * most 64 entries beats any structure. A text that no longer fits pushes out the oldest.
 */
#include <libfyaml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inject/build_cache.h"
#include "inject/yaml.h"

#define ENTRIES_MAX 64

struct entry {
        uint64_t hash;
        char *text;
        struct fy_document *doc;
};

struct cache {
        struct entry e[ENTRIES_MAX];
        unsigned n, next;
};

static _Thread_local struct cache *cache;

void build_cache_begin(unsigned entries)
{
        if (cache)
                return;
        cache = calloc(1, sizeof(*cache));
        if (cache)
                cache->n = entries < 1 ? 1 : entries > ENTRIES_MAX ? ENTRIES_MAX : entries;
}

static void entry_clear(struct entry *e)
{
        free(e->text);
        if (e->doc)
                fy_document_destroy(e->doc);
        *e = (struct entry){ 0 };
}

void build_cache_end(void)
{
        if (!cache)
                return;
        for (unsigned i = 0; i < cache->n; i++)
                entry_clear(&cache->e[i]);
        free(cache);
        cache = NULL;
}

static uint64_t fnv1a(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ull;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
        return h;
}

struct fy_node *build_cache_build(struct fy_document *d, const char *text, int *used)
{
        struct entry *e;
        uint64_t h;

        *used = cache != NULL;
        if (!cache)
                return NULL;
        h = fnv1a(text);
        for (unsigned i = 0; i < cache->n; i++) {
                e = &cache->e[i];
                if (e->doc && e->hash == h && strcmp(e->text, text) == 0)
                        return fy_node_copy(d, fy_document_root(e->doc));
        }
        e = &cache->e[cache->next];
        entry_clear(e);
        /* The same parse yaml_build does, into a document of the memo's own. */
        e->text = strdup(text);
        e->doc = e->text ? fy_document_build_from_string(&(struct fy_parse_cfg){ .flags = YAML_PARSE_FLAGS },
                                                          e->text, (size_t)-1)
                         : NULL;
        if (!e->doc || !fy_document_root(e->doc)) {
                entry_clear(e);
                return NULL;
        }
        e->hash = h;
        cache->next = (cache->next + 1) % cache->n;
        return fy_node_copy(d, fy_document_root(e->doc));
}
