/*
 * registry.c on its own (it belongs to the mcpr program, so it is compiled
 * in here), under a temporary HOME. A "running" proxy is a child process
 * whose argv[0] names mcpr (sleep, exec'd under that name), as registry.c
 * tells a live proxy from a recycled pid by /proc/PID/cmdline.
 * Proves: acquire writes ~/.mcpr/proxies/NAME/lock.json (mode 0600, in 0700
 * folders, whatever the umask) with the entry's fields and no temp file
 * left; a second proxy of that name is refused while the holder lives, and
 * told who holds it; a lock whose pid is dead, or alive but not mcpr, is
 * stale and taken over; list gives every proxy sorted with its state and
 * skips what is not a proxy folder; delete removes a stopped or stale
 * proxy's folder and refuses a running one; stop signals the holder and
 * clears its lock; release removes only this process's lock; a lock.json
 * that is not JSON, or holds no usable pid, reads as no lock, without a
 * crash; the reload handshake round-trips and is consumed once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/proxy/registry.c"

#include "testutil.h"

static char *home;
static char *old_home;

static int setup(void **state) {
  (void)state;
  const char *h = getenv("HOME");
  old_home = h ? strdup(h) : NULL;
  home = tu_tmpdir();
  setenv("HOME", home, 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (old_home)
    setenv("HOME", old_home, 1);
  else
    unsetenv("HOME");
  free(old_home);
  old_home = NULL;
  tu_rmdir(home);
  home = NULL;
  return 0;
}

/* $HOME/.mcpr/proxies[/name[/file]] as a new string. */
static char *reg_file(const char *name, const char *file) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s/.mcpr/proxies%s%s%s%s", home, name ? "/" : "", name ? name : "",
           file ? "/" : "", file ? file : "");
  return strdup(buf);
}

static unsigned mode_of(const char *path) {
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  return (unsigned)(sb.st_mode & 07777);
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static void make_proxy_dir(const char *name) {
  char *p = reg_file(NULL, NULL);
  char *parent = strdup(p);
  *strrchr(parent, '/') = '\0';
  mkdir(parent, 0700);
  mkdir(p, 0700);
  free(parent);
  free(p);
  p = reg_file(name, NULL);
  assert_true(mkdir(p, 0700) == 0 || errno == EEXIST);
  free(p);
}

static void write_lock_text(const char *name, const char *text) {
  make_proxy_dir(name);
  char *p = reg_file(name, "lock.json");
  tu_write_text(p, text);
  free(p);
}

static void write_lock_pid(const char *name, pid_t pid, int port) {
  char text[512];
  snprintf(text, sizeof text,
           "{\"name\":\"%s\",\"pid\":%ld,\"port\":%d,\"upstream_url\":\"http://127.0.0.1:9000/mcp\","
           "\"listen_addr\":\"127.0.0.1:%d\",\"started_at\":1700000000,\"config_path\":\"/c.toml\"}",
           name, (long)pid, port, port);
  write_lock_text(name, text);
}

/* A child that lives until killed, with argv[0] = argv0. */
static pid_t spawn_as(const char *argv0) {
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    fcntl(ready[1], F_SETFD, FD_CLOEXEC); /* closed by the exec: the parent knows */
    execl("/bin/sleep", argv0, "60", (char *)NULL);
    _exit(127);
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  return pid;
}

static void reap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

/* A pid that no process has (a child that exited and was reaped). */
static pid_t dead_pid(void) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(0);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  return pid;
}

static mcpr_proxy_entry entry(const char *name, int port) {
  mcpr_proxy_entry e;
  memset(&e, 0, sizeof e);
  snprintf(e.name, sizeof e.name, "%s", name);
  e.port = port;
  snprintf(e.upstream_url, sizeof e.upstream_url, "http://127.0.0.1:9000/mcp");
  snprintf(e.listen_addr, sizeof e.listen_addr, "127.0.0.1:%d", port);
  snprintf(e.config_path, sizeof e.config_path, "/etc/mcpr/%s.toml", name);
  return e;
}

