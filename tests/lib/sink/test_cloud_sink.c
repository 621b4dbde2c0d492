// ctest-labels: tsan
/* The cloud sink against a fake cloud on loopback: an outage then
 * recovery delivers every event exactly once (by id), 429 + Retry-After,
 * 400 quarantined, 401 pauses and the next sink delivers; the token never
 * goes to a look-alike host or another origin, and never comes back in
 * what the sink stores, even from a server that echoes it. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecloud.h"
#include "mcpr/sink.h"
#include "testutil.h"

#define PATH "/api/ingest-events"

typedef struct rig {
  char *dir, *spool;
  fakecloud *fc;
  mcpr_fanout *fan;
} rig;

static void rig_start(rig *r) {
  memset(r, 0, sizeof *r);
  r->dir = tu_tmpdir();
  r->spool = tu_path(r->dir, "cloud-spool");
  r->fc = fc_start(NULL);
  assert_non_null(r->fc);
}

static void rig_sink(rig *r, size_t batch_size, uint32_t backoff_base_ms) {
  mcpr_cloud_sink_options o;
  mcpr_cloud_sink_options_init(&o);
  o.endpoint = fc_url(r->fc);
  o.token = "tok-secret";
  o.server = "my-server";
  o.spool_dir = r->spool;
  o.batch_size = batch_size;
  o.flush_interval_ms = 100;
  o.backoff_base_ms = backoff_base_ms;
  o.backoff_max_ms = backoff_base_ms * 8;
  o.close_timeout_ms = 2000;
  mcpr_sink *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_fanout_new(&r->fan, &err), MCPR_OK);
  if (mcpr_sink_cloud_new(&s, &o, &err) != MCPR_OK)
    fail_msg("%s", err.message);
  assert_int_equal(mcpr_fanout_add(r->fan, s, &err), MCPR_OK);
}

static void emit_requests(rig *r, int from, int n) {
  for (int i = from; i < from + n; i++) {
    char id[32];
    snprintf(id, sizeof id, "e-%05d", i);
    mcpr_event ev;
    mcpr_event_init(&ev, MCPR_EVENT_REQUEST);
    ev.u.request.id = id;
    ev.u.request.ts = 1700000000000 + i;
    ev.u.request.proxy = "api";
    ev.u.request.method = "POST";
    ev.u.request.status = 200;
    ev.u.request.latency_us = i;
    assert_int_equal(mcpr_fanout_emit_wait(r->fan, &ev, -1), MCPR_OK);
  }
}

static mcpr_spool_status status_of(rig *r) {
  mcpr_spool_status s;
  assert_int_equal(mcpr_cloud_spool_status(r->spool, &s, NULL), MCPR_OK);
  return s;
}

static bool wait_for(rig *r, uint64_t delivered_events, int timeout_ms) {
  int64_t end = tu_mono_ms() + timeout_ms;
  while (tu_mono_ms() < end) {
    mcpr_spool_status s = status_of(r);
    if (s.delivered_events >= delivered_events && s.pending_batches == 0)
      return true;
    tu_sleep_ms(50);
  }
  return false;
}

/* Wait (up to 10 s) until the fake cloud got n POSTs to PATH, looking
 * every poll_ms. */
static void wait_posts(rig *r, size_t n, int poll_ms) {
  int64_t end = tu_mono_ms() + 10000;
  while (fc_count(r->fc, "POST", PATH) < n && tu_mono_ms() < end)
    tu_sleep_ms(poll_ms);
}

/* Wait (up to 10 s) until the spool has quarantined n batches. */
static void wait_rejected(rig *r, uint64_t n) {
  int64_t end = tu_mono_ms() + 10000;
  while (status_of(r).rejected_batches < n && tu_mono_ms() < end)
    tu_sleep_ms(20);
}

static void rig_stop(rig *r) {
  if (r->fan)
    mcpr_fanout_close(r->fan, NULL, 0);
  fc_stop(r->fc);
  free(r->spool);
  tu_rmdir(r->dir);
}

/* ids[] counts how often each event id arrived in a 2xx-answered POST. */
static void count_ids(fakecloud *fc, int *ids, int n, char keys[][64], size_t *nkeys) {
  for (size_t i = 0; i < fc_request_count(fc); i++) {
    fc_request q;
    assert_true(fc_request_get(fc, i, &q));
    char buf[256];
    assert_non_null(fc_header(&q, "Authorization", buf, sizeof buf));
    assert_string_equal(buf, "Bearer tok-secret");
    assert_non_null(fc_header(&q, "Content-Type", buf, sizeof buf));
    assert_string_equal(buf, "application/json");
    assert_non_null(fc_header(&q, "Idempotency-Key", buf, sizeof buf));
    if (keys)
      snprintf(keys[(*nkeys)++], 64, "%.63s", buf);
    json_t *arr = json_loads(q.body, 0, NULL);
    assert_true(json_is_array(arr));
    size_t j;
    json_t *e;
    json_array_foreach(arr, j, e) {
      assert_string_equal(json_string_value(json_object_get(e, "server")), "my-server");
      int id = (int)strtol(json_string_value(json_object_get(e, "id")) + 2, NULL, 10);
      assert_true(id >= 0 && id < n);
      ids[id]++;
    }
    json_decref(arr);
    fc_request_release(&q);
  }
}

