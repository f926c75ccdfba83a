/*
 * The pre-read stage (nginx stream's ssl_preread idea): while the upstream connect is under
 * way, the relay reads the client's first bytes into a buffer of the connection's own, and
 * this stage looks at them to choose how the connection is followed (its tracker). The
 * connect starts at accept as before, so the stage adds no latency: the bytes would wait for
 * the upstream anyway, and they are sent first once it is there. What is read here is
 * relayed unchanged, whatever is chosen.
 *
 * The choice is final when it is made: when the bytes decide it, when the buffer is full, when
 * the client ended its side, or when the upstream is connected (a client that has said nothing
 * by then, or a server that speaks first, never waits for a detection).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct tracker_ops;

/* Bytes read ahead at most; a client with more to say waits for the upstream. */
#define PREREAD_MAX 4096

/*
 * Chooses the tracker for a connection whose client sent data[0..len) so far. final: no more
 * bytes will be looked at. Returns the tracker's ops, or NULL when it needs more bytes (never
 * when final).
 */
const struct tracker_ops *preread_select(const char *data, size_t len, bool final);
