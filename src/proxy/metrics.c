/*
 * The series table; see metrics.h. The table is a fixed array of buckets, each the head of a
 * singly linked chain. Nodes are never removed or relinked, so a reader walks a chain with one
 * acquire load of the head and no lock: an inserter fills a node completely, links it in front
 * of the chain and publishes it with a release store, under a mutex that serialises inserters.
 * The same node is also pushed on an "all series" list, which a scrape walks and sorts, so
 * output order does not depend on which worker saw a destination first. The bucket array is
 * sized for METRICS_MAX_SERIES and never grows (no rehash to coordinate with readers).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/metrics-t.h"

int metrics_new(struct metrics **ret, const struct metrics_identity *id)
{
        struct metrics *m;

        m = aligned_alloc(METRICS_CACHELINE, sizeof(*m));
        if (!m)
                return -ENOMEM;
        memset(m, 0, sizeof(*m));
        m->id = *id;
        pthread_mutex_init(&m->lock, NULL);
        atomic_init(&m->all, NULL);
        atomic_init(&m->n_bounded, 0);
        for (size_t i = 0; i < METRICS_BUCKETS; i++)
                atomic_init(&m->buckets[i], NULL);
        *ret = m;
        return 0;
}

struct metrics *metrics_free(struct metrics *m)
{
        struct metrics_series *s, *next;

        if (!m)
                return NULL;
        for (s = atomic_load_explicit(&m->all, memory_order_acquire); s; s = next) {
                next = s->all_next;
                free(s);
        }
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
}

static void metrics_key_make(struct metrics_key *k, enum metrics_direction dir, const struct sockaddr *sa,
                             const char *flags)
{
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        size_t n;

        memset(k, 0, sizeof(*k));
        k->direction = (uint8_t)dir;
        k->kind = METRICS_KEY_UNKNOWN;
        if (sa && sa->sa_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

                k->kind = METRICS_KEY_ADDR;
                k->family = AF_INET;
                memcpy(k->addr, &s4->sin_addr, 4);
                k->port = ntohs(s4->sin_port);
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

                k->kind = METRICS_KEY_ADDR;
                k->port = ntohs(s6->sin6_port);
                /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; count them as IPv4. */
                if (memcmp(s6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
                        k->family = AF_INET;
                        memcpy(k->addr, s6->sin6_addr.s6_addr + 12, 4);
                } else {
                        k->family = AF_INET6;
                        memcpy(k->addr, s6->sin6_addr.s6_addr, 16);
                }
        }
        if (!flags || !*flags)
                flags = "-";
        n = strlen(flags);
        assert(n <= METRICS_FLAGS_MAX);
        if (n > METRICS_FLAGS_MAX)
                n = METRICS_FLAGS_MAX;
        memcpy(k->flags, flags, n);
}

static void metrics_key_overflow(struct metrics_key *k)
{
        k->kind = METRICS_KEY_OVERFLOW;
        k->family = 0;
        k->port = 0;
        memset(k->addr, 0, sizeof(k->addr));
}

