/* The cloud spool on disk: kill -9 in the middle of an upload, the size
 * cap, torn and damaged records. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakecloud.h"
#include "mcpr/sink.h"
#include "sink/spool.h"
#include "testutil.h"

#define PATH "/api/ingest-events"

static void opts_for(mcpr_cloud_sink_options *o, const char *url, const char *spool) {
  mcpr_cloud_sink_options_init(o);
  o->endpoint = url;
  o->token = "tok";
  o->spool_dir = spool;
  o->batch_size = 10;
  o->flush_interval_ms = 100;
  o->backoff_base_ms = 50;
  o->close_timeout_ms = 1000;
}

static void append_batch(const char *spool, int from, int n, uint64_t cap) {
  char body[8192];
  size_t len = 0;
  body[len++] = '[';
  for (int i = from; i < from + n; i++)
    len += (size_t)snprintf(body + len, sizeof body - len,
                            "%s{\"type\":\"session_end\",\"session_id\":\"s-%d\",\"ts\":%d}",
                            i > from ? "," : "", i, i);
  body[len++] = ']';
  mcpr_error err = {0};
  assert_int_equal(mcpr__spool_append(spool, body, len, (uint32_t)n, cap, &err), MCPR_OK);
}

/* Sessions s-<i> delivered, by count. */
static void delivered_ids(fakecloud *fc, int *seen, int n) {
  for (size_t i = 0; i < fc_request_count(fc); i++) {
    fc_request q;
    assert_true(fc_request_get(fc, i, &q));
    json_t *arr = json_loads(q.body, 0, NULL);
    size_t j;
    json_t *e;
    json_array_foreach(arr, j, e) {
      int id = (int)strtol(json_string_value(json_object_get(e, "session_id")) + 2, NULL, 10);
      if (id >= 0 && id < n)
        seen[id]++;
    }
    json_decref(arr);
    fc_request_release(&q);
  }
}

static void test_kill_mid_upload(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *spool = tu_path(dir, "cloud-spool");
  fakecloud *fc = fc_start(NULL);
  fc_response slow = {.status = 200, .body = "{}", .delay_ms = 30000};
  fc_route_ex(fc, "POST", PATH, &slow);
  /* The child says when all 30 events are spooled: the first upload may
   * start before the last batch is, and the kill must come after both. */
  int spooled[2];
  assert_int_equal(pipe(spooled), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(spooled[0]);
    mcpr_cloud_sink_options o;
    opts_for(&o, fc_url(fc), spool);
    mcpr_fanout *fan = NULL;
    mcpr_sink *s = NULL;
    if (mcpr_fanout_new(&fan, NULL) || mcpr_sink_cloud_new(&s, &o, NULL) ||
        mcpr_fanout_add(fan, s, NULL))
      _exit(3);
    for (int i = 0; i < 30; i++) {
      char sid[16];
      snprintf(sid, sizeof sid, "s-%d", i);
      mcpr_event ev;
      mcpr_event_init(&ev, MCPR_EVENT_SESSION_END);
      ev.u.session_end.session_id = sid;
      ev.u.session_end.ts = i;
      mcpr_fanout_emit_wait(fan, &ev, -1);
    }
    mcpr_fanout_flush(fan, -1, NULL);
    if (write(spooled[1], "s", 1) != 1)
      _exit(4);
    for (;;)
      pause(); /* the upload hangs on the slow server: killed here */
  }
  close(spooled[1]);
  char done;
  assert_int_equal(read(spooled[0], &done, 1), 1);
  close(spooled[0]);
  for (int i = 0; i < 200 && fc_count(fc, "POST", PATH) < 1; i++)
    tu_sleep_ms(50);
  assert_int_equal(fc_count(fc, "POST", PATH), 1); /* the first batch is in flight */
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  mcpr_spool_status s;
  assert_int_equal(mcpr_cloud_spool_status(spool, &s, NULL), MCPR_OK);
  assert_int_equal(s.pending_events, 30);
  /* The next process delivers everything; the interrupted batch again,
   * with the same Idempotency-Key. */
  fc_request first;
  assert_true(fc_request_get(fc, 0, &first));
  char key[128];
  assert_non_null(fc_header(&first, "Idempotency-Key", key, sizeof key));
  fc_request_release(&first);
  fc_reset(fc);
  fc_route(fc, "POST", PATH, 200, "{}");
  mcpr_cloud_sink_options o;
  opts_for(&o, fc_url(fc), spool);
  mcpr_error err = {0};
  assert_int_equal(mcpr_cloud_spool_deliver(&o, 10000, &s, &err), MCPR_OK);
  assert_int_equal(s.pending_batches, 0);
  assert_int_equal(s.delivered_events, 30);
  int seen[30] = {0};
  delivered_ids(fc, seen, 30);
  for (int i = 0; i < 30; i++)
    assert_int_equal(seen[i], 1);
  fc_request again;
  assert_true(fc_request_get(fc, 0, &again));
  char key2[128];
  assert_non_null(fc_header(&again, "Idempotency-Key", key2, sizeof key2));
  assert_string_equal(key, key2);
  fc_request_release(&again);
  fc_stop(fc);
  free(spool);
  tu_rmdir(dir);
}

