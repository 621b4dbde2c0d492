/*
 * cmd_cloud.c — `mcpr cloud status` and `mcpr cloud flush`: the cloud
 * sink's spool (SPEC §8), and the cloud sink built from a config for the
 * commands that feed it (`mcpr ingest --config`).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cli_config.h"
#include "config_warn.h"
#include "format.h"
#include "mcpr/config.h"
#include "mcpr/mcpr.h"
#include "mcpr/sink.h"

extern const mcpr_cli_command cmd_cloud_status;
extern const mcpr_cli_command cmd_cloud_flush;

mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err);

static void options_from_config(const mcpr_config *cfg, char *spool_dir,
                                mcpr_cloud_sink_options *o) {
  mcpr_cloud_sink_options_init(o);
  o->endpoint = mcpr_config_cloud_endpoint(cfg);
  o->token = cfg->cloud.token;
  o->server = cfg->cloud.server;
  o->spool_dir = spool_dir;
  if (cfg->cloud.batch_size > 0)
    o->batch_size = (size_t)cfg->cloud.batch_size;
  if (cfg->cloud.flush_interval_ms > 0 && cfg->cloud.flush_interval_ms <= UINT32_MAX)
    o->flush_interval_ms = (uint32_t)cfg->cloud.flush_interval_ms;
}

mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err) {
  *out = NULL;
  char *dir = mcpr_cloud_spool_dir(store_path);
  if (!dir)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  mcpr_cloud_sink_options o;
  options_from_config(cfg, dir, &o);
  mcpr_status st = mcpr_sink_cloud_new(out, &o, err); /* copies every string */
  free(dir);
  return st;
}

/* Shared argument handling: [--json] [--timeout SECONDS] (-c/--config is
 * global: ctx->config_path). */
typedef struct cloud_args {
  bool json;
  long timeout_s;
} cloud_args;

static int parse_args(const mcpr_cli_command *cmd, int argc, char **argv, cloud_args *a,
                      bool allow_timeout, bool *help) {
  *help = false;
  memset(a, 0, sizeof *a);
  a->timeout_s = 120;
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      *help = true;
      printf("%s\n", cmd->usage);
      return CLI_EXIT_OK;
    } else if (strcmp(argv[i], "--json") == 0 && !allow_timeout) {
      a->json = true;
    } else if (strcmp(argv[i], "--timeout") == 0 && allow_timeout) {
      char *end = NULL;
      if (i + 1 >= argc)
        return cli_usage_error(cmd, "--timeout needs a number of seconds");
      long v = strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end || v <= 0 || v > 86400)
        return cli_usage_error(cmd, "--timeout: expected seconds between 1 and 86400, got '%s'",
                               argv[i]);
      a->timeout_s = v;
    } else {
      return cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
    }
  }
  return CLI_EXIT_OK;
}

/* Load the config (explicit path, or ./mcpr.toml when it exists) and find
 * the store; prints and returns non-zero on failure. */
static int load(const mcpr_cli_ctx *ctx, mcpr_config **cfg, char **store_path) {
  mcpr_error err = {0};
  *store_path = NULL;
  int rc = cli_config_load(ctx, false, cfg);
  if (rc != 0)
    return rc;
  *store_path = mcpr_config_store_path(*cfg, ctx->db_path, &err);
  if (!*store_path) {
    mcpr_config_free(*cfg);
    *cfg = NULL;
    return cli_fail("%s", err.message);
  }
  return CLI_EXIT_OK;
}

