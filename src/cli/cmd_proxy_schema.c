/* cmd_proxy_schema.c — `mcpr proxy schema`: the captured server schema,
 * its change history, and the tools nobody calls. */
#include <stdio.h>
#include <string.h>

#include "cmd_proxy_common.h"
#include "format.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_schema = {
    .group = "proxy",
    .name = "schema",
    .summary = "captured server schema, its changes (--changes), unused tools (--unused)",
    .usage = "mcpr proxy schema [NAME] [--method M] [--changes [--limit 50]]\n"
             "                  [--unused [--since 7d]] [--json]\n"
             "\n"
             "Without --changes or --unused: per upstream, whether the schema is\n"
             "complete (initialize and a list method captured), the server's name,\n"
             "version, protocol and capabilities, and each captured method.\n"
             "  --method M   only method M (e.g. tools/list)\n"
             "  --changes    the change history, newest first (--limit N, default 50)\n"
             "  --unused     every tool of tools/list with its calls in the window,\n"
             "               least used first (--since D, default 7d)\n"
             "  --json       one JSON object per line\n"
             "\n"
             "examples:\n"
             "  mcpr proxy schema\n"
             "  mcpr proxy schema api-server --changes --limit 10\n"
             "  mcpr proxy schema api-server --unused --since 30d --json",
    .run = run,
};

