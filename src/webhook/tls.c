/*
 * Reloading TLS context; see tls.h. A mutex guards the current pointer and the files' last
 * seen change times; the expensive part (reading and checking the pair) happens with it held,
 * which is fine at the rate certificates rotate.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "webhook/tls.h"

static struct {
        pthread_mutex_t lock;
        SSL_CTX *ctx;
        char cert[4096], key[4096];
        struct timespec cert_mtime, key_mtime;
        time_t looked;
} tls = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void ssl_error(char *err, size_t errlen, const char *what)
{
        unsigned long e = ERR_get_error();
        char buf[256] = "";

        if (e)
                ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown OpenSSL error");
        ERR_clear_error();
}

static SSL_CTX *load(char *err, size_t errlen)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        char what[8400];

        if (!ctx) {
                ssl_error(err, errlen, "SSL_CTX_new");
                return NULL;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        snprintf(what, sizeof(what), "loading the certificate %s", tls.cert);
        if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert) != 1)
                goto fail;
        snprintf(what, sizeof(what), "loading the key %s", tls.key);
        if (SSL_CTX_use_PrivateKey_file(ctx, tls.key, SSL_FILETYPE_PEM) != 1)
                goto fail;
        snprintf(what, sizeof(what), "the key %s does not match the certificate %s", tls.key, tls.cert);
        if (SSL_CTX_check_private_key(ctx) != 1)
                goto fail;
        return ctx;
fail:
        ssl_error(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
}

static int mtimes(struct timespec *c, struct timespec *k)
{
        struct stat sc, sk;

        if (stat(tls.cert, &sc) < 0 || stat(tls.key, &sk) < 0)
                return -1;
        *c = sc.st_mtim;
        *k = sk.st_mtim;
        return 0;
}

int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
        snprintf(tls.cert, sizeof(tls.cert), "%s", cert_path);
        snprintf(tls.key, sizeof(tls.key), "%s", key_path);
        if (mtimes(&tls.cert_mtime, &tls.key_mtime) < 0) {
                snprintf(err, errlen, "reading %s and %s: %s", tls.cert, tls.key, strerror(errno));
                return -1;
        }
        tls.ctx = load(err, errlen);
        tls.looked = time(NULL);
        return tls.ctx ? 0 : -1;
}

SSL_CTX *tls_context(void)
{
        struct timespec c, k;
        time_t now = time(NULL);
        SSL_CTX *ctx;

        pthread_mutex_lock(&tls.lock);
        if (now != tls.looked && mtimes(&c, &k) == 0 &&
            (memcmp(&c, &tls.cert_mtime, sizeof(c)) != 0 || memcmp(&k, &tls.key_mtime, sizeof(k)) != 0)) {
                char err[512];
                SSL_CTX *fresh = load(err, sizeof(err));

                if (fresh) {
                        SSL_CTX_free(tls.ctx);  /* connections still using it hold their own reference */
                        tls.ctx = fresh;
                        tls.cert_mtime = c;
                        tls.key_mtime = k;
                        log_info("TLS certificate reloaded from %s", tls.cert);
                } else {
                        log_warn("TLS certificate not reloaded, keeping the previous one: %s", err);
                }
        }
        tls.looked = now;
        ctx = tls.ctx;
        SSL_CTX_up_ref(ctx);
        pthread_mutex_unlock(&tls.lock);
        return ctx;
}

void tls_deinit(void)
{
        pthread_mutex_lock(&tls.lock);
        SSL_CTX_free(tls.ctx);
        tls.ctx = NULL;
        pthread_mutex_unlock(&tls.lock);
}