/* Whether dir/name exists and contains needle. */
static bool file_has(const char *dir, const char *name, const char *needle) {
  char *path = tu_path(dir, name);
  FILE *f = fopen(path, "rb");
  free(path);
  assert_non_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strstr(buf, needle) != NULL;
}

static void test_outage_then_recovery(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  fc_route(r.fc, "POST", PATH, 503, "{\"message\":\"down for maintenance\"}");
  rig_sink(&r, 50, 50);
  emit_requests(&r, 0, 500);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK); /* all spooled */
  tu_sleep_ms(1500); /* the outage */
  mcpr_spool_status s = status_of(&r);
  assert_int_equal(s.pending_events, 500);
  assert_int_equal(s.delivered_events, 0);
  assert_non_null(strstr(s.last_error, "HTTP 503"));
  assert_non_null(strstr(s.last_error, "down for maintenance"));
  /* Keys used during the outage. */
  char keys_out[512][64];
  size_t nout = 0;
  int ids[600] = {0};
  count_ids(r.fc, ids, 600, keys_out, &nout);
  assert_true(nout >= 2); /* retried */
  fc_reset(r.fc);
  fc_route(r.fc, "POST", PATH, 202, "{}");
  assert_true(wait_for(&r, 500, 20000));
  memset(ids, 0, sizeof ids);
  char keys_ok[64][64];
  size_t nok = 0;
  count_ids(r.fc, ids, 600, keys_ok, &nok);
  for (int i = 0; i < 500; i++)
    if (ids[i] != 1)
      fail_msg("event %d delivered %d times", i, ids[i]);
  assert_int_equal(nok, 10);
  /* Every key sent during the outage is one of the delivered batches' keys. */
  for (size_t i = 0; i < nout; i++) {
    bool found = false;
    for (size_t j = 0; j < nok; j++)
      found |= strcmp(keys_out[i], keys_ok[j]) == 0;
    assert_true(found);
  }
  s = status_of(&r);
  assert_int_equal(s.delivered_batches, 10);
  rig_stop(&r);
}

static void test_retry_after(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  fc_response busy = {.status = 429, .body = "{\"message\":\"slow down\"}",
                      .headers = "Retry-After: 1\n", .once = true};
  fc_route_ex(r.fc, "POST", PATH, &busy);
  fc_route(r.fc, "POST", PATH, 200, "{}");
  rig_sink(&r, 10, 30000); /* backoff far longer than the test: only Retry-After can help */
  emit_requests(&r, 0, 10);
  wait_posts(&r, 1, 5);
  int64_t first = tu_mono_ms();
  assert_true(wait_for(&r, 10, 10000));
  assert_true(tu_mono_ms() - first >= 900); /* not before the server allowed it */
  assert_int_equal(fc_count(r.fc, "POST", PATH), 2);
  rig_stop(&r);
}

static void test_400_quarantined(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  fc_response bad = {.status = 400, .body = "{\"message\":\"event 3: unknown field\"}", .once = true};
  fc_route_ex(r.fc, "POST", PATH, &bad);
  fc_route(r.fc, "POST", PATH, 200, "{}");
  rig_sink(&r, 5, 50);
  emit_requests(&r, 0, 5);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  wait_rejected(&r, 1);
  emit_requests(&r, 5, 5);
  assert_true(wait_for(&r, 5, 10000));
  tu_sleep_ms(300);
  mcpr_spool_status s = status_of(&r);
  assert_int_equal(s.rejected_batches, 1);
  assert_int_equal(s.rejected_events, 5);
  assert_int_equal(s.delivered_events, 5);
  assert_int_equal(fc_count(r.fc, "POST", PATH), 2); /* never retried */
  assert_non_null(strstr(s.last_error, "event 3: unknown field"));
  /* The batch and the server's reason are kept. */
  char *rej = tu_path(r.spool, "rejected");
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "grep -q 'HTTP 400' %s/*.reason && ls %s/*.rec >/dev/null", rej, rej);
  assert_int_equal(system(cmd), 0);
  free(rej);
  rig_stop(&r);
}

