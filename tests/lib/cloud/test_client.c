// ctest-labels: tsan
/* The cloud API client against the fake cloud: every call, every error shape, transport rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakecloud.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.CANARYJWTsignature9f8e7d"

typedef struct fixture {
  fakecloud *fc;
  mcpr_cloud_client *c;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->fc = fc_start(NULL);
  mcpr_error err = {0};
  mcpr_cloud_options o;
  mcpr_cloud_options_init(&o);
  o.timeout_ms = 3000;
  if (mcpr_cloud_client_new(&f->c, fc_url(f->fc), &o, &err) != MCPR_OK)
    fail_msg("client: %s", err.message);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  mcpr_cloud_client_free(f->c);
  fc_stop(f->fc);
  free(f);
  return 0;
}

static void authed(fixture *f) { assert_int_equal(mcpr_cloud_client_set_jwt(f->c, JWT, NULL), MCPR_OK); }

static void test_login_and_verify(void **state) {
  fixture *f = *state;
  mcpr_error err = {0};
  fc_route(f->fc, "POST", "/api/auth/cli/login", 200, "{\"request_id\":\"req-1\"}");
  fc_route(f->fc, "POST", "/api/auth/cli/verify", 200,
           "{\"token\":\"" JWT "\",\"user\":{\"id\":42,\"email\":\"a@b.c\",\"name\":\"Ann\"}}");
  char *rid = NULL;
  assert_int_equal(mcpr_cloud_login(f->c, "a@b.c", &rid, &err), MCPR_OK);
  assert_string_equal(rid, "req-1");
  mcpr_cloud_auth *a = NULL;
  assert_int_equal(mcpr_cloud_verify(f->c, rid, "123456", &a, &err), MCPR_OK);
  assert_string_equal(a->jwt, JWT);
  assert_string_equal(a->user.id, "42"); /* numeric ids become text */
  assert_string_equal(a->user.email, "a@b.c");
  assert_string_equal(a->user.name, "Ann");

  fc_request r;
  assert_true(fc_request_get(f->fc, 0, &r));
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.path, "/api/auth/cli/login");
  assert_string_equal(r.body, "{\"email\":\"a@b.c\"}");
  char h[256];
  assert_non_null(fc_header(&r, "Content-Type", h, sizeof h));
  assert_string_equal(h, "application/json");
  assert_null(fc_header(&r, "Authorization", h, sizeof h)); /* login is not authenticated */
  fc_request_release(&r);
  assert_true(fc_request_get(f->fc, 1, &r));
  assert_non_null(strstr(r.body, "\"request_id\":\"req-1\""));
  assert_non_null(strstr(r.body, "\"code\":\"123456\""));
  fc_request_release(&r);
  mcpr_cloud_auth_free(a);
  free(rid);
}

