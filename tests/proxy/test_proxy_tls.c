/*
 * `mcpr proxy run` in front of an HTTPS upstream, end to end: the built
 * mcpr between a fake upstream serving TLS with a certificate made at test
 * time (tls_fixture.h) and raw sockets. The proxy trusts what OpenSSL's
 * default verify paths hold, so each proxy gets SSL_CERT_FILE (and an
 * empty SSL_CERT_DIR, so the host's store plays no part).
 *
 * Proves: the fixture itself (a verifying OpenSSL client gets its 200,
 * and refuses an untrusted certificate or one for another name); through
 * the proxy, a call answered byte for byte, SSE events streamed one by
 * one, 20 requests on one client connection without a handshake each; an
 * untrusted certificate and a certificate for another name each a JSON-RPC
 * 502 that says "certificate", the proxy serving on; and the store's rows.
 */
#define _GNU_SOURCE /* strcasestr, memmem */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "proxy_fixture.h"
#include "testutil.h"
#include "tls_fixture.h"

static char *dir, *db, *nocerts;
static char *cert, *key;             /* CN/SAN localhost: what `up` serves */
static char *other_cert, *other_key; /* CN/SAN other.example: what `other` serves */
static pf_upstream up, other;

/* --- the fake upstream (both serve the same) --- */

#define SSE_EVENTS 3
#define SSE_GAP_MS 400

static atomic_int sse_sent; /* events the upstream has written so far */

typedef struct sse_step {
  struct evhttp_request *req;
  struct event *ev;
  int id;
  int sent;
} sse_step;

static void sse_next(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sse_step *s = arg;
  struct evbuffer *b = evbuffer_new();
  s->sent++;
  if (s->sent < SSE_EVENTS)
    evbuffer_add_printf(b,
                        "id: ev-%d\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                        "\"notifications/progress\",\"params\":{\"progressToken\":\"p\","
                        "\"progress\":%d}}\n\n",
                        s->sent, s->sent);
  else
    evbuffer_add_printf(b,
                        "id: ev-%d\ndata: {\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":{\"content\":"
                        "[{\"type\":\"text\",\"text\":\"streamed\"}]}}\n\n",
                        s->sent, s->id);
  atomic_store(&sse_sent, s->sent);
  evhttp_send_reply_chunk(s->req, b);
  evbuffer_free(b);
  if (s->sent < SSE_EVENTS) {
    struct timeval tv = {0, SSE_GAP_MS * 1000};
    evtimer_add(s->ev, &tv);
  } else {
    evhttp_send_reply_end(s->req);
    event_free(s->ev);
    free(s);
  }
}

/* What the upstream answers a plain call with id: its tests compare bytes. */
static void answer_for(int id, char *out, size_t n) {
  snprintf(out, n,
           "{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":{\"content\":[{\"type\":\"text\","
           "\"text\":\"over tls %d\"}]}}",
           id, id);
}

static void on_upstream(struct evhttp_request *req, void *arg) {
  pf_upstream *u = arg;
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  char body[4096];
  size_t n = evbuffer_copyout(in, body, sizeof body - 1);
  body[n] = '\0';
  const char *idp = strstr(body, "\"id\":");
  int id = idp ? (int)strtol(idp + 5, NULL, 10) : 0;
  if (strstr(body, "\"slow_sse\"")) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/event-stream");
    evhttp_send_reply_start(req, 200, "OK");
    sse_step *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->req = req;
    s->id = id;
    s->ev = evtimer_new(u->base, sse_next, s);
    sse_next(-1, 0, s);
    return;
  }
  char out[512];
  answer_for(id, out, sizeof out);
  pf_reply(req, 200, "application/json", out, strlen(out));
}

#define CALL_FMT                                                                                \
  "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","      \
  "\"arguments\":{}}}"

static char *call_body(int id, const char *tool) {
  static char buf[512];
  snprintf(buf, sizeof buf, CALL_FMT, id, tool);
  return buf;
}

/* --- the proxies under test --- */

static cli_proc trusted; /* SSL_CERT_FILE=cert, upstream https://localhost:<up> */
static int trusted_port;
static cli_proc side; /* one test's own proxy */

/* Start a proxy named name in front of https://localhost:upstream_port
 * trusting ca_file alone; returns its port. */
static int start_tls_proxy(cli_proc *p, const char *name, int upstream_port, const char *ca_file) {
  char config[1024], cfgname[64], cert_file[4200], cert_dir[4200];
  snprintf(config, sizeof config,
           "name = \"%s\"\nmcp = \"https://localhost:%d/mcp\"\nadmin_bind = \"off\"\n"
           "request_timeout = \"5s\"\nlog_format = \"off\"\n",
           name, upstream_port);
  snprintf(cfgname, sizeof cfgname, "%s.toml", name);
  snprintf(cert_file, sizeof cert_file, "SSL_CERT_FILE=%s", ca_file);
  snprintf(cert_dir, sizeof cert_dir, "SSL_CERT_DIR=%s", nocerts);
  const char *env[] = {cert_file, cert_dir, NULL};
  return pf_start_proxy_env(p, dir, db, config, cfgname, NULL, env);
}

static void stop_proxy(cli_proc *p, int *exit_code);

static int trusted_proxy(void) {
  int code;
  if (trusted.pid > 0 && trusted_port == 0) /* an earlier start failed: reap it, try again */
    stop_proxy(&trusted, &code);
  if (trusted.pid <= 0)
    trusted_port = start_tls_proxy(&trusted, "tls", up.port, cert);
  return trusted_port;
}

static void stop_proxy(cli_proc *p, int *exit_code) {
  *exit_code = -1;
  if (p->pid <= 0)
    return;
  cli_result res;
  cli_stop(p, SIGTERM, 15000, &res);
  *exit_code = res.exit_code;
  if (res.exit_code != 0)
    fprintf(stderr, "proxy exited %d; stderr:\n%s\n", res.exit_code, res.err);
  cli_result_free(&res);
}

static int stop_side(void **state) {
  (void)state;
  int code;
  stop_proxy(&side, &code);
  return 0;
}

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  nocerts = tu_path(dir, "nocerts");
  assert_int_equal(mkdir(nocerts, 0700), 0);
  assert_true(tf_make_cert(dir, "localhost", &cert, &key));
  assert_true(tf_make_cert(dir, "other.example", &other_cert, &other_key));
  pf_upstream_start_tls(&up, cert, key, on_upstream, &up);
  pf_upstream_start_tls(&other, other_cert, other_key, on_upstream, &other);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  int code;
  stop_proxy(&trusted, &code);
  stop_proxy(&side, &code);
  pf_upstream_stop(&up);
  pf_upstream_stop(&other);
  free(cert);
  free(key);
  free(other_cert);
  free(other_key);
  free(nocerts);
  free(db);
  tu_rmdir(dir);
  return 0;
}

