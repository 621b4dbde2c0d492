/* `mcpr ingest`: bad lines reported by number and skipped, idempotent
 * re-ingest, the original mcpr's JSON lines, live pipes, concurrent
 * ingests against a locked store. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "testutil.h"

/* Start mcpr with argv (NULL-terminated, without the program), stdin from
 * in_path (or /dev/null), stderr to err_path. Returns the pid. */
static pid_t spawn(const char *const *args, const char *in_path, const char *err_path) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
    int er = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(er, 2);
    const char *argv[32] = {cli_bin()};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
      argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(cli_bin(), (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static int wait_code(pid_t pid) {
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static int run(const char *const *args, const char *in_path, const char *err_path) {
  return wait_code(spawn(args, in_path, err_path));
}

#define REQ(id, sid, extra)                                                                    \
  "{\"type\":\"request\",\"id\":\"" id "\",\"ts\":1700000000000,\"proxy\":\"api\","        \
  "\"session_id\":" sid ",\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":\"tools/call\"," \
  "\"tool\":\"search\",\"resource_uri\":null,\"prompt_name\":null,\"status\":200,"           \
  "\"latency_us\":1500,\"upstream_us\":null,\"request_size\":null,\"response_size\":null,"     \
  "\"error_code\":null,\"error_msg\":null,\"client_name\":null,\"client_version\":null,"       \
  "\"note\":null" extra "}\n"

static void test_bad_lines_reported_and_skipped(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *in = tu_path(dir, "in.ndjson"), *db = tu_path(dir, "s.db"), *errp = tu_path(dir, "err");
  tu_write_text(in,
             "{\"type\":\"session_start\",\"session_id\":\"s1\",\"proxy\":\"api\",\"ts\":1,"
             "\"client_name\":\"cursor\",\"client_version\":\"1\",\"client_platform\":null}\n"
             REQ("r1", "\"s1\"", "")
             "{\"type\":\"request\",\"id\":\"r2\",\"ts\":1,\"proxy\":\"api\",\"method\":\"POST\","
             "\"status\":200,\"latency_us\":\"slow\"}\n"
             REQ("r3", "\"s1\"", "")
             "this is not json\n"
             "\n"
             "{\"type\":\"mystery\",\"ts\":1}\n"
             REQ("r4", "\"s1\"", ",\"future_field\":{\"a\":1}")
             REQ("r5", "\"s1\"", "")); /* no newline issue: last line ends with \n */
  const char *args[] = {"ingest", in, "--db", db, NULL};
  assert_int_equal(run(args, NULL, errp), 1);
  char *err = tu_read_text(errp);
  assert_non_null(strstr(err, "line 3: field \"latency_us\": expected an integer\n"));
  assert_non_null(strstr(err, "line 5: invalid JSON"));
  assert_non_null(strstr(err, "line 7: field \"type\": unknown event type \"mystery\"\n"));
  assert_null(strstr(err, "line 6:"));
  assert_non_null(strstr(err, "read 8 lines, stored 5, duplicates 0, rejected 3"));
  free(err);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests"), 4);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE request_id IN ('r1','r3','r4','r5')"), 4);
  assert_int_equal(tu_sql_int(db, "SELECT total_calls FROM sessions WHERE session_id='s1'"), 4);
  free(in); free(db); free(errp);
  tu_rmdir(dir);
}

static void test_sample_traffic_and_reingest(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "s.db"), *errp = tu_path(dir, "err");
  char sample[4096];
  snprintf(sample, sizeof sample, "%s/examples/sample-traffic.ndjson", MCPR_TEST_SOURCE_DIR);
  const char *args[] = {"ingest", sample, "--db", db, NULL};
  assert_int_equal(run(args, NULL, errp), 0);
  int64_t requests = tu_sql_int(db, "SELECT count(*) FROM requests");
  int64_t calls = tu_sql_int(db, "SELECT sum(total_calls) FROM sessions");
  int64_t errors = tu_sql_int(db, "SELECT sum(total_errors) FROM sessions");
  assert_true(requests >= 200);
  assert_int_equal(calls, requests);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sessions"), 10);
  assert_int_equal(tu_sql_int(db, "SELECT count(DISTINCT client_platform) FROM sessions"), 4);
  assert_true(tu_sql_int(db, "SELECT count(*) FROM requests WHERE status='timeout'") > 0);
  assert_true(tu_sql_int(db, "SELECT count(*) FROM requests WHERE status='error'") > 0);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM schema_changes WHERE change_type='tool_added' "
                                  "AND item_name='summarize'"), 1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM schema_changes WHERE change_type='tool_removed' "
                                  "AND item_name='create_issue'"), 1);
  int64_t changes = tu_sql_int(db, "SELECT count(*) FROM schema_changes");
  /* Again, from standard input: nothing new, no call counted twice, no
   * schema change replayed; every stored event of the first pass is now a
   * duplicate (all lines but the heartbeat). */
  const char *again[] = {"ingest", "-", "--db", db, NULL};
  assert_int_equal(run(again, sample, errp), 0);
  char *err = tu_read_text(errp);
  assert_non_null(strstr(err, "stored 0, duplicates 269, rejected 0"));
  free(err);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM schema_changes"), changes);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests"), requests);
  assert_int_equal(tu_sql_int(db, "SELECT sum(total_calls) FROM sessions"), calls);
  assert_int_equal(tu_sql_int(db, "SELECT sum(total_errors) FROM sessions"), errors);
  free(db); free(errp);
  tu_rmdir(dir);
}

