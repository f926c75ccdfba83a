/*
 * `pilotfish webhook`'s HTTPS server: POST /inject (and /inject/...) answered by review.c,
 * GET /healthz, /readyz and /metrics. One thread per connection with blocking TLS and socket
 * timeouts: a slow or half-open client holds only its own thread, never the others, and the
 * number of connections is bounded. Pod creations are bursty but not huge, and a thread per
 * connection keeps TLS, keep-alive and timeouts simple to get right.
 */
#pragma once

#include <stddef.h>

struct inject_config;

struct webhook_settings {
        unsigned port;                  /* 15017 */
        const char *tls_cert, *tls_key;
        unsigned max_connections;       /* beyond, new connections are closed at once */
        unsigned read_timeout_s;        /* one request's head and body */
        unsigned idle_timeout_s;        /* between keep-alive requests */
        unsigned shutdown_grace_s;      /* SIGTERM: how long requests in flight may take */
        unsigned answer_cache;          /* answers kept (webhook/answer_cache.h); 0: none */
};

/* Serves until SIGTERM or SIGINT. Returns the process's exit status. */
int webhook_serve(const struct webhook_settings *s, const struct inject_config *c);
