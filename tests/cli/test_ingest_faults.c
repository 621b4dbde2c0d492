// ctest-labels: slow
/*
 * `mcpr ingest` when the store cannot write, and when it is asked to stop
 * (issue 18: faults said out loud). What a user relies on: the failure is
 * said on stderr at once and once; the run ends within about its retry
 * window; the summary's numbers are the rows in the store and add up to
 * the lines read; the store stays sound; `mcpr store stats` remembers the
 * failure; running the same ingest again completes the load.
 *
 *   - a real full filesystem (a 4 MB tmpfs; root only, else skipped with
 *     a message), then the same tmpfs grown and the ingest run again;
 *   - the store's commit lock held by a stopped process past the window;
 *   - SIGTERM and SIGINT on an ingest from a live pipe; SIGINT ignored on
 *     entry stays ignored, SIGTERM still stops it;
 *   - SIGTERM while the store is failing (full tmpfs, default 60 s window):
 *     the run stops in seconds, not after the window.
 *
 * Bounds here say "it ends at all, within about its window", not speed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "lockholder.h"
#include "store_fixtures.h"
#include "testutil.h"

/* One request event per line; ids "<prefix>-<i>". A longish error message
 * makes each row a few hundred bytes, so 40k of them overflow 4 MB. */
static void write_events(const char *path, const char *prefix, int n) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < n; i++)
    fprintf(f,
            "{\"type\":\"request\",\"id\":\"%s-%06d\",\"ts\":%" PRId64 ",\"proxy\":\"api\","
            "\"session_id\":null,\"method\":\"POST\",\"path\":\"/mcp\","
            "\"mcp_method\":\"tools/call\",\"tool\":\"search\",\"resource_uri\":null,"
            "\"prompt_name\":null,\"status\":500,\"latency_us\":%d,\"upstream_us\":null,"
            "\"request_size\":null,\"response_size\":null,\"error_code\":\"-32000\","
            "\"error_msg\":\"upstream failed: connection reset by peer while reading the "
            "response body of tools/call search\",\"client_name\":null,"
            "\"client_version\":null,\"note\":null}\n",
            prefix, i, (int64_t)1700000000000 + i, i);
  assert_int_equal(fclose(f), 0);
}

static int64_t rows(const char *db) { return tu_sql_int(db, "SELECT count(*) FROM requests"); }

/* Children this test started (ingests, lock holders): a failed assertion
 * must not leave one running or stopped; teardown kills what is left. */
#define MAX_CHILDREN 8
static pid_t children[MAX_CHILDREN];

static void child_started(pid_t pid) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (!children[i]) {
      children[i] = pid;
      return;
    }
}

static void child_gone(pid_t pid) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == pid)
      children[i] = 0;
}

static void kill_children(void) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i]) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = 0;
    }
}

static int reap(void **state) {
  (void)state;
  kill_children();
  return 0;
}

/* ---------- the summary line ---------- */

typedef struct summary {
  bool found;
  int64_t read, stored, duplicates, rejected, not_stored;
  int64_t disk_full, io_error, readonly, locked, not_written, not_handed;
} summary;

/* ", <key> N" after the summary's start; 0 when absent. */
static int64_t field(const char *line, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, ", %s ", key);
  const char *p = strstr(line, pat);
  if (!p)
    return 0;
  return strtoll(p + strlen(pat), NULL, 10);
}

static summary parse_summary(const char *err) {
  summary s = {0};
  const char *line = strstr(err, "ingest: read ");
  if (!line)
    return s;
  const char *end = strchr(line, '\n');
  size_t n = end ? (size_t)(end - line) : strlen(line);
  char *l = strndup(line, n);
  assert_non_null(l);
  s.found = true;
  s.read = strtoll(l + strlen("ingest: read "), NULL, 10);
  s.stored = field(l, "stored");
  s.duplicates = field(l, "duplicates");
  s.rejected = field(l, "rejected");
  s.not_stored = field(l, "not stored");
  s.disk_full = field(l, "disk full");
  s.io_error = field(l, "I/O error");
  s.readonly = field(l, "read-only store");
  s.locked = field(l, "store locked");
  s.not_written = field(l, "not written before exit");
  s.not_handed = field(l, "stopped before handing over");
  free(l);
  return s;
}