static void test_name_ok(void **state) {
  (void)state;
  assert_true(mcpr_registry_name_ok("docs-api"));
  assert_true(mcpr_registry_name_ok("a.b_c-1"));
  assert_true(mcpr_registry_name_ok("x"));
  char max[MCPR_REGISTRY_NAME_MAX + 2];
  memset(max, 'n', sizeof max);
  max[MCPR_REGISTRY_NAME_MAX] = '\0';
  assert_true(mcpr_registry_name_ok(max));
  max[MCPR_REGISTRY_NAME_MAX] = 'n';
  max[MCPR_REGISTRY_NAME_MAX + 1] = '\0';
  assert_false(mcpr_registry_name_ok(max));
  static const char *const bad[] = {"", ".", "..", ".hidden", "a/b", "../x", "a b", "é", "a\nb",
                                    "a:b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(mcpr_registry_name_ok(bad[i]));
  assert_false(mcpr_registry_name_ok(NULL));
}

static void test_acquire_writes_lock(void **state) {
  (void)state;
  mode_t old = umask(0); /* the modes are the registry's own, not the umask's */
  mcpr_proxy_entry e = entry("docs", 3000);
  mcpr_error err = {0};
  assert_int_equal(mcpr_registry_acquire(&e, NULL, &err), MCPR_OK);
  umask(old);
  assert_int_equal(e.pid, getpid());
  assert_true(e.started_at > 0);

  char *mcpr_dir = strdup(home), *proxies = reg_file(NULL, NULL), *dir = reg_file("docs", NULL),
       *lock = reg_file("docs", "lock.json");
  char buf[2048];
  snprintf(buf, sizeof buf, "%s/.mcpr", home);
  assert_int_equal(mode_of(buf), 0700);
  assert_int_equal(mode_of(proxies), 0700);
  assert_int_equal(mode_of(dir), 0700);
  assert_int_equal(mode_of(lock), 0600);

  char *text = tu_read_text(lock);
  json_t *o = json_loads(text, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "name")), "docs");
  assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
  assert_int_equal(json_integer_value(json_object_get(o, "port")), 3000);
  assert_string_equal(json_string_value(json_object_get(o, "upstream_url")),
                      "http://127.0.0.1:9000/mcp");
  assert_string_equal(json_string_value(json_object_get(o, "listen_addr")), "127.0.0.1:3000");
  assert_string_equal(json_string_value(json_object_get(o, "config_path")), "/etc/mcpr/docs.toml");
  assert_int_equal(json_integer_value(json_object_get(o, "started_at")), e.started_at);
  json_decref(o);
  free(text);

  /* only lock.json: the temp file it was written to is gone */
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    if (de->d_name[0] != '.') {
      assert_string_equal(de->d_name, "lock.json");
      n++;
    }
  closedir(d);
  assert_int_equal(n, 1);

  /* read back (this test program is not an mcpr process: its own lock
   * reads as stale, as a recycled pid's would) */
  mcpr_proxy_entry got;
  assert_int_equal(mcpr_registry_get("docs", &got, &err), MCPR_OK);
  assert_int_equal(got.pid, getpid());
  assert_int_equal(got.port, 3000);
  assert_string_equal(got.listen_addr, "127.0.0.1:3000");
  assert_string_equal(got.config_path, "/etc/mcpr/docs.toml");
  assert_int_equal(got.started_at, e.started_at);
  assert_int_equal(got.state, MCPR_PROXY_STALE);
  char url[64];
  mcpr_registry_localhost_url(&got, url, sizeof url);
  assert_string_equal(url, "http://localhost:3000");

  /* release: this process's lock goes, the folder stays (a stopped proxy) */
  mcpr_registry_release("docs");
  assert_false(exists(lock));
  assert_true(exists(dir));
  assert_int_equal(mcpr_registry_get("docs", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_STOPPED);
  assert_int_equal(got.pid, 0);

  free(mcpr_dir);
  free(proxies);
  free(dir);
  free(lock);
}

