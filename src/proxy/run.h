/*
 * Running the proxy: start-up, the worker threads, signals, drain and exit.
 */
#pragma once

#include "proxy/settings.h"

struct proxy;
struct strbuf;

/* Runs until quit or the end of a drain. Returns the process exit code (0 after a drain or
 * /quitquitquit); start-up failures are logged and give 1. */
int proxy_run(const struct proxy_settings *s, char *const *env);

/* Starts draining (SIGTERM, POST /drain): readiness 503, inbound listeners closed, exit when
 * no connection is left or after --drain-duration. Worker 0's thread. */
void proxy_drain(struct proxy *p, const char *why);
/* Stops every worker; proxy_run() returns code. Any thread. */
void proxy_quit(struct proxy *p, int code);
/* The live connections as JSON, for the admin /connections. */
void proxy_connections_json(struct proxy *p, struct strbuf *out);
