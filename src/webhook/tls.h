/*
 * The webhook's TLS context, reloaded from its certificate and key files when they change on
 * disk, so that a rotated Kubernetes Secret (or cert-manager renewal) takes effect without a
 * restart: the files are looked at, at most once a second, when a connection arrives; a
 * connection keeps the context it started with (OpenSSL reference-counts it). TLS 1.2 and 1.3
 * only. A pair that does not load (half-written during rotation, a key that does not match)
 * keeps the previous context and is tried again on the next look. A change is another file at
 * the path (a renamed file, a Secret's swapped ..data link) or a new size or change time.
 */
#pragma once

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/*
 * Loads the pair once, each read whole (common/readfile.h, at most 1 MiB): any file, pipe or
 * FIFO. Only when both are regular files are they watched for changes; a pipe is read once.
 * Returns 0, or a negative errno with what failed, where and why in err.
 */
int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* The current context, reloaded first if the files changed; the caller owns one reference. */
SSL_CTX *tls_context(void);
void tls_deinit(void);
