/* examples/devcert.h -- certificates for development: a throw-away
 * certificate authority and certificates it signs, made with OpenSSL's
 * API, so that the TLS examples and tests need no files and no openssl
 * command. Never for production.
 *
 * devcert_make(dir) writes, in dir (PEM; keys are EC P-256):
 *   ca.pem                      the CA's certificate (the trust anchor)
 *   server.pem, server.key      localhost, 127.0.0.1, ::1; signed by the CA
 *   client.pem, client.key      a client certificate signed by the CA
 *   other.pem, other.key        other.example only; signed by the CA
 *   expired.pem, expired.key    localhost, expired yesterday; by the CA
 *   self.pem, self.key          localhost, self-signed
 * and returns 0, or -1 (with a message on stderr). devcert_remove(dir)
 * removes them, then dir if it is empty. */
#ifndef CORIO_EXAMPLES_DEVCERT_H
#define CORIO_EXAMPLES_DEVCERT_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define DEVCERT_DAY (24L * 3600)

/* Add the extension nid = value to x, issued by issuer. */
static int devcert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL)
        return 0;
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A certificate for key named cn, valid from `from` to `to` seconds from
 * now, signed by (ca, ca_key), or self-signed when ca is NULL. */
static X509 *devcert_cert(EVP_PKEY *key, const char *cn, long from, long to,
                          const char *san, int is_ca, X509 *ca,
                          EVP_PKEY *ca_key)
{
    static long serial;
    X509 *x = X509_new();
    X509_NAME *name;
    int ok;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    ok = X509_set_version(x, 2) &&
         ASN1_INTEGER_set(X509_get_serialNumber(x),
                          (long)time(NULL) * 100 + ++serial) &&
         X509_gmtime_adj(X509_getm_notBefore(x), from) &&
         X509_gmtime_adj(X509_getm_notAfter(x), to) &&
         X509_set_pubkey(x, key) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca)
                                            : name);
    if (ok && is_ca)
        ok = devcert_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
             devcert_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             devcert_ext(x, x, NID_subject_key_identifier, "hash");
    if (ok && !is_ca)
        ok = devcert_ext(x, ca != NULL ? ca : x, NID_basic_constraints,
                         "CA:FALSE") &&
             devcert_ext(x, ca != NULL ? ca : x, NID_ext_key_usage,
                         "serverAuth,clientAuth") &&
             (san == NULL ||
              devcert_ext(x, ca != NULL ? ca : x, NID_subject_alt_name, san));
    if (ok)
        ok = X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Write x and key as dir/stem.pem and dir/stem.key (key may be NULL). */
static int devcert_write(const char *dir, const char *stem, X509 *x,
                         EVP_PKEY *key)
{
    char path[4096];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s.pem", dir, stem);
    f = fopen(path, "w");
    if (f == NULL)
        return 0;
    ok = PEM_write_X509(f, x);
    ok = fclose(f) == 0 && ok;
    if (!ok || key == NULL)
        return ok;
    snprintf(path, sizeof(path), "%s/%s.key", dir, stem);
    f = fopen(path, "w");
    if (f == NULL)
        return 0;
    ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok;
}

/* One certificate with a key of its own, written as dir/stem.{pem,key}. */
static int devcert_leaf(const char *dir, const char *stem, const char *cn,
                        const char *san, long from, long to, X509 *ca,
                        EVP_PKEY *ca_key)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key != NULL ? devcert_cert(key, cn, from, to, san, 0, ca,
                                         ca_key)
                          : NULL;
    int ok = x != NULL && devcert_write(dir, stem, x, key);

    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

static int devcert_make(const char *dir)
{
    static const char *local = "DNS:localhost,IP:127.0.0.1,IP:::1";
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    X509 *ca = ca_key != NULL
                   ? devcert_cert(ca_key, "corio development CA", -DEVCERT_DAY,
                                  30 * DEVCERT_DAY, NULL, 1, NULL, NULL)
                   : NULL;
    int ok = ca != NULL && devcert_write(dir, "ca", ca, NULL) &&
             devcert_leaf(dir, "server", "localhost", local, -DEVCERT_DAY,
                          30 * DEVCERT_DAY, ca, ca_key) &&
             devcert_leaf(dir, "client", "corio client", NULL, -DEVCERT_DAY,
                          30 * DEVCERT_DAY, ca, ca_key) &&
             devcert_leaf(dir, "other", "other.example", "DNS:other.example",
                          -DEVCERT_DAY, 30 * DEVCERT_DAY, ca, ca_key) &&
             devcert_leaf(dir, "expired", "localhost", local,
                          -30 * DEVCERT_DAY, -DEVCERT_DAY, ca, ca_key) &&
             devcert_leaf(dir, "self", "localhost", local, -DEVCERT_DAY,
                          30 * DEVCERT_DAY, NULL, NULL);

    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (!ok)
        fprintf(stderr, "devcert: cannot make certificates in %s\n", dir);
    return ok ? 0 : -1;
}

static void devcert_remove(const char *dir)
{
    static const char *const files[] = {
        "ca.pem",    "server.pem",  "server.key",  "client.pem",
        "client.key", "other.pem",  "other.key",   "expired.pem",
        "expired.key", "self.pem",  "self.key"};
    char path[4096];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

#endif