/* The parts of "not stored" by cause add up to it. */
static void assert_causes_add_up(const summary *s) {
  assert_int_equal(s->not_stored, s->disk_full + s->io_error + s->readonly + s->locked +
                                      s->not_written + s->not_handed);
}

/* ---------- running mcpr ---------- */

typedef struct run_result {
  cli_result r;
  int64_t took_ms;
  summary sum;
} run_result;

static void ingest(run_result *out, const char *in, const char *db, const char *window) {
  const char *args[] = {"ingest", in, "--db", db, window ? "--retry-window" : NULL, window, NULL};
  cli_spec spec = {.args = args, .timeout_ms = 120000};
  int64_t t0 = tu_mono_ms();
  cli_run(&spec, &out->r);
  out->took_ms = tu_mono_ms() - t0;
  out->sum = parse_summary(out->r.err);
  if (!out->sum.found)
    fail_msg("no summary; exit %d, stderr:\n%s", out->r.exit_code, out->r.err);
}

static char *stats_json(const char *db) {
  cli_result r;
  cli_runv(&r, "store", "stats", "--json", "--db", db, NULL);
  assert_int_equal(r.exit_code, 0);
  free(r.err);
  return r.out;
}

/* The object after "last_write_failure": in stats --json (a new string),
 * or NULL when it is null. */
static char *last_failure_json(const char *json) {
  const char *p = strstr(json, "\"last_write_failure\":");
  assert_non_null(p);
  p += strlen("\"last_write_failure\":");
  if (strncmp(p, "null", 4) == 0)
    return NULL;
  assert_int_equal(*p, '{');
  const char *end = strchr(p, '}');
  assert_non_null(end);
  return strndup(p, (size_t)(end - p + 1));
}

static int64_t json_int(const char *obj, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(obj, pat);
  assert_non_null(p);
  return strtoll(p + strlen(pat), NULL, 10);
}

/* A background ingest: stdin from a pipe this test writes (or a file),
 * stderr into a file. ignore_sigint: SIGINT ignored on entry, like a
 * background job of a non-interactive shell. */
typedef struct bg {
  pid_t pid;
  int in_fd; /* -1 when the input is a file */
  char *err_path;
} bg;