/* --- a small verifying OpenSSL client, to test the fixture by itself --- */

/* POST body to https://127.0.0.1:port/mcp trusting ca_file alone and
 * checking the certificate against host (also sent as SNI). Returns the
 * handshake's verify result; r (status, body) is filled when it passed. */
static long https_post(int port, const char *ca_file, const char *host, const char *body,
                       pf_resp *r) {
  memset(r, 0, sizeof *r);
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca_file, NULL), 1);
  SSL *ssl = SSL_new(ctx);
  assert_non_null(ssl);
  assert_int_equal(SSL_set_tlsext_host_name(ssl, host), 1);
  assert_int_equal(SSL_set1_host(ssl, host), 1);
  int fd = pf_connect(port);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  assert_int_equal(SSL_set_fd(ssl, fd), 1);
  int rc = SSL_connect(ssl);
  long verify = SSL_get_verify_result(ssl);
  if (rc != 1) {
    assert_true(verify != X509_V_OK); /* refused for its certificate, not for another reason */
    ERR_clear_error();
    goto out;
  }
  assert_int_equal(verify, X509_V_OK);
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   host, strlen(body), body);
  assert_true(n > 0 && (size_t)n < sizeof req);
  assert_int_equal(SSL_write(ssl, req, n), n);
  size_t cap = 16384;
  r->raw = calloc(1, cap + 1);
  assert_non_null(r->raw);
  for (;;) {
    const char *hend = memmem(r->raw, r->len, "\r\n\r\n", 4);
    if (hend) {
      const char *cl = strcasestr(r->raw, "\r\nContent-Length:");
      if (cl && cl < hend &&
          r->len - (size_t)(hend + 4 - r->raw) >= (size_t)strtol(cl + 17, NULL, 10)) {
        r->complete = true;
        break;
      }
    }
    assert_true(r->len < cap);
    int got = SSL_read(ssl, r->raw + r->len, (int)(cap - r->len));
    if (got <= 0) {
      r->eof = true;
      break;
    }
    r->len += (size_t)got;
    r->raw[r->len] = '\0';
  }
  sscanf(r->raw, "HTTP/1.%*d %d", &r->status);
  char *hend = memmem(r->raw, r->len, "\r\n\r\n", 4);
  r->body = hend ? hend + 4 : r->raw + r->len;
  SSL_shutdown(ssl);
out:
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return verify;
}

