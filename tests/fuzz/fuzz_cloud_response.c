/*
 * fuzz_cloud_response.c — libFuzzer target for the cloud API client's
 * handling of answers (cloud.h): status codes, redirects, error bodies and
 * the JSON bodies parsed into typed results.
 *
 * The parsing lives inside client.c and the HTTP layer it sends through
 * (src/lib/http: redirects, the body cap, error texts and redaction), as
 * static helpers behind each public call, so the target drives the public
 * calls and replaces the network: this file defines curl_easy_setopt,
 * curl_easy_perform and curl_easy_getinfo. The program links libmcpr
 * statically, so the library's calls bind to these definitions, not to
 * libcurl's (everything else — handles, URL parsing, escaping — is the
 * real libcurl). Header and progress callbacks are never called, so
 * Retry-After and the abort time are not exercised here (tests/lib/http
 * covers them). Nothing leaves the process.
 *
 * Input layout (short inputs simply end early):
 *   byte 0            which call (login, verify, list/create project, ...)
 *   per answer:       status selector, transport-result selector;
 *                     a 3xx answer then has a Location line ("...\n")
 *                     and the next answer follows; any other answer takes
 *                     the rest of the input as its body, delivered to
 *                     the write callback in chunks whose size the first
 *                     body byte chooses.
 * Properties: no crash/leak/sanitizer report; a failed call always has a
 * message; a successful call returns a result with the required fields;
 * the client's JWT never appears in an error message or the kept error
 * body (cloud.h promises both).
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/cloud.h"

#undef curl_easy_setopt
#undef curl_easy_getinfo

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fake transport ---------------------------------------------- */

typedef size_t (*write_fn)(char *, size_t, size_t, void *);

static struct {
  const uint8_t *p; /* unread input */
  size_t n;
  write_fn write;
  void *write_data;
  long status;
  char location[2048];
  bool has_location;
} g;

static int next_byte(void) {
  if (!g.n)
    return -1;
  g.n--;
  return *g.p++;
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
  (void)h;
  va_list ap;
  va_start(ap, opt);
  if (opt == CURLOPT_WRITEFUNCTION)
    g.write = va_arg(ap, write_fn);
  else if (opt == CURLOPT_WRITEDATA)
    g.write_data = va_arg(ap, void *);
  va_end(ap);
  return CURLE_OK;
}

static const long STATUSES[] = {200, 201, 204, 299, 301, 302, 303, 307, 308, 300, 399,
                                400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 100, 0};

CURLcode curl_easy_perform(CURL *h) {
  (void)h;
  g.has_location = false;
  int s = next_byte(), r = next_byte();
  if (s < 0)
    return CURLE_COULDNT_CONNECT;
  g.status = STATUSES[(size_t)s % (sizeof STATUSES / sizeof STATUSES[0])];
  if (r >= 250) { /* a few transport failures, rarely */
    static const CURLcode FAILS[] = {CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT,
                                     CURLE_FILESIZE_EXCEEDED, CURLE_SSL_CONNECT_ERROR,
                                     CURLE_RECV_ERROR, CURLE_GOT_NOTHING};
    return FAILS[r - 250];
  }
  if (g.status >= 300 && g.status < 400) {
    size_t i = 0;
    int c;
    while ((c = next_byte()) >= 0 && c != '\n')
      if (i + 1 < sizeof g.location)
        g.location[i++] = (char)c;
    g.location[i] = '\0';
    g.has_location = i > 0 && memchr(g.location, 0, i) == NULL;
    return CURLE_OK;
  }
  size_t chunk = g.n ? 1 + (size_t)g.p[0] * 97 : 1;
  while (g.n) {
    size_t k = g.n < chunk ? g.n : chunk;
    if (g.write((char *)g.p, 1, k, g.write_data) != k)
      return CURLE_WRITE_ERROR;
    g.p += k;
    g.n -= k;
  }
  return CURLE_OK;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
  (void)h;
  va_list ap;
  va_start(ap, info);
  if (info == CURLINFO_RESPONSE_CODE)
    *va_arg(ap, long *) = g.status;
  else if (info == CURLINFO_REDIRECT_URL)
    *va_arg(ap, char **) = g.has_location ? g.location : NULL;
  va_end(ap);
  return CURLE_OK;
}

/* ---- the target ------------------------------------------------------- */

static const char JWT[] = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.fuzz-signature-1234";

