// ctest-labels: tsan
/* The outbound HTTP layer: which URLs may carry a credential, redaction,
 * Retry-After, and requests against fake servers on loopback (redirects,
 * header injection, the body cap, the abort time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "fakecloud.h"
#include "http/http.h"
#include "testutil.h"

#define TOKEN "tok-0123456789-secret"

static mcpr_status check(const char *url, mcpr_error *err) {
  mcpr_error_clear(err);
  return mcpr__http_check_url(url, "cloud.endpoint", 0, NULL, err);
}

static void test_lookalike_hosts_refused(void **state) {
  (void)state;
  mcpr_error err = {0};
  /* The host is 127.attacker.example: plain http to it is refused. */
  assert_int_equal(check("http://127.attacker.example/", &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "cloud.endpoint"));
  assert_non_null(strstr(err.message, "refusing plain http:// to 127.attacker.example"));
  /* "localhost:8080" and "127.0.0.1" are a user name (and password) here. */
  assert_int_equal(check("http://localhost:8080@attacker.example/", &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "cloud.endpoint must not carry a user name or password"));
  assert_int_equal(check("http://127.0.0.1@attacker.example", &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "user name or password"));
  const char *more[] = {"http://127.0.0.1.evil.com/", "http://localhost.attacker.example/",
                        "http://[::1].attacker.example/", "http://10.0.0.1:8080",
                        "http://0.0.0.0:8080", "http://[::ffff:127.0.0.1]/",
                        "http://attacker.example#@127.0.0.1/", "http://example.com"};
  for (size_t i = 0; i < sizeof more / sizeof *more; i++)
    if (check(more[i], &err) != MCPR_EINVAL)
      fail_msg("%s was accepted", more[i]);
}

