/*
 * The proxy's HTTP endpoints, served from the admin's own thread and loop (proxy/run.c), so
 * that a scrape of many series or a pending application probe never holds up a worker's
 * relays:
 *   15021  GET /healthz/ready: 200 once every listener is up, 503 while draining
 *   15090  GET /stats/prometheus: the metrics (15020 serves the same for now, and readiness)
 *   15020  also the application's probes (/app-health/..., proxy/app_probe.h) and, from the
 *          pod's loopback, POST /quitquitquit
 *   15000  on 127.0.0.1 only: GET /stats (JSON), GET /connections, POST /logging?level=,
 *          POST /drain, POST /quitquitquit
 * One request per connection (the reply says Connection: close), a bounded head, and a read
 * timeout, so a slow or half-open client costs one fd for a few seconds and nothing else.
 * What a request does to the workers goes through thread-safe paths only: atomics, the
 * per-worker relay lock, loop_stop() and loop_post() (proxy/run.h).
 */
#pragma once

#include <stddef.h>

struct proxy;
struct loop;
struct admin;

/*
 * Opens the four listeners on loop, which must not be running yet (the admin thread starts
 * afterwards) or must be run by the calling thread. Returns 0 and the admin in *ret, or a
 * negative errno with what failed in err (then nothing is left open).
 */
int admin_new(struct admin **ret, struct proxy *p, struct loop *loop, char *err, size_t errlen);
/*
 * Closes the listeners and every open connection, cancelling their probes. Call it once
 * loop no longer runs on another thread, on the thread whose fd table holds the admin's fds.
 * Accepts NULL; returns NULL.
 */
struct admin *admin_free(struct admin *a);
/*
 * The fds the admin holds now (its listeners and its spare fds), at most max of them into
 * fds; returns how many. For the admin thread's fd table of its own (proxy/run.c).
 */
size_t admin_fds(const struct admin *a, int *fds, size_t max);
