/*
 * The layout of struct metrics, shared by the files that make up the proxy's metrics
 * (metrics.c: the series table; metrics_counters.c: the proxy's own figures; metrics_istio.c
 * and metrics_scrape.c: the output) and by no one else: callers see struct metrics through
 * metrics.h only.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/metrics.h"

/* A power of two above METRICS_MAX_SERIES / 0.75, so chains stay about one node long. */
#define METRICS_BUCKETS 16384u
#define METRICS_SHARDS 16u
#define METRICS_CACHELINE 64

/* Set in refs when expiry removes a series: a lookup that meets it must not take it. */
#define METRICS_SERIES_DEAD (UINT64_C(1) << 62)

/*
 * A series key: one interned id per label dimension. Hashed and compared as bytes, so it has
 * no padding and is zeroed before it is filled in. For TCP today, protocol is "tcp", peer
 * "unknown", response code and gRPC status absent; HTTP adds values, not fields.
 */
struct metrics_key {
        uint32_t destination;           /* m->destinations */
        uint32_t peer;                  /* m->peers: the other side's workload */
        uint16_t flags;                 /* m->flags: Envoy's response flags */
        uint16_t response_code;         /* m->codes */
        uint8_t direction;              /* enum metrics_direction, not interned */
        uint8_t protocol;               /* m->protocols */
        uint8_t grpc_status;            /* m->grpc */
        uint8_t pad;
};

struct metrics_series {
        _Alignas(METRICS_CACHELINE) _Atomic uint64_t opened;
        _Atomic uint64_t closed;
        _Atomic uint64_t sent;
        _Atomic uint64_t received;
        /* Connections and scrapes holding the series; METRICS_SERIES_DEAD once removed. */
        _Atomic uint64_t refs;
        /* CLOCK_MONOTONIC ms when the last connection let go (or the series was made). */
        _Atomic int64_t idle_since_ms;
        /* The bucket chain; a reader may walk it while expiry unlinks a node. */
        _Atomic(struct metrics_series *) bucket_next;
        /* Under m->lock. */
        struct metrics_series *all_prev, *all_next;
        struct metrics_series *retired_next;
        uint32_t hash;
        /* Set before the node is published, never changed after. */
        struct metrics_key key;
        const char *service;            /* the destination's text, held by the key's reference */
};

struct metrics_shard {
        _Alignas(METRICS_CACHELINE) _Atomic uint64_t spliced;
        _Atomic uint64_t copied;
};

/* The proxy's own figures (metrics_counters.c). */
struct metrics_counters {
        _Alignas(METRICS_CACHELINE) _Atomic int64_t active[_METRICS_DIRECTION_MAX];
        _Atomic uint64_t connect_failures[_METRICS_CONNECT_FAILURE_MAX];
        _Atomic uint64_t accept_paused;
        struct metrics_shard shards[METRICS_SHARDS];
};

/* Threads in a read section, by epoch parity; one cache line per shard of threads. */
struct metrics_readers {
        _Alignas(METRICS_CACHELINE) _Atomic uint64_t n[2];
};

struct metrics {
        struct metrics_identity id;
        pthread_mutex_t lock;                           /* every change to the tables */
        pthread_mutex_t expire_lock;                    /* one expiry at a time */
        struct metrics_series *all;                     /* under lock: every linked series */
        size_t n_series;                                /* under lock: the length of all */
        _Atomic size_t n_bounded;                       /* series counted against the limit */
        _Atomic int64_t ttl_ms;
        _Atomic int64_t next_expire_ms;                 /* when full, expiry runs once a second */
        _Atomic uint64_t epoch;
        struct metrics_readers readers[METRICS_SHARDS];
        struct metrics_intern *destinations, *peers, *protocols, *codes, *grpc, *flags;
        /* Values every table starts with, pinned by a reference of their own. */
        uint32_t dest_unknown, dest_overflow, peer_unknown, protocol_tcp, code_none, grpc_none;
        struct metrics_counters counters;
        _Atomic(struct metrics_series *) buckets[METRICS_BUCKETS];
};

/* This thread's shard (0..METRICS_SHARDS-1), chosen on first use (metrics_counters.c). */
unsigned metrics_thread_shard(void);

/*
 * The scrape's view of the table (metrics.c): every linked series with a reference taken, so
 * none is removed while the scrape prints it; metrics_snapshot_release() gives them back
 * without touching their idle time. *ret is NULL when there are none. 0 or -ENOMEM.
 */
int metrics_snapshot_take(struct metrics *m, struct metrics_series ***ret, size_t *ret_n);
void metrics_snapshot_release(struct metrics *m, struct metrics_series **v, size_t n);
