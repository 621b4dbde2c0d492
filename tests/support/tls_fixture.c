/* tls_fixture.c — see tls_fixture.h. OpenSSL 3 API throughout. */
#include "tls_fixture.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  if (!e)
    return false;
  bool ok = X509_add_ext(x, e, -1) == 1;
  X509_EXTENSION_free(e);
  return ok;
}

static bool write_pem(const char *path, X509 *x, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  if (!f)
    return false;
  bool ok = x ? PEM_write_X509(f, x) == 1
              : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
  return fclose(f) == 0 && ok;
}

bool tf_make_cert(const char *dir, const char *name, char **cert_path, char **key_path) {
  bool ok = false;
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  char *cert = NULL, *keyfile = NULL;
  *cert_path = *key_path = NULL;
  char san[300], file[300];
  /* The name goes into a v3 config string: no separators in it. */
  if (strlen(name) > 200 || strpbrk(name, ",:/ \n"))
    goto out;

  key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  x = X509_new();
  if (!key || !x || X509_set_version(x, X509_VERSION_3) != 1)
    goto out;
  uint64_t serial;
  if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1 ||
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) != 1)
    goto out;
  if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600))
    goto out;
  X509_NAME *subject = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(x, subject) != 1 || X509_set_pubkey(x, key) != 1)
    goto out;

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  snprintf(san, sizeof san, "DNS:%s,IP:127.0.0.1", name);
  if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
      !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
      !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
      !add_ext(x, &ctx, NID_subject_alt_name, san))
    goto out;
  if (X509_sign(x, key, EVP_sha256()) <= 0)
    goto out;

  snprintf(file, sizeof file, "%s.crt", name);
  cert = tu_path(dir, file);
  snprintf(file, sizeof file, "%s.key", name);
  keyfile = tu_path(dir, file);
  if (!write_pem(cert, x, NULL) || !write_pem(keyfile, NULL, key))
    goto out;
  *cert_path = cert;
  *key_path = keyfile;
  cert = keyfile = NULL;
  ok = true;
out:
  if (!ok) {
    fprintf(stderr, "tf_make_cert(%s) failed\n", name);
    ERR_print_errors_fp(stderr);
  }
  free(keyfile);
  free(cert);
  X509_free(x);
  EVP_PKEY_free(key);
  return ok;
}

/* evhttp's bevcb: called on the upstream's thread for every accepted
 * connection, before evhttp gives the bufferevent its socket. */
static struct bufferevent *tls_bufferevent(struct event_base *base, void *arg) {
  pf_upstream *u = arg;
  atomic_fetch_add(&u->connections, 1);
  SSL *ssl = SSL_new(u->ssl_ctx);
  if (!ssl)
    return NULL;
  struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                           BEV_OPT_CLOSE_ON_FREE);
  if (!bev)
    SSL_free(ssl);
  return bev;
}

void pf_upstream_start_tls(pf_upstream *u, const char *cert, const char *key,
                           void (*handler)(struct evhttp_request *, void *), void *arg) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    fail_msg("cannot serve TLS with %s and %s", cert, key);
  }
  u->ssl_ctx = ctx;
  pf_upstream_start_bev(u, handler, arg, tls_bufferevent, u);
}
