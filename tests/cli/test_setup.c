/*
 * `mcpr setup` end to end: the built binary (MCPR_BIN) against the fake
 * cloud, HOME in a temp dir, stdin not a terminal. A canary token and JWT
 * are served by the fake cloud; neither may appear in any output.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, ptsname */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakecloud.h"
#include "testutil.h"

extern char **environ;

#define CANARY_TOKEN "mcpr_CANARYtok3n7f3e9a1b2c4d5e6f"
#define CANARY_SIG "CANARYsig0a1b2c3d4e5f60718293a4b5c6d7e8f9"

typedef struct fixture {
  fakecloud *fc;
  char *root; /* holds work/, home/ and the captured output */
  char *dir;  /* cwd of the command */
  char *home; /* HOME of the command */
  char *all_output; /* everything any command printed, for the canary check */
  size_t all_len;
} fixture;

typedef struct result {
  int code;
  char *out, *err;
} result;

static char *b64url(const char *s) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = strlen(s);
  char *o = calloc(1, n * 2 + 4);
  size_t k = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)s[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)s[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)s[i + 2];
    o[k++] = tab[(v >> 18) & 63];
    o[k++] = tab[(v >> 12) & 63];
    if (i + 1 < n)
      o[k++] = tab[(v >> 6) & 63];
    if (i + 2 < n)
      o[k++] = tab[v & 63];
  }
  return o;
}

/* A JWT expiring at exp, with a canary signature. New string. */
static char *make_jwt(long long exp, const char *tag) {
  char payload[128];
  snprintf(payload, sizeof payload, "{\"exp\":%lld,\"sub\":\"%s\"}", exp, tag);
  char *p = b64url(payload);
  size_t n = strlen(p) + 128;
  char *jwt = calloc(1, n);
  snprintf(jwt, n, "eyJhbGciOiJIUzI1NiJ9.%s.%s%s", p, CANARY_SIG, tag);
  free(p);
  return jwt;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return strdup("");
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/*
 * Run mcpr with args (NULL-terminated) in f->dir, HOME=f->home. stdin is
 * /dev/null, or with tty_input a pseudo-terminal that has those lines typed.
 */
static result run_with(fixture *f, const char *const *args, const char *tty_input) {
  const char *bin = getenv("MCPR_BIN");
  assert_non_null(bin);
  char *out_path = tu_path(f->root, "stdout.txt");
  char *err_path = tu_path(f->root, "stderr.txt");
  /* environment: ours minus HOME/MCPR_*, plus HOME */
  size_t n = 0;
  while (environ[n])
    n++;
  char **envp = calloc(n + 2, sizeof *envp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "HOME=", 5) && strncmp(environ[i], "MCPR_CLOUD_URL=", 15) &&
        strncmp(environ[i], "MCPR_DB=", 8))
      envp[k++] = environ[i];
  char homevar[4200];
  snprintf(homevar, sizeof homevar, "HOME=%s", f->home);
  envp[k++] = homevar;
  char *argv[32];
  size_t a = 0;
  argv[a++] = (char *)bin;
  for (; args[a - 1] && a < 31; a++)
    argv[a] = (char *)args[a - 1];
  argv[a] = NULL;
  int in = -1, master = -1;
  if (tty_input) {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    in = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_int_equal(write(master, tty_input, strlen(tty_input)), (ssize_t)strlen(tty_input));
  } else {
    in = open("/dev/null", O_RDONLY);
  }
  int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(in >= 0 && out >= 0 && err >= 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (chdir(f->dir) != 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
      _exit(127);
    execve(bin, argv, envp);
    _exit(127);
  }
  close(in);
  close(out);
  close(err);
  int status = 0;
  waitpid(pid, &status, 0);
  if (master >= 0)
    close(master);
  free(envp);
  result r = {WIFEXITED(status) ? WEXITSTATUS(status) : 128, slurp(out_path), slurp(err_path)};
  size_t add = strlen(r.out) + strlen(r.err);
  f->all_output = realloc(f->all_output, f->all_len + add + 1);
  memcpy(f->all_output + f->all_len, r.out, strlen(r.out));
  memcpy(f->all_output + f->all_len + strlen(r.out), r.err, strlen(r.err));
  f->all_len += add;
  f->all_output[f->all_len] = '\0';
  free(out_path);
  free(err_path);
  return r;
}

static result run(fixture *f, const char *const *args) { return run_with(f, args, NULL); }

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->root = tu_tmpdir();
  f->dir = tu_path(f->root, "work");
  f->home = tu_path(f->root, "home");
  assert_int_equal(mkdir(f->dir, 0755), 0);
  assert_int_equal(mkdir(f->home, 0755), 0);
  f->fc = fc_start(NULL);
  f->all_output = strdup("");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  /* the canary never reached any output */
  if (strstr(f->all_output, CANARY_TOKEN) || strstr(f->all_output, CANARY_SIG))
    fail_msg("a secret was printed:\n%s", f->all_output);
  fc_stop(f->fc);
  tu_rmdir(f->root);
  free(f->dir);
  free(f->home);
  free(f->all_output);
  free(f);
  return 0;
}

