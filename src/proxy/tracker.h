/*
 * The slot between the transport and the relay where a protocol tracker follows the bytes of
 * a connection: it sees every copied byte in order, in both directions, and says how many of
 * the next bytes it does not need to see, so that a body it only has to count can still be
 * spliced past it unseen. A tracker never changes, delays or holds a byte: the relay stays a
 * byte-for-byte relay of the original connection whatever the tracker thinks of it, and a
 * tracker that loses its way can only stop reporting.
 *
 * The tracker is chosen once per connection by the pre-read stage (proxy/preread.h) from the
 * client's first bytes. Only the opaque tracker exists yet (TCP: nothing to follow); the
 * HTTP/1 and HTTP/2 trackers come next.
 */
#pragma once

#include <stddef.h>

/* Which way bytes go; the same values as the relay's flows. */
enum tracker_side {
        TRACKER_FROM_CLIENT = 0,        /* client -> upstream */
        TRACKER_FROM_UPSTREAM,          /* upstream -> client */
};

struct tracker;

struct tracker_ops {
        const char *name;               /* "opaque", ...: for logs and /connections */
        /* Bytes relayed by copying, in order. */
        void (*observe)(struct tracker *t, enum tracker_side side, const char *data, size_t len);
        /* The next bytes that may pass unseen (spliced); SIZE_MAX: any number. */
        size_t (*blind)(const struct tracker *t, enum tracker_side side);
        /* n bytes passed unseen (at most what blind allowed). */
        void (*skipped)(struct tracker *t, enum tracker_side side, size_t n);
        /* The connection ended; the tracker frees what it holds. */
        void (*end)(struct tracker *t);
};

struct tracker {
        const struct tracker_ops *ops;
        void *state;                    /* the tracker's own; NULL for opaque */
};

/* TCP as it is: sees nothing it needs, lets every byte be spliced. */
extern const struct tracker_ops tracker_opaque;

static inline void tracker_observe(struct tracker *t, enum tracker_side side, const char *data, size_t len)
{
        if (t->ops->observe)
                t->ops->observe(t, side, data, len);
}

static inline size_t tracker_blind(const struct tracker *t, enum tracker_side side)
{
        return t->ops->blind ? t->ops->blind(t, side) : (size_t)-1;
}

static inline void tracker_skipped(struct tracker *t, enum tracker_side side, size_t n)
{
        if (t->ops->skipped)
                t->ops->skipped(t, side, n);
}

static inline void tracker_end(struct tracker *t)
{
        if (t->ops && t->ops->end)
                t->ops->end(t);
        t->state = NULL;
}
