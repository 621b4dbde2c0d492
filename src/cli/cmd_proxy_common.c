#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_config.h"
#include "cmd_proxy_common.h"
#include "format.h"

volatile sig_atomic_t cli_stop = 0;

static void on_stop(int sig) {
  (void)sig;
  cli_stop = 1;
}

void cli_install_stop_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void cli_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  if (!cli_stop)
    nanosleep(&ts, NULL); /* EINTR on the signal: fine */
}

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len) {
  for (const cli_opt *o = opts; o->name; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
      return o;
  return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c) {
  for (const cli_opt *o = opts; o->name; o++)
    if (o->short_name && o->short_name == c)
      return o;
  return NULL;
}

int cli_parse_args(const mcpr_cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                   const char **pos, int max_pos, int *npos) {
  *npos = 0;
  bool only_positional = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_positional && cli_is_help(a)) {
      fputs(cmd->usage, stdout);
      fputc('\n', stdout);
      return 0;
    }
    if (!only_positional && strcmp(a, "--") == 0) {
      only_positional = true;
      continue;
    }
    if (!only_positional && a[0] == '-' && a[1] != '\0') {
      const cli_opt *o;
      const char *inline_value = NULL;
      if (a[1] == '-') {
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        o = find_long(opts, a, len);
        inline_value = eq ? eq + 1 : NULL;
      } else {
        o = a[2] == '\0' ? find_short(opts, a[1]) : NULL;
      }
      if (!o)
        return cli_usage_error(cmd, "unknown option '%s'", a);
      if (!o->takes_value) {
        if (inline_value)
          return cli_usage_error(cmd, "%s takes no value", o->name);
        *o->flag = true;
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= argc)
          return cli_usage_error(cmd, "%s needs a value", o->name);
        inline_value = argv[++i];
      }
      *o->value = inline_value;
      continue;
    }
    if (*npos >= max_pos)
      return cli_usage_error(cmd, "unexpected argument '%s'", a);
    pos[(*npos)++] = a;
  }
  return -1;
}

int cli_parse_name(const mcpr_cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                   const char **name) {
  const char *pos[1] = {NULL};
  int npos = 0;
  int rc = cli_parse_args(cmd, argc, argv, opts, pos, name ? 1 : 0, &npos);
  if (name)
    *name = npos ? pos[0] : NULL;
  return rc;
}

int cli_parse_name_since_json(const mcpr_cli_command *cmd, int argc, char **argv,
                              const char **name, const char **since, bool *json) {
  *since = NULL;
  *json = false;
  const cli_opt opts[] = {
      {"--since", 0, true, since, NULL},
      {"--json", 0, false, NULL, json},
      {NULL, 0, false, NULL, NULL},
  };
  return cli_parse_name(cmd, argc, argv, opts, name);
}

int cli_window(const mcpr_cli_command *cmd, const char *flag, const char *text,
               const char *dflt, int64_t now_ms, int64_t *cutoff_ms) {
  const char *use = text ? text : dflt;
  if (!use) {
    *cutoff_ms = MCPR_QUERY_NO_CUTOFF;
    return 0;
  }
  int64_t ms = 0;
  mcpr_error err = {0};
  if (mcpr_parse_duration_ms(flag, use, &ms, &err) != MCPR_OK)
    return cli_usage_error(cmd, "%s", err.message);
  *cutoff_ms = ms >= now_ms ? 0 : now_ms - ms;
  return 0;
}

int cli_count(const mcpr_cli_command *cmd, const char *flag, const char *text, int64_t dflt,
              int64_t *out) {
  if (!text) {
    *out = dflt;
    return 0;
  }
  mcpr_error err = {0};
  if (mcpr_parse_count(flag, text, out, &err) != MCPR_OK)
    return cli_usage_error(cmd, "%s", err.message);
  return 0;
}

int cli_open_query_quiet(const mcpr_cli_ctx *ctx, mcpr_query **q) {
  mcpr_error err = {0};
  char *path = NULL;
  int rc = cli_store_path(ctx, &path);
  if (rc != 0)
    return rc;
  if (mcpr_query_open(q, path, &err) != MCPR_OK)
    rc = cli_fail("%s", err.message);
  free(path);
  return rc;
}

/* A store the original wrote has its requests outside the rollups until
 * they are built (issue 15): reads count them exactly, raw, but a long
 * window then reads millions of rows. Building them is not done here,
 * behind the user's back: a read command answers at once, and says how
 * to make the next ones fast. */
int cli_open_query(const mcpr_cli_ctx *ctx, mcpr_query **q) {
  int rc = cli_open_query_quiet(ctx, q);
  int64_t behind = 0;
  if (rc == 0 && mcpr_query_rollup_behind(*q, &behind, NULL) == MCPR_OK &&
      behind >= CLI_ROLLUP_HINT_ROWS)
    fprintf(stderr,
            "mcpr: %lld requests in this store are not in its rollups yet (the original"
            " mcpr or an older one wrote them): answers are exact, but long windows read"
            " them one by one. Run `mcpr store rollup` once to build them (about a minute"
            " per 10M requests; writers keep writing meanwhile).\n",
            (long long)behind);
  return rc;
}