static void test_original_json_lines(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *in = tu_path(dir, "in"), *db = tu_path(dir, "s.db");
  /* Exactly as the original writes them: every optional null, no session. */
  tu_write_text(in, REQ("0190a0b0-0000-7000-8000-000000000001", "null", "")
                 REQ("0190a0b0-0000-7000-8000-000000000002", "null", "")
                 "{\"type\":\"session_end\",\"session_id\":\"zzz\",\"ts\":5}");
  const char *args[] = {"ingest", in, "--db", db, NULL};
  assert_int_equal(run(args, NULL, NULL), 0);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE session_id IS NULL AND "
                                  "method='tools/call' AND status='ok' AND bytes_in IS NULL"), 2);
  free(in); free(db);
  tu_rmdir(dir);
}

/* The original with MCPR_STAGE_TIMING=1 adds "stage_timings", an array of
 * {name, elapsed_us}: such lines are stored; a stage_timings of the wrong
 * type is the one line refused, naming the field. */
static void test_original_stage_timings(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *in = tu_path(dir, "in"), *db = tu_path(dir, "s.db"), *errp = tu_path(dir, "err");
  tu_write_text(in, REQ("st-1", "null", ",\"stage_timings\":[{\"name\":\"intake_parse\","
                                        "\"elapsed_us\":42},{\"name\":\"upstream\",\"elapsed_us\":100}]")
                 REQ("st-2", "null", ",\"stage_timings\":[]")
                 REQ("st-3", "null", ",\"stage_timings\":[{\"name\":\"a\",\"elapsed_us\":1,"
                                     "\"extra\":true}],\"later_field\":[1,2]")
                 REQ("st-4", "null", ",\"stage_timings\":\"fast\""));
  const char *args[] = {"ingest", in, "--db", db, NULL};
  assert_int_equal(run(args, NULL, errp), 1);
  char *err = tu_read_text(errp);
  assert_non_null(strstr(err, "line 4: field \"stage_timings\": expected an array"));
  assert_non_null(strstr(err, "read 4 lines, stored 3, duplicates 0, rejected 1"));
  free(err);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE request_id IN "
                                  "('st-1','st-2','st-3')"), 3);
  free(in); free(db); free(errp);
  tu_rmdir(dir);
}