static void test_fixture_certificate(void **state) {
  (void)state;
  FILE *f = fopen(cert, "r");
  assert_non_null(f);
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(x);
  assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
  assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  assert_int_not_equal(X509_check_host(x, "other.example", 0, 0, NULL), 1);
  assert_true(X509_check_ca(x) >= 1);
  assert_int_equal(X509_get_version(x), X509_VERSION_3);
  time_t now = time(NULL);
  assert_true(X509_cmp_time(X509_get0_notBefore(x), &now) < 0);
  assert_true(X509_cmp_time(X509_get0_notAfter(x), &now) > 0);
  EVP_PKEY *pub = X509_get0_pubkey(x);
  assert_non_null(pub);
  assert_true(EVP_PKEY_is_a(pub, "EC"));
  char group[64];
  size_t glen = 0;
  assert_int_equal(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &glen), 1);
  assert_string_equal(group, "prime256v1");
  X509_free(x);
}

static void test_fixture_serves_https_to_a_verifying_client(void **state) {
  (void)state;
  char want[512];
  pf_resp r;
  int before = atomic_load(&up.connections);
  assert_int_equal(https_post(up.port, cert, "localhost", call_body(1, "echo"), &r), X509_V_OK);
  assert_int_equal(r.status, 200);
  assert_true(r.complete);
  answer_for(1, want, sizeof want);
  assert_string_equal(r.body, want);
  free(r.raw);
  assert_int_equal(atomic_load(&up.connections), before + 1);

  /* The premises of the proxy's 502 tests: a client trusting another
   * certificate refuses `up`'s; `other`'s is trusted but not for localhost. */
  assert_int_equal(https_post(up.port, other_cert, "localhost", call_body(2, "echo"), &r),
                   X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  assert_int_equal(https_post(other.port, other_cert, "localhost", call_body(3, "echo"), &r),
                   X509_V_ERR_HOSTNAME_MISMATCH);
  assert_int_equal(https_post(other.port, other_cert, "other.example", call_body(4, "echo"), &r),
                   X509_V_OK);
  assert_int_equal(r.status, 200);
  answer_for(4, want, sizeof want);
  assert_string_equal(r.body, want);
  free(r.raw);
}

/* --- through the proxy --- */

static void test_https_call_answered_byte_for_byte(void **state) {
  (void)state;
  int port = trusted_proxy();
  pf_resp r;
  pf_http(port, &r, "POST", "Content-Type: application/json\r\n", call_body(10, "echo"));
  if (r.status != 200)
    fprintf(stderr, "proxy answered:\n%s\n", r.raw);
  assert_int_equal(r.status, 200);
  char want[512];
  answer_for(10, want, sizeof want);
  assert_string_equal(r.body, want);
  assert_true(pf_has_header(&r, "\r\nContent-Type: application/json\r\n"));
  free(r.raw);
}

/* seen_with_sent[i]: how many events the upstream had sent when the
 * client first saw event i (1-based). */
static int seen_with_sent[SSE_EVENTS + 1];

static void watch_sse(const char *raw, size_t len) {
  (void)len;
  for (int i = 1; i <= SSE_EVENTS; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "id: ev-%d\n", i);
    if (!seen_with_sent[i] && strstr(raw, tag))
      seen_with_sent[i] = atomic_load(&sse_sent);
  }
}

static void test_https_sse_streams_event_by_event(void **state) {
  (void)state;
  int port = trusted_proxy();
  memset(seen_with_sent, 0, sizeof seen_with_sent);
  int fd = pf_connect(port);
  pf_send_request(fd, "POST", "/mcp",
                  "Content-Type: application/json\r\n"
                  "Accept: application/json, text/event-stream\r\n",
                  call_body(20, "slow_sse"));
  pf_resp r;
  long long t0 = pf_now_ms();
  pf_read_response(fd, &r, 10000, watch_sse);
  long long took = pf_now_ms() - t0;
  close(fd);
  assert_int_equal(r.status, 200);
  assert_true(r.complete);
  assert_true(pf_has_header(&r, "\r\nContent-Type: text/event-stream"));
  /* each event reached the client before the upstream wrote the next */
  for (int i = 1; i < SSE_EVENTS; i++) {
    fprintf(stderr, "event %d seen when the upstream had sent %d\n", i, seen_with_sent[i]);
    assert_int_equal(seen_with_sent[i], i);
  }
  assert_int_equal(seen_with_sent[SSE_EVENTS], SSE_EVENTS);
  assert_true(took >= (SSE_EVENTS - 1) * SSE_GAP_MS - 100);
  assert_non_null(strstr(r.body, "id: ev-1\nevent: message\ndata: {\"jsonrpc\":\"2.0\","
                                 "\"method\":\"notifications/progress\""));
  assert_non_null(strstr(r.body, "id: ev-3\ndata: {\"jsonrpc\":\"2.0\",\"id\":20,\"result\":"
                                 "{\"content\":[{\"type\":\"text\",\"text\":\"streamed\"}]}}\n\n"));
  free(r.raw);
}

