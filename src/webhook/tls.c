/*
 * Reloading TLS context; see tls.h. A mutex guards the current pointer and the identity (device,
 * inode, size, change time) of the files it was loaded from; the expensive part (reading and
 * checking the pair) happens with it held, which is fine at the rate certificates rotate.
 * The files are read whole with common/readfile and handed to OpenSSL from memory (a BIO over
 * the buffer), not by name, so a pipe or FIFO loads as a file does; such a file was consumed by
 * that read and is never looked at again: opening a pipe with no writer left would block.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/readfile.h"
#include "webhook/tls.h"

/* The largest certificate chain or key read: a Kubernetes Secret holds at most 1 MiB. */
#define TLS_FILE_MAX (1u << 20)

static struct {
        pthread_mutex_t lock;
        SSL_CTX *ctx;
        char cert[4096], key[4096];
        struct stat cert_st, key_st;    /* of the files ctx was loaded from */
        bool watch;                     /* both are regular files, which can be read again */
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

/*
 * The certificate chain in pem (len bytes) as ctx's: the first certificate is the server's,
 * the others its chain, as SSL_CTX_use_certificate_chain_file() takes them from a file.
 * Returns 1, or 0 with OpenSSL's error queued.
 */
static int use_chain(SSL_CTX *ctx, const char *pem, size_t len)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        X509 *x = NULL;
        unsigned long e;
        int ok = 0;

        if (!bio)
                return 0;
        x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
        if (!x || SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1)
                goto out;
        X509_free(x);
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
                if (SSL_CTX_add0_chain_cert(ctx, x) != 1)       /* takes x only on success */
                        goto out;
        /* The end of the data reads as "no start line": the end of the chain, not an error. */
        e = ERR_peek_last_error();
        if (e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
                ERR_clear_error();
                ok = 1;
        }
out:
        X509_free(x);
        BIO_free(bio);
        return ok;
}

/* The private key in pem (len bytes) as ctx's. Returns 1, or 0 with OpenSSL's error queued. */
static int use_key(SSL_CTX *ctx, const char *pem, size_t len)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        EVP_PKEY *k;
        int ok;

        if (!bio)
                return 0;
        k = PEM_read_bio_PrivateKey(bio, NULL, SSL_CTX_get_default_passwd_cb(ctx),
                                    SSL_CTX_get_default_passwd_cb_userdata(ctx));
        ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
        EVP_PKEY_free(k);
        BIO_free(bio);
        return ok;
}

/* Reads what for a message ("the certificate"), at path, whole. Returns 0 or a negative errno
 * with err set; the caller frees *ret_data. */
static int read_pem(const char *what, const char *path, char **ret_data, size_t *ret_len, struct stat *ret_st,
                    char *err, size_t errlen)
{
        char why[128];
        int r = readfile_path(path, TLS_FILE_MAX, ret_data, ret_len, ret_st);

        if (r < 0)
                snprintf(err, errlen, "reading %s %s: %s", what, path, readfile_strerror(r, TLS_FILE_MAX, why, sizeof(why)));
        return r;
}

/* A context from the pair's current contents, and the files' identities in ret_cert and
 * ret_key. NULL, with what failed in err, when they cannot be read or do not load. */
static SSL_CTX *load(struct stat *ret_cert, struct stat *ret_key, char *err, size_t errlen)
{
        SSL_CTX *ctx = NULL;
        char *cert = NULL, *key = NULL, what[8400];
        size_t cert_len = 0, key_len = 0;

        if (read_pem("the certificate", tls.cert, &cert, &cert_len, ret_cert, err, errlen) < 0 ||
            read_pem("the key", tls.key, &key, &key_len, ret_key, err, errlen) < 0)
                goto out;
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx) {
                ssl_error(err, errlen, "SSL_CTX_new");
                goto out;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        snprintf(what, sizeof(what), "loading the certificate %s", tls.cert);
        if (use_chain(ctx, cert, cert_len) != 1)
                goto fail;
        snprintf(what, sizeof(what), "loading the key %s", tls.key);
        if (use_key(ctx, key, key_len) != 1)
                goto fail;
        snprintf(what, sizeof(what), "the key %s does not match the certificate %s", tls.key, tls.cert);
        if (SSL_CTX_check_private_key(ctx) != 1)
                goto fail;
        goto out;
fail:
        ssl_error(err, errlen, what);
        SSL_CTX_free(ctx);
        ctx = NULL;
out:
        free(cert);
        if (key)
                OPENSSL_cleanse(key, key_len);
        free(key);
        return ctx;
}

/* Whether the file at path is now another file, or the same one changed, than st describes.
 * A file that cannot be looked at, or is no longer a regular one, counts as unchanged. */
static bool changed(const char *path, const struct stat *st)
{
        struct stat now;

        if (stat(path, &now) < 0 || !S_ISREG(now.st_mode))
                return false;
        return now.st_dev != st->st_dev || now.st_ino != st->st_ino || now.st_size != st->st_size ||
               now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec;
}

int tls_init(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
        snprintf(tls.cert, sizeof(tls.cert), "%s", cert_path);
        snprintf(tls.key, sizeof(tls.key), "%s", key_path);
        tls.ctx = load(&tls.cert_st, &tls.key_st, err, errlen);
        tls.looked = time(NULL);
        if (!tls.ctx)
                return -EINVAL;
        tls.watch = S_ISREG(tls.cert_st.st_mode) && S_ISREG(tls.key_st.st_mode);
        return tls.watch ? 0 : 1;
}

SSL_CTX *tls_context(enum tls_reload *ret_reload, char *msg, size_t msglen)
{
        time_t now = time(NULL);
        SSL_CTX *ctx;

        *ret_reload = TLS_RELOAD_NONE;
        pthread_mutex_lock(&tls.lock);
        if (tls.watch && now != tls.looked && (changed(tls.cert, &tls.cert_st) || changed(tls.key, &tls.key_st))) {
                struct stat c, k;
                SSL_CTX *fresh = load(&c, &k, msg, msglen);

                if (fresh) {
                        SSL_CTX_free(tls.ctx);  /* connections still using it hold their own reference */
                        tls.ctx = fresh;
                        tls.cert_st = c;
                        tls.key_st = k;
                        *ret_reload = TLS_RELOAD_DONE;
                } else {
                        *ret_reload = TLS_RELOAD_FAILED;
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