/* FNV-1a over the key's bytes. */
static size_t metrics_key_bucket(const struct metrics_key *k)
{
        const uint8_t *p = (const uint8_t *)k;
        uint64_t h = 0xcbf29ce484222325ull;

        for (size_t i = 0; i < sizeof(*k); i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return (size_t)(h ^ (h >> 32)) & (METRICS_BUCKETS - 1);
}

static struct metrics_series *metrics_lookup(struct metrics *m, const struct metrics_key *k, size_t b)
{
        struct metrics_series *s;

        /* Acquire pairs with the inserter's release: the node and its chain are complete. */
        for (s = atomic_load_explicit(&m->buckets[b], memory_order_acquire); s; s = s->bucket_next) {
                if (memcmp(&s->key, k, sizeof(*k)) == 0)
                        return s;
        }
        return NULL;
}

static void metrics_service_format(const struct metrics_key *k, char *buf, size_t len)
{
        char a[INET6_ADDRSTRLEN];

        switch (k->kind) {
        case METRICS_KEY_ADDR:
                inet_ntop(k->family, k->addr, a, sizeof(a));
                if (k->family == AF_INET6)
                        snprintf(buf, len, "[%s]:%u", a, (unsigned)k->port);
                else
                        snprintf(buf, len, "%s:%u", a, (unsigned)k->port);
                break;
        case METRICS_KEY_OVERFLOW:
                snprintf(buf, len, "overflow");
                break;
        default:
                snprintf(buf, len, "unknown");
                break;
        }
}

/* Called with m->lock held. */
static struct metrics_series *metrics_insert_locked(struct metrics *m, struct metrics_key *k, size_t b)
{
        struct metrics_series *s, *head;

        s = metrics_lookup(m, k, b);
        if (s)
                return s;
        if (k->kind != METRICS_KEY_OVERFLOW &&
            atomic_load_explicit(&m->n_bounded, memory_order_relaxed) >= METRICS_MAX_SERIES) {
                metrics_key_overflow(k);
                b = metrics_key_bucket(k);
                s = metrics_lookup(m, k, b);
                if (s)
                        return s;
        }

        s = aligned_alloc(METRICS_CACHELINE, sizeof(*s));
        if (!s)
                return NULL;
        memset(s, 0, sizeof(*s));
        atomic_init(&s->opened, 0);
        atomic_init(&s->closed, 0);
        atomic_init(&s->sent, 0);
        atomic_init(&s->received, 0);
        s->key = *k;
        metrics_service_format(k, s->service, sizeof(s->service));

        head = atomic_load_explicit(&m->all, memory_order_relaxed);
        s->all_next = head;
        s->index = head ? head->index + 1 : 0;
        s->bucket_next = atomic_load_explicit(&m->buckets[b], memory_order_relaxed);
        atomic_store_explicit(&m->buckets[b], s, memory_order_release);
        atomic_store_explicit(&m->all, s, memory_order_release);
        if (k->kind != METRICS_KEY_OVERFLOW)
                atomic_fetch_add_explicit(&m->n_bounded, 1, memory_order_relaxed);
        return s;
}

struct metrics_series *metrics_series_get(struct metrics *m, enum metrics_direction dir,
                                          const struct sockaddr *orig_dst, const char *response_flags)
{
        struct metrics_series *s;
        struct metrics_key k;
        size_t b;

        metrics_key_make(&k, dir, orig_dst, response_flags);
        b = metrics_key_bucket(&k);
        s = metrics_lookup(m, &k, b);
        if (s)
                return s;
        /* Full: a new destination must not cost every connection a trip through the lock. */
        if (atomic_load_explicit(&m->n_bounded, memory_order_relaxed) >= METRICS_MAX_SERIES) {
                metrics_key_overflow(&k);
                b = metrics_key_bucket(&k);
                s = metrics_lookup(m, &k, b);
                if (s)
                        return s;
        }
        pthread_mutex_lock(&m->lock);
        s = metrics_insert_locked(m, &k, b);
        pthread_mutex_unlock(&m->lock);
        return s;
}

void metrics_series_opened(struct metrics_series *s)
{
        if (s)
                atomic_fetch_add_explicit(&s->opened, 1, memory_order_relaxed);
}

void metrics_series_closed(struct metrics_series *s)
{
        if (s)
                atomic_fetch_add_explicit(&s->closed, 1, memory_order_relaxed);
}

void metrics_series_add_sent(struct metrics_series *s, uint64_t n)
{
        if (s && n)
                atomic_fetch_add_explicit(&s->sent, n, memory_order_relaxed);
}

void metrics_series_add_received(struct metrics_series *s, uint64_t n)
{
        if (s && n)
                atomic_fetch_add_explicit(&s->received, n, memory_order_relaxed);
}

void metrics_series_read(const struct metrics_series *s, struct metrics_series_counts *ret)
{
        memset(ret, 0, sizeof(*ret));
        if (!s)
                return;
        ret->opened = atomic_load_explicit(&s->opened, memory_order_relaxed);
        ret->closed = atomic_load_explicit(&s->closed, memory_order_relaxed);
        ret->sent = atomic_load_explicit(&s->sent, memory_order_relaxed);
        ret->received = atomic_load_explicit(&s->received, memory_order_relaxed);
}

const char *metrics_series_service(const struct metrics_series *s)
{
        return s ? s->service : "";
}
