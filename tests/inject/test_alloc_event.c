/*
 * Allocation failure injection (allocfail.h) into the proxy-event decoder
 * and encoder: for N = 1, 2, ... the Nth allocation of decode + encode
 * fails — every allocation of libmcpr and libc; jansson's own are exempt
 * here, and injected too in test_alloc_event_jansson.c, where
 * mcpr_process_init() routes them through mcpr (jansson's lexer can drop a
 * byte on a failed allocation and still succeed, akheron/jansson#362; the
 * decoder must then say ENOMEM). Each run must either give exactly the result of a run without
 * failure, or fail with MCPR_ENOMEM and a message — never a crash, never a
 * leak (balance checked here, LeakSanitizer in the asan run), never a
 * different event, never a misleading "invalid JSON" for a valid line.
 */
#define _GNU_SOURCE /* dladdr, for allocfail.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocfail.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

static const char *const LINES[] = {
    "{\"type\":\"request\",\"id\":\"019b76a3-bd68-7a3b-8199-c6b41c80317f\",\"ts\":1767222001000,"
    "\"proxy\":\"docs\",\"session_id\":\"s-1\",\"method\":\"POST\",\"path\":\"/mcp\","
    "\"mcp_method\":\"tools/call\",\"tool\":\"search\",\"status\":200,\"latency_us\":1500,"
    "\"upstream_us\":1200,\"request_size\":10,\"response_size\":20,\"error_code\":-32601,"
    "\"error_msg\":\"nope\",\"client_name\":\"claude\",\"client_version\":\"1.0\",\"note\":null,"
    "\"stage_timings\":{\"parse\":1.5,\"upstream\":[1,2,{\"x\":null}]},\"server\":\"docs\"}\n",
    "{\"type\":\"schema_version_created\",\"ts\":1,\"upstream_id\":\"u\",\"upstream_url\":\"http://x\","
    "\"method\":\"tools/list\",\"version\":3,\"content_hash\":\"abc\",\"payload\":{\"tools\":"
    "[{\"name\":\"a\",\"inputSchema\":{\"type\":\"object\"}},{\"name\":\"b\"}]}}",
    "{\"type\":\"session_start\",\"session_id\":\"s\",\"proxy\":\"p\",\"ts\":5,\"client_name\":\"c\"}",
    "{\"type\":\"heartbeat\",\"ts\":1,\"uptime_secs\":10,\"mcp_status\":\"up\"}",
};

/* decode + encode; *text is the encoding or NULL. */
static mcpr_status run_once(const char *line, char **text, mcpr_error *err) {
  mcpr_event ev;
  *text = NULL;
  mcpr_status st = mcpr_event_decode(line, strlen(line), &ev, err);
  if (st != MCPR_OK)
    return st;
  *text = mcpr_event_encode(&ev, NULL, err);
  st = *text ? MCPR_OK : err->status;
  mcpr_event_release(&ev);
  return st;
}

static void test_decode_encode_every_allocation(void **state) {
  (void)state;
  long bad = 0;
  for (size_t i = 0; i < sizeof LINES / sizeof LINES[0]; i++) {
    mcpr_error err = {0};
    char *want = NULL;
    assert_int_equal(run_once(LINES[i], &want, &err), MCPR_OK);
    af_arm(0); /* warm-up: lazily made one-time allocations */
    char *t = NULL;
    run_once(LINES[i], &t, &err);
    free(t);
    af_disarm();
    long n = 1, failures = 0, wrong = 0;
    for (;; n++) {
      char *got = NULL;
      mcpr_error_clear(&err);
      af_arm(n);
      mcpr_status st = run_once(LINES[i], &got, &err);
      bool same = got && strcmp(got, want) == 0;
      if (st == MCPR_OK && !same)
        fprintf(stderr, "line %zu, allocation %ld failed: OK but\n got  %s\n want %s\n", i, n,
                got ? got : "(null)", want);
      free(got);
      af_result r = af_disarm();
      if (r.balance != 0)
        fail_msg("line %zu, allocation %ld of %ld failed: %ld blocks leaked", i, n,
                 r.allocations, r.balance);
      if (!r.failed) { /* a run without reaching N: the end */
        assert_int_equal(st, MCPR_OK);
        assert_true(same);
        break;
      }
      if (st == MCPR_OK) {
        if (!same) /* a failure absorbed must not change the result */
          fail_msg("line %zu, allocation %ld failed: OK but a different event", i, n);
        continue;
      }
      failures++;
      if (st != MCPR_ENOMEM || err.message[0] == '\0') {
        if (wrong++ < 5)
          fprintf(stderr, "line %zu, allocation %ld failed: got %s \"%s\", want ENOMEM\n", i,
                  n, mcpr_status_name(st), err.message);
      }
    }
    fprintf(stderr, "line %zu: %ld allocations, %ld runs failed, %ld of them not as ENOMEM\n", i,
            n - 1, failures, wrong);
    assert_true(n > 1);
    bad += wrong;
    free(want);
  }
  assert_int_equal(bad, 0);
}

int main(void) {
  af_install();
#ifdef WITH_JANSSON
  /* jansson's allocations go through mcpr's hook, which sees a failure
   * that jansson itself would absorb (akheron/jansson#362). */
  mcpr_process_init();
#else
  atomic_store(&af_json_exempt, true);
#endif
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_encode_every_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
