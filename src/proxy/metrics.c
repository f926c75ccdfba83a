/*
 * Shared proxy metrics; see metrics.h. The series table is a fixed array of buckets, each the
 * head of a singly linked chain. Nodes are never removed or relinked, so a reader walks a chain
 * with one acquire load of the head and no lock: an inserter fills a node completely, links it
 * in front of the chain and publishes it with a release store, under a mutex that serialises
 * inserters. The same node is also pushed on an "all series" list, which a scrape walks and
 * sorts, so output order does not depend on which worker saw a destination first. The bucket
 * array is sized for METRICS_MAX_SERIES and never grows (no rehash to coordinate with readers).
 *
 * pilotfish_bytes_spliced_total and _copied_total change on every transfer of every
 * connection, so they are split into cache-line-sized shards (a thread picks one on first use)
 * and summed at scrape time; everything else changes once per connection and is one atomic.
 *
 * Label values, as Istio's stats filter (istio/proxy istio_stats.cc) sets them on a sidecar
 * without mTLS and without metadata exchange, except where noted:
 *   reporter                        "source" (outbound) / "destination" (inbound)
 *   this pod's side                 the identity: source_* outbound, destination_* inbound;
 *                                   its principal is "unknown" (no mTLS yet)
 *   the peer's side                 "unknown"
 *   destination_service(_name)      the original destination "10.0.0.1:80" / "[2001:db8::1]:80",
 *                                   where Envoy puts the service host from its cluster metadata
 *                                   (pilotfish has no registry); "unknown" when unreadable
 *   destination_service_namespace   inbound: this pod's namespace (as Istio); outbound: "unknown"
 *   request_protocol                "tcp"
 *   response_flags                  the caller's, "-" for none
 *   connection_security_policy      outbound "unknown"; inbound "none" (Istio says "none" for a
 *                                   plaintext inbound connection, "mutual_tls" with mTLS)
 *   *_app, *_version, this side     "unknown" when not known; Istio would print "" there
 */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "proxy/metrics.h"

/* A power of two above METRICS_MAX_SERIES / 0.75, so chains stay about one node long. */
#define METRICS_BUCKETS 16384u
#define METRICS_SHARDS 16u
#define METRICS_CACHELINE 64

enum metrics_key_kind {
        METRICS_KEY_ADDR = 0,
        METRICS_KEY_UNKNOWN,            /* no readable original destination */
        METRICS_KEY_OVERFLOW,           /* past METRICS_MAX_SERIES */
};

/* Compared and hashed as bytes, so it is always zeroed before it is filled in. */
struct metrics_key {
        uint8_t direction;
        uint8_t kind;
        uint8_t family;                 /* AF_INET or AF_INET6 for METRICS_KEY_ADDR, else 0 */
        uint8_t pad;
        uint16_t port;                  /* host order */
        uint8_t addr[16];
        char flags[METRICS_FLAGS_MAX + 1];
};

struct metrics_series {
        _Alignas(METRICS_CACHELINE) _Atomic uint64_t opened;
        _Atomic uint64_t closed;
        _Atomic uint64_t sent;
        _Atomic uint64_t received;
        /* Set before the node is published, never changed after. */
        struct metrics_series *bucket_next;
        struct metrics_series *all_next;
        size_t index;                   /* position on the all list: the head's index + 1 = count */
        struct metrics_key key;
        char service[64];               /* "[" 45 "]:" 5 fits */
};

struct metrics_shard {
        _Alignas(METRICS_CACHELINE) _Atomic uint64_t spliced;
        _Atomic uint64_t copied;
};

struct metrics {
        struct metrics_identity id;
        pthread_mutex_t lock;                           /* serialises inserts */
        _Atomic(struct metrics_series *) all;           /* newest first */
        _Atomic size_t n_bounded;                       /* series counted against the limit */
        _Alignas(METRICS_CACHELINE) _Atomic int64_t active[_METRICS_DIRECTION_MAX];
        _Atomic uint64_t connect_failures[_METRICS_CONNECT_FAILURE_MAX];
        _Atomic uint64_t accept_paused;
        struct metrics_shard shards[METRICS_SHARDS];
        _Atomic(struct metrics_series *) buckets[METRICS_BUCKETS];
};

static const char *const metrics_connect_failure_table[_METRICS_CONNECT_FAILURE_MAX] = {
        [METRICS_CONNECT_REFUSED] = "refused",
        [METRICS_CONNECT_TIMEOUT] = "timeout",
        [METRICS_CONNECT_UNREACHABLE] = "unreachable",
        [METRICS_CONNECT_OTHER] = "other",
};

