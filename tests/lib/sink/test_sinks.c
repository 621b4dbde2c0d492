// ctest-labels: tsan
/* The stream sinks (json, pretty) and the store sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/sink.h"
#include "testutil.h"

static const char *LINES[] = {
    "{\"type\":\"session_start\",\"session_id\":\"s1\",\"proxy\":\"api\",\"ts\":1700000000000,"
    "\"client_name\":\"cursor\",\"client_version\":\"0.42\",\"client_platform\":null}",
    "{\"type\":\"request\",\"id\":\"r1\",\"ts\":1700000000100,\"proxy\":\"api\",\"session_id\":\"s1\","
    "\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":\"tools/call\",\"tool\":\"search\","
    "\"resource_uri\":null,\"prompt_name\":null,\"status\":200,\"latency_us\":1500,"
    "\"upstream_us\":null,\"request_size\":12,\"response_size\":null,\"error_code\":\"-32000\","
    "\"error_msg\":\"boom\\nline2\",\"client_name\":null,\"client_version\":null,\"note\":null}",
    "{\"type\":\"request\",\"id\":\"r2\",\"ts\":1700000000200,\"proxy\":\"api\",\"session_id\":\"s1\","
    "\"method\":\"POST\",\"path\":null,\"mcp_method\":null,\"tool\":null,"
    "\"resource_uri\":null,\"prompt_name\":null,\"status\":200,\"latency_us\":900,"
    "\"upstream_us\":null,\"request_size\":null,\"response_size\":null,\"error_code\":null,"
    "\"error_msg\":null,\"client_name\":null,\"client_version\":null,\"note\":null}",
    "{\"type\":\"heartbeat\",\"ts\":1700000000300,\"proxy\":\"api\",\"mcp_status\":\"up\","
    "\"tunnel_status\":null,\"uptime_secs\":5,\"request_count\":2}",
    "{\"type\":\"schema_version_created\",\"ts\":1700000000400,\"upstream_id\":\"api\","
    "\"upstream_url\":\"http://127.0.0.1:9000/mcp\",\"method\":\"tools/list\",\"version\":1,"
    "\"version_id\":null,\"content_hash\":\"aa\",\"payload\":{\"tools\":[{\"name\":\"search\"}]}}",
    "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":1700000000500}",
};
#define NLINES (sizeof LINES / sizeof LINES[0])

static void emit_all(mcpr_fanout *fan) {
  for (size_t i = 0; i < NLINES; i++) {
    mcpr_event ev;
    mcpr_error err = {0};
    assert_int_equal(mcpr_event_decode(LINES[i], strlen(LINES[i]), &ev, &err), MCPR_OK);
    assert_int_equal(mcpr_fanout_emit(fan, &ev), MCPR_OK);
    mcpr_event_release(&ev);
  }
}

static char *slurp(FILE *fp) {
  fflush(fp);
  long n = ftell(fp);
  rewind(fp);
  char *buf = calloc(1, (size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
  return buf;
}

static void test_json_and_pretty(void **state) {
  (void)state;
  FILE *json = tmpfile(), *pretty = tmpfile();
  mcpr_fanout *fan = NULL;
  mcpr_sink *a = NULL, *b = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_fanout_new(&fan, &err), MCPR_OK);
  assert_int_equal(mcpr_sink_stream_new(&a, json, MCPR_STREAM_JSON, &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, a, &err), MCPR_OK);
  assert_int_equal(mcpr_sink_stream_new(&b, pretty, MCPR_STREAM_PRETTY, &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, b, &err), MCPR_OK);
  emit_all(fan);
  assert_int_equal(mcpr_fanout_close(fan, NULL, 0), MCPR_OK);

  char *out = slurp(json);
  char *p = out;
  for (size_t i = 0; i < NLINES; i++) {
    char *nl = strchr(p, '\n');
    assert_non_null(nl);
    *nl = 0;
    assert_string_equal(p, LINES[i]); /* exactly the wire format */
    p = nl + 1;
  }
  assert_string_equal(p, "");
  free(out);

  out = slurp(pretty);
  int lines = 0;
  for (char *q = out; *q; q++)
    lines += *q == '\n';
  assert_int_equal(lines, (int)NLINES);
  assert_non_null(strstr(out, "2023-11-14T22:13:20.100Z request  api tools/call search -> 200 1.50ms "
                              "session=s1 error=-32000 \"boom line2\"\n"));
  assert_non_null(strstr(out, "session=s1 client=cursor/0.42\n"));
  free(out);
  fclose(json);
  fclose(pretty);
}

static void test_store_sink(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store *store = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&store, path, NULL, &err), MCPR_OK);
  mcpr_fanout *fan = NULL;
  mcpr_sink *s = NULL;
  assert_int_equal(mcpr_fanout_new(&fan, &err), MCPR_OK);
  assert_int_equal(mcpr_sink_store_new(&s, store, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, s, &err), MCPR_OK);
  emit_all(fan);
  assert_int_equal(mcpr_fanout_flush(fan, -1, &err), MCPR_OK);
  /* Rows are committed once flush returns, before close. */
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 2);
  mcpr_sink_stats st;
  assert_int_equal(mcpr_fanout_close(fan, &st, 1), MCPR_OK);
  assert_int_equal(st.delivered, NLINES);
  assert_int_equal(mcpr_store_close(store, NULL), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id='r1' AND "
                                    "method='tools/call' AND status='error' AND error_code='-32000' "
                                    "AND bytes_in=12 AND bytes_out IS NULL AND tool='search'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id='r2' AND "
                                    "method='POST' AND status='ok'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT total_calls FROM sessions WHERE session_id='s1'"), 2);
  assert_int_equal(tu_sql_int(path, "SELECT total_errors FROM sessions WHERE session_id='s1'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT ended_at FROM sessions WHERE session_id='s1'"),
                   1700000000500);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions WHERE client_platform='cursor'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM server_schema WHERE proxy='api' AND "
                                    "payload='{\"tools\":[{\"name\":\"search\"}]}'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM schema_changes WHERE change_type='initial'"), 1);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_and_pretty),
      cmocka_unit_test(test_store_sink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
