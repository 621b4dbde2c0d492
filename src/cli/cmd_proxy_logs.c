/* cmd_proxy_logs.c — `mcpr proxy logs`: recent requests, filtered. */
#include <stdio.h>
#include <string.h>

#include "cmd_proxy_common.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_logs = {
    .group = "proxy",
    .name = "logs",
    .summary = "recent requests, newest first (-f to follow)",
    .usage =
        "mcpr proxy logs [NAME] [--tail 50] [--since D] [--tool T] [--method M]\n"
        "                [--session PREFIX] [--status ok|error|timeout]\n"
        "                [--error-code C] [--json] [-f|--follow]\n"
        "\n"
        "Requests of proxy NAME (all proxies when omitted), newest first.\n"
        "  --tail N          how many (default 50)\n"
        "  --since D         window: an integer and s|m|h|d|w (default 1h;\n"
        "                    all time when --session is given)\n"
        "  --tool T          only calls of tool T\n"
        "  --method M        only JSON-RPC method M (e.g. tools/list)\n"
        "  --session PREFIX  only the session whose id starts with PREFIX\n"
        "  --status S        ok, error or timeout\n"
        "  --error-code C    only this error code (exact, e.g. -32601)\n"
        "  --json            one JSON object per line\n"
        "  -f, --follow      keep printing new requests as they are stored (Ctrl-C stops)\n"
        "\n"
        "examples:\n"
        "  mcpr proxy logs\n"
        "  mcpr proxy logs api-server --status error --since 1d\n"
        "  mcpr proxy logs --tool search_docs --tail 10 --json\n"
        "  mcpr proxy logs --session 0198c2\n"
        "  mcpr proxy logs -f",
    .run = run,
};

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_logs;
  const char *tail = NULL, *since = NULL, *tool = NULL, *method = NULL, *session = NULL,
             *status = NULL, *error_code = NULL;
  bool json = false, follow = false;
  const cli_opt opts[] = {
      {"--tail", 0, true, &tail, NULL},
      {"--since", 0, true, &since, NULL},
      {"--tool", 0, true, &tool, NULL},
      {"--method", 0, true, &method, NULL},
      {"--session", 0, true, &session, NULL},
      {"--status", 0, true, &status, NULL},
      {"--error-code", 0, true, &error_code, NULL},
      {"--json", 0, false, NULL, &json},
      {"--follow", 'f', false, NULL, &follow},
      {NULL, 0, false, NULL, NULL},
  };
  const char *name = NULL;
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;

  int64_t now = mcpr_now_ms();
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.proxy = name;
  f.tool = tool;
  f.method = method;
  f.session_prefix = session && *session ? session : NULL;
  f.error_code = error_code;
  if (status) {
    if (!mcpr_request_status_parse(status, &f.status))
      return cli_usage_error(cmd, "--status must be ok, error or timeout, got '%s'", status);
    f.has_status = true;
  }
  if ((rc = cli_count(cmd, "--tail", tail, 50, &f.limit)) != 0)
    return rc;
  if ((rc = cli_window(cmd, "--since", since, f.session_prefix ? NULL : "1h", now,
                       &f.since_ms)) != 0)
    return rc;

  bool windowed = f.since_ms != MCPR_QUERY_NO_CUTOFF;
  /* Following reads top to bottom in time order, like tail -f. */
  return cli_show_logs(ctx, &f, mcpr_query_logs, json, follow, follow, now,
                       "No requests match%s%s.", windowed ? " in the last " : "",
                       windowed ? (since ? since : "1h") : "");
}
