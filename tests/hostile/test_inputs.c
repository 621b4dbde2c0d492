/*
 * Hostile input files: NDJSON for `mcpr ingest` (NUL bytes, invalid UTF-8,
 * numbers out of range, deep nesting, binary garbage, a 100 MB line
 * streamed through a pipe) and mcpr.toml for `mcpr config check` and
 * `mcpr ingest --config` (a 10 MB line, deep nesting, NUL bytes). Each
 * run: the documented exit code (ingest: 1 when a line was rejected),
 * 'line N: <reason>' for each bad line, every good line stored, no crash,
 * no hang, the store intact. The 100 MB line must be refused by its size
 * without being held in memory: the child's peak RSS stays far below it.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"

typedef struct fixture {
  hx_store store;
  int next_id;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  hx_store_make(&f->store);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hx_store_free(&f->store);
  free(f);
  return 0;
}

/* A good request line with a fresh id (appended to buf). */
static void good_line(fixture *f, char *buf, size_t n) {
  snprintf(buf, n,
           "{\"type\":\"request\",\"id\":\"hostile-%d\",\"ts\":1700000000000,\"proxy\":\"hx\","
           "\"method\":\"POST\",\"status\":200,\"latency_us\":5}\n",
           ++f->next_id);
}

/* Ingest data (len bytes) followed by one good line; want exit code 1 and
 * every message in must_say; the good line is stored. */
static void ingest_bad(fixture *f, const char *data, size_t len, const char *must_say) {
  char good[256];
  good_line(f, good, sizeof good);
  size_t glen = strlen(good);
  char *input = malloc(len + glen + 1);
  memcpy(input, data, len);
  memcpy(input + len, good, glen + 1);
  const char *args[] = {"--db", f->store.path, "ingest", "-", NULL};
  cli_spec spec = {.args = args, .stdin_data = input, .stdin_len = len + glen,
                   .timeout_ms = HX_TIMEOUT_MS};
  cli_result r;
  cli_run(&spec, &r);
  hx_check(&r, args, HX_FAIL);
  if (must_say && !strstr(r.err, must_say))
    fail_msg("ingest of %.60s…: stderr does not say '%s': %.1000s", data, must_say, r.err);
  cli_result_free(&r);
  f->store.requests++; /* the good line */
  hx_store_intact(&f->store, "ingest of hostile lines");
  free(input);
}

#define INGEST_BAD(f, lit, say) ingest_bad(f, lit, sizeof lit - 1, say)

static void test_nul_bytes(void **state) {
  fixture *f = *state;
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"a\0b\",\"ts\":1}\n", "line 1");
  INGEST_BAD(f, "\0\0\0\0\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"a\\u0000b\",\"ts\":1}\n", "line 1");
}

static void test_invalid_utf8(void **state) {
  fixture *f = *state;
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"\xff\xfe\",\"ts\":1}\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"\xc0\xaf\",\"ts\":1}\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"\xed\xa0\x80\",\"ts\":1}\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"session_end\",\"session_id\":\"\\ud800\",\"ts\":1}\n", "line 1");
  INGEST_BAD(f, "\xef\xbb\xbf{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":1}\n", "line 1");
}

static void test_numbers_out_of_range(void **state) {
  fixture *f = *state;
  static const char *const bad_ts[] = {"1e400", "99999999999999999999", "-1", "1.5", "\"1\"",
                                       "-9223372036854775808", "9223372036854775808", "NaN",
                                       "Infinity", "0x10", "01", "true", "[]"};
  for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"type\":\"request\",\"id\":\"x-%zu\",\"ts\":%s,\"proxy\":\"hx\","
                     "\"method\":\"POST\",\"status\":200,\"latency_us\":5}\n",
                     i, bad_ts[i]);
    ingest_bad(f, line, (size_t)n, "line 1");
  }
  INGEST_BAD(f, "{\"type\":\"request\",\"id\":\"s1\",\"ts\":1,\"proxy\":\"hx\",\"method\":\"POST\","
                "\"status\":1000,\"latency_us\":5}\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"request\",\"id\":\"s2\",\"ts\":1,\"proxy\":\"hx\",\"method\":\"POST\","
                "\"status\":200,\"latency_us\":-5}\n", "line 1");
  INGEST_BAD(f, "{\"type\":\"request\",\"id\":\"s3\",\"ts\":1,\"proxy\":\"hx\",\"method\":\"POST\","
                "\"status\":200,\"latency_us\":5,\"response_size\":1e19}\n", "line 1");
}

static void test_deep_nesting_and_garbage(void **state) {
  fixture *f = *state;
  size_t depth = 200000;
  char *deep = malloc(2 * depth + 200);
  size_t n = (size_t)snprintf(deep, 200,
                              "{\"type\":\"request\",\"id\":\"d\",\"ts\":1,\"proxy\":\"hx\","
                              "\"method\":\"POST\",\"status\":200,\"latency_us\":5,"
                              "\"stage_timings\":{\"a\":");
  memset(deep + n, '[', depth);
  n += depth;
  memset(deep + n, ']', depth);
  n += depth;
  memcpy(deep + n, "}}\n", 3);
  ingest_bad(f, deep, n + 3, "line 1");
  free(deep);

  /* 1 MiB of binary garbage with newlines here and there, then 20000
   * lines of "x": every line refused, quickly. */
  size_t len = 1024 * 1024;
  char *junk = malloc(len + 40000);
  uint32_t x = 12345;
  for (size_t i = 0; i < len; i++) {
    x = x * 1103515245u + 12345u;
    junk[i] = (char)(x >> 24);
  }
  for (size_t i = 0; i < 20000; i++) {
    junk[len + 2 * i] = 'x';
    junk[len + 2 * i + 1] = '\n';
  }
  ingest_bad(f, junk, len + 40000, "line ");
  free(junk);
}