/* The routes of a cloud where the project and server do not exist yet. */
static void script_new_account(fixture *f, const char *jwt) {
  fc_route(f->fc, "POST", "/api/auth/cli/login", 200, "{\"request_id\":\"req-7\"}");
  char verify[1024];
  snprintf(verify, sizeof verify, "{\"token\":\"%s\",\"user\":{\"id\":\"u1\",\"email\":\"dev@example.com\",\"name\":\"Dev\"}}", jwt);
  fc_route(f->fc, "POST", "/api/auth/cli/verify", 200, verify);
  fc_route(f->fc, "GET", "/api/projects", 200, "[{\"id\":\"p0\",\"name\":\"Other\",\"slug\":\"other\"}]");
  fc_route(f->fc, "POST", "/api/projects", 201, "{\"id\":\"p1\",\"name\":\"demo\",\"slug\":\"demo\"}");
  fc_route(f->fc, "GET", "/api/servers/by-project/p1", 200, "[]");
  fc_route(f->fc, "POST", "/api/servers/by-project/p1", 201,
           "{\"id\":\"s1\",\"name\":\"api\",\"slug\":\"api\",\"project_id\":\"p1\"}");
  fc_route(f->fc, "GET", "/api/endpoints/by-server/s1", 200, "[]");
  fc_route(f->fc, "POST", "/api/endpoints/by-server/s1", 201,
           "{\"id\":\"e1\",\"name\":\"tun\",\"status\":\"pending\",\"server_id\":\"s1\"}");
  fc_route(f->fc, "POST", "/api/projects/p1/tokens", 201,
           "{\"id\":\"t1\",\"token\":\"" CANARY_TOKEN "\",\"name\":\"setup\"}");
}

static mode_t mode_of(const char *path) {
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  return sb.st_mode & 0777;
}

static void test_full_flow(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 86400, "full");
  script_new_account(f, jwt);
  char *cfg = tu_path(f->dir, "mcpr.toml");
  spit(cfg, "# my proxy\nname = \"api\"  # keep\n\n[store]\npath = \"/tmp/x.db\"\n");
  const char *args[] = {"setup", "--config", "mcpr.toml", "--cloud-url", fc_url(f->fc),
                        "--email", "dev@example.com", "--code", "424242", "--project", "demo",
                        "--server", "api", "--endpoint", "tun", NULL};
  result r = run(f, args);
  if (r.code != 0)
    fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.out, "Created project demo"));
  assert_non_null(strstr(r.out, "Created server api"));
  assert_non_null(strstr(r.out, "Created endpoint tun"));
  assert_non_null(strstr(r.out, "mcpr_…5e6f")); /* the token, masked */
  result_free(&r);

  /* the config: comments and order kept, [cloud] added, 0600 */
  char *text = slurp(cfg);
  char want[2048];
  snprintf(want, sizeof want,
           "# my proxy\nname = \"api\"  # keep\n\n[store]\npath = \"/tmp/x.db\"\n\n[cloud]\n"
           "token = \"%s\"\nserver = \"api\"\nendpoint = \"%s\"\n",
           CANARY_TOKEN, fc_url(f->fc));
  assert_string_equal(text, want);
  free(text);
  assert_int_equal(mode_of(cfg), 0600);

  /* the login cache */
  char *mdir = tu_path(f->home, ".mcpr");
  char *auth = tu_path(f->home, ".mcpr/auth.json");
  assert_int_equal(mode_of(mdir), 0700);
  assert_int_equal(mode_of(auth), 0600);
  text = slurp(auth);
  assert_non_null(strstr(text, jwt));
  assert_non_null(strstr(text, "\"email\": \"dev@example.com\""));
  assert_non_null(strstr(text, fc_url(f->fc)));
  free(text);

  /* what the cloud saw */
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 1);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/verify"), 1);
  assert_int_equal(fc_count(f->fc, "POST", "/api/projects"), 1);
  assert_int_equal(fc_count(f->fc, "POST", "/api/servers/by-project/p1"), 1);
  assert_int_equal(fc_count(f->fc, "POST", "/api/projects/p1/tokens"), 1);
  for (size_t i = 0; i < fc_request_count(f->fc); i++) {
    fc_request q;
    assert_true(fc_request_get(f->fc, i, &q));
    if (!strcmp(q.path, "/api/auth/cli/verify"))
      assert_non_null(strstr(q.body, "\"code\":\"424242\""));
    if (!strcmp(q.path, "/api/projects") && !strcmp(q.method, "POST"))
      assert_string_equal(q.body, "{\"name\":\"demo\",\"slug\":\"demo\"}");
    fc_request_release(&q);
  }

  /* config check reads it back, token masked */
  const char *check[] = {"config", "check", "--config", "mcpr.toml", NULL};
  r = run(f, check);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "mcpr_…5e6f"));
  assert_non_null(strstr(r.out, "cloud.server "));
  assert_non_null(strstr(r.out, " api\n"));
  result_free(&r);
  free(mdir);
  free(auth);
  free(cfg);
  free(jwt);
}

