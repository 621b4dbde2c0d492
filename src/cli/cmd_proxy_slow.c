/* cmd_proxy_slow.c — `mcpr proxy slow`: the slowest requests. */
#include <stdio.h>
#include <string.h>

#include "cmd_proxy_common.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_proxy_slow = {
    .group = "proxy",
    .name = "slow",
    .summary = "requests slower than a threshold, slowest first",
    .usage =
        "mcpr proxy slow [NAME] [--threshold 500ms] [--since 1h] [--tool T]\n"
        "                [--limit 20] [--json] [-f|--follow]\n"
        "\n"
        "Requests of proxy NAME (all when omitted) that took at least the threshold.\n"
        "  --threshold T  an integer and us|\xc2\xb5s|ms|s|m|h (default 500ms)\n"
        "  --since D      window: an integer and s|m|h|d|w (default 1h)\n"
        "  --tool T       only calls of tool T\n"
        "  --limit N      how many (default 20)\n"
        "  --json         one JSON object per line\n"
        "  -f, --follow   keep printing new slow requests as they are stored\n"
        "\n"
        "examples:\n"
        "  mcpr proxy slow\n"
        "  mcpr proxy slow api-server --threshold 2s --since 1d\n"
        "  mcpr proxy slow --tool run_query --json",
    .run = run,
};

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_slow;
  const char *threshold = NULL, *since = NULL, *tool = NULL, *limit = NULL;
  bool json = false, follow = false;
  const cli_opt opts[] = {
      {"--threshold", 0, true, &threshold, NULL},
      {"--since", 0, true, &since, NULL},
      {"--tool", 0, true, &tool, NULL},
      {"--limit", 0, true, &limit, NULL},
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
  mcpr_error err = {0};
  if (mcpr_parse_threshold_us("--threshold", threshold ? threshold : "500ms",
                              &f.min_latency_us, &err) != MCPR_OK)
    return cli_usage_error(cmd, "%s", err.message);
  if ((rc = cli_count(cmd, "--limit", limit, 20, &f.limit)) != 0)
    return rc;
  if ((rc = cli_window(cmd, "--since", since, "1h", now, &f.since_ms)) != 0)
    return rc;

  return cli_show_logs(ctx, &f, mcpr_query_slow, json, follow, false, now,
                       "No requests slower than %s in the last %s.",
                       threshold ? threshold : "500ms", since ? since : "1h");
}