static void test_projects_servers_endpoints_tokens(void **state) {
  fixture *f = *state;
  mcpr_error err = {0};
  authed(f);
  fc_route(f->fc, "GET", "/api/projects", 200,
           "[{\"id\":\"p1\",\"name\":\"One\",\"slug\":\"one\"},{\"id\":2,\"name\":\"Two\",\"slug\":\"two\"}]");
  fc_route(f->fc, "POST", "/api/projects", 201, "{\"id\":\"p3\",\"name\":\"Three\",\"slug\":\"three\"}");
  fc_route(f->fc, "GET", "/api/servers/by-project/p1", 200,
           "[{\"id\":\"s1\",\"name\":\"api\",\"slug\":\"api\",\"project_id\":\"p1\"}]");
  fc_route(f->fc, "POST", "/api/servers/by-project/p1", 200,
           "{\"id\":\"s2\",\"name\":\"web\",\"slug\":\"web\",\"project_id\":\"p1\"}");
  fc_route(f->fc, "GET", "/api/endpoints/by-server/s1", 200, "[]");
  fc_route(f->fc, "POST", "/api/endpoints/by-server/s1", 200,
           "{\"id\":\"e1\",\"name\":\"tun\",\"status\":\"active\",\"server_id\":\"s1\"}");
  fc_route(f->fc, "POST", "/api/projects/p1/tokens", 200,
           "{\"id\":\"t1\",\"token\":\"mcpr_tokentokentoken9999\",\"name\":\"ci\"}");

  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_OK);
  assert_int_equal(pl->count, 2);
  assert_string_equal(pl->items[0].slug, "one");
  assert_string_equal(pl->items[1].id, "2");
  mcpr_cloud_project_list_free(pl);

  mcpr_cloud_project *p = NULL;
  assert_int_equal(mcpr_cloud_create_project(f->c, "Three", "three", &p, &err), MCPR_OK);
  assert_string_equal(p->id, "p3");
  mcpr_cloud_project_free(p);

  mcpr_cloud_server_list *sl = NULL;
  assert_int_equal(mcpr_cloud_list_servers(f->c, "p1", &sl, &err), MCPR_OK);
  assert_int_equal(sl->count, 1);
  assert_string_equal(sl->items[0].project_id, "p1");
  mcpr_cloud_server_list_free(sl);

  mcpr_cloud_server *s = NULL;
  assert_int_equal(mcpr_cloud_create_server(f->c, "p1", "web", "web", &s, &err), MCPR_OK);
  assert_string_equal(s->slug, "web");
  mcpr_cloud_server_free(s);

  mcpr_cloud_endpoint_list *el = NULL;
  assert_int_equal(mcpr_cloud_list_endpoints(f->c, "s1", &el, &err), MCPR_OK);
  assert_int_equal(el->count, 0);
  mcpr_cloud_endpoint_list_free(el);

  mcpr_cloud_endpoint *e = NULL;
  assert_int_equal(mcpr_cloud_create_endpoint(f->c, "s1", "tun", &e, &err), MCPR_OK);
  assert_string_equal(e->status, "active");
  mcpr_cloud_endpoint_free(e);

  mcpr_cloud_token *t = NULL;
  assert_int_equal(mcpr_cloud_create_token(f->c, "p1", "ci", &t, &err), MCPR_OK);
  assert_string_equal(t->token, "mcpr_tokentokentoken9999");
  mcpr_cloud_token_free(t);

  /* every authenticated call carried the bearer JWT and a JSON body where due */
  size_t n = fc_request_count(f->fc);
  assert_int_equal(n, 7);
  for (size_t i = 0; i < n; i++) {
    fc_request r;
    char h[512];
    assert_true(fc_request_get(f->fc, i, &r));
    assert_non_null(fc_header(&r, "Authorization", h, sizeof h));
    assert_string_equal(h, "Bearer " JWT);
    fc_request_release(&r);
  }
  fc_request r;
  assert_true(fc_request_get(f->fc, 3, &r));
  assert_string_equal(r.body, "{\"name\":\"web\",\"slug\":\"web\"}");
  fc_request_release(&r);
}

static void test_ids_are_escaped_in_paths(void **state) {
  fixture *f = *state;
  mcpr_error err = {0};
  authed(f);
  fc_route(f->fc, "GET", "/api/servers/by-project/*", 200, "[]");
  mcpr_cloud_server_list *sl = NULL;
  assert_int_equal(mcpr_cloud_list_servers(f->c, "../../admin?x=1", &sl, &err), MCPR_OK);
  mcpr_cloud_server_list_free(sl);
  fc_request r;
  assert_true(fc_request_get(f->fc, 0, &r));
  assert_string_equal(r.uri, "/api/servers/by-project/..%2F..%2Fadmin%3Fx%3D1");
  fc_request_release(&r);
}

static void expect_error(fixture *f, int status, const char *body, mcpr_status want_st,
                         const char *want_in_message) {
  mcpr_error err = {0};
  fc_reset(f->fc);
  fc_route(f->fc, "GET", "/api/projects", status, body);
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), want_st);
  assert_null(pl);
  if (!strstr(err.message, want_in_message))
    fail_msg("message '%s' lacks '%s'", err.message, want_in_message);
  assert_int_equal(mcpr_cloud_client_last_http_status(f->c), status);
  assert_null(strstr(err.message, JWT));
}

