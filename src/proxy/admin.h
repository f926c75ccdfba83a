/*
 * The proxy's HTTP endpoints, served from worker 0's loop:
 *   15021  GET /healthz/ready: 200 once every listener is up, 503 while draining
 *   15090  GET /stats/prometheus: the metrics (15020 serves the same for now, and readiness)
 *   15000  on 127.0.0.1 only: GET /stats (JSON), GET /connections, POST /logging?level=,
 *          POST /drain, POST /quitquitquit
 * One request per connection (the reply says Connection: close), a bounded head, and a read
 * timeout, so a slow or half-open client costs one fd for a few seconds and nothing else.
 */
#pragma once

#include <stddef.h>

struct proxy;
struct loop;

/* Opens the four listeners on loop. Returns 0 or a negative errno with what failed in err. */
int admin_start(struct proxy *p, struct loop *loop, char *err, size_t errlen);
void admin_stop(struct proxy *p);