static void write_cache(fixture *f, const char *jwt, const char *url) {
  char *mdir = tu_path(f->home, ".mcpr");
  mkdir(mdir, 0700);
  char *auth = tu_path(f->home, ".mcpr/auth.json");
  char text[2048];
  snprintf(text, sizeof text, "{\"jwt\":\"%s\",\"email\":\"old@example.com\",\"cloud_url\":\"%s\"}\n", jwt, url);
  spit(auth, text);
  chmod(auth, 0600);
  free(auth);
  free(mdir);
}

static void test_cached_login_is_reused(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 3600, "cached");
  write_cache(f, jwt, fc_url(f->fc));
  fc_route(f->fc, "GET", "/api/projects", 200, "[{\"id\":\"p1\",\"name\":\"demo\",\"slug\":\"demo\"}]");
  fc_route(f->fc, "GET", "/api/servers/by-project/p1", 200,
           "[{\"id\":\"s1\",\"name\":\"api\",\"slug\":\"api\",\"project_id\":\"p1\"}]");
  fc_route(f->fc, "POST", "/api/projects/p1/tokens", 201, "{\"id\":\"t1\",\"token\":\"" CANARY_TOKEN "\",\"name\":\"x\"}");
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--project", "demo", "--server", "api", NULL};
  result r = run(f, args);
  if (r.code != 0)
    fail_msg("exit %d\n%s\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.out, "Using the saved login for old@example.com"));
  assert_non_null(strstr(r.out, "Project demo"));
  result_free(&r);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 0);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/verify"), 0);
  assert_int_equal(fc_count(f->fc, "POST", "/api/projects"), 0);
  assert_int_equal(fc_count(f->fc, "POST", "/api/servers/by-project/p1"), 0);
  fc_request q;
  assert_true(fc_request_get(f->fc, 0, &q));
  char h[1024], want[1024];
  snprintf(want, sizeof want, "Bearer %s", jwt);
  assert_non_null(fc_header(&q, "Authorization", h, sizeof h));
  assert_string_equal(h, want);
  fc_request_release(&q);
  /* default config path ./mcpr.toml was created, with the token, 0600 */
  char *cfg = tu_path(f->dir, "mcpr.toml");
  char *text = slurp(cfg);
  assert_non_null(strstr(text, "token = \"" CANARY_TOKEN "\""));
  free(text);
  assert_int_equal(mode_of(cfg), 0600);
  free(cfg);
  free(jwt);
}

static void test_expired_or_foreign_login_is_replaced(void **state) {
  fixture *f = *state;
  char *fresh = make_jwt((long long)time(NULL) + 86400, "fresh");
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--email", "dev@example.com",
                        "--code", "1", "--project", "demo", "--server", "api", NULL};
  /* expires in 4 minutes: under the 5-minute margin */
  char *stale = make_jwt((long long)time(NULL) + 240, "stale");
  write_cache(f, stale, fc_url(f->fc));
  script_new_account(f, fresh);
  result r = run(f, args);
  if (r.code != 0)
    fail_msg("exit %d\n%s\n%s", r.code, r.out, r.err);
  result_free(&r);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 1);
  char *auth = tu_path(f->home, ".mcpr/auth.json");
  char *text = slurp(auth);
  assert_non_null(strstr(text, fresh));
  assert_null(strstr(text, stale));
  free(text);
  assert_int_equal(mode_of(auth), 0600);

  /* valid, but for another cloud: not reused either */
  fc_reset(f->fc);
  char *other = make_jwt((long long)time(NULL) + 86400, "other");
  write_cache(f, other, "https://api.mcpr.app");
  script_new_account(f, fresh);
  r = run(f, args);
  assert_int_equal(r.code, 0);
  result_free(&r);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 1);
  free(other);
  free(auth);
  free(stale);
  free(fresh);
}

