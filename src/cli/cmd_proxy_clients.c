/* cmd_proxy_clients.c — `mcpr proxy clients`: which AI clients connect. */
#include <stdio.h>
#include <string.h>

#include "cmd_proxy_common.h"
#include "format.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_clients = {
    .group = "proxy",
    .name = "clients",
    .summary = "clients (name, version, platform) by calls",
    .usage = "mcpr proxy clients [NAME] [--since 7d] [--json]\n"
             "\n"
             "Sessions started within the window, grouped by client name, version and\n"
             "platform, busiest first.\n"
             "  --since D   an integer and s|m|h|d|w (default 7d)\n"
             "  --json      one JSON object per line\n"
             "\n"
             "examples:\n"
             "  mcpr proxy clients\n"
             "  mcpr proxy clients api-server --since 30d --json",
    .run = run,
};

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_clients;
  const char *name = NULL, *since = NULL;
  bool json = false;
  int rc = cli_parse_name_since_json(cmd, argc, argv, &name, &since, &json);
  if (rc >= 0)
    return rc;
  int64_t now = mcpr_now_ms(), cutoff;
  if ((rc = cli_window(cmd, "--since", since, "7d", now, &cutoff)) != 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_client_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_clients(q, name, cutoff, &rows, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  if (json) {
    for (size_t i = 0; i < rows.count; i++)
      fmt_json_line(stdout, fmt_json_client_row(&rows.rows[i]));
  } else if (rows.count == 0) {
    printf("No sessions started in the last %s.\n", since ? since : "7d");
  } else {
    static const char *const headers[] = {"CLIENT", "VERSION", "PLATFORM", ">SESSIONS",
                                          ">CALLS", ">ERRORS", ">ERR%",  "FIRST SEEN",
                                          "LAST SEEN"};
    fmt_table *t = fmt_table_new(9, headers);
    for (size_t i = 0; t && i < rows.count; i++) {
      const mcpr_client_row *r = &rows.rows[i];
      char sessions[32], calls[32], errors[32], pct[32], first[32], last[32];
      snprintf(sessions, sizeof sessions, "%lld", (long long)r->sessions);
      snprintf(calls, sizeof calls, "%lld", (long long)r->total_calls);
      snprintf(errors, sizeof errors, "%lld", (long long)r->total_errors);
      fmt_pct(r->error_pct, pct, sizeof pct);
      fmt_time(r->first_seen_ms, now, first, sizeof first);
      fmt_time(r->last_seen_ms, now, last, sizeof last);
      fmt_table_cell(t, r->client_name, NULL);
      fmt_table_cell(t, r->client_version, NULL);
      fmt_table_cell(t, r->client_platform, NULL);
      fmt_table_cell(t, sessions, NULL);
      fmt_table_cell(t, calls, NULL);
      fmt_table_cell(t, errors, NULL);
      fmt_table_cell(t, pct, r->total_errors ? FMT_RED : NULL);
      fmt_table_cell(t, first, NULL);
      fmt_table_cell(t, last, NULL);
    }
    if (t)
      fmt_table_print(t, stdout, fmt_use_color(), true);
    fmt_table_free(t);
  }
  mcpr_client_rows_release(&rows);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}
