/* cmd_proxy_status.c — `mcpr proxy status`: traffic and per-tool stats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cmd_proxy_common.h"
#include "format.h"
#include "proxy_entries.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_status = {
    .group = "proxy",
    .name = "status",
    .summary = "requests, errors, sessions and per-tool latency (p95)",
    .usage = "mcpr proxy status [NAME] [--since 1h] [--exact] [--json]\n"
             "\n"
             "Totals for proxy NAME (all when omitted) within the window, and per tool\n"
             "(or <method> for requests without a tool): calls, average, p95, min and\n"
             "max latency, error rate and bytes.\n"
             "  --since D   an integer and s|m|h|d|w (default 1h)\n"
             "  --exact     p95 from every raw latency instead of the hourly rollups\n"
             "              (which give it within 1 %; all other figures are exact)\n"
             "  --json      one JSON object: proxy, since, total_requests, error_pct,\n"
             "              active_sessions, total_sessions, proxies (name, status\n"
             "              running|stale|stopped, port, pid, localhost_url), tools\n"
             "\n"
             "examples:\n"
             "  mcpr proxy status\n"
             "  mcpr proxy status api-server --since 1d --json",
    .run = run,
};

json_t *cli_status_json(const char *proxy, const char *since, const mcpr_status_summary *s,
                        const mcpr_proxy_entry *pv, size_t pn) {
  const mcpr_stats *st = &s->stats;
  json_t *o = json_object();
  json_object_set_new(o, "proxy", fmt_json_str(proxy));
  json_object_set_new(o, "since", json_string(since));
  json_object_set_new(o, "total_requests", json_integer(st->total_calls));
  json_object_set_new(o, "error_pct", fmt_json_pct(st->error_pct));
  json_object_set_new(o, "active_sessions", json_integer(s->active_sessions));
  json_object_set_new(o, "total_sessions", json_integer(s->total_sessions));
  json_t *proxies = json_array();
  for (size_t i = 0; i < pn; i++)
    json_array_append_new(proxies, cli_proxy_entry_status_json(&pv[i]));
  json_object_set_new(o, "proxies", proxies);
  json_t *tools = json_array();
  for (size_t i = 0; i < st->count; i++)
    json_array_append_new(tools, fmt_json_stats_row(&st->rows[i]));
  json_object_set_new(o, "tools", tools);
  return o;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_status;
  const char *name = NULL, *since = NULL;
  bool json = false, exact = false;
  const cli_opt opts[] = {
      {"--since", 0, true, &since, NULL},
      {"--exact", 0, false, NULL, &exact},
      {"--json", 0, false, NULL, &json},
      {NULL, 0, false, NULL, NULL},
  };
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  int64_t now = mcpr_now_ms();
  mcpr_stats_filter f = {name, 0, exact};
  if ((rc = cli_window(cmd, "--since", since, "1h", now, &f.since_ms)) != 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_status_summary s;
  mcpr_error err = {0};
  if (mcpr_query_status(q, &f, now, &s, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  const mcpr_stats *st = &s.stats;
  /* The proxies of this machine (~/.mcpr/proxies); NAME selects one. */
  mcpr_proxy_entry *pv = NULL;
  size_t pn = 0, keep = 0;
  if (mcpr_registry_list(&pv, &pn, &err) != MCPR_OK)
    pn = 0;
  for (size_t i = 0; i < pn; i++)
    if (!f.proxy || strcmp(pv[i].name, f.proxy) == 0)
      pv[keep++] = pv[i];
  pn = keep;
  if (json) {
    json_t *o = cli_status_json(f.proxy, since ? since : "1h", &s, pv, pn);
    fmt_json_line(stdout, o);
  } else {
    char pct[32];
    fmt_pct(st->error_pct, pct, sizeof pct);
    fmt_put_clean(stdout, f.proxy ? f.proxy : "all proxies");
    printf(" — last %s\n", since ? since : "1h");
    printf("requests %lld   errors %s   sessions %lld active, %lld started\n\n",
           (long long)st->total_calls, pct, (long long)s.active_sessions,
           (long long)s.total_sessions);
    if (pn) {
      cli_proxy_entries_print(stdout, pv, pn);
      putchar('\n');
    }
    if (st->count == 0) {
      printf("No requests in this window.\n");
    } else {
      static const char *const headers[] = {"TOOL", ">CALLS", ">AVG",  ">P95",    ">MIN",
                                            ">MAX", ">ERR%",  ">IN",   ">OUT"};
      fmt_table *t = fmt_table_new(9, headers);
      for (size_t i = 0; t && i < st->count; i++) {
        const mcpr_stats_row *r = &st->rows[i];
        char calls[32], avg[32], p95[32], mn[32], mx[32], ep[32], in[32], out[32];
        snprintf(calls, sizeof calls, "%lld", (long long)r->calls);
        fmt_latency(r->avg_us, avg, sizeof avg);
        fmt_latency(r->p95_us, p95, sizeof p95);
        fmt_latency(r->min_us, mn, sizeof mn);
        fmt_latency(r->max_us, mx, sizeof mx);
        fmt_pct(r->error_pct, ep, sizeof ep);
        fmt_bytes(r->total_bytes_in, in, sizeof in);
        fmt_bytes(r->total_bytes_out, out, sizeof out);
        fmt_table_cell(t, r->label, NULL);
        fmt_table_cell(t, calls, NULL);
        fmt_table_cell(t, avg, NULL);
        fmt_table_cell(t, p95, NULL);
        fmt_table_cell(t, mn, NULL);
        fmt_table_cell(t, mx, NULL);
        fmt_table_cell(t, ep, r->errors ? FMT_RED : NULL);
        fmt_table_cell(t, in, NULL);
        fmt_table_cell(t, out, NULL);
      }
      if (t)
        fmt_table_print(t, stdout, fmt_use_color(), true);
      fmt_table_free(t);
    }
  }
  free(pv);
  mcpr_status_summary_release(&s);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}