static void test_usage_errors(void **state) {
  (void)state;
  const char *a1[] = {"ingest", "--bogus", NULL};
  assert_int_equal(run(a1, NULL, NULL), 2);
  const char *a2[] = {"ingest", "a", "b", NULL};
  assert_int_equal(run(a2, NULL, NULL), 2);
  const char *a3[] = {"ingest", "--config", NULL};
  assert_int_equal(run(a3, NULL, NULL), 2);
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "s.db"), *missing = tu_path(dir, "nope.ndjson");
  const char *a4[] = {"ingest", missing, "--db", db, NULL};
  assert_int_equal(run(a4, NULL, NULL), 1);
  free(db); free(missing);
  tu_rmdir(dir);
}

/* A live pipe: rows arrive while the writer of the pipe is still open. */
static void test_live_pipe(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "s.db");
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[0], 0);
    close(fds[1]);
    int nul = open("/dev/null", O_WRONLY);
    dup2(nul, 2);
    execl(cli_bin(), cli_bin(), "ingest", "-", "--db", db, (char *)NULL);
    _exit(127);
  }
  close(fds[0]);
  const char *lines = REQ("p1", "null", "") REQ("p2", "null", "");
  assert_int_equal(write(fds[1], lines, strlen(lines)), (ssize_t)strlen(lines));
  int64_t n = 0;
  for (int i = 0; i < 100 && n < 2; i++) { /* up to 10 s, normally < 1 s */
    tu_sleep_ms(100);
    n = tu_sql_int_or_zero(db, "SELECT count(*) FROM requests");
  }
  assert_int_equal(n, 2);
  close(fds[1]);
  assert_int_equal(wait_code(pid), 0);
  free(db);
  tu_rmdir(dir);
}

/* Three ingests into one store at once, while another connection holds
 * an exclusive lock for 2 s, then while `mcpr store vacuum` runs: every
 * row arrives. */
static void test_concurrent_ingests_with_lock(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "s.db");
  /* Create the store first so the lock has a file to hold. */
  char *seed = tu_path(dir, "seed");
  tu_write_text(seed, REQ("seed", "null", ""));
  const char *a0[] = {"ingest", seed, "--db", db, NULL};
  assert_int_equal(run(a0, NULL, NULL), 0);
  char *files[3];
  for (int f = 0; f < 3; f++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", f);
    files[f] = tu_path(dir, name);
    FILE *fp = fopen(files[f], "w");
    for (int i = 0; i < 3000; i++)
      fprintf(fp,
              "{\"type\":\"request\",\"id\":\"f%d-%d\",\"ts\":%d,\"proxy\":\"p%d\",\"method\":\"POST\","
              "\"mcp_method\":\"tools/call\",\"tool\":\"t\",\"status\":200,\"latency_us\":%d}\n",
              f, i, 1000 + i, f, i);
    fclose(fp);
  }
  sqlite3 *lock = NULL;
  assert_int_equal(sqlite3_open(db, &lock), SQLITE_OK);
  assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  pid_t pids[3];
  for (int f = 0; f < 3; f++) {
    const char *args[] = {"ingest", files[f], "--db", db, NULL};
    pids[f] = spawn(args, NULL, NULL);
  }
  tu_sleep_ms(2000);
  assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(lock);
  /* And `mcpr store vacuum` (VACUUM + checkpoint; deletes nothing of
   * ours) while the ingests are writing. */
  for (int v = 0; v < 3; v++) {
    const char *vac[] = {"store", "vacuum", "--before", "30000d", "--db", db, NULL};
    assert_int_equal(run(vac, NULL, NULL), 0);
  }
  for (int f = 0; f < 3; f++)
    assert_int_equal(wait_code(pids[f]), 0);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests"), 9001);
  for (int f = 0; f < 3; f++)
    free(files[f]);
  free(seed);
  free(db);
  tu_rmdir(dir);
}

/* Absurd latencies and sizes are refused with the field named, before
 * they reach the store (where they would overflow the stats' sums). */
