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
 * Returns 0 when they are watched, 1 when they were read once and will never be reloaded (not
 * both regular files: a pipe?), or a negative errno with what failed, where and why in err.
 */
int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen);

enum tls_reload {
        TLS_RELOAD_NONE = 0,    /* unchanged, or not looked at (a look at most once a second) */
        TLS_RELOAD_DONE,        /* the files changed and the new pair is in use */
        TLS_RELOAD_FAILED,      /* the files changed and did not load; msg says why, the old pair stays */
};

/*
 * The current context, reloaded first if the files changed; the caller owns one reference.
 * What the look did is in *ret_reload (and why a reload failed in msg), for the caller to log:
 * library code does not.
 */
SSL_CTX *tls_context(enum tls_reload *ret_reload, char *msg, size_t msglen);
void tls_deinit(void);
