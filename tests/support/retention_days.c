/* retention_days.c — see retention_days.h. */
#include <stdio.h>
#include <string.h>

#include "retention_days.h"
#include "testutil.h"

static const char *const TOOLS[] = {"search", "fetch", NULL};

static void record(mcpr_store *s, const mcpr_store_event *e) {
  while (mcpr_store_record(s, e) == MCPR_EQUEUEFULL)
    tu_sleep_ms(5);
}

void rd_write_days(const char *target, int64_t now, const mcpr_store_options *o) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, target, o, &err), MCPR_OK);
  for (int k = 0; k < RD_DAYS; k++) {
    int64_t start = now - k * RD_DAY - RD_DAY / 2;
    char sid[32];
    snprintf(sid, sizeof sid, "sess-%02d", k);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION};
    e.u.session = (mcpr_session_event){.session_id = sid, .proxy = k % 2 ? "a" : "b",
                                       .started_at_ms = start, .client_name = "claude-ai"};
    record(s, &e);
    for (int i = 0; i < RD_PER_SESSION; i++) {
      int64_t ts = start + i * 45000;
      char id[MCPR_UUID_STRLEN + 1];
      mcpr_uuid_v7(ts, id);
      const char *tool = TOOLS[i % 3];
      e = (mcpr_store_event){.kind = MCPR_STORE_EVENT_REQUEST};
      e.u.request = (mcpr_request_event){
          .request_id = id, .ts_ms = ts, .proxy = k % 2 ? "a" : "b", .session_id = sid,
          .method = tool ? "tools/call" : "tools/list", .tool = tool,
          .latency_us = 1000 + i * 37,
          .status = i % 7 == 3 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK, .bytes_in = i,
          .bytes_out = -1};
      record(s, &e);
    }
    if (k >= 2) {
      e = (mcpr_store_event){.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
      e.u.session_closed = (mcpr_session_closed_event){sid, start + RD_HOUR};
      record(s, &e);
    }
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

rd_totals rd_stats_since(const char *target, int64_t since,
                         void (*raw_max)(mcpr_query *q, int64_t rows)) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, target, &err), MCPR_OK);
  raw_max(q, 0);
  mcpr_stats st;
  mcpr_stats_filter f = {NULL, since, 0};
  assert_int_equal(mcpr_query_stats(q, &f, &st, &err), MCPR_OK);
  rd_totals t = {st.total_calls, st.total_errors, 0, 0, 0};
  for (size_t i = 0; i < st.count; i++) {
    t.bytes_in += st.rows[i].total_bytes_in;
    if (strcmp(st.rows[i].label, "search") == 0) {
      t.search_calls = st.rows[i].calls;
      t.search_errors = st.rows[i].errors;
    }
  }
  mcpr_stats_release(&st);
  mcpr_query_close(q);
  return t;
}

void rd_assert_totals_equal(rd_totals a, rd_totals b) {
  assert_int_equal(a.calls, b.calls);
  assert_int_equal(a.errors, b.errors);
  assert_int_equal(a.search_calls, b.search_calls);
  assert_int_equal(a.search_errors, b.search_errors);
  assert_int_equal(a.bytes_in, b.bytes_in);
}

mcpr_store_info rd_info(const char *target) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  mcpr_store_info in;
  assert_int_equal(mcpr_query_open(&q, target, &err), MCPR_OK);
  assert_int_equal(mcpr_query_store_info(q, &in, &err), MCPR_OK);
  mcpr_query_close(q);
  return in;
}