static int show_snapshots(mcpr_query *q, const char *proxy, const char *method, bool json,
                          int64_t now) {
  mcpr_error err = {0};
  mcpr_schema_rows rows;
  if (mcpr_query_schema(q, proxy, method, &rows, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (json) {
    for (size_t i = 0; i < rows.count; i++)
      fmt_json_line(stdout, fmt_json_schema_row(&rows.rows[i]));
    mcpr_schema_rows_release(&rows);
    return CLI_EXIT_OK;
  }
  mcpr_schema_statuses sts;
  if (mcpr_query_schema_status(q, proxy, &sts, &err) != MCPR_OK) {
    mcpr_schema_rows_release(&rows);
    return cli_fail("%s", err.message);
  }
  if (sts.count == 0)
    printf("Schema: unknown — nothing captured yet%s.\n", proxy ? " for this proxy" : "");
  for (size_t i = 0; i < sts.count; i++) {
    const mcpr_schema_status *s = &sts.rows[i];
    char when[32];
    fmt_time(s->last_captured_ms, now, when, sizeof when);
    /* Every string here is the upstream's own (its URL, its initialize
     * answer): escaped before it reaches the terminal. */
    fmt_put_clean(stdout, s->upstream_url);
    fputs(" (", stdout);
    fmt_put_clean(stdout, s->proxy);
    printf("): %s\n", mcpr_schema_completeness_str(s->status));
    if (s->server_name || s->server_version) {
      fputs("  server     ", stdout);
      fmt_put_clean(stdout, s->server_name);
      fputc(' ', stdout);
      fmt_put_clean(stdout, s->server_version ? s->server_version : "");
      fputc('\n', stdout);
    }
    if (s->protocol_version) {
      fputs("  protocol   ", stdout);
      fmt_put_clean(stdout, s->protocol_version);
      fputc('\n', stdout);
    }
    if (s->capability_count) {
      printf("  capability");
      for (size_t k = 0; k < s->capability_count; k++) {
        fputs(k ? ", " : " ", stdout);
        fmt_put_clean(stdout, s->capabilities[k]);
      }
      printf("\n");
    }
    printf("  captured   %s\n", when);
  }
  if (rows.count) {
    printf("\n");
    static const char *const headers[] = {"UPSTREAM", "METHOD", "CAPTURED", "HASH"};
    fmt_table *t = fmt_table_new(4, headers);
    for (size_t i = 0; t && i < rows.count; i++) {
      const mcpr_schema_row *r = &rows.rows[i];
      char when[32], hash[16];
      fmt_time(r->captured_at_ms, now, when, sizeof when);
      snprintf(hash, sizeof hash, "%.12s", r->schema_hash ? r->schema_hash : "-");
      fmt_table_cell(t, r->upstream_url, NULL);
      fmt_table_cell(t, r->method, NULL);
      fmt_table_cell(t, when, NULL);
      fmt_table_cell(t, hash, NULL);
    }
    if (t)
      fmt_table_print(t, stdout, fmt_use_color(), true);
    fmt_table_free(t);
  }
  mcpr_schema_statuses_release(&sts);
  mcpr_schema_rows_release(&rows);
  return CLI_EXIT_OK;
}

static int show_changes(mcpr_query *q, const char *proxy, const char *method, int64_t limit,
                        bool json, int64_t now) {
  mcpr_error err = {0};
  mcpr_schema_change_rows rows;
  if (mcpr_query_schema_changes(q, proxy, method, limit, &rows, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (json) {
    for (size_t i = 0; i < rows.count; i++)
      fmt_json_line(stdout, fmt_json_change_row(&rows.rows[i]));
  } else if (rows.count == 0) {
    printf("No schema changes recorded.\n");
  } else {
    static const char *const headers[] = {"DETECTED", "UPSTREAM", "METHOD", "CHANGE", "ITEM"};
    fmt_table *t = fmt_table_new(5, headers);
    for (size_t i = 0; t && i < rows.count; i++) {
      const mcpr_schema_change_row *r = &rows.rows[i];
      char when[32];
      fmt_time(r->detected_at_ms, now, when, sizeof when);
      const char *color = strstr(r->change_type, "removed")  ? FMT_RED
                          : strstr(r->change_type, "added") ? FMT_GREEN
                                                            : NULL;
      fmt_table_cell(t, when, NULL);
      fmt_table_cell(t, r->upstream_url, NULL);
      fmt_table_cell(t, r->method, NULL);
      fmt_table_cell(t, r->change_type, color);
      fmt_table_cell(t, r->item_name, NULL);
    }
    if (t)
      fmt_table_print(t, stdout, fmt_use_color(), true);
    fmt_table_free(t);
  }
  mcpr_schema_change_rows_release(&rows);
  return CLI_EXIT_OK;
}

static int show_unused(mcpr_query *q, const char *proxy, int64_t cutoff, const char *since,
                       bool json, int64_t now) {
  mcpr_error err = {0};
  mcpr_unused_tool_rows rows;
  if (mcpr_query_unused_tools(q, proxy, cutoff, &rows, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (json) {
    for (size_t i = 0; i < rows.count; i++)
      fmt_json_line(stdout, fmt_json_unused_row(&rows.rows[i]));
  } else if (rows.count == 0) {
    printf("No tools/list captured%s: nothing to compare calls against.\n",
           proxy ? " for this proxy" : "");
  } else {
    printf("Tools by calls in the last %s, least used first:\n\n", since);
    static const char *const headers[] = {"TOOL", ">CALLS", ">ERRORS", "LAST CALLED",
                                          "DESCRIPTION"};
    fmt_table *t = fmt_table_new(5, headers);
    for (size_t i = 0; t && i < rows.count; i++) {
      const mcpr_unused_tool_row *r = &rows.rows[i];
      char calls[32], errors[32], when[32];
      snprintf(calls, sizeof calls, "%lld", (long long)r->calls);
      snprintf(errors, sizeof errors, "%lld", (long long)r->errors);
      if (r->last_called_at_ms != MCPR_QUERY_NULL)
        fmt_time(r->last_called_at_ms, now, when, sizeof when);
      else
        snprintf(when, sizeof when, "never");
      fmt_table_cell(t, r->tool_name, r->calls == 0 ? FMT_YELLOW : NULL);
      fmt_table_cell(t, calls, NULL);
      fmt_table_cell(t, errors, NULL);
      fmt_table_cell(t, when, NULL);
      fmt_table_cell(t, r->description ? r->description : "", NULL);
    }
    if (t)
      fmt_table_print(t, stdout, fmt_use_color(), true);
    fmt_table_free(t);
  }
  mcpr_unused_tool_rows_release(&rows);
  return CLI_EXIT_OK;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_schema;
  const char *method = NULL, *limit = NULL, *since = NULL;
  bool changes = false, unused = false, json = false;
  const cli_opt opts[] = {
      {"--method", 0, true, &method, NULL},
      {"--changes", 0, false, NULL, &changes},
      {"--limit", 0, true, &limit, NULL},
      {"--unused", 0, false, NULL, &unused},
      {"--since", 0, true, &since, NULL},
      {"--json", 0, false, NULL, &json},
      {NULL, 0, false, NULL, NULL},
  };
  const char *name = NULL;
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  if (changes && unused)
    return cli_usage_error(cmd, "--changes and --unused cannot be combined");
  if (limit && !changes)
    return cli_usage_error(cmd, "--limit goes with --changes");
  if (since && !unused)
    return cli_usage_error(cmd, "--since goes with --unused");
  int64_t now = mcpr_now_ms(), n = 0, cutoff = 0;
  if ((rc = cli_count(cmd, "--limit", limit, 50, &n)) != 0)
    return rc;
  if ((rc = cli_window(cmd, "--since", since, "7d", now, &cutoff)) != 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  const char *proxy = name;
  if (changes)
    rc = show_changes(q, proxy, method, n, json, now);
  else if (unused)
    rc = show_unused(q, proxy, cutoff, since ? since : "7d", json, now);
  else
    rc = show_snapshots(q, proxy, method, json, now);
  mcpr_query_close(q);
  return rc;
}