static void check_no_jwt(const mcpr_cloud_client *c, const mcpr_error *err) {
  CHECK(strstr(err->message, JWT) == NULL);
  CHECK(strstr(mcpr_cloud_client_last_error_body(c), JWT) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  memset(&g, 0, sizeof g);
  g.p = data + 1;
  g.n = size - 1;
  mcpr_cloud_client *c = NULL;
  mcpr_error err = {0};
  mcpr_cloud_options o;
  mcpr_cloud_options_init(&o);
  CHECK(mcpr_cloud_client_new(&c, "http://127.0.0.1:8080/base", &o, &err) == MCPR_OK);
  CHECK(mcpr_cloud_client_set_jwt(c, JWT, &err) == MCPR_OK);

  mcpr_status st = MCPR_OK;
  switch (data[0] % 9) {
  case 0: {
    char *rid = NULL;
    st = mcpr_cloud_login(c, "me@example.com", &rid, &err);
    CHECK((st == MCPR_OK) == (rid != NULL));
    free(rid);
    break;
  }
  case 1: {
    mcpr_cloud_auth *a = NULL;
    st = mcpr_cloud_verify(c, "req-1", "123456", &a, &err);
    CHECK((st == MCPR_OK) == (a != NULL));
    if (a) {
      CHECK(a->jwt != NULL);
      int64_t exp = 0;
      mcpr_error jerr = {0};
      if (mcpr_jwt_exp(a->jwt, &exp, &jerr) != MCPR_OK)
        CHECK(jerr.message[0] != '\0');
      char masked[64];
      mcpr_secret_mask(a->jwt, masked, sizeof masked);
    }
    mcpr_cloud_auth_free(a);
    break;
  }
  case 2: {
    mcpr_cloud_project_list *l = NULL;
    st = mcpr_cloud_list_projects(c, &l, &err);
    CHECK((st == MCPR_OK) == (l != NULL));
    for (size_t i = 0; l && i < l->count; i++)
      CHECK(l->items[i].id && l->items[i].slug);
    mcpr_cloud_project_list_free(l);
    break;
  }
  case 3: {
    mcpr_cloud_project *p = NULL;
    st = mcpr_cloud_create_project(c, "Fuzz", "fuzz", &p, &err);
    CHECK((st == MCPR_OK) == (p != NULL));
    CHECK(!p || (p->id && p->slug));
    mcpr_cloud_project_free(p);
    break;
  }
  case 4: {
    mcpr_cloud_server_list *l = NULL;
    st = mcpr_cloud_list_servers(c, "p/1 ?", &l, &err);
    CHECK((st == MCPR_OK) == (l != NULL));
    for (size_t i = 0; l && i < l->count; i++)
      CHECK(l->items[i].id && l->items[i].slug);
    mcpr_cloud_server_list_free(l);
    break;
  }
  case 5: {
    mcpr_cloud_server *s = NULL;
    st = mcpr_cloud_create_server(c, "p1", "Srv", "srv", &s, &err);
    CHECK((st == MCPR_OK) == (s != NULL));
    CHECK(!s || (s->id && s->slug));
    mcpr_cloud_server_free(s);
    break;
  }
  case 6: {
    mcpr_cloud_endpoint_list *l = NULL;
    st = mcpr_cloud_list_endpoints(c, "s1", &l, &err);
    CHECK((st == MCPR_OK) == (l != NULL));
    for (size_t i = 0; l && i < l->count; i++)
      CHECK(l->items[i].id && l->items[i].name);
    mcpr_cloud_endpoint_list_free(l);
    break;
  }
  case 7: {
    mcpr_cloud_endpoint *e = NULL;
    st = mcpr_cloud_create_endpoint(c, "s1", "ep", &e, &err);
    CHECK((st == MCPR_OK) == (e != NULL));
    CHECK(!e || (e->id && e->name));
    mcpr_cloud_endpoint_free(e);
    break;
  }
  default: {
    mcpr_cloud_token *t = NULL;
    st = mcpr_cloud_create_token(c, "p1", "ci", &t, &err);
    CHECK((st == MCPR_OK) == (t != NULL));
    mcpr_cloud_token_free(t);
    break;
  }
  }
  if (st != MCPR_OK)
    CHECK(err.message[0] != '\0');
  check_no_jwt(c, &err);
  mcpr_cloud_client_free(c);
  return 0;
}