static void test_error_shapes(void **state) {
  fixture *f = *state;
  authed(f);
  expect_error(f, 409, "{\"message\":\"slug already taken\"}", MCPR_EHTTP, "HTTP 409: slug already taken");
  expect_error(f, 400, "{\"error\":\"bad request body\"}", MCPR_EHTTP, "HTTP 400: bad request body");
  expect_error(f, 422, "{\"error\":{\"message\":\"nested reason\"}}", MCPR_EHTTP, "HTTP 422: nested reason");
  expect_error(f, 502, "upstream exploded\n<html>", MCPR_EHTTP, "HTTP 502: upstream exploded <html>");
  expect_error(f, 500, "", MCPR_EHTTP, "HTTP 500: (empty body)");
  expect_error(f, 401, "{\"message\":\"expired\"}", MCPR_EAUTH, "HTTP 401: expired");
  assert_string_equal(mcpr_cloud_client_last_error_body(f->c), "expired");
  /* the server echoing our JWT back never puts it in a message */
  expect_error(f, 403, "{\"message\":\"bad token " JWT "\"}", MCPR_EAUTH, "bad token …");
  assert_null(strstr(mcpr_cloud_client_last_error_body(f->c), JWT));
}

static void test_raw_error_body_is_bounded(void **state) {
  fixture *f = *state;
  authed(f);
  size_t n = 100000;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  expect_error(f, 500, big, MCPR_EHTTP, "HTTP 500: xxxx");
  assert_int_equal(strlen(mcpr_cloud_client_last_error_body(f->c)), MCPR_CLOUD_MAX_ERROR_BODY_BYTES);
  /* a JWT echoed across the cut: no prefix of it is kept either */
  memcpy(big + MCPR_CLOUD_MAX_ERROR_BODY_BYTES - 10, JWT, strlen(JWT));
  expect_error(f, 500, big, MCPR_EHTTP, "HTTP 500: xxxx");
  assert_null(strstr(mcpr_cloud_client_last_error_body(f->c), "eyJhbGci"));
  free(big);
}

static void test_malformed_and_wrong_shapes(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  expect_error(f, 200, "{not json", MCPR_EPARSE, "not valid JSON");
  expect_error(f, 200, "{\"id\":1}", MCPR_EPARSE, "not a JSON array");
  expect_error(f, 200, "[{\"name\":\"no id\"}]", MCPR_EPARSE, "no 'id'");
  expect_error(f, 200, "", MCPR_EPARSE, "empty body");
  fc_route(f->fc, "POST", "/api/projects/p/tokens", 200, "{\"id\":\"t\"}");
  mcpr_cloud_token *t = NULL;
  assert_int_equal(mcpr_cloud_create_token(f->c, "p", "n", &t, &err), MCPR_EPARSE);
  assert_null(t);
  assert_non_null(strstr(err.message, "'token'"));
}

/* The exact message of each answer shape the calls share, and nothing
 * handed out on failure (a partial list is released, ASan checks). */
