/*
 * cmd_version.c — `mcpr version`: the version and the build's target as one
 * JSON object, as the original prints it. serde_json (without its
 * preserve_order feature) writes the keys sorted, so "target" comes first:
 *   {"target":"x86_64-unknown-linux-gnu","version":"0.1.0"}
 * The target is the Rust-style triple of the compiler's target, computed at
 * build time (cmake/target_triple.cmake). `mcpr --version` prints
 * "mcpr X.Y.Z" (main.c).
 */
#include <stdio.h>

#include "cmd_proxy_common.h"
#include "format.h"

#ifndef MCPR_TARGET_TRIPLE
#define MCPR_TARGET_TRIPLE "unknown"
#endif

extern const mcpr_cli_command cmd_version;

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  const cli_opt opts[] = {{NULL, 0, false, NULL, NULL}};
  int npos = 0;
  int rc = cli_parse_args(&cmd_version, argc, argv, opts, NULL, 0, &npos);
  if (rc >= 0)
    return rc;
  json_t *o = json_object();
  json_object_set_new(o, "target", json_string(MCPR_TARGET_TRIPLE));
  json_object_set_new(o, "version", json_string(mcpr_version()));
  fmt_json_line(stdout, o);
  return CLI_EXIT_OK;
}

const mcpr_cli_command cmd_version = {
    .group = NULL,
    .name = "version",
    .summary = "version and build target as JSON ('mcpr --version': one line)",
    .usage = "mcpr version\n"
             "\n"
             "Prints {\"target\":\"TRIPLE\",\"version\":\"X.Y.Z\"} (the original's object;\n"
             "TRIPLE is the build's target, e.g. x86_64-unknown-linux-gnu).\n"
             "`mcpr --version` (or -V) prints \"mcpr X.Y.Z\".",
    .run = run,
};
