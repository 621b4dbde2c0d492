/*
 * cmd_store_copy.c — `mcpr store copy --from A --to B`: a store's content
 * into another store, SQLite or PostgreSQL, either direction.
 *
 * Through the public APIs only, so any pair of backends works: the source
 * is read with a query handle (sessions, then the requests in insertion
 * order a page at a time, then the schema snapshots) and replayed into
 * the destination as store events through a store handle — sessions
 * first, so that each copied request counts towards its session there,
 * then the requests, then the session closes. The destination's writer
 * is idempotent (request_id, session_id, snapshot hash), so a copy run
 * again, or after an interruption, stores what is missing and nothing
 * twice: that is how it resumes.
 *
 * What a replay cannot carry: session counters are counted again from the
 * copied requests (the same unless the source counted differently, e.g. a
 * request stored before its session started), and the schema's change
 * history is not copied — each current snapshot arrives as its upstream's
 * first version.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_proxy_common.h"
#include "format.h"
#include "store_report.h"

#define PAGE_ROWS 5000

static int run_copy(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_store_copy = {
    .group = "store",
    .name = "copy",
    .summary = "copy a store into another (SQLite <-> PostgreSQL)",
    .usage = "mcpr store copy --from PATH|URL --to PATH|URL\n"
             "\n"
             "Copy every session, request and current schema snapshot of one store\n"
             "into another: a SQLite file (a path or sqlite:PATH) or a PostgreSQL\n"
             "database (postgresql://…), either direction. Rows the destination\n"
             "already holds are skipped, so running it again — after an interruption,\n"
             "or to bring over what was written since — copies only what is missing.\n"
             "Session counters are counted again from the copied requests; the\n"
             "schema's change history is not copied. Progress on a terminal.\n"
             "  --from PATH|URL   the store to read (not changed)\n"
             "  --to PATH|URL     the store to write (created when missing)\n"
             "\n"
             "examples:\n"
             "  mcpr store copy --from ~/.mcpr/store.db --to postgresql://mcpr@db/mcpr\n"
             "  mcpr store copy --from postgresql://mcpr@db/mcpr --to /tmp/snapshot.db",
    .run = run_copy,
};

typedef struct copy_run {
  mcpr_store *to;
  bool tty;
  int64_t total, done;
  mcpr_error err;
} copy_run;

/* Hand one event over, waiting for room rather than dropping it. */
static bool put(copy_run *c, const mcpr_store_event *e) {
  for (;;) {
    mcpr_status st = mcpr_store_record(c->to, e);
    if (st == MCPR_OK)
      return true;
    if (st != MCPR_EQUEUEFULL) {
      mcpr_error_set(&c->err, st, "cannot hand an event to the destination: %s",
                     mcpr_strerror(st));
      return false;
    }
    mcpr_status fs = mcpr_store_flush(c->to, 60000, &c->err);
    if (fs != MCPR_OK && fs != MCPR_ETIMEDOUT)
      return false;
  }
}

static void progress(copy_run *c, bool last) {
  if (!c->tty)
    return;
  fprintf(stderr, "\rcopying: %" PRId64 " of %" PRId64 " requests (%" PRId64 " %%)%s", c->done,
          c->total, c->total ? 100 * c->done / c->total : (int64_t)100, last ? "\n" : "");
  fflush(stderr);
}

static bool copy_sessions(copy_run *c, mcpr_query *q, mcpr_session_rows *sessions) {
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  f.limit = INT64_MAX;
  if (mcpr_query_sessions(q, &f, sessions, &c->err) != MCPR_OK)
    return false;
  for (size_t i = 0; i < sessions->count; i++) {
    const mcpr_session_row *s = &sessions->rows[i];
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION};
    e.u.session = (mcpr_session_event){.session_id = s->session_id,
                                       .proxy = s->proxy,
                                       .started_at_ms = s->started_at_ms,
                                       .client_name = s->client_name,
                                       .client_version = s->client_version,
                                       .client_platform = s->client_platform};
    if (!put(c, &e))
      return false;
  }
  return true;
}

static bool copy_requests(copy_run *c, mcpr_query *q) {
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.limit = PAGE_ROWS;
  for (;;) {
    mcpr_log_rows rows;
    if (mcpr_query_follow(q, &f, &rows, &c->err) != MCPR_OK)
      return false;
    bool ok = true;
    for (size_t i = 0; i < rows.count && ok; i++) {
      const mcpr_log_row *r = &rows.rows[i];
      mcpr_request_status status;
      if (!mcpr_request_status_parse(r->status, &status)) {
        /* A 0.5-layout request without a response: there is nothing to
         * copy for it yet. */
        continue;
      }
      mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
      e.u.request = (mcpr_request_event){
          .request_id = r->request_id,
          .ts_ms = r->ts_ms,
          .proxy = r->proxy,
          .session_id = r->session_id,
          .method = r->method,
          .tool = r->tool,
          .resource_uri = r->resource_uri,
          .prompt_name = r->prompt_name,
          .latency_us = r->latency_us == MCPR_QUERY_NULL ? 0 : r->latency_us,
          .status = status,
          .error_code = r->error_code,
          .error_msg = r->error_msg,
          .bytes_in = r->bytes_in == MCPR_QUERY_NULL ? -1 : r->bytes_in,
          .bytes_out = r->bytes_out == MCPR_QUERY_NULL ? -1 : r->bytes_out,
      };
      ok = put(c, &e);
    }
    size_t n = rows.count;
    if (n)
      f.after_row_id = rows.rows[n - 1].row_id;
    mcpr_log_rows_release(&rows);
    if (!ok)
      return false;
    c->done += (int64_t)n;
    progress(c, false);
    if (n < PAGE_ROWS)
      return true;
  }
}

