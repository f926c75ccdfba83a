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

/* The proxy's own figures (metrics_counters.c). */
struct metrics_counters {
        _Alignas(METRICS_CACHELINE) _Atomic int64_t active[_METRICS_DIRECTION_MAX];
        _Atomic uint64_t connect_failures[_METRICS_CONNECT_FAILURE_MAX];
        _Atomic uint64_t accept_paused;
        struct metrics_shard shards[METRICS_SHARDS];
};

struct metrics {
        struct metrics_identity id;
        pthread_mutex_t lock;                           /* serialises inserts */
        _Atomic(struct metrics_series *) all;           /* newest first */
        _Atomic size_t n_bounded;                       /* series counted against the limit */
        struct metrics_counters counters;
        _Atomic(struct metrics_series *) buckets[METRICS_BUCKETS];
};