static void test_out_of_range_latency_and_size(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *in = tu_path(dir, "in.ndjson"), *db = tu_path(dir, "s.db"), *errp = tu_path(dir, "err");
  tu_write_text(in,
             "{\"type\":\"request\",\"id\":\"h1\",\"ts\":1,\"proxy\":\"api\",\"method\":\"POST\","
             "\"status\":200,\"latency_us\":9000000000000000000}\n"
             "{\"type\":\"request\",\"id\":\"h2\",\"ts\":1,\"proxy\":\"api\",\"method\":\"POST\","
             "\"status\":200,\"latency_us\":9e18}\n"
             "{\"type\":\"request\",\"id\":\"h3\",\"ts\":1,\"proxy\":\"api\",\"method\":\"POST\","
             "\"status\":200,\"latency_us\":5,\"response_size\":9000000000000000000}\n"
             "{\"type\":\"request\",\"id\":\"h4\",\"ts\":1,\"proxy\":\"api\",\"method\":\"POST\","
             "\"status\":200,\"latency_us\":31622400000000,\"response_size\":1099511627776}\n");
  const char *args[] = {"ingest", in, "--db", db, NULL};
  assert_int_equal(run(args, NULL, errp), 1);
  char *err = tu_read_text(errp);
  assert_non_null(strstr(err, "line 1: field \"latency_us\": out of range"));
  assert_non_null(strstr(err, "line 2: field \"latency_us\": expected an integer"));
  assert_non_null(strstr(err, "line 3: field \"response_size\": out of range"));
  assert_null(strstr(err, "line 4:"));
  assert_non_null(strstr(err, "read 4 lines, stored 1, duplicates 0, rejected 3"));
  free(err);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE request_id = 'h4'"), 1);
  free(in); free(db); free(errp);
  tu_rmdir(dir);
}

/* An empty key is named with its line (not a refusal without one later);
 * a session_end for a session never started is counted as such, apart
 * from the duplicates (an end seen twice, a request replayed). */
static void test_empty_ids_and_unknown_session_ends(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *in = tu_path(dir, "in.ndjson"), *db = tu_path(dir, "s.db"), *errp = tu_path(dir, "err");
  tu_write_text(in,
                "{\"type\":\"session_start\",\"session_id\":\"s1\",\"proxy\":\"api\",\"ts\":1,"
                "\"client_name\":\"cursor\",\"client_version\":\"1\",\"client_platform\":null}\n"
                REQ("r1", "\"s1\"", "")
                REQ("", "\"s1\"", "")
                "{\"type\":\"session_end\",\"session_id\":\"ghost\",\"ts\":2}\n"
                "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":3}\n"
                "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":4}\n"
                "{\"type\":\"session_end\",\"session_id\":\"\",\"ts\":5}\n"
                "{\"type\":\"session_start\",\"session_id\":\"\",\"proxy\":\"api\",\"ts\":1,"
                "\"client_name\":null,\"client_version\":null,\"client_platform\":null}\n"
                REQ("r1", "\"s1\"", ""));
  const char *args[] = {"ingest", in, "--db", db, NULL};
  assert_int_equal(run(args, NULL, errp), 1);
  char *err = tu_read_text(errp);
  assert_non_null(strstr(err, "line 3: field \"id\": empty"));
  assert_non_null(strstr(err, "line 7: field \"session_id\": empty"));
  assert_non_null(strstr(err, "line 8: field \"session_id\": empty"));
  assert_non_null(strstr(err, "read 9 lines, stored 3, duplicates 2, rejected 3, "
                              "session ends for unknown sessions 1 (not stored)\n"));
  assert_null(strstr(err, "refused"));
  free(err);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests"), 1);
  assert_int_equal(tu_sql_int(db, "SELECT ended_at FROM sessions WHERE session_id='s1'"), 3);
  free(in); free(db); free(errp);
  tu_rmdir(dir);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_lines_reported_and_skipped),
      cmocka_unit_test(test_sample_traffic_and_reingest),
      cmocka_unit_test(test_original_json_lines),
      cmocka_unit_test(test_original_stage_timings),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_live_pipe),
      cmocka_unit_test(test_concurrent_ingests_with_lock),
      cmocka_unit_test(test_out_of_range_latency_and_size),
      cmocka_unit_test(test_empty_ids_and_unknown_session_ends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