int cli_query_fail(mcpr_query *q, const mcpr_error *err) {
  mcpr_query_close(q);
  return cli_fail("%s", err->message);
}

/* ---------- log rows ---------- */


#define FOLLOW_POLL_MS 200
#define FOLLOW_BATCH 1000

/* What a request acted on: its tool, resource or prompt. */
static const char *target_of(const mcpr_log_row *r) {
  if (r->tool)
    return r->tool;
  if (r->resource_uri)
    return r->resource_uri;
  return r->prompt_name;
}

void cli_print_logs(const mcpr_log_rows *rows, bool json, bool reverse, bool header,
                    bool steady, int64_t now_ms) {
  if (json) {
    for (size_t k = 0; k < rows->count; k++) {
      size_t i = reverse ? rows->count - 1 - k : k;
      fmt_json_line(stdout, fmt_json_log_row(&rows->rows[i]));
    }
    return;
  }
  static const char *const headers[] = {"TIME",    "PROXY",   "METHOD", "TARGET",
                                        "STATUS",  ">LATENCY", "SESSION", "ERROR"};
  fmt_table *t = fmt_table_new(8, headers);
  if (!t)
    return;
  if (steady) {
    static const size_t widths[] = {8, 10, 12, 16, 7, 8, 8, 0};
    for (size_t c = 0; c < 8; c++)
      fmt_table_min_width(t, c, widths[c]);
  }
  for (size_t k = 0; k < rows->count; k++) {
    const mcpr_log_row *r = &rows->rows[reverse ? rows->count - 1 - k : k];
    char when[32], lat[32], sess[16], err[2600]; /* error_msg: 512 characters, 4 bytes each */
    fmt_time(r->ts_ms, now_ms, when, sizeof when);
    fmt_latency(r->latency_us, lat, sizeof lat);
    snprintf(sess, sizeof sess, "%.8s", r->session_id ? r->session_id : "-");
    if (r->error_code || r->error_msg)
      snprintf(err, sizeof err, "%s%s%s", r->error_code ? r->error_code : "",
               r->error_code && r->error_msg ? " " : "", r->error_msg ? r->error_msg : "");
    else
      snprintf(err, sizeof err, "%s", "");
    fmt_table_cell(t, when, NULL);
    fmt_table_cell(t, r->proxy, NULL);
    fmt_table_cell(t, r->method, NULL);
    fmt_table_cell(t, target_of(r), NULL);
    fmt_table_cell(t, r->status, fmt_status_color(r->status));
    fmt_table_cell(t, lat, NULL);
    fmt_table_cell(t, sess, NULL);
    fmt_table_cell(t, err, FMT_RED);
  }
  fmt_table_print(t, stdout, fmt_use_color(), header);
  fmt_table_free(t);
}

int cli_follow(mcpr_query *q, const mcpr_log_filter *f, int64_t after_row_id, bool json) {
  cli_install_stop_handler();
  mcpr_log_filter ff = *f;
  ff.limit = FOLLOW_BATCH;
  ff.up_to_row_id = 0;
  ff.after_row_id = after_row_id;
  fflush(stdout);
  while (!cli_stop) {
    mcpr_log_rows rows;
    mcpr_error err = {0};
    if (mcpr_query_follow(q, &ff, &rows, &err) != MCPR_OK) {
      /* A writer mid-checkpoint can make a read fail for a moment. */
      if (err.status == MCPR_EBUSY) {
        cli_sleep_ms(FOLLOW_POLL_MS);
        continue;
      }
      return cli_fail("%s", err.message);
    }
    if (rows.count) {
      cli_print_logs(&rows, json, false, false, true, mcpr_now_ms());
      ff.after_row_id = rows.rows[rows.count - 1].row_id;
      fflush(stdout);
    }
    size_t n = rows.count;
    mcpr_log_rows_release(&rows);
    if (n < FOLLOW_BATCH)
      cli_sleep_ms(FOLLOW_POLL_MS);
  }
  return CLI_EXIT_OK;
}

int cli_show_logs(const mcpr_cli_ctx *ctx, mcpr_log_filter *f, cli_log_fetch fetch, bool json,
                  bool follow, bool reverse, int64_t now_ms, const char *empty_fmt, ...) {
  mcpr_query *q = NULL;
  int rc = cli_open_query(ctx, &q);
  if (rc != 0)
    return rc;
  mcpr_error err = {0};
  int64_t cursor = 0;
  if (follow && mcpr_query_last_row_id(q, &cursor, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  f->up_to_row_id = cursor;
  mcpr_log_rows rows;
  if (fetch(q, f, &rows, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  if (rows.count == 0 && !json && !follow) {
    va_list ap;
    va_start(ap, empty_fmt);
    vprintf(empty_fmt, ap);
    va_end(ap);
    putchar('\n');
  } else {
    cli_print_logs(&rows, json, reverse, true, follow, now_ms);
  }
  mcpr_log_rows_release(&rows);
  rc = follow ? cli_follow(q, f, cursor, json) : CLI_EXIT_OK;
  mcpr_query_close(q);
  return rc;
}
