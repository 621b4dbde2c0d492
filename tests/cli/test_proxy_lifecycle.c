/*
 * test_proxy_lifecycle.c — `mcpr proxy run` registers itself in
 * ~/.mcpr/proxies (HOME is a temp dir here), and list, stop, reload,
 * delete, status and validate see and act on it, in front of the sample
 * MCP server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli.h"
#include "testutil.h"

static char *home, *db;
static char upstream[256];
static cli_proc sample;

static int setup(void **state) {
  (void)state;
  home = tu_tmpdir();
  db = tu_path(home, "store.db");
  setenv("HOME", home, 1);
  const char *args[] = {"--listen", "127.0.0.1:0", "--quiet", NULL};
  cli_spec spec = {.bin = getenv("MCPR_SAMPLE_SERVER_BIN"), .args = args, .timeout_ms = 300000};
  assert_non_null(spec.bin);
  cli_start(&spec, &sample);
  assert_true(cli_wait_output(&sample, "/mcp", 10000));
  const char *at = strstr(sample.out, "http://");
  assert_non_null(at);
  size_t n = strcspn(at, " \r\n");
  snprintf(upstream, sizeof upstream, "%.*s", (int)n, at);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cli_result r;
  cli_stop(&sample, SIGTERM, 5000, &r);
  cli_result_free(&r);
  tu_rmdir(home);
  free(db);
  return 0;
}

/* Start `mcpr proxy run --name NAME` (extra args before NULL); its port. */
static int start_proxy(cli_proc *p, const char *name, const char *config) {
  const char *args[16] = {"--db", db, "proxy", "run", "--name", name, "--port", "0"};
  int n = 8;
  if (config) {
    args[n++] = "-c";
    args[n++] = config;
  } else {
    args[n++] = "--mcp";
    args[n++] = upstream;
  }
  args[n] = NULL;
  cli_spec spec = {.args = args, .timeout_ms = 120000};
  cli_start(&spec, p);
  assert_true(cli_wait_output(p, "Point your MCP client", 10000));
  const char *at = strstr(p->out, "listening on http://127.0.0.1:");
  assert_non_null(at);
  return (int)strtol(at + strlen("listening on http://127.0.0.1:"), NULL, 10);
}

static json_t *list_json(void) {
  cli_result r;
  cli_runv(&r, "proxy", "list", "--json", NULL);
  assert_int_equal(r.exit_code, 0);
  json_t *a = json_loads(r.out, 0, NULL);
  assert_true(json_is_array(a));
  cli_result_free(&r);
  return a;
}

static json_t *find(json_t *a, const char *name) {
  size_t i;
  json_t *o;
  json_array_foreach(a, i, o) {
    if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
      return o;
  }
  return NULL;
}

static const char *status_of(json_t *a, const char *name) {
  json_t *o = find(a, name);
  return o ? json_string_value(json_object_get(o, "status")) : "absent";
}

static bool lock_exists(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/.mcpr/proxies/%s/lock.json", home, name);
  return access(path, F_OK) == 0;
}

static void test_two_proxies_listed_same_name_refused_stop(void **state) {
  (void)state;
  cli_proc a, b;
  int port_a = start_proxy(&a, "alpha", NULL);
  int port_b = start_proxy(&b, "beta", NULL);

  json_t *l = list_json();
  json_t *ea = find(l, "alpha"), *eb = find(l, "beta");
  assert_non_null(ea);
  assert_non_null(eb);
  assert_string_equal(json_string_value(json_object_get(ea, "status")), "running");
  assert_string_equal(json_string_value(json_object_get(eb, "status")), "running");
  assert_int_equal(json_integer_value(json_object_get(ea, "port")), port_a);
  assert_int_equal(json_integer_value(json_object_get(eb, "port")), port_b);
  assert_int_equal(json_integer_value(json_object_get(ea, "pid")), a.pid);
  assert_int_equal(json_integer_value(json_object_get(eb, "pid")), b.pid);
  assert_string_equal(json_string_value(json_object_get(ea, "upstream_url")), upstream);
  json_decref(l);

  /* The lock: 0600 in a 0700 folder. */
  char path[1024];
  struct stat sb;
  snprintf(path, sizeof path, "%s/.mcpr/proxies/alpha/lock.json", home);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  snprintf(path, sizeof path, "%s/.mcpr/proxies", home);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0700);

  /* Same name twice: refused, with the way out. */
  cli_result r;
  cli_runv(&r, "--db", db, "proxy", "run", "--name", "alpha", "--port", "0", "--mcp", upstream,
           NULL);
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "already running"));
  assert_non_null(strstr(r.err, "mcpr proxy stop alpha"));
  cli_result_free(&r);

  /* proxy status --json: the proxies array. */
  cli_runv(&r, "--db", db, "proxy", "status", "--json", NULL);
  assert_int_equal(r.exit_code, 0);
  json_t *st = json_loads(r.out, 0, NULL);
  json_t *proxies = json_object_get(st, "proxies");
  assert_true(json_is_array(proxies));
  json_t *sa = find(proxies, "alpha");
  assert_non_null(sa);
  assert_string_equal(json_string_value(json_object_get(sa, "status")), "running");
  assert_int_equal(json_integer_value(json_object_get(sa, "port")), port_a);
  assert_int_equal(json_integer_value(json_object_get(sa, "pid")), a.pid);
  char url[64];
  snprintf(url, sizeof url, "http://localhost:%d", port_a);
  assert_string_equal(json_string_value(json_object_get(sa, "localhost_url")), url);
  json_decref(st);
  cli_result_free(&r);

  /* stop alpha: exit 0, process gone, lock gone, listed as stopped. */
  cli_runv(&r, "proxy", "stop", "alpha", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "stopped"));
  cli_result_free(&r);
  cli_stop(&a, SIGKILL, 5000, &r);
  assert_int_equal(r.exit_code, 0); /* it had exited by itself, cleanly */
  cli_result_free(&r);
  assert_false(lock_exists("alpha"));
  l = list_json();
  assert_string_equal(status_of(l, "alpha"), "stopped");
  assert_string_equal(status_of(l, "beta"), "running");
  json_decref(l);

  /* kill -9 beta: stale; stop cleans it up. */
  cli_stop(&b, SIGKILL, 5000, &r);
  cli_result_free(&r);
  l = list_json();
  assert_string_equal(status_of(l, "beta"), "stale");
  json_decref(l);
  cli_runv(&r, "proxy", "stop", "beta", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "stale"));
  cli_result_free(&r);
  assert_false(lock_exists("beta"));

  /* stop of a stopped one fails; delete forgets it. */
  cli_runv(&r, "proxy", "stop", "beta", NULL);
  assert_int_equal(r.exit_code, 1);
  cli_result_free(&r);
  cli_runv(&r, "proxy", "delete", "beta", "-y", NULL);
  assert_int_equal(r.exit_code, 0);
  cli_result_free(&r);
  cli_runv(&r, "proxy", "delete", "alpha", "-y", NULL);
  assert_int_equal(r.exit_code, 0);
  cli_result_free(&r);
  l = list_json();
  assert_int_equal(json_array_size(l), 0);
  json_decref(l);
}