static const char *const metrics_direction_table[_METRICS_DIRECTION_MAX] = {
        [METRICS_OUTBOUND] = "outbound",
        [METRICS_INBOUND] = "inbound",
};

/* ---- identity ---------------------------------------------------------------------------- */

/* getenv() over an envp array: the first NAME=, and an empty value counts as unset. */
static const char *metrics_env(char *const *envp, const char *name)
{
        size_t n = strlen(name);

        if (!envp)
                return NULL;
        for (; *envp; envp++) {
                if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
                        return (*envp)[n + 1] ? *envp + n + 1 : NULL;
        }
        return NULL;
}

static int metrics_field_set(char *field, size_t size, const char *value, size_t len)
{
        if (len >= size) {
                snprintf(field, size, "unknown");
                return -ENAMETOOLONG;
        }
        memcpy(field, value, len);
        field[len] = '\0';
        return 0;
}

static const char *metrics_json_ws(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

static int metrics_hex4(const char *p, unsigned *ret)
{
        unsigned v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* Appends one byte; past the end of buf only the length grows, so overlong values are seen. */
static void metrics_put(char *buf, size_t size, size_t *len, char c)
{
        if (*len + 1 < size)
                buf[*len] = c;
        (*len)++;
}

static void metrics_put_utf8(char *buf, size_t size, size_t *len, unsigned cp)
{
        if (cp < 0x80) {
                metrics_put(buf, size, len, (char)cp);
        } else if (cp < 0x800) {
                metrics_put(buf, size, len, (char)(0xc0 | (cp >> 6)));
                metrics_put(buf, size, len, (char)(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
                metrics_put(buf, size, len, (char)(0xe0 | (cp >> 12)));
                metrics_put(buf, size, len, (char)(0x80 | ((cp >> 6) & 0x3f)));
                metrics_put(buf, size, len, (char)(0x80 | (cp & 0x3f)));
        } else {
                metrics_put(buf, size, len, (char)(0xf0 | (cp >> 18)));
                metrics_put(buf, size, len, (char)(0x80 | ((cp >> 12) & 0x3f)));
                metrics_put(buf, size, len, (char)(0x80 | ((cp >> 6) & 0x3f)));
                metrics_put(buf, size, len, (char)(0x80 | (cp & 0x3f)));
        }
}

/*
 * Decodes the JSON string starting at the opening quote p into buf (NUL-terminated when it
 * fits; *ret_len is the full decoded length either way). Returns the position after the
 * closing quote, or NULL when malformed. Lone surrogates become U+FFFD, as in Go.
 */
static const char *metrics_json_string(const char *p, char *buf, size_t size, size_t *ret_len)
{
        size_t len = 0;

        if (*p++ != '"')
                return NULL;
        for (;;) {
                unsigned char c = (unsigned char)*p++;
                unsigned cp, lo;

                if (c == '"')
                        break;
                if (c < 0x20)
                        return NULL;    /* includes the terminating NUL */
                if (c != '\\') {
                        metrics_put(buf, size, &len, (char)c);
                        continue;
                }
                switch (*p++) {
                case '"': metrics_put(buf, size, &len, '"'); break;
                case '\\': metrics_put(buf, size, &len, '\\'); break;
                case '/': metrics_put(buf, size, &len, '/'); break;
                case 'b': metrics_put(buf, size, &len, '\b'); break;
                case 'f': metrics_put(buf, size, &len, '\f'); break;
                case 'n': metrics_put(buf, size, &len, '\n'); break;
                case 'r': metrics_put(buf, size, &len, '\r'); break;
                case 't': metrics_put(buf, size, &len, '\t'); break;
                case 'u':
                        if (metrics_hex4(p, &cp) < 0)
                                return NULL;
                        p += 4;
                        if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' &&
                            metrics_hex4(p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                p += 6;
                        } else if (cp >= 0xd800 && cp < 0xe000) {
                                cp = 0xfffd;
                        }
                        metrics_put_utf8(buf, size, &len, cp);
                        break;
                default:
                        return NULL;
                }
        }
        if (size)
                buf[len < size ? len : size - 1] = '\0';
        *ret_len = len;
        return p;
}

/*
 * Looks key up in a flat JSON object of strings (ISTIO_METAJSON_LABELS). The whole object is
 * validated first; a repeated key yields its last value, as Go's encoding/json does. Returns
 * the value's length (in buf), -ENOENT, -EBADMSG (malformed or not all strings), or
 * -ENAMETOOLONG.
 */
static int metrics_json_label(const char *json, const char *key, char *buf, size_t size)
{
        char k[512];
        size_t klen, vlen, found = SIZE_MAX;
        const char *p = metrics_json_ws(json);

        if (*p++ != '{')
                return -EBADMSG;
        p = metrics_json_ws(p);
        if (*p == '}') {
                p++;
        } else {
                for (;;) {
                        char v[256];

                        p = metrics_json_string(p, k, sizeof(k), &klen);
                        if (!p)
                                return -EBADMSG;
                        p = metrics_json_ws(p);
                        if (*p++ != ':')
                                return -EBADMSG;
                        p = metrics_json_string(metrics_json_ws(p), v, sizeof(v), &vlen);
                        if (!p)
                                return -EBADMSG;
                        if (klen < sizeof(k) && strlen(k) == klen && strcmp(k, key) == 0) {
                                found = vlen;
                                if (vlen < size && vlen < sizeof(v))
                                        memcpy(buf, v, vlen + 1);
                        }
                        p = metrics_json_ws(p);
                        if (*p == '}') {
                                p++;
                                break;
                        }
                        if (*p++ != ',')
                                return -EBADMSG;
                        p = metrics_json_ws(p);
                }
        }
        if (*metrics_json_ws(p) != '\0')
                return -EBADMSG;
        if (found == SIZE_MAX)
                return -ENOENT;
        if (found >= size || found >= 256)
                return -ENAMETOOLONG;
        return (int)found;
}

/* Kubernetes' rand.String alphabet (no vowels, no 0/1/3), used for generated name suffixes. */
#define METRICS_K8S_SAFE "bcdfghjklmnpqrstvwxz2456789"
#define METRICS_DIGITS "0123456789"

/* The length of name[0..len) without its last "-segment" when that segment fits the rule. */
static size_t metrics_strip_segment(const char *name, size_t len, size_t min, size_t max, const char *set)
{
        size_t i = len, n;

        while (i > 0 && name[i - 1] != '-')
                i--;
        if (i <= 1)
                return len;
        n = len - i;
        if (n < min || n > max)
                return len;
        for (size_t j = i; j < len; j++) {
                if (!strchr(set, name[j]))
                        return len;
        }
        return i - 1;
}

/*
 * A workload name from the pod name alone, for when the injector did not set
 * ISTIO_META_WORKLOAD_NAME (Istio itself follows the owner references, which a sidecar cannot
 * read). A generated 5-character suffix is dropped, then the ReplicaSet's pod-template-hash
 * (6-10 safe characters: Deployment) or a CronJob's scheduled minute (8-11 digits); without a
 * generated suffix, a StatefulSet ordinal. Returns the length of the workload name.
 */
static size_t metrics_workload_from_pod(const char *pod)
{
        size_t len = strlen(pod), base, l;

        base = metrics_strip_segment(pod, len, 5, 5, METRICS_K8S_SAFE);
        if (base != len) {
                l = metrics_strip_segment(pod, base, 6, 10, METRICS_K8S_SAFE);
                if (l == base)
                        l = metrics_strip_segment(pod, base, 8, 11, METRICS_DIGITS);
                return l;
        }
        return metrics_strip_segment(pod, len, 1, 5, METRICS_DIGITS);
}

/* Fills field from the first label found, then the fallback variable; 0, or -ENAMETOOLONG. */
static int metrics_identity_label(char *field, size_t size, const char *labels, const char *label1,
                                  const char *label2, const char *fallback)
{
        const char *names[] = { label1, label2 };
        int r;

        for (size_t i = 0; labels && i < 2; i++) {
                r = metrics_json_label(labels, names[i], field, size);
                if (r > 0)
                        return 0;
                if (r == -ENAMETOOLONG) {
                        snprintf(field, size, "unknown");
                        return r;
                }
                if (r == -EBADMSG)
                        break;
        }
        if (fallback)
                return metrics_field_set(field, size, fallback, strlen(fallback));
        snprintf(field, size, "unknown");
        return 0;
}

int metrics_identity_from_env(char *const *envp, struct metrics_identity *ret)
{
        const char *labels = metrics_env(envp, "ISTIO_METAJSON_LABELS");
        const char *v;
        int r = 0, k;

        memset(ret, 0, sizeof(*ret));

        if ((v = metrics_env(envp, "ISTIO_META_WORKLOAD_NAME")))
                k = metrics_field_set(ret->workload, sizeof(ret->workload), v, strlen(v));
        else if ((v = metrics_env(envp, "POD_NAME")))
                k = metrics_field_set(ret->workload, sizeof(ret->workload), v, metrics_workload_from_pod(v));
        else
                k = metrics_field_set(ret->workload, sizeof(ret->workload), "unknown", 7);
        r = r < 0 ? r : k;

        v = metrics_env(envp, "POD_NAMESPACE");
        if (!v)
                v = "unknown";
        k = metrics_field_set(ret->namespace_, sizeof(ret->namespace_), v, strlen(v));
        r = r < 0 ? r : k;

        k = metrics_identity_label(ret->app, sizeof(ret->app), labels, "app", "app.kubernetes.io/name",
                                   metrics_env(envp, "CANONICAL_SERVICE"));
        r = r < 0 ? r : k;
        k = metrics_identity_label(ret->version, sizeof(ret->version), labels, "version",
                                   "app.kubernetes.io/version", metrics_env(envp, "CANONICAL_REVISION"));
        r = r < 0 ? r : k;

        v = metrics_env(envp, "ISTIO_META_CLUSTER_ID");
        if (!v)
                v = "Kubernetes";
        k = metrics_field_set(ret->cluster, sizeof(ret->cluster), v, strlen(v));
        return r < 0 ? r : k;
}

/* ---- the series table -------------------------------------------------------------------- */

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

/* ---- the proxy's own figures ------------------------------------------------------------- */

static _Atomic unsigned metrics_next_shard;
static _Thread_local unsigned metrics_shard = UINT_MAX;

/* Each thread sticks to one shard, so its adds stay on a cache line it mostly owns. */
static struct metrics_shard *metrics_my_shard(struct metrics *m)
{
        if (metrics_shard == UINT_MAX)
                metrics_shard = atomic_fetch_add_explicit(&metrics_next_shard, 1, memory_order_relaxed) %
                                METRICS_SHARDS;
        return &m->shards[metrics_shard];
}

void metrics_active_inc(struct metrics *m, enum metrics_direction dir)
{
        atomic_fetch_add_explicit(&m->active[dir], 1, memory_order_relaxed);
}

void metrics_active_dec(struct metrics *m, enum metrics_direction dir)
{
        atomic_fetch_sub_explicit(&m->active[dir], 1, memory_order_relaxed);
}

void metrics_connect_failed(struct metrics *m, enum metrics_connect_failure cause)
{
        if ((unsigned)cause >= _METRICS_CONNECT_FAILURE_MAX)
                cause = METRICS_CONNECT_OTHER;
        atomic_fetch_add_explicit(&m->connect_failures[cause], 1, memory_order_relaxed);
}

void metrics_add_spliced(struct metrics *m, uint64_t n)
{
        if (n)
                atomic_fetch_add_explicit(&metrics_my_shard(m)->spliced, n, memory_order_relaxed);
}

void metrics_add_copied(struct metrics *m, uint64_t n)
{
        if (n)
                atomic_fetch_add_explicit(&metrics_my_shard(m)->copied, n, memory_order_relaxed);
}

void metrics_accept_paused(struct metrics *m)
{
        atomic_fetch_add_explicit(&m->accept_paused, 1, memory_order_relaxed);
}

enum metrics_connect_failure metrics_connect_failure_from_errno(int err)
{
        switch (err < 0 ? -err : err) {
        case ECONNREFUSED:
        case ECONNRESET:
                return METRICS_CONNECT_REFUSED;
        case ETIMEDOUT:
                return METRICS_CONNECT_TIMEOUT;
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EHOSTDOWN:
        case ENETDOWN:
                return METRICS_CONNECT_UNREACHABLE;
        default:
                return METRICS_CONNECT_OTHER;
        }
}

const char *metrics_connect_failure_str(enum metrics_connect_failure c)
{
        if ((unsigned)c >= _METRICS_CONNECT_FAILURE_MAX)
                return "other";
        return metrics_connect_failure_table[c];
}

/* ---- process figures --------------------------------------------------------------------- */

/* Reads a small /proc file whole; returns its length or a negative errno. */
static ssize_t metrics_read_file(const char *path, char *buf, size_t size)
{
        size_t len = 0;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (len + 1 < size) {
                n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        n = -errno;
                        close(fd);
                        return n;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        return (ssize_t)len;
}

/* btime from /proc/stat: boot time in seconds since the epoch, or -1. */
static long long metrics_boot_time(void)
{
        long long btime = -1;
        char *line = NULL;
        size_t cap = 0;
        FILE *f;

        f = fopen("/proc/stat", "re");
        if (!f)
                return -1;
        while (getline(&line, &cap, f) > 0) {
                if (sscanf(line, "btime %lld", &btime) == 1)
                        break;
        }
        free(line);
        fclose(f);
        return btime;
}

static void metrics_process_stat(struct metrics_process *ret)
{
        unsigned long long v[24] = { 0 };
        long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        long long btime;
        char buf[4096], *p, *end;
        size_t n = 0;

        if (metrics_read_file("/proc/self/stat", buf, sizeof(buf)) < 0)
                return;
        /* The command name may hold spaces and parentheses: fields start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return;
        p += 2;
        /* Field 3 is the state letter; v[i] is then field i + 4 (see proc(5)). */
        p = strchr(p, ' ');
        while (p && n < 24) {
                v[n] = strtoull(p, &end, 10);
                if (end == p)
                        break;
                p = end;
                n++;
        }
        if (n < 21)
                return;
        ret->virtual_bytes = (int64_t)v[19];                    /* field 23, vsize */
        if (page > 0)
                ret->resident_bytes = (int64_t)v[20] * page;    /* field 24, rss in pages */
        btime = metrics_boot_time();
        if (btime >= 0 && ticks > 0)                            /* field 22, starttime in ticks */
                ret->start_time_seconds = (double)btime + (double)v[18] / (double)ticks;
}

static void metrics_process_fds(struct metrics_process *ret)
{
        struct dirent *de;
        int64_t n = 0;
        DIR *d;
        int self;

        d = opendir("/proc/self/fd");
        if (!d)
                return;
        self = dirfd(d);
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (atoi(de->d_name) == self)
                        continue;
                n++;
        }
        closedir(d);
        ret->open_fds = n;
}

int metrics_process_read(struct metrics_process *ret)
{
        struct rusage ru;
        struct rlimit rl;

        ret->cpu_seconds = -1;
        ret->start_time_seconds = -1;
        ret->resident_bytes = -1;
        ret->virtual_bytes = -1;
        ret->open_fds = -1;
        ret->max_fds = -1;

        if (getrusage(RUSAGE_SELF, &ru) == 0)
                ret->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                ret->max_fds = (int64_t)rl.rlim_cur;
        metrics_process_fds(ret);
        metrics_process_stat(ret);
        return 0;
}

/* ---- the printer ------------------------------------------------------------------------- */

/*
 * One printer for both formats (iproute2's json_print idea): the walk below says "family",
 * "sample", and each call writes Prometheus text or JSON, so the two always carry the same
 * figures.
 */
struct metrics_printer {
        struct strbuf *out;
        enum metrics_format fmt;
        const char *name;               /* the current family */
        size_t n_families;
        size_t n_samples;               /* in the current family */
};

struct metrics_label {
        const char *name;
        const char *value;
};

enum metrics_value_kind {
        METRICS_VALUE_U64 = 0,
        METRICS_VALUE_I64,
        METRICS_VALUE_F64,
};

struct metrics_value {
        enum metrics_value_kind kind;
        union {
                uint64_t u;
                int64_t i;
                double f;
        };
};

#define METRICS_U64(x) ((struct metrics_value){ .kind = METRICS_VALUE_U64, .u = (x) })
#define METRICS_I64(x) ((struct metrics_value){ .kind = METRICS_VALUE_I64, .i = (x) })
#define METRICS_F64(x) ((struct metrics_value){ .kind = METRICS_VALUE_F64, .f = (x) })

/* Prometheus text escaping: in label values \ " and newline; in HELP only \ and newline. */
static void metrics_text_escape(struct strbuf *out, const char *s, bool quote)
{
        const char *run = s;

        for (; *s; s++) {
                const char *rep = NULL;

                if (*s == '\\')
                        rep = "\\\\";
                else if (*s == '\n')
                        rep = "\\n";
                else if (*s == '"' && quote)
                        rep = "\\\"";
                if (!rep)
                        continue;
                strbuf_append(out, run, (size_t)(s - run));
                strbuf_puts(out, rep);
                run = s + 1;
        }
        strbuf_append(out, run, (size_t)(s - run));
}

static void metrics_json_escape(struct strbuf *out, const char *s)
{
        const char *run = s;

        strbuf_puts(out, "\"");
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                char esc[8];

                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                strbuf_append(out, run, (size_t)(s - run));
                run = s + 1;
                switch (c) {
                case '"': strbuf_puts(out, "\\\""); break;
                case '\\': strbuf_puts(out, "\\\\"); break;
                case '\n': strbuf_puts(out, "\\n"); break;
                case '\r': strbuf_puts(out, "\\r"); break;
                case '\t': strbuf_puts(out, "\\t"); break;
                default:
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        strbuf_puts(out, esc);
                        break;
                }
        }
        strbuf_append(out, run, (size_t)(s - run));
        strbuf_puts(out, "\"");
}

static void metrics_print_value(struct strbuf *out, struct metrics_value v)
{
        switch (v.kind) {
        case METRICS_VALUE_U64:
                strbuf_printf(out, "%" PRIu64, v.u);
                break;
        case METRICS_VALUE_I64:
                strbuf_printf(out, "%" PRId64, v.i);
                break;
        case METRICS_VALUE_F64:
                strbuf_printf(out, "%.6f", v.f);
                break;
        }
}

static void metrics_print_begin(struct metrics_printer *p)
{
        if (p->fmt == METRICS_FORMAT_JSON)
                strbuf_puts(p->out, "{\"metrics\":[");
}

static void metrics_print_family(struct metrics_printer *p, const char *name, const char *type, const char *help)
{
        if (p->fmt == METRICS_FORMAT_PROMETHEUS) {
                strbuf_printf(p->out, "# HELP %s ", name);
                metrics_text_escape(p->out, help, false);
                strbuf_printf(p->out, "\n# TYPE %s %s\n", name, type);
        } else {
                if (p->n_families)
                        strbuf_puts(p->out, "]},");
                strbuf_puts(p->out, "{\"name\":");
                metrics_json_escape(p->out, name);
                strbuf_puts(p->out, ",\"type\":");
                metrics_json_escape(p->out, type);
                strbuf_puts(p->out, ",\"help\":");
                metrics_json_escape(p->out, help);
                strbuf_puts(p->out, ",\"samples\":[");
        }
        p->name = name;
        p->n_families++;
        p->n_samples = 0;
}

static void metrics_print_sample(struct metrics_printer *p, const struct metrics_label *labels, size_t n,
                                 struct metrics_value v)
{
        if (p->fmt == METRICS_FORMAT_PROMETHEUS) {
                strbuf_puts(p->out, p->name);
                for (size_t i = 0; i < n; i++) {
                        strbuf_printf(p->out, "%s%s=\"", i ? "," : "{", labels[i].name);
                        metrics_text_escape(p->out, labels[i].value, true);
                        strbuf_puts(p->out, "\"");
                }
                strbuf_puts(p->out, n ? "} " : " ");
                metrics_print_value(p->out, v);
                strbuf_puts(p->out, "\n");
        } else {
                strbuf_puts(p->out, p->n_samples ? ",{\"labels\":{" : "{\"labels\":{");
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                strbuf_puts(p->out, ",");
                        metrics_json_escape(p->out, labels[i].name);
                        strbuf_puts(p->out, ":");
                        metrics_json_escape(p->out, labels[i].value);
                }
                strbuf_puts(p->out, "},\"value\":");
                metrics_print_value(p->out, v);
                strbuf_puts(p->out, "}");
        }
        p->n_samples++;
}

static int metrics_print_end(struct metrics_printer *p)
{
        if (p->fmt == METRICS_FORMAT_JSON)
                strbuf_puts(p->out, p->n_families ? "]}]}\n" : "]}\n");
        return p->out->error;
}

/* ---- rendering --------------------------------------------------------------------------- */

enum {
        ISTIO_REPORTER = 0,
        ISTIO_SOURCE_WORKLOAD,
        ISTIO_SOURCE_WORKLOAD_NAMESPACE,
        ISTIO_SOURCE_PRINCIPAL,
        ISTIO_SOURCE_APP,
        ISTIO_SOURCE_VERSION,
        ISTIO_SOURCE_CLUSTER,
        ISTIO_DESTINATION_WORKLOAD,
        ISTIO_DESTINATION_WORKLOAD_NAMESPACE,
        ISTIO_DESTINATION_PRINCIPAL,
        ISTIO_DESTINATION_APP,
        ISTIO_DESTINATION_VERSION,
        ISTIO_DESTINATION_SERVICE,
        ISTIO_DESTINATION_SERVICE_NAME,
        ISTIO_DESTINATION_SERVICE_NAMESPACE,
        ISTIO_DESTINATION_CLUSTER,
        ISTIO_REQUEST_PROTOCOL,
        ISTIO_RESPONSE_FLAGS,
        ISTIO_CONNECTION_SECURITY_POLICY,
        _ISTIO_LABEL_MAX,
};

/* Istio's label names, in the order Istio documents them. */
static const char *const istio_label_names[_ISTIO_LABEL_MAX] = {
        "reporter",
        "source_workload", "source_workload_namespace", "source_principal", "source_app",
        "source_version", "source_cluster",
        "destination_workload", "destination_workload_namespace", "destination_principal",
        "destination_app", "destination_version", "destination_service", "destination_service_name",
        "destination_service_namespace", "destination_cluster",
        "request_protocol", "response_flags", "connection_security_policy",
};

static void metrics_istio_labels(const struct metrics *m, const struct metrics_series *s,
                                 struct metrics_label *l)
{
        const struct metrics_identity *id = &m->id;
        bool out = s->key.direction == METRICS_OUTBOUND;
        const char *u = "unknown";

        for (size_t i = 0; i < _ISTIO_LABEL_MAX; i++) {
                l[i].name = istio_label_names[i];
                l[i].value = u;
        }
        l[ISTIO_REPORTER].value = out ? "source" : "destination";
        l[out ? ISTIO_SOURCE_WORKLOAD : ISTIO_DESTINATION_WORKLOAD].value = id->workload;
        l[out ? ISTIO_SOURCE_WORKLOAD_NAMESPACE : ISTIO_DESTINATION_WORKLOAD_NAMESPACE].value = id->namespace_;
        l[out ? ISTIO_SOURCE_APP : ISTIO_DESTINATION_APP].value = id->app;
        l[out ? ISTIO_SOURCE_VERSION : ISTIO_DESTINATION_VERSION].value = id->version;
        l[out ? ISTIO_SOURCE_CLUSTER : ISTIO_DESTINATION_CLUSTER].value = id->cluster;
        l[ISTIO_DESTINATION_SERVICE].value = s->service;
        l[ISTIO_DESTINATION_SERVICE_NAME].value = s->service;
        if (!out)
                l[ISTIO_DESTINATION_SERVICE_NAMESPACE].value = id->namespace_;
        l[ISTIO_REQUEST_PROTOCOL].value = "tcp";
        l[ISTIO_RESPONSE_FLAGS].value = s->key.flags;
        l[ISTIO_CONNECTION_SECURITY_POLICY].value = out ? "unknown" : "none";
}

static int metrics_series_cmp(const void *a, const void *b)
{
        const struct metrics_key *x = &(*(struct metrics_series *const *)a)->key;
        const struct metrics_key *y = &(*(struct metrics_series *const *)b)->key;
        int r;

        if (x->direction != y->direction)
                return x->direction < y->direction ? -1 : 1;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->family != y->family)
                return x->family < y->family ? -1 : 1;
        r = memcmp(x->addr, y->addr, sizeof(x->addr));
        if (r)
                return r;
        if (x->port != y->port)
                return x->port < y->port ? -1 : 1;
        return strcmp(x->flags, y->flags);
}

/* The series published so far, sorted. Returns 0 (*ret NULL when there are none) or -ENOMEM. */
static int metrics_snapshot(const struct metrics *m, struct metrics_series ***ret, size_t *ret_n)
{
        struct metrics_series *head, *s, **v;
        size_t n, i = 0;

        *ret = NULL;
        *ret_n = 0;
        head = atomic_load_explicit(&m->all, memory_order_acquire);
        if (!head)
                return 0;
        n = head->index + 1;
        v = malloc(n * sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (s = head; s && i < n; s = s->all_next)
                v[i++] = s;
        qsort(v, i, sizeof(*v), metrics_series_cmp);
        *ret = v;
        *ret_n = i;
        return 0;
}

enum metrics_counter {
        METRICS_OPENED = 0,
        METRICS_CLOSED,
        METRICS_SENT,
        METRICS_RECEIVED,
        _METRICS_COUNTER_MAX,
};

static const struct {
        const char *name;
        const char *help;
} istio_families[_METRICS_COUNTER_MAX] = {
        [METRICS_OPENED] = { "istio_tcp_connections_opened_total",
                             "Total TCP connections opened" },
        [METRICS_CLOSED] = { "istio_tcp_connections_closed_total",
                             "Total TCP connections closed" },
        [METRICS_SENT] = { "istio_tcp_sent_bytes_total",
                           "Total bytes sent during response (upstream to downstream) on TCP connections" },
        [METRICS_RECEIVED] = { "istio_tcp_received_bytes_total",
                               "Total bytes received during request (downstream to upstream) on TCP connections" },
};

static uint64_t metrics_series_counter(const struct metrics_series *s, enum metrics_counter c)
{
        switch (c) {
        case METRICS_OPENED:
                return atomic_load_explicit(&s->opened, memory_order_relaxed);
        case METRICS_CLOSED:
                return atomic_load_explicit(&s->closed, memory_order_relaxed);
        case METRICS_SENT:
                return atomic_load_explicit(&s->sent, memory_order_relaxed);
        default:
                return atomic_load_explicit(&s->received, memory_order_relaxed);
        }
}

static void metrics_print_proxy(const struct metrics *m, struct metrics_printer *p)
{
        uint64_t spliced = 0, copied = 0;
        struct metrics_label l;

        metrics_print_family(p, "pilotfish_active_connections", "gauge",
                             "Connections being relayed now, by capture listener");
        for (size_t d = 0; d < _METRICS_DIRECTION_MAX; d++) {
                l = (struct metrics_label){ "listener", metrics_direction_table[d] };
                metrics_print_sample(p, &l, 1, METRICS_I64(atomic_load_explicit(&m->active[d], memory_order_relaxed)));
        }

        metrics_print_family(p, "pilotfish_connect_failures_total", "counter",
                             "Upstream connects that failed, by cause");
        for (size_t c = 0; c < _METRICS_CONNECT_FAILURE_MAX; c++) {
                l = (struct metrics_label){ "cause", metrics_connect_failure_table[c] };
                metrics_print_sample(p, &l, 1,
                                     METRICS_U64(atomic_load_explicit(&m->connect_failures[c], memory_order_relaxed)));
        }

        for (size_t i = 0; i < METRICS_SHARDS; i++) {
                spliced += atomic_load_explicit(&m->shards[i].spliced, memory_order_relaxed);
                copied += atomic_load_explicit(&m->shards[i].copied, memory_order_relaxed);
        }
        metrics_print_family(p, "pilotfish_bytes_spliced_total", "counter",
                             "Bytes relayed with splice(2), both directions");
        metrics_print_sample(p, NULL, 0, METRICS_U64(spliced));
        metrics_print_family(p, "pilotfish_bytes_copied_total", "counter",
                             "Bytes relayed through the read/write buffer fallback, both directions");
        metrics_print_sample(p, NULL, 0, METRICS_U64(copied));

        metrics_print_family(p, "pilotfish_accept_paused_total", "counter",
                             "Times a listener stopped accepting for lack of file descriptors (EMFILE/ENFILE)");
        metrics_print_sample(p, NULL, 0, METRICS_U64(atomic_load_explicit(&m->accept_paused, memory_order_relaxed)));
}

/* The standard names and help texts of the Prometheus client libraries' process collector. */
static void metrics_print_process(const struct metrics_process *proc, struct metrics_printer *p)
{
        if (proc->cpu_seconds >= 0) {
                metrics_print_family(p, "process_cpu_seconds_total", "counter",
                                     "Total user and system CPU time spent in seconds.");
                metrics_print_sample(p, NULL, 0, METRICS_F64(proc->cpu_seconds));
        }
        if (proc->open_fds >= 0) {
                metrics_print_family(p, "process_open_fds", "gauge", "Number of open file descriptors.");
                metrics_print_sample(p, NULL, 0, METRICS_I64(proc->open_fds));
        }
        if (proc->max_fds >= 0) {
                metrics_print_family(p, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
                metrics_print_sample(p, NULL, 0, METRICS_I64(proc->max_fds));
        }
        if (proc->virtual_bytes >= 0) {
                metrics_print_family(p, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
                metrics_print_sample(p, NULL, 0, METRICS_I64(proc->virtual_bytes));
        }
        if (proc->resident_bytes >= 0) {
                metrics_print_family(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
                metrics_print_sample(p, NULL, 0, METRICS_I64(proc->resident_bytes));
        }
        if (proc->start_time_seconds >= 0) {
                metrics_print_family(p, "process_start_time_seconds", "gauge",
                                     "Start time of the process since unix epoch in seconds.");
                metrics_print_sample(p, NULL, 0, METRICS_F64(proc->start_time_seconds));
        }
}

int metrics_render(const struct metrics *m, const struct metrics_process *proc, enum metrics_format fmt,
                   struct strbuf *out)
{
        struct metrics_printer p = { .out = out, .fmt = fmt };
        struct metrics_label labels[_ISTIO_LABEL_MAX];
        struct metrics_series **v;
        size_t n;
        int r;

        r = metrics_snapshot(m, &v, &n);
        if (r < 0)
                return r;

        metrics_print_begin(&p);
        for (size_t c = 0; c < _METRICS_COUNTER_MAX; c++) {
                metrics_print_family(&p, istio_families[c].name, "counter", istio_families[c].help);
                for (size_t i = 0; i < n; i++) {
                        metrics_istio_labels(m, v[i], labels);
                        metrics_print_sample(&p, labels, _ISTIO_LABEL_MAX,
                                             METRICS_U64(metrics_series_counter(v[i], (enum metrics_counter)c)));
                }
        }
        metrics_print_proxy(m, &p);
        if (proc)
                metrics_print_process(proc, &p);
        r = metrics_print_end(&p);
        free(v);
        return r;
}

int metrics_render_prometheus(const struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_PROMETHEUS, out);
}

int metrics_render_json(const struct metrics *m, struct strbuf *out)
{
        struct metrics_process proc;

        metrics_process_read(&proc);
        return metrics_render(m, &proc, METRICS_FORMAT_JSON, out);
}