static void test_answer_shape_messages(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  fc_route(f->fc, "GET", "/api/servers/by-project/p", 200, "[{\"id\":\"s1\",\"slug\":\"a\"},7]");
  mcpr_cloud_server_list *sl = NULL;
  assert_int_equal(mcpr_cloud_list_servers(f->c, "p", &sl, &err), MCPR_EPARSE);
  assert_null(sl);
  assert_string_equal(err.message, "the cloud's answer to the list of servers is not an object");
  fc_route(f->fc, "GET", "/api/endpoints/by-server/s", 200, "[{\"id\":\"e1\"}]");
  mcpr_cloud_endpoint_list *el = NULL;
  assert_int_equal(mcpr_cloud_list_endpoints(f->c, "s", &el, &err), MCPR_EPARSE);
  assert_null(el);
  assert_string_equal(err.message, "the cloud's answer to the list of endpoints has no 'name' string");
  fc_route(f->fc, "GET", "/api/projects", 200, "[{\"id\":\"p1\",\"name\":\"n\"}]");
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_EPARSE);
  assert_null(pl);
  assert_string_equal(err.message, "the cloud's answer to the list of projects has no 'slug' string");
  fc_route(f->fc, "GET", "/api/endpoints/by-server/s2", 200, "{}");
  assert_int_equal(mcpr_cloud_list_endpoints(f->c, "s2", &el, &err), MCPR_EPARSE);
  assert_string_equal(err.message, "the cloud's list of endpoints is not a JSON array");

  fc_route(f->fc, "POST", "/api/servers/by-project/p", 200, "[]");
  mcpr_cloud_server *s = NULL;
  assert_int_equal(mcpr_cloud_create_server(f->c, "p", "n", "n", &s, &err), MCPR_EPARSE);
  assert_null(s);
  assert_string_equal(err.message, "the cloud's answer to creating a server is not an object");
  fc_route(f->fc, "POST", "/api/projects", 200, "{\"id\":\"p1\",\"name\":\"n\"}");
  mcpr_cloud_project *p = NULL;
  assert_int_equal(mcpr_cloud_create_project(f->c, "n", "n", &p, &err), MCPR_EPARSE);
  assert_null(p);
  assert_string_equal(err.message, "the cloud's answer to creating a project has no 'slug' string");
  fc_route(f->fc, "POST", "/api/projects/p/tokens", 200, "[1]");
  mcpr_cloud_token *t = NULL;
  assert_int_equal(mcpr_cloud_create_token(f->c, "p", "n", &t, &err), MCPR_EPARSE);
  assert_null(t);
  assert_string_equal(err.message, "the cloud's answer to creating a token is not an object");
  fc_route(f->fc, "POST", "/api/auth/cli/verify", 200, "{\"user\":{\"id\":1}}");
  mcpr_cloud_auth *a = NULL;
  assert_int_equal(mcpr_cloud_verify(f->c, "r", "c", &a, &err), MCPR_EPARSE);
  assert_null(a);
  assert_string_equal(err.message, "the cloud's answer to the verification has no 'token' string");

  /* Refused before any request: an empty id, then a name that is not UTF-8. */
  mcpr_cloud_endpoint *e = NULL;
  assert_int_equal(mcpr_cloud_create_endpoint(f->c, "", "n", &e, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "empty id");
  assert_int_equal(mcpr_cloud_create_endpoint(f->c, "s", "\xff", &e, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "the endpoint name is not valid UTF-8");
  assert_int_equal(mcpr_cloud_create_server(f->c, "", "\xff", "n", &s, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "empty id");
  assert_null(e);
  assert_null(s);
}

static void test_huge_body_is_refused(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  size_t n = 3 * 1024 * 1024;
  char *big = malloc(n + 3);
  big[0] = '[';
  memset(big + 1, ' ', n);
  big[n + 1] = ']';
  big[n + 2] = '\0';
  fc_route(f->fc, "GET", "/api/projects", 200, big);
  free(big);
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_ETOOBIG);
  assert_null(pl);
  assert_non_null(strstr(err.message, "larger than"));
}

static void test_redirect_to_other_host_keeps_credentials(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  fakecloud *other = fc_start("127.0.0.2");
  fc_route(other, "GET", "/api/projects", 200, "[]");
  char loc[256];
  snprintf(loc, sizeof loc, "%s/api/projects", fc_url(other));
  fc_redirect(f->fc, "GET", "/api/projects", 302, loc);
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_EHTTP);
  assert_non_null(strstr(err.message, "redirected"));
  assert_non_null(strstr(err.message, "127.0.0.2"));
  assert_false(fc_any_request_has_header(other, "Authorization"));
  assert_int_equal(fc_request_count(other), 0);

  /* same host, other port: another origin too */
  fakecloud *port2 = fc_start(NULL);
  snprintf(loc, sizeof loc, "%s/api/projects", fc_url(port2));
  fc_reset(f->fc);
  fc_redirect(f->fc, "GET", "/api/projects", 307, loc);
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_EHTTP);
  assert_int_equal(fc_request_count(port2), 0);
  fc_stop(port2);
  fc_stop(other);
}

