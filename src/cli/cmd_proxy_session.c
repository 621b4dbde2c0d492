/* cmd_proxy_session.c — `mcpr proxy session ID`: one session and its requests. */
#include <stdio.h>
#include <string.h>

#include "cli_json.h"
#include "cmd_proxy_common.h"
#include "format.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_session = {
    .group = "proxy",
    .name = "session",
    .summary = "one session (by id or unique prefix) with all its requests",
    .usage = "mcpr proxy session SESSION_ID [--json]\n"
             "\n"
             "The session whose id is SESSION_ID or starts with it, and every request\n"
             "it made, oldest first.\n"
             "  --json   one JSON object: the session's fields and `requests`\n"
             "\n"
             "examples:\n"
             "  mcpr proxy session 0198c2a4\n"
             "  mcpr proxy session 0198c2a4-7f1e-7b3c-9a55-3f0e2d1c4b6a --json",
    .run = run,
};

json_t *cli_session_json(const mcpr_session_detail *d) {
  json_t *o = fmt_json_session_row(&d->session);
  json_object_set_new(o, "proxy", fmt_json_str(d->session.proxy));
  json_t *reqs = json_array();
  for (size_t i = 0; i < d->requests.count; i++)
    json_array_append_new(reqs, fmt_json_log_row(&d->requests.rows[i]));
  json_object_set_new(o, "requests", reqs);
  return o;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_session;
  bool json = false;
  const cli_opt opts[] = {
      {"--json", 0, false, NULL, &json},
      {NULL, 0, false, NULL, NULL},
  };
  const char *name = NULL;
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  if (!name || !*name)
    return cli_usage_error(cmd, "a SESSION_ID (or its first characters) is needed");
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  int64_t now = mcpr_now_ms();
  mcpr_session_detail d;
  mcpr_error err = {0};
  if (mcpr_query_session(q, name, now, &d, &err) != MCPR_OK) {
    mcpr_query_close(q);
    if (err.status == MCPR_ENOTFOUND)
      return cli_fail("%s (list sessions with 'mcpr proxy sessions --since 7d')", err.message);
    return cli_fail("%s", err.message);
  }
  const mcpr_session_row *s = &d.session;
  if (json) {
    fmt_json_line(stdout, cli_session_json(&d));
  } else {
    char started[32], seen[32], ended[32];
    fmt_time(s->started_at_ms, now, started, sizeof started);
    fmt_time(s->last_seen_at_ms, now, seen, sizeof seen);
    if (s->ended_at_ms != MCPR_QUERY_NULL)
      fmt_time(s->ended_at_ms, now, ended, sizeof ended);
    else
      snprintf(ended, sizeof ended, "%s", s->is_active ? "- (active)" : "- (idle)");
    /* Ids and client names come from the wire: escaped (format.h). */
    fputs("session   ", stdout);
    fmt_put_clean(stdout, s->session_id);
    fputs("\nproxy     ", stdout);
    fmt_put_clean(stdout, s->proxy);
    fputs("\nclient    ", stdout);
    fmt_put_clean(stdout, s->client_name);
    fputc(' ', stdout);
    fmt_put_clean(stdout, s->client_version ? s->client_version : "");
    fputs(" (", stdout);
    fmt_put_clean(stdout, s->client_platform ? s->client_platform : "unknown");
    fputs(")\n", stdout);
    printf("started   %s\nlast seen %s\nended     %s\n", started, seen, ended);
    printf("calls     %lld (%lld error%s)\n\n", (long long)s->total_calls,
           (long long)s->total_errors, s->total_errors == 1 ? "" : "s");
    if (d.requests.count == 0)
      printf("No requests stored for this session.\n");
    else
      cli_print_logs(&d.requests, false, false, true, false, now);
  }
  mcpr_session_detail_release(&d);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}
