/*
 * Certificate making with OpenSSL's EVP and X509 APIs; see certs.h. Each file is written to a
 * temporary name in the same directory and renamed, so a webhook watching the files never
 * sees half of one (the key is 0600, the certificates 0644).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "webhook/certs.h"

static EVP_PKEY *ec_key(void)
{
        return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -1;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -1;
}

/* A certificate for key, named cn, valid for days, signed by (issuer, issuer_key), or self-signed. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, unsigned days, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *const *exts, const int *nids, size_t n_exts)
{
        X509 *c = X509_new();
        unsigned char serial[16];
        BIGNUM *bn = NULL;

        if (!c)
                return NULL;
        if (RAND_bytes(serial, sizeof(serial)) != 1)
                goto fail;
        serial[0] &= 0x7f;      /* a positive serial */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) || !X509_set_version(c, 2) ||
            !X509_gmtime_adj(X509_getm_notBefore(c), -300) ||
            !X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400) || !X509_set_pubkey(c, key) ||
            !X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
            !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(c)))
                goto fail;
        for (size_t i = 0; i < n_exts; i++)
                if (add_ext(c, issuer ? issuer : c, nids[i], exts[i]) < 0)
                        goto fail;
        if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
                goto fail;
        BN_free(bn);
        return c;
fail:
        BN_free(bn);
        X509_free(c);
        return NULL;
}

/* Writes one PEM file whole: to DIR/.NAME.tmp, then renamed. */
static int write_pem(const char *dir, const char *name, mode_t mode, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
        char tmp[4200], path[4200];
        FILE *f;
        int fd, ok;

        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                snprintf(err, errlen, "creating %s: %s", tmp, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        if (fclose(f) != 0 || !ok) {
                snprintf(err, errlen, "writing %s failed", tmp);
                unlink(tmp);
                return -1;
        }
        if (rename(tmp, path) < 0) {
                snprintf(err, errlen, "renaming %s to %s: %s", tmp, path, strerror(errno));
                unlink(tmp);
                return -1;
        }
        return 0;
}

int certs_make(const char *service, const char *ns, const char *dir, unsigned days, char *err, size_t errlen)
{
        static const int ca_nids[] = { NID_basic_constraints, NID_key_usage, NID_subject_key_identifier };
        static const char *const ca_exts[] = { "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", "hash" };
        static const int srv_nids[] = { NID_basic_constraints, NID_key_usage, NID_ext_key_usage, NID_subject_alt_name,
                                        NID_authority_key_identifier };
        char cn[512], san[2048], ca_cn[600];
        const char *srv_exts[5];
        EVP_PKEY *ca_key = NULL, *key = NULL;
        X509 *ca = NULL, *cert = NULL;
        int r = -1;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "creating %s: %s", dir, strerror(errno));
                return -1;
        }
        snprintf(cn, sizeof(cn), "%s.%s.svc", service, ns);
        snprintf(san, sizeof(san), "DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local", service, service, ns,
                 service, ns, service, ns);
        snprintf(ca_cn, sizeof(ca_cn), "pilotfish webhook CA for %s", cn);
        srv_exts[0] = "critical,CA:FALSE";
        srv_exts[1] = "critical,digitalSignature,keyEncipherment";
        srv_exts[2] = "serverAuth";
        srv_exts[3] = san;
        srv_exts[4] = "keyid:always";
        ca_key = ec_key();
        key = ec_key();
        if (!ca_key || !key) {
                snprintf(err, errlen, "generating P-256 keys failed");
                goto out;
        }
        ca = make_cert(ca_key, ca_cn, days, NULL, NULL, ca_exts, ca_nids, 3);
        cert = ca ? make_cert(key, cn, days, ca, ca_key, srv_exts, srv_nids, 5) : NULL;
        if (!ca || !cert) {
                unsigned long e = ERR_get_error();
                char buf[256] = "unknown error";
                if (e)
                        ERR_error_string_n(e, buf, sizeof(buf));
                snprintf(err, errlen, "signing the certificates: %s", buf);
                goto out;
        }
        /* The key first: a watcher that sees a new tls.crt must find its key already there. */
        if (write_pem(dir, "tls.key", 0600, NULL, key, err, errlen) < 0 ||
            write_pem(dir, "ca.crt", 0644, ca, NULL, err, errlen) < 0 ||
            write_pem(dir, "tls.crt", 0644, cert, NULL, err, errlen) < 0)
                goto out;
        r = 0;
out:
        X509_free(ca);
        X509_free(cert);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(key);
        ERR_clear_error();
        return r;
}
