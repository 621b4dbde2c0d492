/* The setup flow (mcpr_cloud_setup_*) against the fake cloud: a new login,
 * a saved login reused only while it has more than 5 minutes left, what is
 * asked, where it stops, and that the config is written last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fakecloud.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define TOKEN "mcpr_FLOWtok3n0123456789abcdef"
#define JWT_EXP 2000000000LL
#define JWT                                                                                 \
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6MjAwMDAwMDAwMH0."          \
  "c2lnbmF0dXJlU0VDUkVUc2ln"

typedef struct seen {
  char log[4096];
  int asked[8];
  const char *answer_project; /* NULL: no answer */
} seen;

static void on_note(void *ctx, const mcpr_cloud_setup_note *n) {
  seen *s = ctx;
  size_t len = strlen(s->log);
  snprintf(s->log + len, sizeof s->log - len, "%d:%s:%d:%s:%s;", (int)n->kind,
           n->name ? n->name : "", n->created, n->token_mask ? n->token_mask : "",
           n->server ? n->server : "");
}

static char *on_ask(void *ctx, mcpr_cloud_setup_question q, const char *about, const char *def) {
  seen *s = ctx;
  (void)about;
  (void)def;
  s->asked[q]++;
  return q == MCPR_SETUP_Q_PROJECT && s->answer_project ? strdup(s->answer_project) : NULL;
}

static void script_token(fakecloud *fc, int token_status) {
  fc_route(fc, "POST", "/api/auth/cli/login", 200, "{\"request_id\":\"req-7\"}");
  fc_route(fc, "POST", "/api/auth/cli/verify", 200,
           "{\"token\":\"" JWT "\",\"user\":{\"id\":\"u1\",\"email\":\"dev@example.com\"}}");
  fc_route(fc, "GET", "/api/projects", 200, "[{\"id\":\"p0\",\"name\":\"Other\",\"slug\":\"other\"}]");
  fc_route(fc, "POST", "/api/projects", 201, "{\"id\":\"p1\",\"name\":\"demo\",\"slug\":\"demo\"}");
  fc_route(fc, "GET", "/api/servers/by-project/p1", 200, "[]");
  fc_route(fc, "GET", "/api/servers/by-project/p0", 200,
           "[{\"id\":\"s0\",\"name\":\"api\",\"slug\":\"api\",\"project_id\":\"p0\"}]");
  fc_route(fc, "POST", "/api/servers/by-project/p1", 201,
           "{\"id\":\"s1\",\"name\":\"api\",\"slug\":\"api\",\"project_id\":\"p1\"}");
  fc_route(fc, "GET", "/api/endpoints/by-server/s1", 200, "[]");
  fc_route(fc, "POST", "/api/endpoints/by-server/s1", 201,
           "{\"id\":\"e1\",\"name\":\"tun\",\"status\":\"pending\",\"server_id\":\"s1\"}");
  fc_route(fc, "POST", "/api/projects/p1/tokens", token_status,
           token_status == 201 ? "{\"id\":\"t1\",\"token\":\"" TOKEN "\"}" : "{\"message\":\"boom\"}");
  fc_route(fc, "POST", "/api/projects/p0/tokens", 201, "{\"id\":\"t2\",\"token\":\"" TOKEN "\"}");
}

static void script(fakecloud *fc) { script_token(fc, 201); }

/* A fake cloud answering script(), and where the flow writes: a config
 * and a login cache in a new temporary directory. */
typedef struct rig {
  fakecloud *fc;
  char *dir, *cfg_path, *cache_path;
} rig;

static void rig_start(rig *r) {
  r->fc = fc_start(NULL);
  script(r->fc);
  r->dir = tu_tmpdir();
  r->cfg_path = tu_path(r->dir, "mcpr.toml");
  r->cache_path = tu_path(r->dir, "auth.json");
}

static void rig_stop(rig *r) {
  free(r->cfg_path);
  free(r->cache_path);
  tu_rmdir(r->dir);
  fc_stop(r->fc);
}