static bool copy_closes(copy_run *c, const mcpr_session_rows *sessions) {
  for (size_t i = 0; i < sessions->count; i++) {
    const mcpr_session_row *s = &sessions->rows[i];
    if (s->ended_at_ms == MCPR_QUERY_NULL)
      continue;
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
    e.u.session_closed = (mcpr_session_closed_event){s->session_id, s->ended_at_ms};
    if (!put(c, &e))
      return false;
  }
  return true;
}

static bool copy_schema(copy_run *c, mcpr_query *q) {
  mcpr_schema_rows rows;
  if (mcpr_query_schema(q, NULL, NULL, &rows, &c->err) != MCPR_OK)
    return false;
  bool ok = true;
  for (size_t i = 0; i < rows.count && ok; i++) {
    const mcpr_schema_row *r = &rows.rows[i];
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
    e.u.schema_version = (mcpr_schema_version_event){.ts_ms = r->captured_at_ms,
                                                     .proxy = r->proxy,
                                                     .upstream_url = r->upstream_url,
                                                     .method = r->method,
                                                     .payload = r->payload,
                                                     .content_hash = r->schema_hash};
    ok = put(c, &e);
  }
  mcpr_schema_rows_release(&rows);
  return ok;
}

static int run_copy(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  const mcpr_cli_command *cmd = &cmd_store_copy;
  const char *from = NULL, *to = NULL;
  const cli_opt opts[] = {
      {"--from", 0, true, &from, NULL},
      {"--to", 0, true, &to, NULL},
      {NULL, 0, false, NULL, NULL},
  };
  int rc = cli_parse_name(cmd, argc, argv, opts, NULL);
  if (rc >= 0)
    return rc;
  if (!from || !*from || !to || !*to)
    return cli_usage_error(cmd, "both --from and --to are required");
  if (strcmp(from, to) == 0)
    return cli_usage_error(cmd, "--from and --to name the same store");
  char from_shown[1024], to_shown[1024];
  mcpr_store_target_redact(from, from_shown, sizeof from_shown);
  mcpr_store_target_redact(to, to_shown, sizeof to_shown);

  copy_run c = {.tty = isatty(STDERR_FILENO) == 1};
  mcpr_query *q = NULL;
  mcpr_session_rows sessions = {0};
  mcpr_store_info info;
  if (mcpr_query_open(&q, from, &c.err) != MCPR_OK)
    return cli_fail("cannot read the store %s: %s", from_shown, c.err.message);
  if (mcpr_query_store_info(q, &info, &c.err) != MCPR_OK) {
    rc = cli_fail("cannot read the store %s: %s", from_shown, c.err.message);
    goto out;
  }
  c.total = info.total_requests;
  mcpr_store_options so;
  mcpr_store_options_init(&so);
  so.on_health = cli_store_health_print;
  if (mcpr_store_open(&c.to, to, &so, &c.err) != MCPR_OK) {
    rc = cli_fail("cannot open the store %s: %s", to_shown, c.err.message);
    goto out;
  }
  bool ok = copy_sessions(&c, q, &sessions) && copy_requests(&c, q) && copy_closes(&c, &sessions) &&
            copy_schema(&c, q);
  progress(&c, true);
  mcpr_store_stats st;
  mcpr_status cs = mcpr_store_close(c.to, &st);
  c.to = NULL;
  if (!ok) {
    rc = cli_fail("copy from %s stopped: %s; run it again to copy the rest", from_shown,
                  c.err.message);
    goto out;
  }
  printf("copied %s -> %s: %" PRIu64 " rows written, %" PRIu64
         " already there (%" PRId64 " requests, %zu sessions read)\n",
         from_shown, to_shown, st.written, st.duplicates, c.done, sessions.count);
  if (cs != MCPR_OK || mcpr_store_stats_failed(&st) > 0)
    rc = cli_fail("%" PRIu64 " rows could not be written to %s (%s); run the copy again",
                  mcpr_store_stats_failed(&st), to_shown, mcpr_strerror(cs));
  else
    rc = CLI_EXIT_OK;
out:
  mcpr_store_close(c.to, NULL);
  mcpr_session_rows_release(&sessions);
  mcpr_query_close(q);
  return rc;
}