static void utc_time(int64_t ms, char *buf, size_t size) {
  if (ms <= 0) {
    snprintf(buf, size, "never");
    return;
  }
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_status(const char *dir, const mcpr_spool_status *s) {
  char when[64];
  printf("spool:      %s\n", dir);
  printf("pending:    %" PRIu64 " batches, %" PRIu64 " events, %" PRIu64 " bytes\n",
         s->pending_batches, s->pending_events, s->pending_bytes);
  utc_time(s->last_delivery_at_ms, when, sizeof when);
  printf("delivered:  %" PRIu64 " batches, %" PRIu64 " events (last: %s)\n", s->delivered_batches,
         s->delivered_events, when);
  printf("rejected:   %" PRIu64 " batches, %" PRIu64 " events%s%s%s\n", s->rejected_batches,
         s->rejected_events, s->rejected_batches ? " (kept in " : "", s->rejected_batches ? dir : "",
         s->rejected_batches ? "/rejected)" : "");
  printf("dropped:    %" PRIu64 " batches, %" PRIu64 " events (spool size cap)\n",
         s->dropped_batches, s->dropped_events);
  printf("corrupt:    %" PRIu64 " records set aside\n", s->corrupt_records);
  printf("delivery:   %s\n", s->paused ? "paused (the cloud refused the token)" : "active");
  utc_time(s->last_error_at_ms, when, sizeof when);
  if (s->last_error[0])
    printf("last error: %s (%s)\n", s->last_error, when);
  else
    printf("last error: none\n");
}

static void print_status_json(const char *dir, const mcpr_spool_status *s) {
  json_t *j = json_pack(
      "{ss sI sI sI sI sI sI sI sI sI sI sb so sI sI}", "spool", dir, "pending_batches",
      (json_int_t)s->pending_batches, "pending_events", (json_int_t)s->pending_events,
      "pending_bytes", (json_int_t)s->pending_bytes, "delivered_batches",
      (json_int_t)s->delivered_batches, "delivered_events", (json_int_t)s->delivered_events,
      "rejected_batches", (json_int_t)s->rejected_batches, "rejected_events",
      (json_int_t)s->rejected_events, "dropped_batches", (json_int_t)s->dropped_batches,
      "dropped_events", (json_int_t)s->dropped_events, "corrupt_records",
      (json_int_t)s->corrupt_records, "paused", s->paused, "last_error",
      s->last_error[0] ? json_string(s->last_error) : json_null(), "last_error_at_ms",
      (json_int_t)s->last_error_at_ms, "last_delivery_at_ms", (json_int_t)s->last_delivery_at_ms);
  fmt_json_line(stdout, j);
}

/* What both commands start from: their arguments, the config, and the
 * spool directory beside the store. */
typedef struct cloud_run {
  cloud_args a;
  mcpr_config *cfg;
  char *store_path, *dir;
} cloud_run;

static void run_end(cloud_run *r) {
  free(r->dir);
  free(r->store_path);
  mcpr_config_free(r->cfg);
}

/* CLI_EXIT_OK with r filled, or the exit code (r released); *help is set
 * when --help was answered. */
static int run_begin(const mcpr_cli_ctx *ctx, const mcpr_cli_command *cmd, int argc, char **argv,
                     bool flush, cloud_run *r, bool *help) {
  memset(r, 0, sizeof *r);
  int code = parse_args(cmd, argc, argv, &r->a, flush, help);
  if (code != CLI_EXIT_OK || *help)
    return code;
  if ((code = load(ctx, &r->cfg, &r->store_path)) != CLI_EXIT_OK)
    return code;
  if (!(r->dir = mcpr_cloud_spool_dir(r->store_path))) {
    run_end(r);
    return cli_fail("out of memory");
  }
  return CLI_EXIT_OK;
}

static int run_status(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  cloud_run r;
  bool help = false;
  int code = run_begin(ctx, &cmd_cloud_status, argc, argv, false, &r, &help);
  if (code != CLI_EXIT_OK || help)
    return code;
  mcpr_error err = {0};
  mcpr_spool_status s;
  if (mcpr_cloud_spool_status(r.dir, &s, &err) != MCPR_OK) {
    code = cli_fail("%s", err.message);
  } else {
    if (r.a.json)
      print_status_json(r.dir, &s);
    else
      print_status(r.dir, &s);
  }
  run_end(&r);
  return code;
}

static int run_flush(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  cloud_run r;
  bool help = false;
  int code = run_begin(ctx, &cmd_cloud_flush, argc, argv, true, &r, &help);
  if (code != CLI_EXIT_OK || help)
    return code;
  const mcpr_config *cfg = r.cfg;
  if (!cfg->cloud.token || !cfg->cloud.token[0]) {
    code = cli_fail("no [cloud] token in %s: nothing can be delivered",
                    cfg->file_path ? cfg->file_path : "mcpr.toml");
    run_end(&r);
    return code;
  }
  mcpr_error err = {0};
  mcpr_spool_status before, after;
  mcpr_cloud_spool_status(r.dir, &before, NULL);
  mcpr_cloud_sink_options o;
  options_from_config(cfg, r.dir, &o);
  mcpr_status st = mcpr_cloud_spool_deliver(&o, (int)(r.a.timeout_s * 1000), &after, &err);
  uint64_t sent = after.delivered_batches - before.delivered_batches;
  uint64_t rejected = after.rejected_batches - before.rejected_batches;
  if (st == MCPR_OK) {
    printf("delivered %" PRIu64 " batches (%" PRIu64 " events); the spool is empty\n", sent,
           after.delivered_events - before.delivered_events);
    if (rejected)
      printf("%" PRIu64 " batches were rejected by the server: see %s/rejected\n", rejected,
             r.dir);
  } else {
    code = cli_fail("cloud flush: %s; %" PRIu64 " batches (%" PRIu64 " events) still in %s",
                    err.message, after.pending_batches, after.pending_events, r.dir);
  }
  run_end(&r);
  return code;
}

const mcpr_cli_command cmd_cloud_status = {
    .group = "cloud",
    .name = "status",
    .summary = "the cloud spool: pending, delivered, rejected, last error",
    .usage = "mcpr cloud status [-c|--config FILE] [--db PATH] [--json]\n"
             "\n"
             "Shows the cloud sink's spool beside the store: batches and events\n"
             "waiting for delivery, delivered, rejected by the server, dropped at\n"
             "the size cap, corrupt records set aside, and the last error.",
    .run = run_status,
};

const mcpr_cli_command cmd_cloud_flush = {
    .group = "cloud",
    .name = "flush",
    .summary = "deliver the cloud spool now",
    .usage = "mcpr cloud flush [-c|--config FILE] [--db PATH] [--timeout SECONDS]\n"
             "\n"
             "Delivers every batch waiting in the spool to [cloud] endpoint with\n"
             "[cloud] token from the config (default ./mcpr.toml), oldest first.\n"
             "Exit status: 0 when the spool is empty, 1 with the reason otherwise.",
    .run = run_flush,
};