static void test_same_origin_redirect_is_followed(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  fc_redirect(f->fc, "POST", "/api/projects", 308, "/api/v2/projects");
  fc_route(f->fc, "POST", "/api/v2/projects", 200, "{\"id\":\"p\",\"name\":\"n\",\"slug\":\"s\"}");
  mcpr_cloud_project *p = NULL;
  assert_int_equal(mcpr_cloud_create_project(f->c, "n", "s", &p, &err), MCPR_OK);
  assert_string_equal(p->id, "p");
  mcpr_cloud_project_free(p);
  fc_request r;
  assert_true(fc_request_get(f->fc, 1, &r));
  assert_string_equal(r.method, "POST"); /* 308 keeps the method and body */
  assert_string_equal(r.body, "{\"name\":\"n\",\"slug\":\"s\"}");
  fc_request_release(&r);
  /* a redirect loop ends */
  fc_reset(f->fc);
  fc_redirect(f->fc, "GET", "/api/projects", 302, "/api/projects");
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(f->c, &pl, &err), MCPR_EHTTP);
  assert_non_null(strstr(err.message, "too many redirects"));
}

static void test_timeout(void **state) {
  fixture *f = *state;
  authed(f);
  mcpr_error err = {0};
  mcpr_cloud_client *c = NULL;
  mcpr_cloud_options o;
  mcpr_cloud_options_init(&o);
  o.timeout_ms = 300;
  assert_int_equal(mcpr_cloud_client_new(&c, fc_url(f->fc), &o, &err), MCPR_OK);
  assert_int_equal(mcpr_cloud_client_set_jwt(c, JWT, &err), MCPR_OK);
  fc_response slow = {.status = 200, .body = "[]", .delay_ms = 3000};
  fc_route_ex(f->fc, "GET", "/api/projects", &slow);
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(c, &pl, &err), MCPR_ETIMEDOUT);
  mcpr_cloud_client_free(c);
}