/* Run ingest reading a pipe fed with a 100 MB line, then a good line. */
static void test_100mb_line_through_a_pipe(void **state) {
  fixture *f = *state;
  const char *bin = getenv("MCPR_BIN");
  assert_non_null(bin);
  char *errpath = tu_path(f->store.dir, "ingest.err");
  int in[2];
  assert_int_equal(pipe(in), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_WRONLY);
    dup2(in[0], 0);
    dup2(null, 1);
    dup2(err, 2);
    close(in[0]);
    close(in[1]);
    execl(bin, bin, "--db", f->store.path, "ingest", "-", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  signal(SIGPIPE, SIG_IGN);
  static const char head[] = "{\"type\":\"request\",\"id\":\"";
  static char chunk[64 * 1024];
  memset(chunk, 'a', sizeof chunk);
  bool broken = write(in[1], head, sizeof head - 1) < 0;
  size_t total = 100u * 1024 * 1024;
  for (size_t sent = 0; sent < total && !broken; sent += sizeof chunk)
    broken = write(in[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk;
  char good[256];
  good_line(f, good, sizeof good);
  char tail[300];
  snprintf(tail, sizeof tail, "\"}\n%s", good);
  if (!broken)
    broken = write(in[1], tail, strlen(tail)) < 0;
  close(in[1]);
  if (broken)
    fail_msg("ingest stopped reading its input before the end of the 100 MB line");
  int status = 0;
  struct rusage ru;
  pid_t w = 0;
  for (int waited_ms = 0; (w = wait4(pid, &status, WNOHANG, &ru)) == 0; waited_ms += 50) {
    if (waited_ms > 120000) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      fail_msg("ingest did not finish within 120 s after the 100 MB line");
    }
    nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
  }
  assert_int_equal(w, pid);
  size_t elen = 0;
  unsigned char *raw = sf_read_file(errpath, &elen); /* not NUL-terminated */
  char *err = calloc(1, elen + 1);
  if (raw)
    memcpy(err, raw, elen);
  free(raw);
  if (!WIFEXITED(status))
    fail_msg("ingest killed by signal %d; stderr: %.1000s", WTERMSIG(status), err ? err : "");
  if (WEXITSTATUS(status) != 1)
    fail_msg("ingest exit %d, want 1; stderr: %.1000s", WEXITSTATUS(status), err ? err : "");
  if (!err || !strstr(err, "line 1"))
    fail_msg("no 'line 1' report for the 100 MB line: %.1000s", err ? err : "");
  fprintf(stderr, "100 MB line: ingest peak RSS %ld KiB; said: %.300s\n", ru.ru_maxrss, err);
  /* Holding the line would take 100 MiB; the bounded reader needs ~2 MiB. */
  if (ru.ru_maxrss > 80 * 1024)
    fail_msg("ingest's peak RSS was %ld KiB: it held the 100 MB line in memory", ru.ru_maxrss);
  free(err);
  f->store.requests++;
  hx_store_intact(&f->store, "the 100 MB line");
  free(errpath);
}

/* A config file of the given bytes; config check and ingest --config. */
static void hostile_config(fixture *f, const char *name, const char *data, size_t len) {
  char *path = tu_path(f->store.dir, name);
  sf_write_file(path, data, len);
  cli_result r;
  const char *check[] = {"config", "check", "--config", path, NULL};
  hx_run(&r, NULL, NULL, HX_FAIL, check);
  cli_result_free(&r);
  char good[256];
  good_line(f, good, sizeof good);
  const char *ingest[] = {"--db", f->store.path, "ingest", "--config", path, "-", NULL};
  hx_run(&r, NULL, good, HX_FAIL | HX_USAGE, ingest);
  cli_result_free(&r);
  f->next_id--; /* refused before reading: the good line was not stored */
  hx_store_intact(&f->store, name);
  free(path);
}

static void test_hostile_configs(void **state) {
  fixture *f = *state;
  size_t big = 10u * 1024 * 1024;
  char *s = malloc(big + 64);
  size_t n = (size_t)snprintf(s, 64, "name = \"");
  memset(s + n, 'n', big);
  n += big;
  memcpy(s + n, "\"\n", 2);
  hostile_config(f, "10mb-line.toml", s, n + 2);
  /* Under the 1 MiB file cap but one line far over the 16 KiB line cap. */
  hostile_config(f, "long-line.toml", s, 1000 * 1000);
  free(s);

  size_t depth = 300000;
  char *deep = malloc(2 * depth + 16);
  n = (size_t)snprintf(deep, 16, "x = ");
  memset(deep + n, '[', depth);
  n += depth;
  memset(deep + n, ']', depth);
  n += depth;
  deep[n++] = '\n';
  hostile_config(f, "deep-array.toml", deep, n < 1000000 ? n : 1000000);
  n = 0;
  for (size_t i = 0; i < 100000 && n + 8 < 2 * depth; i++) {
    memcpy(deep + n, i ? ",a={" : "a={", i ? 4 : 3);
    n += i ? 4 : 3;
  }
  deep[n++] = '\n';
  hostile_config(f, "deep-inline.toml", deep, n);
  free(deep);
  static const char nul[] = "name = \"a\0b\"\n[cloud]\ntoken = \"\xff\xfe\"\n";
  hostile_config(f, "nul.toml", nul, sizeof nul - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_numbers_out_of_range),
      cmocka_unit_test(test_deep_nesting_and_garbage),
      cmocka_unit_test(test_100mb_line_through_a_pipe),
      cmocka_unit_test(test_hostile_configs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