static void test_401_pauses_then_new_token(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  /* A server that quotes the token it refused: the sink must not keep it. */
  fc_response refused = {.status = 401, .body = "{\"error\":\"invalid token {token}\"}",
                         .echo_auth = true};
  fc_route_ex(r.fc, "POST", PATH, &refused);
  rig_sink(&r, 5, 50);
  emit_requests(&r, 0, 5);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  wait_posts(&r, 1, 10);
  emit_requests(&r, 5, 10); /* keeps spooling while paused */
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  tu_sleep_ms(600);             /* 12 backoff bases: a retrying sink would have retried */
  assert_int_equal(fc_count(r.fc, "POST", PATH), 1);
  mcpr_spool_status s = status_of(&r);
  assert_true(s.paused);
  assert_int_equal(s.pending_events, 15);
  assert_non_null(strstr(s.last_error, "HTTP 401"));
  assert_non_null(strstr(s.last_error, "invalid token …"));
  assert_null(strstr(s.last_error, "tok-secret"));
  assert_false(file_has(r.spool, "state.json", "tok-secret"));
  mcpr_fanout_close(r.fan, NULL, 0);
  assert_int_equal(fc_count(r.fc, "POST", PATH), 1); /* close does not retry either */
  /* A new process with a token the cloud accepts delivers the spool. */
  fc_reset(r.fc);
  fc_route(r.fc, "POST", PATH, 200, "{}");
  rig_sink(&r, 5, 50);
  assert_true(wait_for(&r, 15, 10000));
  assert_false(status_of(&r).paused);
  rig_stop(&r);
}

static void test_unreachable_keeps_everything(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  /* A loopback port nothing listens on: bound, then closed. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
  mcpr_cloud_sink_options o;
  mcpr_cloud_sink_options_init(&o);
  o.endpoint = url;
  o.token = "tok-secret";
  o.spool_dir = r.spool;
  o.batch_size = 7;
  o.backoff_base_ms = 20;
  o.close_timeout_ms = 500;
  mcpr_sink *s = NULL;
  assert_int_equal(mcpr_fanout_new(&r.fan, NULL), MCPR_OK);
  assert_int_equal(mcpr_sink_cloud_new(&s, &o, NULL), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(r.fan, s, NULL), MCPR_OK);
  emit_requests(&r, 0, 20);
  mcpr_fanout_close(r.fan, NULL, 0);
  r.fan = NULL;
  mcpr_spool_status st = status_of(&r);
  assert_int_equal(st.pending_events, 20);
  assert_int_equal(st.pending_batches, 3);
  assert_non_null(strstr(st.last_error, "cannot reach"));
  rig_stop(&r);
}

static void test_endpoint_rules(void **state) {
  (void)state;
  mcpr_cloud_sink_options o;
  mcpr_cloud_sink_options_init(&o);
  o.token = "t";
  o.spool_dir = "/tmp";
  o.endpoint = "http://example.com";
  mcpr_sink *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_sink_cloud_new(&s, &o, &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "https"));
  o.token = NULL;
  assert_int_equal(mcpr_sink_cloud_new(&s, &o, &err), MCPR_EINVAL);
  char *d = mcpr_cloud_spool_dir("/var/lib/mcpr/store.db");
  assert_string_equal(d, "/var/lib/mcpr/cloud-spool");
  free(d);
  d = mcpr_cloud_spool_dir("store.db");
  assert_string_equal(d, "./cloud-spool");
  free(d);
}

/* Hosts that only look like loopback: refused at creation, before any
 * connection, so the token never travels to them. */
static void test_lookalike_endpoints_refused(void **state) {
  (void)state;
  fakecloud *attacker = fc_start("127.0.0.2");
  char spool_dir[] = "/tmp/mcpr-lookalike-XXXXXX";
  assert_non_null(mkdtemp(spool_dir));
  char at_attacker[2][128];
  snprintf(at_attacker[0], sizeof at_attacker[0], "http://localhost:8080@127.0.0.2:%d/",
           fc_port(attacker));
  snprintf(at_attacker[1], sizeof at_attacker[1], "http://127.0.0.1@127.0.0.2:%d",
           fc_port(attacker));
  const char *urls[] = {"http://127.attacker.example/", "http://localhost:8080@attacker.example/",
                        "http://127.0.0.1@attacker.example", at_attacker[0], at_attacker[1]};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    mcpr_cloud_sink_options o;
    mcpr_cloud_sink_options_init(&o);
    o.endpoint = urls[i];
    o.token = "tok-secret";
    o.spool_dir = spool_dir;
    mcpr_sink *s = NULL;
    mcpr_error err = {0};
    if (mcpr_sink_cloud_new(&s, &o, &err) != MCPR_EINVAL)
      fail_msg("%s accepted", urls[i]);
    assert_null(s);
    assert_non_null(strstr(err.message, "cloud endpoint"));
    assert_null(strstr(err.message, "tok-secret"));
    /* `mcpr cloud flush` takes the same road */
    assert_int_equal(mcpr_cloud_spool_deliver(&o, 1000, NULL, &err), MCPR_EINVAL);
  }
  tu_sleep_ms(200);
  assert_int_equal(fc_request_count(attacker), 0);
  fc_stop(attacker);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool_dir);
  assert_int_equal(system(cmd), 0);
}

