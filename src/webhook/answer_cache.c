/*
 * The answer cache; see answer_cache.h. One mutex over a fixed array: a lookup compares at most
 * a few hundred 32-byte keys (microseconds, against the hundreds an injection costs), and a full
 * cache replaces its entries in turn, oldest first, so memory stays bounded by entries times an
 * answer (about 7 KiB for a typical pod).
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "webhook/answer_cache.h"

#define ENTRIES_MAX 4096

struct answer {
        unsigned char key[ANSWER_KEY_SIZE];
        char *text;             /* the answer after the uid */
        size_t len;
};

static struct {
        pthread_mutex_t lock;
        struct answer *v;
        unsigned n, next;
        _Atomic unsigned long hits, misses;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

void answer_cache_init(unsigned entries)
{
        cache.n = entries > ENTRIES_MAX ? ENTRIES_MAX : entries;
        cache.v = cache.n ? calloc(cache.n, sizeof(*cache.v)) : NULL;
        if (!cache.v)
                cache.n = 0;
}

bool answer_cache_enabled(void)
{
        return cache.n > 0;
}

void answer_cache_key(const char *path, const char *body, size_t len, size_t cut, size_t cut_end,
                      unsigned char key[ANSWER_KEY_SIZE])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int n = 0;

        if (cut > len || cut_end > len || cut_end < cut)
                cut = cut_end = len;
        /* The path ends at its NUL, so no path can run on into the body. */
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, path, strlen(path) + 1) != 1 ||
            EVP_DigestUpdate(md, body, cut) != 1 || EVP_DigestUpdate(md, body + cut_end, len - cut_end) != 1 ||
            EVP_DigestFinal_ex(md, key, &n) != 1 || n != ANSWER_KEY_SIZE)
                /* An all-zero key is never stored (see put), so a failed digest only misses. */
                memset(key, 0, ANSWER_KEY_SIZE);
        EVP_MD_CTX_free(md);
}

static bool key_is_zero(const unsigned char key[ANSWER_KEY_SIZE])
{
        static const unsigned char zero[ANSWER_KEY_SIZE];

        return memcmp(key, zero, ANSWER_KEY_SIZE) == 0;
}

bool answer_cache_get(const unsigned char key[ANSWER_KEY_SIZE], struct strbuf *after)
{
        bool hit = false;

        if (!cache.n || key_is_zero(key))
                return false;
        pthread_mutex_lock(&cache.lock);
        for (unsigned i = 0; i < cache.n && !hit; i++) {
                const struct answer *a = &cache.v[i];

                if (a->text && memcmp(a->key, key, ANSWER_KEY_SIZE) == 0) {
                        strbuf_append(after, a->text, a->len);
                        hit = true;
                }
        }
        pthread_mutex_unlock(&cache.lock);
        atomic_fetch_add(hit ? &cache.hits : &cache.misses, 1);
        return hit && !after->error;
}

void answer_cache_put(const unsigned char key[ANSWER_KEY_SIZE], const char *after, size_t after_len)
{
        struct answer *a;
        char *text;

        if (!cache.n || key_is_zero(key) || !(text = malloc(after_len ? after_len : 1)))
                return;
        memcpy(text, after, after_len);
        pthread_mutex_lock(&cache.lock);
        /* Two threads may have computed the same answer: keep one. */
        for (unsigned i = 0; i < cache.n; i++)
                if (cache.v[i].text && memcmp(cache.v[i].key, key, ANSWER_KEY_SIZE) == 0) {
                        pthread_mutex_unlock(&cache.lock);
                        free(text);
                        return;
                }
        a = &cache.v[cache.next];
        cache.next = (cache.next + 1) % cache.n;
        free(a->text);
        memcpy(a->key, key, ANSWER_KEY_SIZE);
        a->text = text;
        a->len = after_len;
        pthread_mutex_unlock(&cache.lock);
}

void answer_cache_stats(unsigned long *hits, unsigned long *misses)
{
        *hits = atomic_load(&cache.hits);
        *misses = atomic_load(&cache.misses);
}

void answer_cache_deinit(void)
{
        for (unsigned i = 0; i < cache.n; i++)
                free(cache.v[i].text);
        free(cache.v);
        cache.v = NULL;
        cache.n = cache.next = 0;
}
