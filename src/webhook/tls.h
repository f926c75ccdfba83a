/*
 * The webhook's TLS context, reloaded from its certificate and key files when they change on
 * disk, so that a rotated Kubernetes Secret (or cert-manager renewal) takes effect without a
 * restart: the files are looked at, at most once a second, when a connection arrives; a
 * connection keeps the context it started with (OpenSSL reference-counts it). TLS 1.2 and 1.3
 * only. A pair that does not load (half-written during rotation, a key that does not match)
 * keeps the previous context and is tried again on the next look.
 */
#pragma once

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* Loads the pair once. Returns 0, or -1 with what failed in err. */
int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* The current context, reloaded first if the files changed; the caller owns one reference. */
SSL_CTX *tls_context(void);
void tls_deinit(void);
