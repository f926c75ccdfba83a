/*
 * The series table; see metrics.h.
 *
 * The table is a fixed array of buckets, each the head of a singly linked chain, sized for
 * METRICS_MAX_SERIES and never resized (no rehash to coordinate with readers). Every change
 * (insert, removal, the intern tables' entries) happens under m->lock; a lookup takes no lock.
 * An inserter fills a node completely, links it in front of its chain and publishes it with a
 * release store; a reader walks with acquire loads. Every linked node is also on a doubly
 * linked "all" list (under the lock), which a scrape copies and sorts, so output order does
 * not depend on which worker saw a destination first.
 *
 * Removal (expiry) must not free a node a reader is standing on, nor one a worker or a scrape
 * holds. Two mechanisms, one per hazard:
 *   - references: metrics_series_get() takes one for the connection (dropped by
 *     metrics_series_closed()), a scrape takes one per series it prints. Expiry removes only
 *     a series whose count it turns from 0 into METRICS_SERIES_DEAD with a compare-and-swap
 *     under the lock; a lookup takes its reference with a fetch-add and gives up (goes to the
 *     locked slow path, which finds the node gone and makes a new one) when it sees DEAD;
 *   - read sections with two epochs (the counting scheme of SRCU): a lookup runs between
 *     metrics_read_enter() and metrics_read_leave(), which count it in its thread's shard
 *     under the parity of the epoch it saw. Expiry unlinks the dead nodes (and retires the
 *     intern entries only they used) under the lock, releases the lock, advances the epoch
 *     and waits until no reader is counted under the old parity; then nothing can reach the
 *     unlinked nodes and they are freed. A reader that counted itself under the old parity
 *     after the flip sees the new epoch on its re-check, takes itself back and tries again,
 *     so the wait ends. All of this is seq_cst at the edges, so ThreadSanitizer sees the
 *     happens-before edges that make the frees safe.
 * A lookup's section is a few hash-chain loads, and it never takes the lock inside one, so the
 * wait is short and cannot deadlock (the slow path leaves its section first).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "proxy/metrics-t.h"
#include "proxy/metrics_intern.h"

/* Capacities of the intern tables: destinations follow the series bound (plus the reserved
 * values); the others are small sets, HTTP's status codes the largest. */
#define METRICS_DESTINATIONS_MAX (METRICS_MAX_SERIES + 16)
#define METRICS_PEERS_MAX 4096
#define METRICS_PROTOCOLS_MAX 8
#define METRICS_CODES_MAX 1024
#define METRICS_GRPC_MAX 64
#define METRICS_FLAGS_VALUES_MAX 256

/* A destination's intern key: kind first, so addresses sort before "unknown" and "overflow". */
enum metrics_dest_kind {
        METRICS_DEST_ADDR = 0,
        METRICS_DEST_UNKNOWN,           /* no readable original destination */
        METRICS_DEST_OVERFLOW,          /* past METRICS_MAX_SERIES */
};

/* kind, family, 16 address bytes, port in network order (so memcmp orders ports numerically) */
#define METRICS_DEST_KEY_LEN 20