static void test_https_keep_alive_20_requests(void **state) {
  (void)state;
  int port = trusted_proxy();
  int before = atomic_load(&up.connections);
  int fd = pf_connect(port);
  for (int i = 0; i < 20; i++) {
    int id = 100 + i;
    pf_send_request(fd, "POST", "/mcp", "Content-Type: application/json\r\n",
                    call_body(id, "echo"));
    pf_resp r;
    pf_read_response(fd, &r, 10000, NULL);
    assert_int_equal(r.status, 200);
    assert_false(r.eof); /* the same client connection throughout */
    char want[512];
    answer_for(id, want, sizeof want);
    assert_string_equal(r.body, want);
    free(r.raw);
  }
  close(fd);
  /* Upstream connections are pooled: 20 requests one after the other do
   * not cost 20 TLS handshakes (one more connection is allowed, should
   * the pooled one have been closed meanwhile). */
  int opened = atomic_load(&up.connections) - before;
  fprintf(stderr, "20 requests opened %d upstream TLS connections\n", opened);
  assert_true(opened <= 2);
}

/* A proxy's 502 for a certificate problem: JSON-RPC, with the request's
 * id, saying what was wrong. */
static void assert_certificate_502(int port, int id) {
  pf_resp r;
  long long t0 = pf_now_ms();
  pf_http(port, &r, "POST", "Content-Type: application/json\r\n", call_body(id, "echo"));
  long long took = pf_now_ms() - t0;
  fprintf(stderr, "proxy answered in %lld ms:\n%s\n", took, r.raw);
  assert_int_equal(r.status, 502);
  assert_true(r.complete);
  assert_true(pf_has_header(&r, "\r\nContent-Type: application/json"));
  assert_non_null(strstr(r.body, "\"jsonrpc\":\"2.0\""));
  char idtag[32];
  snprintf(idtag, sizeof idtag, "\"id\":%d", id);
  assert_non_null(strstr(r.body, idtag));
  const char *error = strstr(r.body, "\"error\"");
  assert_non_null(error);
  const char *message = strstr(error, "\"message\"");
  assert_non_null(message);
  assert_non_null(strcasestr(message, "certificate"));
  assert_true(took < 5000); /* a refused handshake, not a timeout */
  free(r.raw);
}

static void test_untrusted_certificate_is_502(void **state) {
  (void)state;
  /* trusts other.example's certificate, a valid CA file without up's */
  int port = start_tls_proxy(&side, "untrusted", up.port, other_cert);
  assert_certificate_502(port, 30);
  assert_certificate_502(port, 31); /* and again: it serves on */
  int code;
  stop_proxy(&side, &code);
  assert_int_equal(code, 0);
}

static void test_certificate_for_another_name_is_502(void **state) {
  (void)state;
  /* trusted, but issued for other.example while the URL says localhost */
  int port = start_tls_proxy(&side, "mismatch", other.port, other_cert);
  assert_certificate_502(port, 40);
  int code;
  stop_proxy(&side, &code);
  assert_int_equal(code, 0);
}

static void test_store_rows(void **state) {
  (void)state;
  int code;
  stop_proxy(&trusted, &code);
  assert_int_equal(code, 0); /* it ran, and stopped cleanly */
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE proxy='tls' AND "
                                  "method='tools/call' AND tool='echo' AND status='ok'"),
                   21);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE proxy='tls' AND "
                                  "tool='slow_sse' AND status='ok' AND latency_us >= 700000 "
                                  "AND bytes_out > 0"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE proxy='untrusted' AND "
                                  "tool='echo' AND status='error' AND "
                                  "lower(error_msg) LIKE '%certificate%'"),
                   2);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE proxy='mismatch' AND "
                                  "tool='echo' AND status='error' AND "
                                  "lower(error_msg) LIKE '%certificate%'"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE status != 'ok' AND "
                                  "proxy='tls'"),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixture_certificate),
      cmocka_unit_test(test_fixture_serves_https_to_a_verifying_client),
      cmocka_unit_test(test_https_call_answered_byte_for_byte),
      cmocka_unit_test(test_https_sse_streams_event_by_event),
      cmocka_unit_test(test_https_keep_alive_20_requests),
      cmocka_unit_test_teardown(test_untrusted_certificate_is_502, stop_side),
      cmocka_unit_test_teardown(test_certificate_for_another_name_is_502, stop_side),
      cmocka_unit_test(test_store_rows),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