static void test_cap_drops_oldest_and_counts(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *spool = tu_path(dir, "cloud-spool");
  /* Each record is ~92 + ~50 bytes per event; 10 events ≈ 600 bytes. */
  for (int b = 0; b < 10; b++)
    append_batch(spool, b * 10, 10, 2000);
  mcpr_spool_status s;
  assert_int_equal(mcpr_cloud_spool_status(spool, &s, NULL), MCPR_OK);
  assert_true(s.pending_bytes <= 2000);
  assert_true(s.pending_batches >= 2);
  assert_int_equal(s.dropped_batches + s.pending_batches, 10);
  assert_int_equal(s.dropped_events, s.dropped_batches * 10);
  /* The newest are the ones kept. */
  fakecloud *fc = fc_start(NULL);
  fc_route(fc, "POST", PATH, 200, "{}");
  mcpr_cloud_sink_options o;
  opts_for(&o, fc_url(fc), spool);
  assert_int_equal(mcpr_cloud_spool_deliver(&o, 10000, &s, NULL), MCPR_OK);
  int seen[100] = {0};
  delivered_ids(fc, seen, 100);
  assert_int_equal(seen[99], 1);
  assert_int_equal(seen[0], 0);
  /* Below the cap nothing is dropped. */
  uint64_t dropped = s.dropped_batches;
  append_batch(spool, 0, 1, 1u << 20);
  append_batch(spool, 1, 1, 1u << 20);
  assert_int_equal(mcpr_cloud_spool_status(spool, &s, NULL), MCPR_OK);
  assert_int_equal(s.dropped_batches, dropped);
  assert_int_equal(s.pending_batches, 2);
  fc_stop(fc);
  free(spool);
  tu_rmdir(dir);
}

static void test_torn_and_corrupt_records(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *spool = tu_path(dir, "cloud-spool");
  for (int b = 0; b < 4; b++)
    append_batch(spool, b * 5, 5, 1u << 20);
  mcpr__spool_entry *v = NULL;
  size_t n = 0;
  assert_int_equal(mcpr__spool_list(spool, &v, &n, NULL), MCPR_OK);
  assert_int_equal(n, 4);
  /* Record 1: torn (cut short). Record 2: one byte of its body flipped. */
  char *p1 = tu_path(spool, v[1].name), *p2 = tu_path(spool, v[2].name);
  assert_int_equal(truncate(p1, (off_t)v[1].size - 7), 0);
  int fd = open(p2, O_RDWR);
  char c;
  assert_int_equal(pread(fd, &c, 1, 100), 1);
  c ^= 0x20;
  assert_int_equal(pwrite(fd, &c, 1, 100), 1);
  close(fd);
  /* A temporary file left by a writer that died (a reaped child's pid). */
  pid_t dead = fork();
  if (dead == 0)
    _exit(0);
  waitpid(dead, NULL, 0);
  char tmpname[64];
  snprintf(tmpname, sizeof tmpname, ".tmp-%d-7", (int)dead);
  char *pt = tu_path(spool, tmpname);
  FILE *f = fopen(pt, "w");
  fputs("MCPRSPL1\x01", f);
  fclose(f);

  fakecloud *fc = fc_start(NULL);
  fc_route(fc, "POST", PATH, 200, "{}");
  mcpr_cloud_sink_options o;
  opts_for(&o, fc_url(fc), spool);
  mcpr_spool_status s;
  mcpr_error err = {0};
  assert_int_equal(mcpr_cloud_spool_deliver(&o, 10000, &s, &err), MCPR_OK);
  assert_int_equal(s.delivered_batches, 2);
  assert_int_equal(s.delivered_events, 10);
  assert_int_equal(s.corrupt_records, 3);
  assert_int_equal(s.pending_batches, 0);
  assert_int_equal(fc_count(fc, "POST", PATH), 2);
  int seen[20] = {0};
  delivered_ids(fc, seen, 20);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(seen[i], 1);      /* batch 0 */
    assert_int_equal(seen[15 + i], 1); /* batch 3 */
  }
  /* The bad ones are set aside with the reason, not deleted. */
  char cmd[4200];
  snprintf(cmd, sizeof cmd,
           "grep -q 'torn record' %s/corrupt/%s.reason && grep -q checksum %s/corrupt/%s.reason",
           spool, v[1].name, spool, v[2].name);
  assert_int_equal(system(cmd), 0);
  fc_stop(fc);
  free(p1);
  free(p2);
  free(pt);
  free(v);
  free(spool);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill_mid_upload),
      cmocka_unit_test(test_cap_drops_oldest_and_counts),
      cmocka_unit_test(test_torn_and_corrupt_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
