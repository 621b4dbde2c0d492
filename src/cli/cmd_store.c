/* cmd_store.c — `mcpr store stats`, `mcpr store vacuum`, `mcpr store rollup`. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_proxy_common.h"
#include "format.h"
#include "store_report.h"

static int run_stats(const mcpr_cli_ctx *ctx, int argc, char **argv);
static int run_vacuum(const mcpr_cli_ctx *ctx, int argc, char **argv);
static int run_rollup(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_store_rollup = {
    .group = "store",
    .name = "rollup",
    .summary = "build the hourly rollups that keep read commands fast",
    .usage = "mcpr store rollup [--db PATH]\n"
             "\n"
             "Roll up every request not yet counted in the store's hourly and daily\n"
             "rollups (per proxy and tool: calls, errors, bytes, latency sketch), in\n"
             "short transactions (at most 50,000 requests, about 40 ms each): a\n"
             "running proxy or `mcpr ingest` keeps writing meanwhile. A running mcpr\n"
             "writer does this by itself for what it writes, and catches up on what\n"
             "others wrote; run it once on a big store the original or an older mcpr\n"
             "wrote, so that reads over long windows are fast (read commands tell\n"
             "you when it is worth it; until then they count those requests one by\n"
             "one, exactly). Safe to interrupt: it goes on where it stopped.\n"
             "Progress (percent, requests/s, time left) on a terminal.\n"
             "\n"
             "examples:\n"
             "  mcpr store rollup\n"
             "  mcpr store rollup --db ~/.mcpr/store.db",
    .run = run_rollup,
};

const mcpr_cli_command cmd_store_stats = {
    .group = "store",
    .name = "stats",
    .summary = "size and contents of the store",
    .usage = "mcpr store stats [--json]\n"
             "\n"
             "Requests and sessions stored, the time they span, how many proxies\n"
             "write here, the size of the database and its WAL file, and what\n"
             "retention ([store] retention in mcpr.toml) has deleted so far.\n"
             "\n"
             "examples:\n"
             "  mcpr store stats\n"
             "  mcpr --db /var/lib/mcpr/store.db store stats --json",
    .run = run_stats,
};

const mcpr_cli_command cmd_store_vacuum = {
    .group = "store",
    .name = "vacuum",
    .summary = "delete old requests and sessions, reclaim space",
    .usage = "mcpr store vacuum --before D [--proxy P] [--dry-run]\n"
             "\n"
             "Delete requests older than D (an integer and s|m|h|d|w), then sessions\n"
             "that ended before it and have no requests left, then reclaim the space.\n"
             "A running proxy keeps writing: vacuum waits for its lock and it waits\n"
             "for vacuum's, nothing it has accepted is lost.\n"
             "  --before D   required: keep the last D\n"
             "  --proxy P    only rows of proxy P\n"
             "  --dry-run    count what would be deleted, change nothing\n"
             "\n"
             "examples:\n"
             "  mcpr store vacuum --before 30d --dry-run\n"
             "  mcpr store vacuum --before 7d --proxy staging",
    .run = run_vacuum,
};

static int run_stats(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_store_stats;
  bool json = false;
  const cli_opt opts[] = {
      {"--json", 0, false, NULL, &json},
      {NULL, 0, false, NULL, NULL},
  };
  int rc = cli_parse_name(cmd, argc, argv, opts, NULL);
  if (rc >= 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_store_info info;
  mcpr_error err = {0};
  if (mcpr_query_store_info(q, &info, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  if (json) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(mcpr_query_path(q)));
    json_object_set_new(o, "schema_version", json_integer(info.schema_version));
    json_object_set_new(o, "total_requests", json_integer(info.total_requests));
    json_object_set_new(o, "total_sessions", json_integer(info.total_sessions));
    json_object_set_new(o, "oldest_request", fmt_json_int(info.oldest_request_ms));
    json_object_set_new(o, "newest_request", fmt_json_int(info.newest_request_ms));
    json_object_set_new(o, "proxies", json_integer(info.proxies));
    json_object_set_new(o, "db_bytes", json_integer(info.db_bytes));
    json_object_set_new(o, "wal_bytes", json_integer(info.wal_bytes));
    json_t *lf = json_null();
    if (info.last_failure != MCPR_OK) {
      lf = json_object();
      json_object_set_new(lf, "cause", json_string(mcpr_status_name(info.last_failure)));
      json_object_set_new(lf, "message", json_string(info.last_failure_message));
      json_object_set_new(lf, "at", json_integer(info.last_failure_at_ms));
      json_object_set_new(lf, "ended_at", info.last_failure_ended_ms
                                              ? json_integer(info.last_failure_ended_ms)
                                              : json_null());
      json_object_set_new(lf, "events_not_stored", json_integer(info.last_failure_events));
    }
    json_object_set_new(o, "last_write_failure", lf);
    json_t *ret = json_object();
    json_object_set_new(ret, "requests_deleted", json_integer(info.retention_requests_deleted));
    json_object_set_new(ret, "sessions_deleted", json_integer(info.retention_sessions_deleted));
    json_object_set_new(ret, "rollups_deleted", json_integer(info.retention_rollups_deleted));
    json_object_set_new(ret, "last_run", info.retention_last_run_ms
                                             ? json_integer(info.retention_last_run_ms)
                                             : json_null());
    json_object_set_new(o, "retention", ret);
    fmt_json_line(stdout, o);
  } else {
    int64_t now = mcpr_now_ms();
    char oldest[32] = "-", newest[32] = "-", db[32], wal[32];
    if (info.oldest_request_ms != MCPR_QUERY_NULL)
      fmt_time(info.oldest_request_ms, now, oldest, sizeof oldest);
    if (info.newest_request_ms != MCPR_QUERY_NULL)
      fmt_time(info.newest_request_ms, now, newest, sizeof newest);
    fmt_bytes(info.db_bytes, db, sizeof db);
    fmt_bytes(info.wal_bytes, wal, sizeof wal);
    fputs("store      ", stdout);
    fmt_put_clean(stdout, mcpr_query_path(q));
    printf(" (schema v%d)\n", info.schema_version);
    printf("requests   %lld\n", (long long)info.total_requests);
    printf("sessions   %lld\n", (long long)info.total_sessions);
    printf("oldest     %s\nnewest     %s\n", oldest, newest);
    printf("proxies    %lld\n", (long long)info.proxies);
    printf("db size    %s\nwal size   %s\n", db, wal);
    if (info.retention_last_run_ms) {
      char at[32];
      fmt_time(info.retention_last_run_ms, now, at, sizeof at);
      printf("retention  deleted %lld requests, %lld sessions, %lld rollup rows; last run %s\n",
             (long long)info.retention_requests_deleted,
             (long long)info.retention_sessions_deleted,
             (long long)info.retention_rollups_deleted, at);
    } else {
      printf("retention  never ran (set [store] retention in mcpr.toml)\n");
    }
    if (info.last_failure != MCPR_OK) {
      char at[32], ended[48] = "not yet seen to end";
      fmt_time(info.last_failure_at_ms, now, at, sizeof at);
      if (info.last_failure_ended_ms) {
        char t[32];
        fmt_time(info.last_failure_ended_ms, now, t, sizeof t);
        snprintf(ended, sizeof ended, "ended %s", t);
      }
      printf("last write failure  %s since %s (%s), %lld events not stored: ",
             cli_store_cause_words(info.last_failure), at, ended,
             (long long)info.last_failure_events);
      fmt_put_clean(stdout, info.last_failure_message);
      fputc('\n', stdout);
    }
  }
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}

static int run_vacuum(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_store_vacuum;
  const char *before = NULL, *proxy = NULL;
  bool dry_run = false;
  const cli_opt opts[] = {
      {"--before", 0, true, &before, NULL},
      {"--proxy", 0, true, &proxy, NULL},
      {"--dry-run", 0, false, NULL, &dry_run},
      {NULL, 0, false, NULL, NULL},
  };
  int rc = cli_parse_name(cmd, argc, argv, opts, NULL);
  if (rc >= 0)
    return rc;
  if (!before)
    return cli_usage_error(cmd, "--before is required (e.g. --before 30d)");
  mcpr_vacuum_options o = {.proxy = proxy, .dry_run = dry_run};
  if ((rc = cli_window(cmd, "--before", before, NULL, mcpr_now_ms(), &o.before_ms)) != 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_vacuum_result r;
  mcpr_error err = {0};
  if (mcpr_query_vacuum(q, &o, &r, &err) != MCPR_OK)
    return cli_query_fail(q, &err);
  char b0[32], b1[32];
  fmt_bytes(r.bytes_before, b0, sizeof b0);
  fmt_bytes(r.bytes_after, b1, sizeof b1);
  if (dry_run)
    printf("Would delete %lld requests and %lld sessions older than %s%s",
           (long long)r.requests_deleted, (long long)r.sessions_deleted, before,
           proxy ? " of proxy " : "");
  else
    printf("Deleted %lld requests and %lld sessions older than %s%s",
           (long long)r.requests_deleted, (long long)r.sessions_deleted, before,
           proxy ? " of proxy " : "");
  if (proxy)
    fmt_put_clean(stdout, proxy);
  if (dry_run)
    printf(" (store is %s).\nNothing was changed (--dry-run).\n", b0);
  else
    printf("; store %s -> %s.\n", b0, b1);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}

static double seconds_since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

typedef struct rollup_view {
  struct timespec t0;
  bool tty;
} rollup_view;

static void rollup_progress(void *ctx, const mcpr_rollup_progress *p) {
  const rollup_view *v = ctx;
  if (p->building_index) {
    fprintf(stderr,
            "%sbuilding index %s: SQLite builds it in one transaction, and writers wait"
            " until it is done (an index on requests: about a minute per 10M of them)\n",
            v->tty && p->batches ? "\n" : "", p->building_index);
    return;
  }
  if (!v->tty)
    return;
  double s = seconds_since(&v->t0);
  int64_t all = p->rolled + p->left;
  double rate = s > 0 ? (double)p->rolled / s : 0;
  fprintf(stderr, "\rrolling up: %lld of %lld requests (%lld %%), %.0f/s", (long long)p->rolled,
          (long long)all, all ? (long long)(100 * p->rolled / all) : 100LL, rate);
  if (rate > 0 && p->left > 0)
    fprintf(stderr, ", about %.0f s left  ", (double)p->left / rate + 0.5);
  else
    fputs("                  ", stderr);
  fflush(stderr);
}

static int run_rollup(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_store_rollup;
  const cli_opt opts[] = {{NULL, 0, false, NULL, NULL}};
  int rc = cli_parse_name(cmd, argc, argv, opts, NULL);
  if (rc >= 0)
    return rc;
  mcpr_query *q = NULL;
  if ((rc = cli_open_query_quiet(ctx, &q)) != 0)
    return rc;
  bool tty = isatty(STDERR_FILENO) == 1;
  mcpr_rollup_progress p;
  mcpr_error err = {0};
  rollup_view v = {.tty = tty};
  clock_gettime(CLOCK_MONOTONIC, &v.t0);
  mcpr_status st = mcpr_query_rollup(q, rollup_progress, &v, &p, &err);
  if (tty && p.batches && !p.indexes_built)
    fputc('\n', stderr);
  if (st != MCPR_OK)
    return cli_query_fail(q, &err);
  double s = seconds_since(&v.t0);
  printf("Rolled up %lld requests in %.1f s (%.0f/s), %lld batches (longest %lld ms, at most"
         " %lld requests); %lld left.\n",
         (long long)p.rolled, s, s > 0 ? (double)p.rolled / s : 0.0, (long long)p.batches,
         (long long)p.longest_lock_ms, (long long)p.largest_batch_rows, (long long)p.left);
  if (p.indexes_built)
    printf("Built %lld missing indexes (the lock held %.1f s).\n",
           (long long)p.indexes_built, (double)p.index_lock_ms / 1000);
  mcpr_query_close(q);
  return CLI_EXIT_OK;
}