/* One MCP initialize through the proxy (raw HTTP/1.1). */
static void post_initialize(int port) {
  const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                     "{\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},"
                     "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}";
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Accept: application/json, text/event-stream\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(write(fd, req, (size_t)n), n);
  char buf[4096];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
}

static void test_reload(void **state) {
  (void)state;
  char *cfg = tu_path(home, "r.toml"), *bad = tu_path(home, "bad.toml");
  char text[1024];
  snprintf(text, sizeof text, "mcp = \"%s\"\nlog_format = \"pretty\"\nadmin_bind = \"off\"\n",
           upstream);
  tu_write_text(cfg, text);
  cli_proc p;
  int port = start_proxy(&p, "rel", cfg);

  snprintf(text, sizeof text, "mcp = \"%s\"\nlog_format = \"json\"\nadmin_bind = \"off\"\n",
           upstream);
  tu_write_text(cfg, text);
  cli_result r;
  cli_runv(&r, "proxy", "reload", "rel", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "log_format"));
  cli_result_free(&r);

  /* A broken config: reported with its line, the proxy keeps running. */
  tu_write_text(bad, "mcp = \"http://127.0.0.1:1/mcp\"\nlog_format = \"jsn\"\n");
  cli_runv(&r, "proxy", "reload", "rel", "--config", bad, NULL);
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "bad.toml:2:"));
  assert_non_null(strstr(r.err, "rejected"));
  cli_result_free(&r);
  /* An upstream change needs a restart. */
  snprintf(text, sizeof text, "mcp = \"http://127.0.0.1:1/mcp\"\nlog_format = \"json\"\n"
                              "admin_bind = \"off\"\n");
  tu_write_text(bad, text);
  cli_runv(&r, "proxy", "reload", "rel", "--config", bad, NULL);
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "restart: mcp"));
  cli_result_free(&r);
  json_t *l = list_json();
  assert_string_equal(status_of(l, "rel"), "running");
  json_decref(l);

  /* The json log is in effect: a request shows up as a JSON line. */
  post_initialize(port);
  tu_sleep_ms(300);

  cli_runv(&r, "proxy", "stop", "rel", NULL);
  assert_int_equal(r.exit_code, 0);
  cli_result_free(&r);
  cli_stop(&p, SIGKILL, 5000, &r);
  assert_non_null(strstr(r.err, "reload applied"));
  assert_non_null(strstr(r.err, "reload rejected"));
  assert_non_null(strstr(r.err, "{\"type\":\"request\""));
  cli_result_free(&r);
  free(cfg);
  free(bad);
}

static void test_validate(void **state) {
  (void)state;
  char *good = tu_path(home, "good.toml"), *bad = tu_path(home, "v.toml");
  tu_write_text(good, "name = \"x\"\nmcp = \"http://127.0.0.1:9000/mcp\"\nport = 3001\n"
                      "request_timeout = \"10s\"\nmax_request_body_size = \"1MB\"\n");
  tu_write_text(bad, "mcp = \"ftp://x\"\nport = 70000\ndrain_timeout = \"abc\"\n"
                     "max_response_body_size = \"lots\"\n");
  cli_result r;
  cli_runv(&r, "validate", "-c", good, NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "valid"));
  cli_result_free(&r);
  cli_runv(&r, "validate", "-c", bad, NULL);
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "v.toml:1:7: error: mcp must be an http"));
  assert_non_null(strstr(r.err, "v.toml:2:8: error: port"));
  assert_non_null(strstr(r.err, "v.toml:3:17: error: drain_timeout"));
  assert_non_null(strstr(r.err, "v.toml:4:"));
  cli_result_free(&r);
  /* No mcp at all: a proxy cannot run. */
  tu_write_text(bad, "name = \"x\"\n");
  cli_runv(&r, "validate", "--config", bad, NULL);
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "mcp is not set"));
  cli_result_free(&r);
  free(good);
  free(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_proxies_listed_same_name_refused_stop),
      cmocka_unit_test(test_reload),
      cmocka_unit_test(test_validate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
