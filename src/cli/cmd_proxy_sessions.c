/* cmd_proxy_sessions.c — `mcpr proxy sessions`: MCP sessions, recent first. */
#include <stdio.h>
#include <string.h>

#include "cmd_proxy_common.h"
#include "format.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_sessions = {
    .group = "proxy",
    .name = "sessions",
    .summary = "MCP sessions, most recently seen first",
    .usage =
        "mcpr proxy sessions [NAME] [--active] [--client C] [--since 1h] [--limit 50] [--json]\n"
        "\n"
        "Sessions of proxy NAME (all when omitted) started within the window.\n"
        "  --active     only sessions not ended and seen in the last 5 minutes\n"
        "               (without --since: however long ago they started)\n"
        "  --client C   only clients named C (exact, e.g. claude-desktop)\n"
        "  --since D    window on the start time: an integer and s|m|h|d|w (default 1h)\n"
        "  --limit N    how many (default 50)\n"
        "  --json       one JSON object per line\n"
        "\n"
        "examples:\n"
        "  mcpr proxy sessions --active\n"
        "  mcpr proxy sessions api-server --since 1d --client cursor --json",
    .run = run,
};

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_sessions;
  const char *client = NULL, *since = NULL, *limit = NULL;
  bool active = false, json = false;
  const cli_opt opts[] = {
      {"--active", 0, false, NULL, &active},
      {"--client", 0, true, &client, NULL},
      {"--since", 0, true, &since, NULL},
      {"--limit", 0, true, &limit, NULL},
      {"--json", 0, false, NULL, &json},
      {NULL, 0, false, NULL, NULL},
  };
  const char *name = NULL;
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  int64_t now = mcpr_now_ms();
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  f.proxy = name;
  f.client_name = client;
  f.active_only = active;
  f.now_ms = now;
  if ((rc = cli_count(cmd, "--limit", limit, 50, &f.limit)) != 0)
    return rc;
  /* --active alone lists every active session, however long ago it
   * started: a long-lived session is the one a user looks for. */
  if (active && !since)
    f.since_ms = MCPR_QUERY_NO_CUTOFF;
  else if ((rc = cli_window(cmd, "--since", since, "1h", now, &f.since_ms)) != 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_session_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_sessions(q, &f, &rows, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  if (json) {
    for (size_t i = 0; i < rows.count; i++)
      fmt_json_line(stdout, fmt_json_session_row(&rows.rows[i]));
  } else if (rows.count == 0) {
    /* Name the filters that emptied the list, so a user does not widen a
     * window that was never the cause. */
    printf("No %ssessions", active ? "active " : "");
    if (client || name) {
      fputs(" match", stdout);
      if (client) {
        fputs(" --client ", stdout);
        fmt_put_clean(stdout, client);
      }
      if (name) {
        fputs(client ? " and proxy " : " proxy ", stdout);
        fmt_put_clean(stdout, name);
      }
      if (!(active && !since))
        printf(" in the last %s", since ? since : "1h");
    } else if (!(active && !since)) {
      printf(" started in the last %s", since ? since : "1h");
    }
    fputs(".\n", stdout);
  } else {
    static const char *const headers[] = {"SESSION", "CLIENT",  "PLATFORM", "STARTED",
                                          "LAST SEEN", ">CALLS", ">ERRORS", "STATE"};
    fmt_table *t = fmt_table_new(8, headers);
    for (size_t i = 0; t && i < rows.count; i++) {
      const mcpr_session_row *r = &rows.rows[i];
      char client_buf[256], started[32], seen[32], calls[32], errors[32];
      snprintf(client_buf, sizeof client_buf, "%s%s%s", r->client_name ? r->client_name : "-",
               r->client_version ? " " : "", r->client_version ? r->client_version : "");
      fmt_time(r->started_at_ms, now, started, sizeof started);
      fmt_time(r->last_seen_at_ms, now, seen, sizeof seen);
      snprintf(calls, sizeof calls, "%lld", (long long)r->total_calls);
      snprintf(errors, sizeof errors, "%lld", (long long)r->total_errors);
      fmt_table_cell(t, r->session_id, NULL);
      fmt_table_cell(t, client_buf, NULL);
      fmt_table_cell(t, r->client_platform, NULL);
      fmt_table_cell(t, started, NULL);
      fmt_table_cell(t, seen, NULL);
      fmt_table_cell(t, calls, NULL);
      fmt_table_cell(t, errors, r->total_errors ? FMT_RED : NULL);
      const char *state = r->is_active ? "active" : r->ended_at_ms != MCPR_QUERY_NULL ? "ended" : "idle";
      fmt_table_cell(t, state, r->is_active ? FMT_GREEN : FMT_DIM);
    }
    if (t)
      fmt_table_print(t, stdout, fmt_use_color(), true);
    fmt_table_free(t);
  }
  mcpr_session_rows_release(&rows);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}