static void test_loopback_and_https_accepted(void **state) {
  (void)state;
  mcpr_error err = {0};
  mcpr__http_origin o;
  const char *ok[] = {"http://127.0.0.1:8080/", "http://localhost/", "http://[::1]:9/",
                      "https://api.mcpr.app", "http://127.8.9.1:2", "HTTP://LocalHost:1/base/",
                      "https://api.mcpr.app/prefix/"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (check(ok[i], &err) != MCPR_OK)
      fail_msg("%s refused: %s", ok[i], err.message);
  assert_int_equal(mcpr__http_check_url("http://[::1]:9/", NULL, 0, &o, &err), MCPR_OK);
  assert_string_equal(o.scheme, "http");
  assert_string_equal(o.host, "[::1]");
  assert_int_equal(o.port, 9);
  assert_int_equal(mcpr__http_check_url("https://API.mcpr.app", NULL, 0, &o, &err), MCPR_OK);
  assert_string_equal(o.scheme, "https");
  assert_string_equal(o.host, "api.mcpr.app");
  assert_int_equal(o.port, 443); /* the default port is filled in */
}

static void test_userinfo_schemes_query(void **state) {
  (void)state;
  mcpr_error err = {0};
  const char *userinfo[] = {"https://user:pw@api.mcpr.app", "https://user@api.mcpr.app/",
                            "https://:pw@api.mcpr.app/", "http://me@localhost:1/"};
  for (size_t i = 0; i < sizeof userinfo / sizeof *userinfo; i++) {
    assert_int_equal(check(userinfo[i], &err), MCPR_EINVAL);
    assert_non_null(strstr(err.message, "user name or password"));
  }
  const char *schemes[] = {"ftp://127.0.0.1/", "file:///etc/passwd", "gopher://localhost/",
                           "ws://localhost/", "ldap://localhost/", "javascript:alert(1)",
                           "api.mcpr.app", "not a url", "", "https://"};
  for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
    if (check(schemes[i], &err) != MCPR_EINVAL)
      fail_msg("%s was accepted", schemes[i]);
  assert_int_equal(check("ftp://127.0.0.1/", &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "https://"));
  /* a base URL takes no query; a request URL may */
  assert_int_equal(check("https://api.mcpr.app/?x=1", &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "query"));
  assert_int_equal(mcpr__http_check_url("https://api.mcpr.app/?x=1", "u",
                                        MCPR__HTTP_URL_ALLOW_QUERY, NULL, &err),
                   MCPR_OK);
  assert_int_equal(mcpr__http_check_url(NULL, "u", 0, NULL, &err), MCPR_EINVAL);
}

static void test_loopback_hosts(void **state) {
  (void)state;
  const char *yes[] = {"localhost", "LOCALHOST", "127.0.0.1", "127.255.255.254", "::1",
                       "[::1]", "[0:0:0:0:0:0:0:1]"};
  const char *no[] = {"127.attacker.example", "127.0.0.1.evil.com", "localhost.", "0.0.0.0",
                      "128.0.0.1", "::ffff:127.0.0.1", "[::2]", "[::1%25lo]", "", "127.1"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (!mcpr__http_is_loopback_host(yes[i]))
      fail_msg("%s is loopback", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (mcpr__http_is_loopback_host(no[i]))
      fail_msg("%s is not loopback", no[i]);
  assert_false(mcpr__http_is_loopback_host(NULL));
}

static void test_redact(void **state) {
  (void)state;
  mcpr__http_secret s[] = {{.value = TOKEN, .shown_as = "[T]"}, {.value = "short"},
                           {.value = TOKEN "-longer"}};
  const char *in = "a " TOKEN " b " TOKEN "-longer c short";
  size_t n = 0;
  char *out = mcpr__http_redact(in, strlen(in), strlen(in), s, 3, &n);
  assert_string_equal(out, "a [T] b … c short"); /* longest first; short ones stay */
  assert_int_equal(n, strlen(out));
  free(out);
  /* Cut on the input: a secret starting before the cut is replaced whole,
   * and nothing from beyond the cut moves in when masks are shorter. */
  const char *in2 = "xx" TOKEN "yy" TOKEN;
  size_t stop = 2 + strlen(TOKEN) + 2 + 3; /* 3 bytes into the second token */
  out = mcpr__http_redact(in2, strlen(in2), stop, s, 1, NULL);
  assert_string_equal(out, "xx[T]yy[T]");
  free(out);
  out = mcpr__http_redact(in2, strlen(in2), 2 + strlen(TOKEN) + 2, s, 1, NULL);
  assert_string_equal(out, "xx[T]yy");
  free(out);
  out = mcpr__http_redact("", 0, 0, s, 3, NULL);
  assert_string_equal(out, "");
  free(out);
  /* UTF-8 cut */
  const char *u = "ab\xc3\xa9" "cd"; /* ab é cd */
  assert_int_equal(mcpr__http_utf8_cut(u, 6, 3), 2);
  assert_int_equal(mcpr__http_utf8_cut(u, 6, 4), 4);
  assert_int_equal(mcpr__http_utf8_cut(u, 6, 100), 6);
}

static void test_retry_after(void **state) {
  (void)state;
  int64_t now = 1445412480000; /* Wed, 21 Oct 2015 07:28:00 GMT */
  assert_int_equal(mcpr__http_parse_retry_after("120", now), 120000);
  assert_int_equal(mcpr__http_parse_retry_after(" 5 ", now), 5000);
  assert_int_equal(mcpr__http_parse_retry_after("0", now), 0);
  assert_int_equal(mcpr__http_parse_retry_after("-1", now), -1);
  assert_int_equal(mcpr__http_parse_retry_after("5s", now), -1);
  assert_int_equal(mcpr__http_parse_retry_after("soon", now), -1);
  assert_int_equal(mcpr__http_parse_retry_after("", now), -1);
  assert_int_equal(mcpr__http_parse_retry_after("99999999999999999999999", now),
                   MCPR__HTTP_RETRY_AFTER_MAX_MS);
  assert_int_equal(mcpr__http_parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now), 10000);
  assert_int_equal(mcpr__http_parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
  assert_int_equal(mcpr__http_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now),
                   MCPR__HTTP_RETRY_AFTER_MAX_MS);
}

/* ---- requests against fake servers ------------------------------------ */

typedef struct call {
  char url[256];
  const char *headers[3];
  mcpr__http_secret secret;
  mcpr__http_request req;
} call;

static void call_init(call *c, fakecloud *fc, const char *method, const char *path) {
  memset(c, 0, sizeof *c);
  snprintf(c->url, sizeof c->url, "%s%s", fc_url(fc), path);
  c->headers[0] = "Authorization: Bearer " TOKEN;
  c->headers[1] = "Content-Type: application/json";
  c->secret = (mcpr__http_secret){.value = TOKEN};
  c->req = (mcpr__http_request){.method = method, .url = c->url, .headers = c->headers,
                                .secrets = &c->secret, .n_secrets = 1, .max_redirects = 5,
                                .timeout_ms = 5000};
  if (strcmp(method, "GET") != 0) {
    c->req.body = "[1]";
    c->req.body_len = 3;
  }
}

static void test_redirects(void **state) {
  (void)state;
  fakecloud *fc = fc_start(NULL), *other = fc_start("127.0.0.2");
  fc_route(other, "POST", "/in", 200, "{}");
  char loc[256];
  snprintf(loc, sizeof loc, "%s/in", fc_url(other));
  fc_redirect(fc, "POST", "/in", 307, loc);
  call c;
  call_init(&c, fc, "POST", "/in");
  mcpr__http_response res;
  mcpr_error err = {0};
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_EHTTP);
  assert_int_equal(res.status, 307);
  assert_non_null(strstr(err.message, "redirected (HTTP 307) to another host"));
  assert_non_null(strstr(err.message, "127.0.0.2"));
  assert_int_equal(fc_request_count(other), 0);
  mcpr__http_response_release(&res);

  /* same origin: followed, 307 keeps the method, the body and the headers */
  fc_reset(fc);
  fc_redirect(fc, "POST", "/in", 307, "/v2/in");
  fc_route(fc, "POST", "/v2/in", 202, "{\"ok\":true}");
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_OK);
  assert_int_equal(res.status, 202);
  assert_string_equal(res.body, "{\"ok\":true}");
  assert_null(res.error_text);
  mcpr__http_response_release(&res);
  fc_request q;
  assert_true(fc_request_get(fc, 1, &q));
  assert_string_equal(q.method, "POST");
  assert_string_equal(q.body, "[1]");
  char buf[128];
  assert_non_null(fc_header(&q, "Authorization", buf, sizeof buf));
  fc_request_release(&q);

  /* no redirects allowed: a clear failure */
  c.req.max_redirects = 0;
  fc_reset(fc);
  fc_redirect(fc, "POST", "/in", 307, "/v2/in");
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_EHTTP);
  assert_non_null(strstr(err.message, "too many redirects"));
  mcpr__http_response_release(&res);
  fc_stop(other);
  fc_stop(fc);
}