int64_t metrics_now_ms(void)
{
        struct timespec ts;

        /* Coarse (a tick, a few ms): a TTL is minutes, and every close reads this clock. */
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- read sections ----------------------------------------------------------------------- */

static uint64_t metrics_read_enter(struct metrics *m, unsigned shard)
{
        struct metrics_readers *r = &m->readers[shard];
        uint64_t e;

        for (;;) {
                e = atomic_load(&m->epoch);
                atomic_fetch_add(&r->n[e & 1], 1);
                if (atomic_load(&m->epoch) == e)
                        return e;
                /* Expiry flipped the epoch in between and may not have seen us: retry. */
                atomic_fetch_sub(&r->n[e & 1], 1);
        }
}

static void metrics_read_leave(struct metrics *m, unsigned shard, uint64_t e)
{
        /* Release: what the section read happens before a free that waited for this. */
        atomic_fetch_sub_explicit(&m->readers[shard].n[e & 1], 1, memory_order_release);
}

/* Advances the epoch and waits until every reader of the old one has left. Not in a section. */
static void metrics_grace(struct metrics *m)
{
        uint64_t old = atomic_fetch_add(&m->epoch, 1);

        for (unsigned i = 0; i < METRICS_SHARDS; i++) {
                while (atomic_load_explicit(&m->readers[i].n[old & 1], memory_order_acquire) != 0)
                        sched_yield();
        }
}

/* ---- lifetime ---------------------------------------------------------------------------- */

/* Interns a value that stays for the table's life (its reference is never given back). */
static int metrics_pin(struct metrics_intern *t, const void *key, size_t len, const char *text, uint32_t *ret)
{
        int r = metrics_intern_get_locked(t, key, len, text);

        if (r < 0)
                return r;
        *ret = (uint32_t)r;
        return 0;
}

int metrics_new(struct metrics **ret, const struct metrics_identity *id)
{
        static const uint8_t unknown_key[1] = { METRICS_DEST_UNKNOWN }, overflow_key[1] = { METRICS_DEST_OVERFLOW };
        struct metrics *m;
        uint32_t unused;
        int r = -ENOMEM;

        m = aligned_alloc(METRICS_CACHELINE, sizeof(*m));
        if (!m)
                return -ENOMEM;
        memset(m, 0, sizeof(*m));
        m->id = *id;
        pthread_mutex_init(&m->lock, NULL);
        pthread_mutex_init(&m->expire_lock, NULL);
        atomic_init(&m->n_bounded, 0);
        atomic_init(&m->ttl_ms, METRICS_SERIES_TTL_MS);
        atomic_init(&m->next_expire_ms, 0);
        atomic_init(&m->epoch, 0);
        for (size_t i = 0; i < METRICS_SHARDS; i++) {
                atomic_init(&m->readers[i].n[0], 0);
                atomic_init(&m->readers[i].n[1], 0);
        }
        for (size_t i = 0; i < METRICS_BUCKETS; i++)
                atomic_init(&m->buckets[i], NULL);
        m->destinations = metrics_intern_new(METRICS_DESTINATIONS_MAX);
        m->peers = metrics_intern_new(METRICS_PEERS_MAX);
        m->protocols = metrics_intern_new(METRICS_PROTOCOLS_MAX);
        m->codes = metrics_intern_new(METRICS_CODES_MAX);
        m->grpc = metrics_intern_new(METRICS_GRPC_MAX);
        m->flags = metrics_intern_new(METRICS_FLAGS_VALUES_MAX);
        if (!m->destinations || !m->peers || !m->protocols || !m->codes || !m->grpc || !m->flags)
                goto fail;
        /* The values TCP uses, and HTTP's protocols, pinned from the start. */
        if ((r = metrics_pin(m->destinations, unknown_key, 1, "unknown", &m->dest_unknown)) < 0 ||
            (r = metrics_pin(m->destinations, overflow_key, 1, "overflow", &m->dest_overflow)) < 0 ||
            (r = metrics_pin(m->peers, "unknown", 7, "unknown", &m->peer_unknown)) < 0 ||
            (r = metrics_pin(m->protocols, "tcp", 3, "tcp", &m->protocol_tcp)) < 0 ||
            (r = metrics_pin(m->protocols, "http", 4, "http", &unused)) < 0 ||
            (r = metrics_pin(m->protocols, "grpc", 4, "grpc", &unused)) < 0 ||
            (r = metrics_pin(m->codes, "", 0, "", &m->code_none)) < 0 ||
            (r = metrics_pin(m->grpc, "", 0, "", &m->grpc_none)) < 0 ||
            (r = metrics_pin(m->flags, "-", 1, "-", &unused)) < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        metrics_free(m);
        return r;
}

struct metrics *metrics_free(struct metrics *m)
{
        struct metrics_series *s, *next;

        if (!m)
                return NULL;
        for (s = m->all; s; s = next) {
                next = s->all_next;
                free(s);
        }
        metrics_intern_free(m->destinations);
        metrics_intern_free(m->peers);
        metrics_intern_free(m->protocols);
        metrics_intern_free(m->codes);
        metrics_intern_free(m->grpc);
        metrics_intern_free(m->flags);
        pthread_mutex_destroy(&m->expire_lock);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
}

/* ---- keys -------------------------------------------------------------------------------- */

/* What a connection says about its series, before any id is known. */
struct metrics_want {
        uint8_t direction;
        uint8_t dest[METRICS_DEST_KEY_LEN];
        size_t dest_len;
        const char *flags;
        size_t flags_len;
};

static void metrics_want_make(struct metrics_want *w, enum metrics_direction dir, const struct sockaddr *sa,
                              const char *flags)
{
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        const uint8_t *addr = NULL;
        uint16_t port_be = 0;

        memset(w, 0, sizeof(*w));
        w->direction = (uint8_t)dir;
        w->dest[0] = METRICS_DEST_UNKNOWN;
        w->dest_len = 1;
        if (sa && sa->sa_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

                w->dest[1] = AF_INET;
                addr = (const uint8_t *)&s4->sin_addr;
                port_be = s4->sin_port;
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

                port_be = s6->sin6_port;
                /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; count them as IPv4. */
                if (memcmp(s6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
                        w->dest[1] = AF_INET;
                        addr = s6->sin6_addr.s6_addr + 12;
                } else {
                        w->dest[1] = AF_INET6;
                        addr = s6->sin6_addr.s6_addr;
                }
        }
        if (addr) {
                w->dest[0] = METRICS_DEST_ADDR;
                memcpy(w->dest + 2, addr, w->dest[1] == AF_INET ? 4 : 16);
                memcpy(w->dest + 18, &port_be, 2);
                w->dest_len = METRICS_DEST_KEY_LEN;
        }
        if (!flags || !*flags)
                flags = "-";
        w->flags = flags;
        w->flags_len = strlen(flags);
        assert(w->flags_len <= METRICS_FLAGS_MAX);
        if (w->flags_len > METRICS_FLAGS_MAX)
                w->flags_len = METRICS_FLAGS_MAX;
}

/* The label text of a destination key: "10.0.0.1:80", "[2001:db8::1]:443". */
static void metrics_dest_text(const uint8_t *k, char *buf, size_t len)
{
        char a[INET6_ADDRSTRLEN];
        uint16_t port_be;

        memcpy(&port_be, k + 18, 2);
        inet_ntop(k[1], k + 2, a, sizeof(a));
        if (k[1] == AF_INET6)
                snprintf(buf, len, "[%s]:%u", a, (unsigned)ntohs(port_be));
        else
                snprintf(buf, len, "%s:%u", a, (unsigned)ntohs(port_be));
}

static void metrics_key_tcp(const struct metrics *m, struct metrics_key *k, uint8_t direction)
{
        memset(k, 0, sizeof(*k));
        k->direction = direction;
        k->peer = m->peer_unknown;
        k->protocol = (uint8_t)m->protocol_tcp;
        k->response_code = (uint16_t)m->code_none;
        k->grpc_status = (uint8_t)m->grpc_none;
}

/* FNV-1a over the key's bytes. */
static uint32_t metrics_key_hash(const struct metrics_key *k)
{
        const uint8_t *p = (const uint8_t *)k;
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < sizeof(*k); i++) {
                h ^= p[i];
                h *= 16777619u;
        }
        return h ^ (h >> 15);
}

static struct metrics_series *metrics_lookup(struct metrics *m, const struct metrics_key *k, uint32_t h)
{
        struct metrics_series *s;

        /* Acquire pairs with the inserter's release: the node and its chain are complete. */
        for (s = atomic_load_explicit(&m->buckets[h % METRICS_BUCKETS], memory_order_acquire); s;
             s = atomic_load_explicit(&s->bucket_next, memory_order_acquire)) {
                if (s->hash == h && memcmp(&s->key, k, sizeof(*k)) == 0)
                        return s;
        }
        return NULL;
}

/* Takes a reference unless expiry got there first (then the add is taken back). */
static bool metrics_series_ref(struct metrics_series *s)
{
        if (!(atomic_fetch_add_explicit(&s->refs, 1, memory_order_acquire) & METRICS_SERIES_DEAD))
                return true;
        atomic_fetch_sub_explicit(&s->refs, 1, memory_order_relaxed);
        return false;
}

/* ---- lookup and insert ------------------------------------------------------------------- */

/* The lock-free path: an existing series, referenced, or NULL. */
static struct metrics_series *metrics_find(struct metrics *m, const struct metrics_want *w)
{
        unsigned shard = metrics_thread_shard();
        struct metrics_series *s = NULL;
        struct metrics_key k;
        uint64_t e;
        int d, f;

        metrics_key_tcp(m, &k, w->direction);
        e = metrics_read_enter(m, shard);
        f = metrics_intern_find(m->flags, w->flags, w->flags_len);
        d = metrics_intern_find(m->destinations, w->dest, w->dest_len);
        /* Full: a new destination must not cost every connection a trip through the lock. */
        if (d < 0 && atomic_load_explicit(&m->n_bounded, memory_order_relaxed) >= METRICS_MAX_SERIES)
                d = (int)m->dest_overflow;
        if (d >= 0 && f >= 0) {
                k.destination = (uint32_t)d;
                k.flags = (uint16_t)f;
                s = metrics_lookup(m, &k, metrics_key_hash(&k));
                if (s && !metrics_series_ref(s))
                        s = NULL;
        }
        metrics_read_leave(m, shard, e);
        return s;
}

static void metrics_key_unref_locked(struct metrics *m, const struct metrics_key *k)
{
        metrics_intern_unref_locked(m->destinations, k->destination);
        metrics_intern_unref_locked(m->peers, k->peer);
        metrics_intern_unref_locked(m->protocols, k->protocol);
        metrics_intern_unref_locked(m->codes, k->response_code);
        metrics_intern_unref_locked(m->grpc, k->grpc_status);
        metrics_intern_unref_locked(m->flags, k->flags);
}

/* Called with m->lock held: the series, referenced, made when new; NULL when out of memory. */
static struct metrics_series *metrics_insert_locked(struct metrics *m, const struct metrics_want *w)
{
        struct metrics_series *s;
        struct metrics_key k;
        char text[64] = "";
        int d, f;

        metrics_key_tcp(m, &k, w->direction);
        /* Every id the key holds is referenced for it; given back if the series exists. */
        f = metrics_intern_get_locked(m->flags, w->flags, w->flags_len, w->flags);
        if (f < 0)
                return NULL;
        d = metrics_intern_find(m->destinations, w->dest, w->dest_len);
        if (d >= 0) {
                metrics_intern_ref_locked(m->destinations, (uint32_t)d);
        } else if (atomic_load_explicit(&m->n_bounded, memory_order_relaxed) < METRICS_MAX_SERIES) {
                if (w->dest[0] == METRICS_DEST_ADDR)
                        metrics_dest_text(w->dest, text, sizeof(text));
                d = metrics_intern_get_locked(m->destinations, w->dest, w->dest_len, text);
        }
        if (d < 0) {
                d = (int)m->dest_overflow;
                metrics_intern_ref_locked(m->destinations, (uint32_t)d);
        }
        metrics_intern_ref_locked(m->peers, k.peer);
        metrics_intern_ref_locked(m->protocols, k.protocol);
        metrics_intern_ref_locked(m->codes, k.response_code);
        metrics_intern_ref_locked(m->grpc, k.grpc_status);
        k.destination = (uint32_t)d;
        k.flags = (uint16_t)f;

        s = metrics_lookup(m, &k, metrics_key_hash(&k));
        if (s) {
                /* Linked nodes are never DEAD under the lock: expiry unlinks them there. */
                atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
                metrics_key_unref_locked(m, &k);
                return s;
        }
        /* A destination seen before the bound keeps its series; a new one past it overflows. */
        if (k.destination != m->dest_overflow &&
            atomic_load_explicit(&m->n_bounded, memory_order_relaxed) >= METRICS_MAX_SERIES) {
                metrics_intern_unref_locked(m->destinations, k.destination);
                k.destination = m->dest_overflow;
                metrics_intern_ref_locked(m->destinations, k.destination);
                s = metrics_lookup(m, &k, metrics_key_hash(&k));
                if (s) {
                        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
                        metrics_key_unref_locked(m, &k);
                        return s;
                }
        }

        s = aligned_alloc(METRICS_CACHELINE, sizeof(*s));
        if (!s) {
                metrics_key_unref_locked(m, &k);
                return NULL;
        }
        memset(s, 0, sizeof(*s));
        atomic_init(&s->opened, 0);
        atomic_init(&s->closed, 0);
        atomic_init(&s->sent, 0);
        atomic_init(&s->received, 0);
        atomic_init(&s->refs, 1);
        atomic_init(&s->idle_since_ms, metrics_now_ms());
        s->key = k;
        s->hash = metrics_key_hash(&k);
        s->service = metrics_intern_text(m->destinations, k.destination);
        atomic_init(&s->bucket_next,
                    atomic_load_explicit(&m->buckets[s->hash % METRICS_BUCKETS], memory_order_relaxed));
        atomic_store_explicit(&m->buckets[s->hash % METRICS_BUCKETS], s, memory_order_release);
        s->all_prev = NULL;
        s->all_next = m->all;
        if (m->all)
                m->all->all_prev = s;
        m->all = s;
        m->n_series++;
        if (k.destination != m->dest_overflow)
                atomic_fetch_add_explicit(&m->n_bounded, 1, memory_order_relaxed);
        return s;
}

struct metrics_series *metrics_series_get(struct metrics *m, enum metrics_direction dir,
                                          const struct sockaddr *orig_dst, const char *response_flags)
{
        struct metrics_series *s;
        struct metrics_want w;
        int64_t now, next;

        metrics_want_make(&w, dir, orig_dst, response_flags);
        s = metrics_find(m, &w);
        if (s)
                return s;
        /* Full: make room from expired series first, at most once a second. */
        if (atomic_load_explicit(&m->n_bounded, memory_order_relaxed) >= METRICS_MAX_SERIES) {
                now = metrics_now_ms();
                next = atomic_load_explicit(&m->next_expire_ms, memory_order_relaxed);
                if (now >= next && atomic_compare_exchange_strong_explicit(&m->next_expire_ms, &next, now + 1000,
                                                                           memory_order_relaxed,
                                                                           memory_order_relaxed))
                        metrics_expire(m, now);
        }
        pthread_mutex_lock(&m->lock);
        s = metrics_insert_locked(m, &w);
        pthread_mutex_unlock(&m->lock);
        return s;
}

/* ---- expiry ------------------------------------------------------------------------------ */

/* Under the lock: unlinks s from its chain and the all list, and gives back its key's ids. */
static void metrics_unlink_locked(struct metrics *m, struct metrics_series *s)
{
        _Atomic(struct metrics_series *) *link = &m->buckets[s->hash % METRICS_BUCKETS];
        struct metrics_series *cur;

        /* The predecessor skips s; a reader standing on s still goes on from its next. */
        while ((cur = atomic_load_explicit(link, memory_order_relaxed)) != s)
                link = &cur->bucket_next;
        atomic_store_explicit(link, atomic_load_explicit(&s->bucket_next, memory_order_relaxed),
                              memory_order_release);
        if (s->all_prev)
                s->all_prev->all_next = s->all_next;
        else
                m->all = s->all_next;
        if (s->all_next)
                s->all_next->all_prev = s->all_prev;
        m->n_series--;
        metrics_key_unref_locked(m, &s->key);
}

size_t metrics_expire(struct metrics *m, int64_t now_ms)
{
        struct metrics_intern *tables[] = { m->destinations, m->peers, m->protocols, m->codes, m->grpc, m->flags };
        uint32_t batches[sizeof(tables) / sizeof(tables[0])];
        struct metrics_series *s, *next, *dead = NULL;
        int64_t ttl = atomic_load_explicit(&m->ttl_ms, memory_order_relaxed);
        size_t n = 0, bounded = 0;

        pthread_mutex_lock(&m->expire_lock);
        pthread_mutex_lock(&m->lock);
        for (s = m->all; s; s = next) {
                uint64_t zero = 0;

                next = s->all_next;
                if (now_ms - atomic_load_explicit(&s->idle_since_ms, memory_order_relaxed) < ttl)
                        continue;
                /* Only a series nobody holds; a lookup that races with this sees DEAD. */
                if (!atomic_compare_exchange_strong(&s->refs, &zero, METRICS_SERIES_DEAD))
                        continue;
                /* Again, now that the last closer's release is seen: it may have just let go. */
                if (now_ms - atomic_load_explicit(&s->idle_since_ms, memory_order_relaxed) < ttl) {
                        atomic_fetch_sub(&s->refs, METRICS_SERIES_DEAD);
                        continue;
                }
                metrics_unlink_locked(m, s);
                s->retired_next = dead;
                dead = s;
                n++;
                if (s->key.destination != m->dest_overflow)
                        bounded++;
        }
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
                batches[i] = metrics_intern_retired_take_locked(tables[i]);
        pthread_mutex_unlock(&m->lock);

        if (n) {
                metrics_grace(m);
                for (s = dead; s; s = next) {
                        next = s->retired_next;
                        free(s);
                }
        }
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
                metrics_intern_release_locked(tables[i], batches[i]);
        pthread_mutex_unlock(&m->lock);
        /* Only now is the room there: the ids and nodes are free. */
        atomic_fetch_sub_explicit(&m->n_bounded, bounded, memory_order_relaxed);
        pthread_mutex_unlock(&m->expire_lock);
        return n;
}

void metrics_set_ttl(struct metrics *m, int64_t ttl_ms)
{
        atomic_store_explicit(&m->ttl_ms, ttl_ms, memory_order_relaxed);
}

size_t metrics_series_count(struct metrics *m)
{
        size_t n;

        pthread_mutex_lock(&m->lock);
        n = m->n_series;
        pthread_mutex_unlock(&m->lock);
        return n;
}

/* ---- the scrape's snapshot --------------------------------------------------------------- */

int metrics_snapshot_take(struct metrics *m, struct metrics_series ***ret, size_t *ret_n)
{
        struct metrics_series **v = NULL, *s;
        size_t i = 0;

        *ret = NULL;
        *ret_n = 0;
        pthread_mutex_lock(&m->lock);
        if (m->n_series) {
                v = malloc(m->n_series * sizeof(*v));
                if (!v) {
                        pthread_mutex_unlock(&m->lock);
                        return -ENOMEM;
                }
                for (s = m->all; s; s = s->all_next) {
                        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
                        v[i++] = s;
                }
        }
        pthread_mutex_unlock(&m->lock);
        *ret = v;
        *ret_n = i;
        return 0;
}

void metrics_snapshot_release(struct metrics *m, struct metrics_series **v, size_t n)
{
        (void)m;
        /* No idle time is touched: a series only scrapes look at still expires. */
        for (size_t i = 0; i < n; i++)
                atomic_fetch_sub_explicit(&v[i]->refs, 1, memory_order_release);
        free(v);
}

/* ---- the hot path ------------------------------------------------------------------------ */

void metrics_series_opened(struct metrics_series *s)
{
        if (s)
                atomic_fetch_add_explicit(&s->opened, 1, memory_order_relaxed);
}

void metrics_series_closed(struct metrics_series *s)
{
        if (!s)
                return;
        atomic_fetch_add_explicit(&s->closed, 1, memory_order_relaxed);
        /* The idle time first: expiry reads it only after it sees no reference. */
        atomic_store_explicit(&s->idle_since_ms, metrics_now_ms(), memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release);
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

const char *metrics_series_service(const struct metrics_series *s)
{
        return s ? s->service : "";
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