static void test_acquire_bad_name(void **state) {
  (void)state;
  mcpr_proxy_entry e = entry("x", 1);
  snprintf(e.name, sizeof e.name, "../escape");
  mcpr_error err = {0};
  assert_int_equal(mcpr_registry_acquire(&e, NULL, &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "../escape"));
  char *p = reg_file(NULL, NULL);
  assert_false(exists(p)); /* nothing made */
  free(p);
  mcpr_proxy_entry got;
  assert_int_equal(mcpr_registry_get("../escape", &got, &err), MCPR_ENOTFOUND);
}

static void test_duplicate_refused(void **state) {
  (void)state;
  pid_t holder_pid = spawn_as("mcpr");
  write_lock_pid("docs", holder_pid, 4100);
  char *lock = reg_file("docs", "lock.json");
  char *before = tu_read_text(lock);

  mcpr_proxy_entry got;
  mcpr_error err = {0};
  assert_int_equal(mcpr_registry_get("docs", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_RUNNING);
  assert_string_equal(mcpr_proxy_state_name(got.state), "running");

  mcpr_proxy_entry e = entry("docs", 3000), holder;
  memset(&holder, 0, sizeof holder);
  assert_int_equal(mcpr_registry_acquire(&e, &holder, &err), MCPR_EBUSY);
  assert_int_equal(holder.pid, holder_pid);
  assert_int_equal(holder.port, 4100);
  assert_int_equal(holder.state, MCPR_PROXY_RUNNING);
  char want[128];
  snprintf(want, sizeof want, "pid %ld, port 4100", (long)holder_pid);
  assert_non_null(strstr(err.message, want));
  assert_non_null(strstr(err.message, "'docs'"));
  /* the holder's lock is untouched */
  char *after = tu_read_text(lock);
  assert_string_equal(before, after);
  /* and release by another process leaves it */
  mcpr_registry_release("docs");
  assert_true(exists(lock));
  /* delete is refused while it runs */
  assert_int_equal(mcpr_registry_delete("docs", &err), MCPR_EBUSY);
  assert_non_null(strstr(err.message, "mcpr proxy stop docs"));
  assert_true(exists(lock));

  /* another name is free */
  mcpr_proxy_entry other = entry("other", 3001);
  assert_int_equal(mcpr_registry_acquire(&other, NULL, &err), MCPR_OK);

  reap(holder_pid);
  free(before);
  free(after);
  free(lock);
}

static void test_stale_taken_over(void **state) {
  (void)state;
  mcpr_error err = {0};
  mcpr_proxy_entry got;
  /* a dead pid */
  write_lock_pid("dead", dead_pid(), 4200);
  assert_int_equal(mcpr_registry_get("dead", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_STALE);
  assert_string_equal(mcpr_proxy_state_name(got.state), "stale");
  assert_int_equal(got.port, 4200);
  mcpr_proxy_entry e = entry("dead", 3000);
  assert_int_equal(mcpr_registry_acquire(&e, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_registry_get("dead", &got, &err), MCPR_OK);
  assert_int_equal(got.pid, getpid());
  assert_int_equal(got.port, 3000);

  /* a live pid that is not mcpr (reused by another program) */
  pid_t other = spawn_as("sleep");
  write_lock_pid("reused", other, 4300);
  assert_int_equal(mcpr_registry_get("reused", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_STALE);
  e = entry("reused", 3002);
  assert_int_equal(mcpr_registry_acquire(&e, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_registry_get("reused", &got, &err), MCPR_OK);
  assert_int_equal(got.pid, getpid());
  reap(other);

  /* stop on a stale lock clears it without signalling anyone */
  write_lock_pid("gone", dead_pid(), 4400);
  mcpr_proxy_entry was;
  assert_int_equal(mcpr_registry_stop("gone", 1000, &was, &err), MCPR_OK);
  assert_int_equal(was.state, MCPR_PROXY_STALE);
  char *lock = reg_file("gone", "lock.json");
  assert_false(exists(lock));
  free(lock);
  /* and on a stopped one says so */
  assert_int_equal(mcpr_registry_stop("gone", 1000, &was, &err), MCPR_ENOTFOUND);
  assert_int_equal(mcpr_registry_stop("unknown", 1000, &was, &err), MCPR_ENOTFOUND);
}

static void test_stop_running(void **state) {
  (void)state;
  pid_t pid = spawn_as("/usr/local/bin/mcpr");
  write_lock_pid("live", pid, 4500);
  mcpr_error err = {0};
  mcpr_proxy_entry was;
  /* sleep dies of the SIGTERM; as our unreaped child it is a zombie, whose
   * empty cmdline reads as not mcpr: stopped */
  assert_int_equal(mcpr_registry_stop("live", 5000, &was, &err), MCPR_OK);
  assert_int_equal(was.pid, pid);
  assert_int_equal(was.state, MCPR_PROXY_RUNNING);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  char *lock = reg_file("live", "lock.json");
  assert_false(exists(lock)); /* the proxy did not remove it: stop did */
  free(lock);
}

static void test_stop_timeout(void **state) {
  (void)state;
  /* a holder that ignores SIGTERM */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGTERM, SIG_IGN); /* kept across exec */
    execl("/bin/sleep", "mcpr", "60", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) { /* until exec'd */
    char path[64], cmd[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(cmd, 1, sizeof cmd - 1, f);
      cmd[n] = '\0';
      fclose(f);
    }
    if (strcmp(cmd, "mcpr") == 0)
      break;
    tu_sleep_ms(10);
  }
  write_lock_pid("stubborn", pid, 4600);
  mcpr_error err = {0};
  mcpr_proxy_entry was;
  assert_int_equal(mcpr_registry_stop("stubborn", 200, &was, &err), MCPR_ETIMEDOUT);
  assert_non_null(strstr(err.message, "still running"));
  char *lock = reg_file("stubborn", "lock.json");
  assert_true(exists(lock)); /* kept */
  free(lock);
  reap(pid);
}

static void test_list(void **state) {
  (void)state;
  mcpr_proxy_entry *v = (mcpr_proxy_entry *)1;
  size_t n = 99;
  mcpr_error err = {0};
  /* no ~/.mcpr at all */
  assert_int_equal(mcpr_registry_list(&v, &n, &err), MCPR_OK);
  assert_null(v);
  assert_int_equal(n, 0);

  pid_t live = spawn_as("mcpr");
  write_lock_pid("b-running", live, 5001);
  make_proxy_dir("c-stopped");
  write_lock_pid("a-stale", dead_pid(), 5002);
  make_proxy_dir(".hidden"); /* not a proxy name */
  char *junk = reg_file("zz-file", NULL); /* a file, not a folder */
  tu_write_text(junk, "x");
  free(junk);
  write_lock_text("d-badlock", "{not json");

  assert_int_equal(mcpr_registry_list(&v, &n, &err), MCPR_OK);
  assert_int_equal(n, 4);
  assert_string_equal(v[0].name, "a-stale");
  assert_int_equal(v[0].state, MCPR_PROXY_STALE);
  assert_int_equal(v[0].port, 5002);
  assert_string_equal(v[1].name, "b-running");
  assert_int_equal(v[1].state, MCPR_PROXY_RUNNING);
  assert_int_equal(v[1].pid, live);
  assert_string_equal(v[1].upstream_url, "http://127.0.0.1:9000/mcp");
  assert_string_equal(v[2].name, "c-stopped");
  assert_int_equal(v[2].state, MCPR_PROXY_STOPPED);
  assert_int_equal(v[2].pid, 0);
  assert_string_equal(v[3].name, "d-badlock");
  assert_int_equal(v[3].state, MCPR_PROXY_STOPPED);
  free(v);
  reap(live);
}

static void test_delete(void **state) {
  (void)state;
  mcpr_error err = {0};
  assert_int_equal(mcpr_registry_delete("nope", &err), MCPR_ENOTFOUND);
  assert_non_null(strstr(err.message, "nope"));

  /* a stopped proxy with its leftovers */
  make_proxy_dir("old");
  assert_int_equal(mcpr_registry_reload_request("old", 7, "/x.toml", &err), MCPR_OK);
  assert_int_equal(mcpr_registry_reload_result("old", 7, MCPR_RELOAD_APPLIED, "ok"), MCPR_OK);
  char *dir = reg_file("old", NULL);
  assert_int_equal(mcpr_registry_delete("old", &err), MCPR_OK);
  assert_false(exists(dir));
  free(dir);
  assert_int_equal(mcpr_registry_delete("old", &err), MCPR_ENOTFOUND);

  /* a stale one */
  write_lock_pid("stale", dead_pid(), 1);
  dir = reg_file("stale", NULL);
  assert_int_equal(mcpr_registry_delete("stale", &err), MCPR_OK);
  assert_false(exists(dir));
  free(dir);

  /* a bad name touches nothing outside */
  assert_int_equal(mcpr_registry_delete("..", &err), MCPR_ENOTFOUND);
  assert_int_equal(mcpr_registry_delete("../..", &err), MCPR_ENOTFOUND);
  assert_true(exists(home));
}

/* lock.json contents that are not a usable lock: no crash, no lock. */
static void test_bad_lock_files(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "{not json",
      "null",
      "[1,2,3]",
      "\"pid\"",
      "{\"pid\":\"123\"}",
      "{\"pid\":-5}",
      "{\"pid\":0}",
      "{\"pid\":99999999999}",
      "{\"pid\":1.5}",
      "{\"port\":3000}",
      "\xff\xfe\x00garbage",
  };
  mcpr_error err = {0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_lock_text("bad", bad[i]);
    mcpr_proxy_entry got;
    assert_int_equal(mcpr_registry_get("bad", &got, &err), MCPR_OK);
    assert_int_equal(got.state, MCPR_PROXY_STOPPED);
    assert_int_equal(got.pid, 0);
    mcpr_proxy_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(mcpr_registry_list(&v, &n, &err), MCPR_OK);
    assert_int_equal(n, 1);
    free(v);
    /* stop does not signal anything */
    mcpr_proxy_entry was;
    assert_int_equal(mcpr_registry_stop("bad", 100, &was, &err), MCPR_ENOTFOUND);
    /* and a new proxy of that name takes the place */
    mcpr_proxy_entry e = entry("bad", 3000);
    assert_int_equal(mcpr_registry_acquire(&e, NULL, &err), MCPR_OK);
    assert_int_equal(mcpr_registry_get("bad", &got, &err), MCPR_OK);
    assert_int_equal(got.pid, getpid());
    mcpr_registry_release("bad");
  }
  /* wrong types for the other fields: empty, not garbage */
  char text[256];
  pid_t live = spawn_as("mcpr");
  snprintf(text, sizeof text,
           "{\"pid\":%ld,\"port\":\"x\",\"upstream_url\":5,\"listen_addr\":null,"
           "\"config_path\":[1]}",
           (long)live);
  write_lock_text("odd", text);
  mcpr_proxy_entry got;
  assert_int_equal(mcpr_registry_get("odd", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_RUNNING);
  assert_int_equal(got.port, 0);
  assert_string_equal(got.upstream_url, "");
  assert_string_equal(got.listen_addr, "");
  assert_string_equal(got.config_path, "");
  reap(live);
  /* over-long strings are cut to the entry's fields */
  char *big = malloc(6000);
  assert_non_null(big);
  int at = snprintf(big, 6000, "{\"pid\":%ld,\"upstream_url\":\"", (long)dead_pid());
  memset(big + at, 'u', 5000);
  snprintf(big + at + 5000, 6000 - (size_t)at - 5000, "\"}");
  write_lock_text("long", big);
  free(big);
  assert_int_equal(mcpr_registry_get("long", &got, &err), MCPR_OK);
  assert_int_equal(got.state, MCPR_PROXY_STALE);
  assert_int_equal(strlen(got.upstream_url), sizeof got.upstream_url - 1);
}

static void test_reload_handshake(void **state) {
  (void)state;
  mcpr_error err = {0};
  make_proxy_dir("docs");
  uint64_t nonce = 0;
  char path[256];
  mcpr_reload_outcome outcome = 0;
  char msg[256];
  /* nothing asked yet */
  assert_false(mcpr_registry_reload_read_request("docs", &nonce, path, sizeof path));
  assert_false(mcpr_registry_reload_read_result("docs", 1, &outcome, msg, sizeof msg));

  assert_int_equal(mcpr_registry_reload_request("docs", 18446744073709551615ull, "/etc/m.toml", &err),
                   MCPR_OK);
  char *req = reg_file("docs", "reload_request");
  assert_int_equal(mode_of(req), 0600);
  assert_true(mcpr_registry_reload_read_request("docs", &nonce, path, sizeof path));
  assert_true(nonce == 18446744073709551615ull);
  assert_string_equal(path, "/etc/m.toml");
  /* consumed: not read twice */
  assert_false(exists(req));
  assert_false(mcpr_registry_reload_read_request("docs", &nonce, path, sizeof path));

  /* no config path: the proxy's own */
  assert_int_equal(mcpr_registry_reload_request("docs", 5, NULL, &err), MCPR_OK);
  assert_true(mcpr_registry_reload_read_request("docs", &nonce, path, sizeof path));
  assert_int_equal(nonce, 5);
  assert_string_equal(path, "");

  /* a path with a newline or a bad name is refused */
  assert_int_equal(mcpr_registry_reload_request("docs", 6, "/a\nb", &err), MCPR_EINVAL);
  assert_int_equal(mcpr_registry_reload_request("../x", 6, "/a", &err), MCPR_EINVAL);
  assert_false(exists(req));

  /* a request that is not one is dropped */
  tu_write_text(req, "not a number\n/x\n");
  assert_false(mcpr_registry_reload_read_request("docs", &nonce, path, sizeof path));
  assert_false(exists(req));
  free(req);

  assert_int_equal(mcpr_registry_reload_result("docs", 5, MCPR_RELOAD_REJECTED,
                                               "line 3: unknown key \"x\"\n"),
                   MCPR_OK);
  char *res = reg_file("docs", "reload_result");
  assert_int_equal(mode_of(res), 0600);
  assert_false(mcpr_registry_reload_read_result("docs", 4, &outcome, msg, sizeof msg)); /* another's */
  assert_true(mcpr_registry_reload_read_result("docs", 5, &outcome, msg, sizeof msg));
  assert_int_equal(outcome, MCPR_RELOAD_REJECTED);
  assert_string_equal(msg, "line 3: unknown key \"x\"");
  assert_int_equal(mcpr_registry_reload_result("docs", 9, MCPR_RELOAD_APPLIED, NULL), MCPR_OK);
  assert_true(mcpr_registry_reload_read_result("docs", 9, &outcome, msg, sizeof msg));
  assert_int_equal(outcome, MCPR_RELOAD_APPLIED);
  assert_string_equal(msg, "");
  /* a result that is not one */
  tu_write_text(res, "9\nmaybe\nx\n");
  assert_false(mcpr_registry_reload_read_result("docs", 9, &outcome, msg, sizeof msg));
  tu_write_text(res, "9");
  assert_false(mcpr_registry_reload_read_result("docs", 9, &outcome, msg, sizeof msg));
  free(res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_ok),
      cmocka_unit_test_setup_teardown(test_acquire_writes_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_acquire_bad_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_taken_over, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_lock_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload_handshake, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
