/*
 * An intern table: a label's value (a destination, response flags, a protocol...) stored once
 * and named by a small integer id, so a series key is a tuple of ids that hashes and compares
 * as a few bytes, and the label text is looked up only at scrape time. Each table maps key
 * bytes (the value's compact binary form, e.g. an address and port; or the text itself) to an
 * id, and an id to its text and key.
 *
 * The table has a fixed capacity and never grows, so a reader never meets a resized array:
 * entries live in one array indexed by id, hash chains link ids. Lookups take no lock: they
 * run inside the owner's read section (proxy/metrics.c), which is what makes removal safe.
 * Everything that changes the table runs under the owner's lock. Entries are reference
 * counted by the series that use them; an entry whose count drops to zero leaves its hash
 * chain at once (a new lookup no longer finds it) and waits on a retired list until the owner
 * has seen a grace period (every reader that could still see it has left its read section);
 * only then are its text freed and its id given out again.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The longest key: a destination is kind, family, 16 address bytes and the port. */
#define METRICS_INTERN_KEY_MAX 24

struct metrics_intern;

/* A table for capacity values (at most 2^31). NULL when out of memory. */
struct metrics_intern *metrics_intern_new(uint32_t capacity);
/* Frees t and every text; accepts NULL; returns NULL. No reader may still use t. */
struct metrics_intern *metrics_intern_free(struct metrics_intern *t);

/*
 * The id of key (len bytes, at most METRICS_INTERN_KEY_MAX), or -ENOENT. Inside a read
 * section, or under the lock.
 */
int metrics_intern_find(const struct metrics_intern *t, const void *key, size_t len);
/*
 * Under the lock: the id of key with one reference more, adding it with a copy of text when
 * it is new. -ENOSPC when the table is full, -ENOMEM, -EINVAL for a key that is too long.
 */
int metrics_intern_get_locked(struct metrics_intern *t, const void *key, size_t len, const char *text);
/* Under the lock: one reference more on a live id. */
void metrics_intern_ref_locked(struct metrics_intern *t, uint32_t id);
/* Under the lock: one reference less; at zero the entry is retired (see above). */
void metrics_intern_unref_locked(struct metrics_intern *t, uint32_t id);
/*
 * Under the lock: detaches the entries retired so far and returns them as one batch (an
 * opaque chain, UINT32_MAX for none). The owner then waits for a grace period and hands the
 * batch to metrics_intern_release_locked(), again under the lock, which frees them.
 */
uint32_t metrics_intern_retired_take_locked(struct metrics_intern *t);
void metrics_intern_release_locked(struct metrics_intern *t, uint32_t batch);

/* The text and the key of a live id (one a series holds a reference to). */
const char *metrics_intern_text(const struct metrics_intern *t, uint32_t id);
const uint8_t *metrics_intern_key(const struct metrics_intern *t, uint32_t id, size_t *ret_len);
/* Live entries (under the lock, or as an approximation). */
uint32_t metrics_intern_count(const struct metrics_intern *t);