static void test_refused_before_sending(void **state) {
  (void)state;
  fakecloud *fc = fc_start(NULL);
  call c;
  call_init(&c, fc, "POST", "/in");
  mcpr__http_response res;
  mcpr_error err = {0};
  /* a header that would smuggle another header (or a request) */
  c.headers[1] = "X-Note: a\r\nX-Evil: 1";
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "line break"));
  /* a look-alike URL */
  call_init(&c, fc, "POST", "/in");
  snprintf(c.url, sizeof c.url, "http://127.0.0.1@127.0.0.2:%d/in", fc_port(fc));
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_EINVAL);
  /* the abort time has passed */
  call_init(&c, fc, "POST", "/in");
  atomic_llong abort_at;
  atomic_init(&abort_at, mcpr__mono_ms() - 1);
  c.req.abort_at_ms = &abort_at;
  assert_int_equal(mcpr__http_perform(NULL, &c.req, &res, &err), MCPR_ETIMEDOUT);
  assert_true(res.aborted);
  assert_int_equal(fc_request_count(fc), 0);
  fc_stop(fc);
}

static void test_error_bodies_are_redacted(void **state) {
  (void)state;
  fakecloud *fc = fc_start(NULL);
  mcpr__http *h = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr__http_new(&h, &err), MCPR_OK);
  call c;
  call_init(&c, fc, "POST", "/in");
  mcpr__http_response res;
  fc_response echo = {.status = 401, .body = "{\"message\":\"bad token {token}\"}",
                      .echo_auth = true, .headers = "Retry-After: 7\n"};
  fc_route_ex(fc, "POST", "/in", &echo);
  assert_int_equal(mcpr__http_perform(h, &c.req, &res, &err), MCPR_OK);
  assert_int_equal(res.status, 401);
  assert_string_equal(res.error_text, "bad token …");
  assert_null(strstr(res.body, TOKEN));
  assert_non_null(strstr(res.body, "bad token …"));
  assert_int_equal(res.retry_after_ms, 7000);
  mcpr__http_response_release(&res);

  /* JSON escapes do not hide it from the decoded message */
  fc_reset(fc);
  fc_route(fc, "POST", "/in", 400, "{\"error\":\"bad \\u0074ok-0123456789-secret\\n\"}");
  assert_int_equal(mcpr__http_perform(h, &c.req, &res, &err), MCPR_OK);
  assert_string_equal(res.error_text, "bad … "); /* the newline became a space */
  mcpr__http_response_release(&res);

  /* Cut body: a token across the cut leaves no prefix behind. */
  fc_reset(fc);
  char big[300];
  memset(big, 'x', sizeof big);
  memcpy(big + 90, "{auth}", 6);
  big[sizeof big - 1] = '\0';
  fc_response cut = {.status = 500, .body = big, .echo_auth = true};
  fc_route_ex(fc, "POST", "/in", &cut);
  c.req.cut_body = true;
  c.req.max_body_bytes = 100; /* "Bearer " ends at 97: the token starts at 97 */
  assert_int_equal(mcpr__http_perform(h, &c.req, &res, &err), MCPR_OK);
  assert_true(res.body_cut);
  assert_null(strstr(res.body, "tok-"));
  assert_null(strstr(res.error_text, "tok-"));
  assert_non_null(strstr(res.error_text, "Bearer …"));
  mcpr__http_response_release(&res);

  /* Not cut: too big is an error. */
  c.req.cut_body = false;
  assert_int_equal(mcpr__http_perform(h, &c.req, &res, &err), MCPR_ETOOBIG);
  assert_non_null(strstr(err.message, "larger than 100 bytes"));
  mcpr__http_response_release(&res);

  /* Nothing listening: the message names the address, not the token. */
  char gone[64];
  snprintf(gone, sizeof gone, "%s/in?key=" TOKEN, fc_url(fc));
  fc_stop(fc);
  c.req.url = gone;
  assert_int_equal(mcpr__http_perform(h, &c.req, &res, &err), MCPR_ENETWORK);
  assert_non_null(strstr(err.message, "cannot reach"));
  assert_null(strstr(err.message, TOKEN));
  assert_int_equal(res.status, 0);
  mcpr__http_response_release(&res);
  mcpr__http_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookalike_hosts_refused),
      cmocka_unit_test(test_loopback_and_https_accepted),
      cmocka_unit_test(test_userinfo_schemes_query),
      cmocka_unit_test(test_loopback_hosts),
      cmocka_unit_test(test_redact),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_redirects),
      cmocka_unit_test(test_refused_before_sending),
      cmocka_unit_test(test_error_bodies_are_redacted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
