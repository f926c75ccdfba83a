/*
 * Running the proxy: start-up, the worker threads, signals, drain and exit.
 */
#pragma once

#include <stdint.h>

#include "proxy/settings.h"

struct proxy;
struct strbuf;

/* Runs until quit or the end of a drain. Returns the process exit code (0 after a drain or
 * /quitquitquit); start-up failures are logged and give 1. */
int proxy_run(const struct proxy_settings *s, char *const *env);

/* Starts draining (SIGTERM, POST /drain): readiness 503, inbound listeners closed, exit when
 * no connection is left or after --drain-duration. The admin's thread only (its loop holds the
 * drain timer); the workers are told through loop_post(). If the drain's timer cannot be
 * armed, the proxy quits at once with code 1 rather than drain forever. */
void proxy_drain(struct proxy *p, const char *why);
/* Stops every worker; proxy_run() returns code. Any thread: it only calls loop_stop(). */
void proxy_quit(struct proxy *p, int code);
/*
 * Appends the live connections as JSON to out, for the admin's /connections; now_ms is the
 * caller's loop clock (CLOCK_MONOTONIC, as every loop's), for the ages. Any thread: each
 * worker's list is read under its lock. A failed append shows in out->error.
 */
void proxy_connections_json(struct proxy *p, uint64_t now_ms, struct strbuf *out);