/* Without a terminal the login takes two runs, as the code arrives by
 * e-mail: `--email E` asks for the code and exits 0 (nothing else called,
 * nothing written but the kept request); `--email E --code N …` verifies
 * the code against that request (no second code sent) and completes. */
static void test_login_in_two_runs(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 86400, "two-runs");
  script_new_account(f, jwt);
  /* the original's name for the command, then ours with its --output */
  const char *first[] = {"proxy", "setup", "--cloud-url", fc_url(f->fc), "--email",
                         "dev@example.com", NULL};
  result r = run(f, first);
  if (r.code != 0)
    fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.out, "A login code was sent to dev@example.com."));
  assert_non_null(strstr(r.out, "--code"));
  result_free(&r);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 1);
  assert_int_equal(fc_request_count(f->fc), 1);
  char *cfg = tu_path(f->dir, "mcpr.toml");
  assert_int_equal(access(cfg, F_OK), -1); /* no config yet */
  char *kept = tu_path(f->home, ".mcpr/login-request.json");
  assert_int_equal(mode_of(kept), 0600);

  const char *second[] = {"setup", "--cloud-url", fc_url(f->fc), "--email", "dev@example.com",
                          "--code", "424242", "--project", "demo", "--server", "api",
                          "-o", "mcpr.toml", NULL};
  r = run(f, second);
  if (r.code != 0)
    fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.out, "Created server api"));
  result_free(&r);
  /* verified against the first run's request: no second code was sent */
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/login"), 1);
  assert_int_equal(fc_count(f->fc, "POST", "/api/auth/cli/verify"), 1);
  for (size_t i = 0; i < fc_request_count(f->fc); i++) {
    fc_request q;
    assert_true(fc_request_get(f->fc, i, &q));
    if (!strcmp(q.path, "/api/auth/cli/verify")) {
      assert_non_null(strstr(q.body, "\"request_id\":\"req-7\""));
      assert_non_null(strstr(q.body, "\"code\":\"424242\""));
    }
    fc_request_release(&q);
  }
  char *text = slurp(cfg);
  assert_non_null(strstr(text, "[cloud]\ntoken = \"" CANARY_TOKEN "\"\nserver = \"api\"\n"));
  free(text);
  assert_int_equal(access(kept, F_OK), -1); /* a request is used once */
  free(kept);
  free(cfg);
  free(jwt);
}

static void test_missing_flags_without_a_terminal(void **state) {
  fixture *f = *state;
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--project", "demo", NULL};
  result r = run(f, args);
  assert_int_equal(r.code, 2);
  r.err[strcspn(r.err, "\n")] = '\0'; /* the message; the usage text follows */
  assert_non_null(strstr(r.err, "not a terminal"));
  assert_non_null(strstr(r.err, "missing: --email --code --server"));
  assert_null(strstr(r.err, "--project"));
  assert_int_equal(fc_request_count(f->fc), 0); /* nothing was sent */
  result_free(&r);

  const char *bad[] = {"setup", "--email", NULL};
  r = run(f, bad);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "--email needs a value"));
  result_free(&r);
  /* a stray argument is not echoed (it could be a pasted secret) */
  const char *stray[] = {"setup", CANARY_TOKEN, NULL};
  r = run(f, stray);
  assert_int_equal(r.code, 2);
  result_free(&r);
}

static void test_refuses_cleartext_cloud(void **state) {
  fixture *f = *state;
  const char *args[] = {"setup", "--cloud-url", "http://cloud.example.com", "--email", "a@b.c",
                        "--code", "1", "--project", "p", "--server", "s", NULL};
  result r = run(f, args);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "refusing plain http://"));
  result_free(&r);
}

