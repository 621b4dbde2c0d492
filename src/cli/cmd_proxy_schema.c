/* cmd_proxy_schema.c — `mcpr proxy schema`: the captured server schema,
 * its change history, and the tools nobody calls. */
#include <jansson.h>
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
             "version, protocol and capabilities, and each captured list with its\n"
             "items (tools, resources, templates, prompts and their descriptions).\n"
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

static bool same(const char *a, const char *b) {
  return a && b ? strcmp(a, b) == 0 : a == b;
}

/* The item array of a list method's payload and its label, as the
 * original names them; NULL for any other method. */
static const char *list_items_key(const char *method, const char **label) {
  static const struct {
    const char *method, *key, *label;
  } lists[] = {
      {"tools/list", "tools", "Tools"},
      {"resources/list", "resources", "Resources"},
      {"resources/templates/list", "resourceTemplates", "Resource Templates"},
      {"prompts/list", "prompts", "Prompts"},
  };
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    if (strcmp(method, lists[i].method) == 0) {
      *label = lists[i].label;
      return lists[i].key;
    }
  return NULL;
}

/* Longest description shown, in characters (the original's cut), so one
 * item stays on one line; its first line only. */
enum { DESCRIPTION_CHARS = 60 };

static void put_description(const char *d) {
  char buf[DESCRIPTION_CHARS * 4 + 1];
  size_t len = 0, chars = 0;
  const unsigned char *p = (const unsigned char *)d;
  while (*p && *p != '\n' && *p != '\r' && chars < DESCRIPTION_CHARS && len < sizeof buf - 1) {
    /* one character: its lead byte and the continuation bytes after it */
    buf[len++] = (char)*p++;
    while (*p && (*p & 0xC0) == 0x80 && len < sizeof buf - 1)
      buf[len++] = (char)*p++;
    chars++;
  }
  buf[len] = '\0';
  fputs("  —  ", stdout);
  fmt_put_clean(stdout, buf);
  if (*p)
    fputs("…", stdout);
}

/* One captured method of an upstream: its name, when it was captured and,
 * for a list, every item with its description. The payload is the
 * upstream's own text: every string is escaped on its way out. */
static void show_method(const mcpr_schema_row *r, int64_t now) {
  char when[32];
  fmt_time(r->captured_at_ms, now, when, sizeof when);
  fputs("\n  ── ", stdout);
  fmt_put_clean(stdout, r->method);
  printf(" ──  (captured %s)\n", when);
  const char *label = NULL;
  const char *key = list_items_key(r->method, &label);
  if (!key)
    return;
  json_t *payload = json_loads(r->payload ? r->payload : "", 0, NULL);
  json_t *items = json_object_get(payload, key);
  if (!json_is_array(items)) {
    printf("    (no %s array in the captured payload)\n", key);
    json_decref(payload);
    return;
  }
  printf("    %s (%zu):\n", label, json_array_size(items));
  size_t i;
  json_t *item;
  json_array_foreach(items, i, item) {
    const char *name = json_string_value(json_object_get(item, "name"));
    /* a resource may carry only its uri */
    if (!name)
      name = json_string_value(json_object_get(item, "uri"));
    if (!name)
      name = json_string_value(json_object_get(item, "uriTemplate"));
    const char *description = json_string_value(json_object_get(item, "description"));
    fputs("      ", stdout);
    fmt_put_clean(stdout, name ? name : "?");
    if (description && *description)
      put_description(description);
    fputc('\n', stdout);
  }
  json_decref(payload);
}

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
    for (size_t k = 0; k < rows.count; k++) {
      const mcpr_schema_row *r = &rows.rows[k];
      if (strcmp(r->method, "initialize") != 0 && same(r->proxy, s->proxy) &&
          same(r->upstream_url, s->upstream_url))
        show_method(r, now);
    }
    if (i + 1 < sts.count)
      fputc('\n', stdout);
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
