/*
 * The opaque tracker: a TCP connection whose bytes mean nothing to the proxy. It needs no
 * state and no callback; every byte may be spliced.
 */
#include "proxy/tracker.h"

const struct tracker_ops tracker_opaque = {
        .name = "opaque",
        .observe = NULL,
        .blind = NULL,
        .skipped = NULL,
        .end = NULL,
};
