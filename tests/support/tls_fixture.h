/*
 * tls_fixture.h — TLS for the proxy's end-to-end tests: a self-signed
 * certificate made at test time (nothing checked in that could expire),
 * and proxy_fixture.h's fake upstream serving HTTPS with it.
 *
 * The certificate is its own trust anchor (CA:TRUE): a process started
 * with SSL_CERT_FILE=<cert> trusts it through OpenSSL's default verify
 * paths, and one started with any other file does not.
 */
#ifndef MCPR_TEST_TLS_FIXTURE_H
#define MCPR_TEST_TLS_FIXTURE_H

#include <stdbool.h>

#include "proxy_fixture.h"

/* Write dir/<name>.crt and dir/<name>.key (PEM): an EC P-256 key and a
 * self-signed X.509 v3 certificate, valid from an hour ago for a day, with
 * CN=<name>, subjectAltName DNS:<name> and IP:127.0.0.1, and
 * basicConstraints CA:TRUE. On success *cert_path and *key_path are new
 * strings (the caller frees them); on failure both are NULL, OpenSSL's
 * errors are printed to stderr and false is returned. */
bool tf_make_cert(const char *dir, const char *cn_and_san_dns, char **cert_path, char **key_path);

/* pf_upstream_start, serving HTTPS with the PEM files cert (its chain) and
 * key: each accepted connection is a bufferevent_openssl in accepting
 * state. u->connections counts the connections accepted (so a test can
 * tell handshakes from reused connections); pf_upstream_stop frees it all,
 * the SSL_CTX included. Fails the test when cert or key cannot be used. */
void pf_upstream_start_tls(pf_upstream *u, const char *cert, const char *key,
                           void (*handler)(struct evhttp_request *, void *), void *arg);

#endif