static void test_new_login_creates_everything(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  seen s = {0};
  mcpr_cloud_setup_options o = {.cloud_url = fc_url(r.fc), .config_path = r.cfg_path,
                                .email = "dev@example.com", .code = "123456",
                                .project = "demo", .server = "api", .endpoint = "tun",
                                .login_cache_path = r.cache_path, .ask = on_ask,
                                .note = on_note, .ctx = &s};
  mcpr_cloud_setup *flow = mcpr_cloud_setup_new(&o);
  mcpr_error err = {0};
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_false(mcpr_cloud_setup_reuses_login(flow));
  assert_int_equal(mcpr_cloud_setup_run(flow, &err), MCPR_OK);
  assert_int_equal(mcpr_cloud_setup_failed_step(flow), MCPR_SETUP_NONE);
  char want[512];
  snprintf(want, sizeof want, "%d:dev@example.com:0::;%d:demo:1::;%d:api:1::;%d:tun:1::;%d::0:mcpr_…cdef:api;",
           MCPR_SETUP_NOTE_LOGGED_IN, MCPR_SETUP_NOTE_PROJECT, MCPR_SETUP_NOTE_SERVER,
           MCPR_SETUP_NOTE_ENDPOINT, MCPR_SETUP_NOTE_CONFIG_WRITTEN);
  assert_string_equal(s.log, want);
  for (int q = 0; q < 8; q++)
    assert_int_equal(s.asked[q], 0);
  /* secrets it holds are masked out of any text */
  char text[256] = "token " TOKEN " jwt " JWT;
  assert_int_equal(mcpr_cloud_setup_redact(flow, text, sizeof text), 2);
  assert_null(strstr(text, "FLOWtok3n"));
  assert_null(strstr(text, "c2lnbmF0dXJl"));
  mcpr_cloud_setup_free(flow);

  mcpr_config *cfg = NULL;
  assert_int_equal(mcpr_config_load(r.cfg_path, &cfg, &err), MCPR_OK);
  assert_string_equal(cfg->cloud.token, TOKEN);
  assert_string_equal(cfg->cloud.server, "api");
  assert_string_equal(cfg->cloud.endpoint, fc_url(r.fc)); /* not the default cloud */
  mcpr_config_free(cfg);
  struct stat sb;
  assert_int_equal(stat(r.cfg_path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  /* the login was saved, for this cloud */
  mcpr_cloud_login_cache *cache = NULL;
  assert_int_equal(mcpr_cloud_login_cache_load(r.cache_path, &cache, &err), MCPR_OK);
  assert_string_equal(cache->jwt, JWT);
  assert_string_equal(cache->email, "dev@example.com");
  mcpr_cloud_login_cache_free(cache);
  rig_stop(&r);
}

static void test_saved_login_reused_only_with_time_left(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  mcpr_cloud_login_cache saved = {.jwt = JWT, .email = "old@example.com",
                                  .cloud_url = (char *)fc_url(r.fc)};
  mcpr_error err = {0};
  assert_int_equal(mcpr_cloud_login_cache_save(r.cache_path, &saved, &err), MCPR_OK);

  /* 4 minutes left: not reused */
  seen s = {0};
  mcpr_cloud_setup_options o = {.cloud_url = fc_url(r.fc), .config_path = r.cfg_path,
                                .project = "other", .server = "api",
                                .login_cache_path = r.cache_path, .now_s = JWT_EXP - 240,
                                .ask = on_ask, .note = on_note, .ctx = &s};
  mcpr_cloud_setup *flow = mcpr_cloud_setup_new(&o);
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_false(mcpr_cloud_setup_reuses_login(flow));
  /* no e-mail given and none answered: stops before any call */
  assert_int_not_equal(mcpr_cloud_setup_run(flow, &err), MCPR_OK);
  assert_int_equal(mcpr_cloud_setup_failed_step(flow), MCPR_SETUP_ASK_EMAIL);
  assert_int_equal(s.asked[MCPR_SETUP_Q_EMAIL], 1);
  assert_int_equal(fc_request_count(r.fc), 0);
  mcpr_cloud_setup_free(flow);

  /* another cloud URL: not reused either */
  o.now_s = JWT_EXP - 3600;
  o.cloud_url = "https://other.example";
  flow = mcpr_cloud_setup_new(&o);
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_false(mcpr_cloud_setup_reuses_login(flow));
  mcpr_cloud_setup_free(flow);

  /* 10 minutes left, same cloud: reused, nothing asked, existing project and server */
  o.cloud_url = fc_url(r.fc);
  o.now_s = JWT_EXP - 600;
  memset(&s, 0, sizeof s);
  flow = mcpr_cloud_setup_new(&o);
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_true(mcpr_cloud_setup_reuses_login(flow));
  assert_int_equal(mcpr_cloud_setup_run(flow, &err), MCPR_OK);
  char want[512];
  snprintf(want, sizeof want, "%d:old@example.com:0::;%d:other:0::;%d:api:0::;%d::0:mcpr_…cdef:api;",
           MCPR_SETUP_NOTE_SAVED_LOGIN, MCPR_SETUP_NOTE_PROJECT, MCPR_SETUP_NOTE_SERVER,
           MCPR_SETUP_NOTE_CONFIG_WRITTEN);
  assert_string_equal(s.log, want);
  assert_int_equal(fc_count(r.fc, "POST", "/api/auth/cli/login"), 0);
  assert_int_equal(fc_count(r.fc, "POST", "/api/projects"), 0);
  assert_int_equal(fc_count(r.fc, "POST", "/api/projects/p0/tokens"), 1);
  mcpr_cloud_setup_free(flow);
  rig_stop(&r);
}

/* No project given: the projects are listed, then asked; no answer stops
 * the flow there and leaves the config alone. */
static void test_project_asked_and_config_untouched(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  seen s = {0};
  mcpr_cloud_setup_options o = {.cloud_url = fc_url(r.fc), .config_path = r.cfg_path,
                                .email = "dev@example.com", .code = "1", .server = "api",
                                .login_cache_path = r.cache_path, .ask = on_ask,
                                .note = on_note, .ctx = &s};
  mcpr_cloud_setup *flow = mcpr_cloud_setup_new(&o);
  mcpr_error err = {0};
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_int_not_equal(mcpr_cloud_setup_run(flow, &err), MCPR_OK);
  assert_int_equal(mcpr_cloud_setup_failed_step(flow), MCPR_SETUP_ASK_PROJECT);
  assert_int_equal(s.asked[MCPR_SETUP_Q_PROJECT], 1);
  char choice[64];
  snprintf(choice, sizeof choice, "%d:other:0::;", MCPR_SETUP_NOTE_PROJECT_CHOICE);
  assert_non_null(strstr(s.log, choice));
  struct stat sb;
  assert_int_not_equal(stat(r.cfg_path, &sb), 0);
  mcpr_cloud_setup_free(flow);
  /* a server error names its step */
  fc_reset(r.fc);
  script_token(r.fc, 500);
  memset(&s, 0, sizeof s);
  s.answer_project = "demo";
  flow = mcpr_cloud_setup_new(&o);
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_OK);
  assert_int_not_equal(mcpr_cloud_setup_run(flow, &err), MCPR_OK);
  assert_int_equal(mcpr_cloud_setup_failed_step(flow), MCPR_SETUP_CREATE_TOKEN);
  assert_non_null(strstr(err.message, "boom"));
  assert_int_not_equal(stat(r.cfg_path, &sb), 0);
  mcpr_cloud_setup_free(flow);
  /* a URL that would send credentials in clear */
  o.cloud_url = "http://example.com";
  flow = mcpr_cloud_setup_new(&o);
  assert_int_equal(mcpr_cloud_setup_prepare(flow, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_cloud_setup_failed_step(flow), MCPR_SETUP_CLIENT);
  mcpr_cloud_setup_free(flow);
  mcpr_cloud_setup_free(NULL);
  assert_true(mcpr_cloud_slug_valid("a-b_C9"));
  assert_false(mcpr_cloud_slug_valid("a b"));
  assert_false(mcpr_cloud_slug_valid(""));
  rig_stop(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_login_creates_everything),
      cmocka_unit_test(test_saved_login_reused_only_with_time_left),
      cmocka_unit_test(test_project_asked_and_config_untouched),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