static void bg_start(bg *b, const char *dir, const char *input, const char *db,
                     const char *window, bool ignore_sigint) {
  const char *mcpr = cli_bin();
  b->err_path = tu_path(dir, "bg.err");
  int p[2] = {-1, -1};
  if (!input)
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  fflush(NULL);
  b->pid = fork();
  assert_true(b->pid >= 0);
  if (b->pid == 0) {
    if (!input)
      dup2(p[0], 0);
    int er = open(b->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = open("/dev/null", O_RDWR);
    if (input)
      dup2(nul, 0);
    dup2(nul, 1);
    dup2(er, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, ignore_sigint ? SIG_IGN : SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    const char *argv[] = {mcpr, "ingest", input ? input : "-", "--db", db,
                          window ? "--retry-window" : NULL, window, NULL};
    execv(mcpr, (char *const *)argv);
    _exit(127);
  }
  child_started(b->pid);
  b->in_fd = -1;
  if (!input) {
    close(p[0]);
    b->in_fd = p[1];
  }
}

static void bg_write(bg *b, const char *data, size_t n) {
  while (n) {
    ssize_t w = write(b->in_fd, data, n);
    if (w < 0 && errno == EINTR)
      continue;
    assert_true(w > 0);
    data += w;
    n -= (size_t)w;
  }
}

/* Still running? */
static bool bg_running(bg *b) { return waitpid(b->pid, NULL, WNOHANG) == 0; }

/* Wait up to timeout_ms for the exit. Returns the exit code (128+N for a
 * signal) and the time waited; -1 when it had to be killed. */
static int bg_wait(bg *b, int timeout_ms, int64_t *took_ms) {
  int64_t t0 = tu_mono_ms();
  int status = 0;
  for (;;) {
    pid_t w = waitpid(b->pid, &status, WNOHANG);
    if (w == b->pid)
      break;
    if (tu_mono_ms() - t0 > timeout_ms) {
      kill(b->pid, SIGKILL);
      waitpid(b->pid, &status, 0);
      status = -1;
      break;
    }
    tu_sleep_ms(20);
  }
  if (took_ms)
    *took_ms = tu_mono_ms() - t0;
  child_gone(b->pid);
  if (b->in_fd >= 0)
    close(b->in_fd);
  b->in_fd = -1;
  if (status == -1)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* What it said on stderr so far ("" before it opened the file). */
static char *bg_err(bg *b) {
  if (access(b->err_path, F_OK) != 0) {
    char *none = calloc(1, 1);
    assert_non_null(none);
    return none;
  }
  return tu_read_text(b->err_path);
}

static void bg_free(bg *b) {
  if (b->in_fd >= 0)
    close(b->in_fd);
  free(b->err_path);
  memset(b, 0, sizeof *b);
}

/* ---------- a real tmpfs ---------- */

typedef struct fs_fixture {
  char *dir;    /* temp dir: input files, stderr captures */
  char *mnt;    /* the tmpfs mount point inside it */
  bool mounted; /* false: not root or no mount: the test is skipped */
  char *input;
  char *db;
} fs_fixture;

#define FULL_EVENTS 40000

static int fs_setup(void **state) {
  fs_fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->dir = tu_tmpdir();
  f->mnt = tu_path(f->dir, "mnt");
  assert_int_equal(mkdir(f->mnt, 0700), 0);
  if (geteuid() != 0)
    print_message("skipped: mounting a tmpfs needs root\n");
  else if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=4m") != 0)
    print_message("skipped: cannot mount a tmpfs: %s\n", strerror(errno));
  else
    f->mounted = true;
  if (f->mounted) {
    f->input = tu_path(f->dir, "events.ndjson");
    write_events(f->input, "ev", FULL_EVENTS);
    f->db = tu_path(f->mnt, "store.db");
  }
  *state = f;
  return 0;
}

static int fs_teardown(void **state) {
  fs_fixture *f = *state;
  kill_children();
  if (f->mounted && umount2(f->mnt, MNT_DETACH) != 0)
    print_message("umount %s: %s\n", f->mnt, strerror(errno));
  free(f->mnt);
  free(f->input);
  free(f->db);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static void test_real_full_filesystem(void **state) {
  fs_fixture *f = *state;
  if (!f->mounted)
    return;
  run_result a;
  ingest(&a, f->input, f->db, "3s");
  const char *said = "mcpr: cannot write to the store: disk full (";
  if (cli_count_substr(a.r.err, said) != 1)
    fail_msg("expected one 'disk full' line; stderr:\n%s", a.r.err);
  assert_int_equal(cli_count_substr(a.r.err, "mcpr: the store still cannot write (disk full)"), 1);
  assert_int_equal(a.r.exit_code, 1);
  assert_true(a.took_ms < 40000);
  assert_int_equal(a.sum.read, FULL_EVENTS);
  assert_true(a.sum.stored > 0);
  assert_true(a.sum.not_stored > 0);
  assert_int_equal(a.sum.stored + a.sum.not_stored, FULL_EVENTS);
  assert_int_equal(a.sum.disk_full, a.sum.not_stored);
  assert_causes_add_up(&a.sum);
  assert_non_null(strstr(a.r.err, "mcpr: running the same ingest again is safe"));
  assert_int_equal(rows(f->db), a.sum.stored);
  sf_assert_text(f->db, "PRAGMA integrity_check", "ok");

  char *json = stats_json(f->db);
  char *lf = last_failure_json(json);
  assert_non_null(lf);
  assert_non_null(strstr(lf, "\"cause\":\"EDISKFULL\""));
  assert_non_null(strstr(lf, "\"ended_at\":null"));
  assert_int_equal(json_int(lf, "events_not_stored"), a.sum.not_stored);
  assert_non_null(strstr(lf, "database or disk is full"));
  free(lf);
  free(json);
  cli_result pretty;
  cli_runv(&pretty, "store", "stats", "--db", f->db, NULL);
  assert_int_equal(pretty.exit_code, 0);
  assert_non_null(strstr(pretty.out, "last write failure  disk full since "));
  cli_result_free(&pretty);

  /* Room again: the same ingest completes the load. */
  assert_int_equal(mount("tmpfs", f->mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
  run_result b;
  ingest(&b, f->input, f->db, "3s");
  if (b.r.exit_code != 0)
    fail_msg("second ingest: exit %d, stderr:\n%s", b.r.exit_code, b.r.err);
  assert_null(strstr(b.r.err, "cannot write to the store"));
  assert_int_equal(b.sum.read, FULL_EVENTS);
  assert_int_equal(b.sum.stored, a.sum.not_stored);
  assert_int_equal(b.sum.duplicates, a.sum.stored);
  assert_int_equal(b.sum.stored + b.sum.duplicates, FULL_EVENTS);
  assert_int_equal(b.sum.not_stored, 0);
  assert_int_equal(rows(f->db), FULL_EVENTS);
  assert_int_equal(tu_sql_int(f->db, "SELECT count(DISTINCT request_id) FROM requests"),
                   FULL_EVENTS);
  sf_assert_text(f->db, "PRAGMA integrity_check", "ok");
  /* The record is the first run's; its writer never saw the end, so the
   * second run's first commit ended it. */
  json = stats_json(f->db);
  lf = last_failure_json(json);
  assert_non_null(lf);
  assert_non_null(strstr(lf, "\"cause\":\"EDISKFULL\""));
  assert_int_equal(json_int(lf, "events_not_stored"), a.sum.not_stored);
  assert_null(strstr(lf, "\"ended_at\":null"));
  assert_true(json_int(lf, "ended_at") > 0);
  free(lf);
  free(json);
  cli_result_free(&a.r);
  cli_result_free(&b.r);
}

/* SIGTERM a couple of seconds into a full disk, with the default window
 * (60 s): the run stops in seconds and its numbers add up. */
static void test_signal_while_failing(void **state) {
  fs_fixture *f = *state;
  if (!f->mounted)
    return;
  bg b;
  bg_start(&b, f->dir, f->input, f->db, NULL, false);
  char *err = NULL;
  for (int i = 0; i < 300; i++) { /* 30 s: a 4 MB store fills in about one */
    free(err);
    err = bg_err(&b);
    if (strstr(err, "cannot write to the store: disk full"))
      break;
    tu_sleep_ms(100);
  }
  if (!strstr(err, "cannot write to the store: disk full"))
    fail_msg("no 'disk full' line; stderr:\n%s", err);
  free(err);
  tu_sleep_ms(2000);
  assert_true(bg_running(&b));
  kill(b.pid, SIGTERM);
  int64_t took = 0;
  int code = bg_wait(&b, 40000, &took);
  err = bg_err(&b);
  if (code != 143)
    fail_msg("exit %d, stderr:\n%s", code, err);
  assert_true(took < 20000); /* seconds, not the 60 s window */
  const char *stop = strstr(err, "mcpr: terminated: stopping after line ");
  assert_non_null(stop);
  /* The window had not run out before the signal: the store gives up only
   * because the signal told it to stop retrying (the handler does that at
   * once, so its line may come before or after "terminated:"), once. */
  assert_true(cli_count_substr(err, "mcpr: the store still cannot write (disk full)") <= 1);
  summary s = parse_summary(err);
  assert_true(s.found);
  assert_true(s.read > 0 && s.read <= FULL_EVENTS);
  assert_true(s.not_stored > 0);
  assert_int_equal(s.stored + s.not_stored, s.read);
  assert_causes_add_up(&s);
  assert_non_null(strstr(err, "mcpr: running the same ingest again is safe"));
  assert_int_equal(rows(f->db), s.stored);
  sf_assert_text(f->db, "PRAGMA integrity_check", "ok");
  free(err);
  bg_free(&b);
}

/* ---------- the commit lock held past the window ---------- */

/* A stopped process holding the store's commit lock, killed by teardown
 * if the test fails before release_holder. */
static pid_t hold_commit_lock(const char *db) {
  pid_t pid = lh_hold_stopped(db, LH_COMMIT_LOCK);
  child_started(pid);
  return pid;
}

static void release_holder(pid_t holder) {
  lh_release(holder);
  child_gone(holder);
}

/* A store seeded with 5 events ("seed-…") by a first ingest, an input of
 * 300 more ("<prefix>-…") beside it, and a stopped process holding the
 * store's commit lock (release it with release_holder). */
typedef struct locked_store {
  char *dir, *db, *in;
  pid_t holder;
} locked_store;

static void locked_store_start(locked_store *t, const char *prefix) {
  t->dir = tu_tmpdir();
  t->db = tu_path(t->dir, "s.db");
  t->in = tu_path(t->dir, "in");
  char *seed = tu_path(t->dir, "seed");
  write_events(seed, "seed", 5);
  write_events(t->in, prefix, 300);
  run_result a;
  ingest(&a, seed, t->db, NULL);
  assert_int_equal(a.r.exit_code, 0);
  cli_result_free(&a.r);
  free(seed);
  t->holder = hold_commit_lock(t->db);
}

static void locked_store_free(locked_store *t) {
  free(t->db);
  free(t->in);
  tu_rmdir(t->dir);
}

static void test_lock_held_past_the_window(void **state) {
  (void)state;
  locked_store t;
  locked_store_start(&t, "held");
  const char *db = t.db, *in = t.in;
  run_result b;
  ingest(&b, in, db, "2s");
  release_holder(t.holder);
  if (b.r.exit_code != 1)
    fail_msg("exit %d, stderr:\n%s", b.r.exit_code, b.r.err);
  assert_true(b.took_ms < 40000);
  assert_int_equal(
      cli_count_substr(b.r.err, "mcpr: cannot write to the store: the store is locked by another process"),
      1);
  assert_int_equal(b.sum.read, 300);
  int64_t held_rows = tu_sql_int(db, "SELECT count(*) FROM requests WHERE request_id LIKE 'held-%'");
  assert_int_equal(b.sum.stored, held_rows);
  assert_int_equal(b.sum.locked, 300 - held_rows);
  assert_true(b.sum.locked > 0);
  assert_int_equal(b.sum.not_stored, b.sum.locked);
  assert_causes_add_up(&b.sum);
  char *json = stats_json(db);
  char *lf = last_failure_json(json);
  assert_non_null(lf);
  assert_non_null(strstr(lf, "\"cause\":\"EBUSY\""));
  free(lf);
  free(json);
  cli_result_free(&b.r);

  /* The holder is gone: the same ingest stores the rest. */
  run_result c;
  ingest(&c, in, db, "2s");
  if (c.r.exit_code != 0)
    fail_msg("exit %d, stderr:\n%s", c.r.exit_code, c.r.err);
  assert_int_equal(c.sum.stored + c.sum.duplicates, 300);
  assert_int_equal(c.sum.stored, 300 - held_rows);
  assert_int_equal(rows(db), 305);
  sf_assert_text(db, "PRAGMA integrity_check", "ok");
  cli_result_free(&c.r);
  locked_store_free(&t);
}

/* SIGTERM after the whole input was read, while the last events wait on a
 * store that cannot write (here: the commit lock held, 30 s window): the
 * run stops in seconds with 143 and says so, as it does while reading.
 * (Found by this test: the handler once only set a flag that the reading
 * loop looked at, so after EOF the signal was swallowed and the run waited
 * out the whole retry window; now the handler stops the store's retries.) */
static void test_signal_after_eof_while_failing(void **state) {
  (void)state;
  locked_store t;
  locked_store_start(&t, "late");
  const char *db = t.db, *in = t.in;
  bg b;
  bg_start(&b, t.dir, in, db, "30s", false);
  tu_sleep_ms(1500); /* 300 lines are read in a moment; the writer is waiting on the lock */
  assert_true(bg_running(&b));
  kill(b.pid, SIGTERM);
  int64_t took = 0;
  int code = bg_wait(&b, 60000, &took);
  release_holder(t.holder);
  char *err = bg_err(&b);
  if (code != 143 || took > 15000)
    fail_msg("SIGTERM after EOF while the store fails: exit %d after %" PRId64
             " ms (expected 143 within seconds); stderr:\n%s",
             code, took, err);
  assert_non_null(strstr(err, "mcpr: terminated: stopping after line 300;"));
  summary s = parse_summary(err);
  assert_int_equal(s.read, 300);
  assert_int_equal(s.stored, 0);
  assert_int_equal(s.locked, 300);
  assert_int_equal(s.stored + s.not_stored, s.read);
  assert_causes_add_up(&s);
  assert_int_equal(rows(db), 5);
  free(err);
  bg_free(&b);
  locked_store_free(&t);
}

/* ---------- stop signals on a live pipe ---------- */

#define PIPE_EVENTS 200

/* Write lines [0, upto) of text to a live ingest and wait until the store
 * holds upto rows. */
static void feed_lines(bg *b, const char *db, const char *text, int upto) {
  const char *end = text;
  for (int i = 0; i < upto; i++)
    end = strchr(end, '\n') + 1;
  bg_write(b, text, (size_t)(end - text));
  int64_t n = 0;
  for (int i = 0; i < 200 && n < upto; i++) { /* 20 s; normally about one */
    tu_sleep_ms(100);
    n = tu_sql_int_or_zero(db, "SELECT count(*) FROM requests");
  }
  assert_int_equal(n, upto);
}

/* Feed lines [0, upto) of the input to a live ingest, wait until they are
 * all in the store, send sig, and check the stop is said and counted. */
static void stop_live(const char *dir, const char *db, const char *text, int upto, int sig,
                      int64_t before_rows) {
  bg b;
  bg_start(&b, dir, NULL, db, NULL, false);
  feed_lines(&b, db, text, upto);
  kill(b.pid, sig);
  int64_t took = 0;
  int code = bg_wait(&b, 20000, &took);
  char *err = bg_err(&b);
  if (code != 128 + sig)
    fail_msg("exit %d after signal %d, stderr:\n%s", code, sig, err);
  char said[128];
  snprintf(said, sizeof said, "mcpr: %s: stopping after line %d; writing what was read\n",
           sig == SIGINT ? "interrupted" : "terminated", upto);
  if (!strstr(err, said))
    fail_msg("expected '%s'; stderr:\n%s", said, err);
  summary s = parse_summary(err);
  assert_true(s.found);
  assert_int_equal(s.read, upto);
  assert_int_equal(s.stored, upto - before_rows);
  assert_int_equal(s.duplicates, before_rows);
  assert_int_equal(s.not_stored, 0);
  assert_int_equal(rows(db), upto);
  assert_non_null(strstr(err, "mcpr: running the same ingest again is safe"));
  free(err);
  bg_free(&b);
}

static void test_stop_signals(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "s.db"), *in = tu_path(dir, "in");
  write_events(in, "live", PIPE_EVENTS);
  char *text = tu_read_text(in);

  stop_live(dir, db, text, 50, SIGTERM, 0);
  stop_live(dir, db, text, 100, SIGINT, 50);

  /* SIGINT ignored on entry stays ignored; SIGTERM still stops it. */
  bg b;
  bg_start(&b, dir, NULL, db, NULL, true);
  feed_lines(&b, db, text, 150);
  kill(b.pid, SIGINT);
  tu_sleep_ms(1000);
  assert_true(bg_running(&b));
  char *err = bg_err(&b);
  assert_null(strstr(err, "interrupted"));
  free(err);
  kill(b.pid, SIGTERM);
  int code = bg_wait(&b, 20000, NULL);
  err = bg_err(&b);
  if (code != 143)
    fail_msg("exit %d, stderr:\n%s", code, err);
  assert_non_null(strstr(err, "mcpr: terminated: stopping after line 150;"));
  summary s = parse_summary(err);
  assert_int_equal(s.read, 150);
  assert_int_equal(s.stored + s.duplicates, 150);
  assert_int_equal(s.stored, 50);
  free(err);
  bg_free(&b);

  /* The whole input again completes the load. */
  run_result r;
  ingest(&r, in, db, NULL);
  assert_int_equal(r.r.exit_code, 0);
  assert_int_equal(r.sum.read, PIPE_EVENTS);
  assert_int_equal(r.sum.stored + r.sum.duplicates, PIPE_EVENTS);
  assert_int_equal(r.sum.duplicates, 150);
  assert_int_equal(rows(db), PIPE_EVENTS);
  cli_result_free(&r.r);
  free(text);
  free(db);
  free(in);
  tu_rmdir(dir);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_real_full_filesystem, fs_setup, fs_teardown),
      cmocka_unit_test_setup_teardown(test_signal_while_failing, fs_setup, fs_teardown),
      cmocka_unit_test_teardown(test_lock_held_past_the_window, reap),
      cmocka_unit_test_teardown(test_stop_signals, reap),
      cmocka_unit_test_teardown(test_signal_after_eof_while_failing, reap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