/* Echoed credentials in every kind of answer stay out of what is kept:
 * state.json's last_error, the rejected batch's .reason. */
static void test_echoed_token_never_stored(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  fc_response down = {.status = 503, .body = "upstream got {auth}", .echo_auth = true,
                      .once = true};
  fc_response bad = {.status = 400, .body = "{\"message\":\"malformed; you sent {auth}\"}",
                     .echo_auth = true, .once = true};
  fc_route_ex(r.fc, "POST", PATH, &down);
  fc_route_ex(r.fc, "POST", PATH, &bad);
  rig_sink(&r, 5, 50);
  emit_requests(&r, 0, 5);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  wait_rejected(&r, 1);
  mcpr_spool_status s = status_of(&r);
  assert_int_equal(s.rejected_batches, 1);
  assert_int_equal(fc_count(r.fc, "POST", PATH), 2);
  assert_non_null(strstr(s.last_error, "malformed; you sent Bearer …"));
  assert_null(strstr(s.last_error, "tok-secret"));
  assert_false(file_has(r.spool, "state.json", "tok-secret"));
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "cat %s/rejected/*.reason | grep -q 'you sent Bearer …' && "
                            "! grep -rq tok-secret %s/rejected/*.reason",
           r.spool, r.spool);
  assert_int_equal(system(cmd), 0);
  rig_stop(&r);
}

/* A redirect to another origin is not followed (the token stays home) and
 * the batch stays in the spool; one within the origin is followed. */
static void test_redirects(void **state) {
  (void)state;
  rig r;
  rig_start(&r);
  fakecloud *other = fc_start("127.0.0.2");
  fc_route(other, "POST", PATH, 200, "{}");
  char loc[256];
  snprintf(loc, sizeof loc, "%s%s", fc_url(other), PATH);
  fc_redirect(r.fc, "POST", PATH, 307, loc);
  rig_sink(&r, 5, 50);
  emit_requests(&r, 0, 5);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  wait_posts(&r, 2, 10);
  assert_true(fc_count(r.fc, "POST", PATH) >= 2); /* retried, not given up */
  mcpr_spool_status s = status_of(&r);
  assert_int_equal(s.pending_events, 5);
  assert_int_equal(s.rejected_batches, 0);
  assert_non_null(strstr(s.last_error, "redirected (HTTP 307) to another host"));
  assert_int_equal(fc_request_count(other), 0);
  assert_false(fc_any_request_has_header(other, "Authorization"));
  /* The cloud moves the path within its origin: followed, delivered. */
  fc_reset(r.fc);
  fc_redirect(r.fc, "POST", PATH, 308, "/api/v2/ingest-events");
  fc_route(r.fc, "POST", "/api/v2/ingest-events", 202, "{}");
  assert_true(wait_for(&r, 5, 10000));
  assert_true(fc_count(r.fc, "POST", "/api/v2/ingest-events") >= 1);
  assert_int_equal(fc_request_count(other), 0);
  /* A 302 would make the upload a GET without its body: not followed, the
   * batch stays spooled (a 200 to that GET would have read as delivered). */
  fc_reset(r.fc);
  fc_redirect(r.fc, "POST", PATH, 302, "/api/v2/ingest-events");
  fc_route(r.fc, "GET", "/api/v2/ingest-events", 200, "{}");
  emit_requests(&r, 100, 3);
  assert_int_equal(mcpr_fanout_flush(r.fan, -1, NULL), MCPR_OK);
  wait_posts(&r, 2, 10);
  s = status_of(&r);
  assert_int_equal(s.pending_events, 3);
  assert_non_null(strstr(s.last_error, "HTTP 302"));
  assert_int_equal(fc_count(r.fc, "GET", "/api/v2/ingest-events"), 0);
  fc_stop(other);
  rig_stop(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_outage_then_recovery),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_400_quarantined),
      cmocka_unit_test(test_401_pauses_then_new_token),
      cmocka_unit_test(test_unreachable_keeps_everything),
      cmocka_unit_test(test_endpoint_rules),
      cmocka_unit_test(test_lookalike_endpoints_refused),
      cmocka_unit_test(test_echoed_token_never_stored),
      cmocka_unit_test(test_redirects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