static void test_network_error_and_url_rules(void **state) {
  (void)state;
  mcpr_error err = {0};
  mcpr_cloud_client *c = NULL;
  assert_int_equal(mcpr_cloud_client_new(&c, "http://example.com", NULL, &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "http://"));
  assert_int_equal(mcpr_cloud_client_new(&c, "http://10.0.0.1:8080", NULL, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_cloud_client_new(&c, "http://127.0.0.1.evil.com", NULL, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_cloud_client_new(&c, "ftp://127.0.0.1", NULL, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_cloud_client_new(&c, "https://user:pw@api.mcpr.app", NULL, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_cloud_client_new(&c, "not a url", NULL, &err), MCPR_EINVAL);
  assert_null(c);
  const char *ok[] = {"https://api.mcpr.app/", "http://localhost:1", "http://127.8.9.1:2",
                      "http://[::1]:3"};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(mcpr_cloud_client_new(&c, ok[i], NULL, &err), MCPR_OK);
    mcpr_cloud_client_free(c);
  }
  assert_int_equal(mcpr_cloud_client_new(&c, "https://api.mcpr.app///", NULL, &err), MCPR_OK);
  assert_string_equal(mcpr_cloud_client_base_url(c), "https://api.mcpr.app");
  mcpr_cloud_client_free(c);
  /* nothing listening: a network error, not a crash */
  fakecloud *gone = fc_start(NULL);
  char url[64];
  snprintf(url, sizeof url, "%s", fc_url(gone));
  fc_stop(gone);
  assert_int_equal(mcpr_cloud_client_new(&c, url, NULL, &err), MCPR_OK);
  char *rid = NULL;
  assert_int_equal(mcpr_cloud_login(c, "a@b.c", &rid, &err), MCPR_ENETWORK);
  assert_int_equal(mcpr_cloud_client_last_http_status(c), 0);
  mcpr_cloud_client_free(c);
  /* authenticated calls need a JWT first */
  assert_int_equal(mcpr_cloud_client_new(&c, "https://api.mcpr.app", NULL, &err), MCPR_OK);
  mcpr_cloud_project_list *pl = NULL;
  assert_int_equal(mcpr_cloud_list_projects(c, &pl, &err), MCPR_EAUTH);
  mcpr_cloud_client_free(c);
}

static void test_jwt_mask_redact(void **state) {
  (void)state;
  int64_t exp = 0;
  assert_int_equal(mcpr_jwt_exp(JWT, &exp, NULL), MCPR_OK);
  assert_int_equal(exp, 4102444800); /* {"exp":4102444800} */
  /* padding-free base64url with '-' / '_' : {"exp":1700000000,"s":"??>"} */
  assert_int_equal(mcpr_jwt_exp("x.eyJleHAiOjE3MDAwMDAwMDAsInMiOiI_Pz4ifQ.y", &exp, NULL), MCPR_OK);
  assert_int_equal(exp, 1700000000);
  assert_int_equal(mcpr_jwt_exp("nodots", &exp, NULL), MCPR_EPARSE);
  assert_int_equal(mcpr_jwt_exp("a.!!!.b", &exp, NULL), MCPR_EPARSE);
  assert_int_equal(mcpr_jwt_exp("a.eyJzdWIiOiJ4In0.b", &exp, NULL), MCPR_EPARSE); /* no exp */
  char m[64];
  assert_string_equal(mcpr_secret_mask("mcpr_abcdefghijklmnop1234", m, sizeof m), "mcpr_…1234");
  assert_string_equal(mcpr_secret_mask("sk_live_abcdefghijkl9876", m, sizeof m), "…9876");
  assert_string_equal(mcpr_secret_mask("short", m, sizeof m), "…");
  assert_string_equal(mcpr_secret_mask(NULL, m, sizeof m), "…");
  char text[256] = "token mcpr_abcdefghijklmnop1234 and again mcpr_abcdefghijklmnop1234.";
  assert_int_equal(mcpr_secret_redact(text, sizeof text, "mcpr_abcdefghijklmnop1234"), 2);
  assert_string_equal(text, "token mcpr_…1234 and again mcpr_…1234.");
}

static void test_login_cache(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "home/.mcpr/auth.json");
  char *home = tu_path(dir, "home");
  assert_int_equal(mkdir(home, 0755), 0);
  mcpr_error err = {0};
  mcpr_cloud_login_cache *c = NULL;
  assert_int_equal(mcpr_cloud_login_cache_load(path, &c, &err), MCPR_ENOTFOUND);
  mcpr_cloud_login_cache in = {.jwt = JWT, .email = "a@b.c", .cloud_url = "http://127.0.0.1:9"};
  assert_int_equal(mcpr_cloud_login_cache_save(path, &in, &err), MCPR_OK);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  char *mdir = tu_path(dir, "home/.mcpr");
  assert_int_equal(stat(mdir, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0700);
  assert_int_equal(mcpr_cloud_login_cache_load(path, &c, &err), MCPR_OK);
  assert_string_equal(c->jwt, JWT);
  assert_string_equal(c->email, "a@b.c");
  int64_t now = 4102444800 - 3600;
  assert_true(mcpr_cloud_login_cache_usable(c, "http://127.0.0.1:9/", now));
  assert_false(mcpr_cloud_login_cache_usable(c, "http://127.0.0.1:10", now));
  assert_false(mcpr_cloud_login_cache_usable(c, "http://127.0.0.1:9", 4102444800 - 299));
  assert_true(mcpr_cloud_login_cache_usable(c, "http://127.0.0.1:9", 4102444800 - 301));
  mcpr_cloud_login_cache_free(c);
  /* a broken file is an error that does not quote the file */
  FILE *fp = fopen(path, "w");
  fputs("{\"jwt\": \"" JWT "\", oops", fp);
  fclose(fp);
  assert_int_equal(mcpr_cloud_login_cache_load(path, &c, &err), MCPR_EPARSE);
  assert_null(strstr(err.message, "CANARY"));
  free(mdir);
  free(path);
  free(home);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_login_and_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_projects_servers_endpoints_tokens, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ids_are_escaped_in_paths, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_error_body_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_and_wrong_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_shape_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_huge_body_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redirect_to_other_host_keeps_credentials, setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_origin_redirect_is_followed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test(test_network_error_and_url_rules),
      cmocka_unit_test(test_jwt_mask_redact),
      cmocka_unit_test(test_login_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