static void test_api_errors_are_reported(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 86400, "err");
  write_cache(f, jwt, fc_url(f->fc));
  char *cfg = tu_path(f->dir, "mcpr.toml");
  spit(cfg, "name = \"x\"\n");
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--project", "demo", "--server", "api", NULL};

  /* a message field */
  fc_route(f->fc, "GET", "/api/projects", 200, "[]");
  fc_route(f->fc, "POST", "/api/projects", 409, "{\"message\":\"slug demo is taken\"}");
  result r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "cannot create the project: POST /api/projects: HTTP 409: slug demo is taken"));
  result_free(&r);

  /* an error field */
  fc_reset(f->fc);
  fc_route(f->fc, "GET", "/api/projects", 400, "{\"error\":\"bad project query\"}");
  r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "HTTP 400: bad project query"));
  result_free(&r);

  /* a raw 500 body that echoes our JWT: shown, JWT masked */
  fc_reset(f->fc);
  char body[2048];
  snprintf(body, sizeof body, "internal error while checking %s", jwt);
  fc_route(f->fc, "GET", "/api/projects", 500, body);
  r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "HTTP 500: internal error while checking …"));
  assert_null(strstr(r.err, jwt));
  result_free(&r);

  /* a malformed body, and one far too large */
  fc_reset(f->fc);
  fc_route(f->fc, "GET", "/api/projects", 200, "[{\"id\":");
  r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "not valid JSON"));
  result_free(&r);
  fc_reset(f->fc);
  size_t n = 2 * 1024 * 1024;
  char *huge = malloc(n + 1);
  memset(huge, '[', n);
  huge[n] = '\0';
  fc_route(f->fc, "GET", "/api/projects", 200, huge);
  free(huge);
  r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "larger than"));
  result_free(&r);

  /* the token call failing leaves the config as it was */
  fc_reset(f->fc);
  fc_route(f->fc, "GET", "/api/projects", 200, "[{\"id\":\"p1\",\"name\":\"demo\",\"slug\":\"demo\"}]");
  fc_route(f->fc, "GET", "/api/servers/by-project/p1", 200, "[{\"id\":\"s1\",\"name\":\"api\",\"slug\":\"api\"}]");
  fc_route(f->fc, "POST", "/api/projects/p1/tokens", 403, "{\"message\":\"not your project\"}");
  r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "HTTP 403: not your project"));
  result_free(&r);
  char *text = slurp(cfg);
  assert_string_equal(text, "name = \"x\"\n");
  free(text);
  free(cfg);
  free(jwt);
}

static void test_redirect_elsewhere_is_not_followed(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 86400, "redir");
  write_cache(f, jwt, fc_url(f->fc));
  fakecloud *evil = fc_start("127.0.0.2");
  fc_route(evil, "GET", "/api/projects", 200, "[]");
  char loc[256];
  snprintf(loc, sizeof loc, "%s/api/projects", fc_url(evil));
  fc_redirect(f->fc, "GET", "/api/projects", 302, loc);
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--project", "demo", "--server", "api", NULL};
  result r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "redirected"));
  result_free(&r);
  assert_int_equal(fc_request_count(evil), 0);
  assert_false(fc_any_request_has_header(evil, "Authorization"));
  fc_stop(evil);
  free(jwt);
}

static void test_broken_config_fails_before_any_call(void **state) {
  fixture *f = *state;
  char *cfg = tu_path(f->dir, "mcpr.toml");
  spit(cfg, "name = \"x\"\n[cloud\n");
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), "--email", "a@b.c", "--code", "1",
                        "--project", "p", "--server", "s", NULL};
  result r = run(f, args);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "mcpr.toml:2:7:"));
  assert_int_equal(fc_request_count(f->fc), 0);
  result_free(&r);
  free(cfg);
}

static void test_prompts_on_a_terminal(void **state) {
  fixture *f = *state;
  char *jwt = make_jwt((long long)time(NULL) + 86400, "tty");
  script_new_account(f, jwt);
  char *cfg = tu_path(f->dir, "mcpr.toml");
  spit(cfg, "name = \"api\"\n");
  const char *args[] = {"setup", "--cloud-url", fc_url(f->fc), NULL};
  /* e-mail, code, project (new), server: empty line takes the default, the config's name */
  result r = run_with(f, args, "dev@example.com\n777\ndemo\n\n");
  if (r.code != 0)
    fail_msg("exit %d\n%s\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.err, "E-mail"));
  assert_non_null(strstr(r.err, "A login code was sent to dev@example.com"));
  assert_non_null(strstr(r.err, "project: other")); /* existing projects are listed */
  assert_non_null(strstr(r.err, "Server (slug; created if new) [api]"));
  assert_non_null(strstr(r.out, "Created server api"));
  result_free(&r);
  fc_request q;
  for (size_t i = 0; fc_request_get(f->fc, i, &q); i++) {
    if (!strcmp(q.path, "/api/auth/cli/verify"))
      assert_non_null(strstr(q.body, "\"code\":\"777\""));
    fc_request_release(&q);
  }
  char *text = slurp(cfg);
  assert_non_null(strstr(text, "server = \"api\""));
  free(text);
  free(cfg);
  free(jwt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_full_flow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_login_in_two_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cached_login_is_reused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expired_or_foreign_login_is_replaced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_flags_without_a_terminal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuses_cleartext_cloud, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_errors_are_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redirect_elsewhere_is_not_followed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_broken_config_fails_before_any_call, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prompts_on_a_terminal, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
