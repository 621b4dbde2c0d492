/*
 * original.c — `mcpr-bench original`: a store as the original mcpr (0.4.x,
 * schema version 5) leaves it, for timing the first open of such a file
 * (issue 15): its tables and only its indexes, no rollup or retention
 * tables of ours, N generated requests (bench/gen.h) whose timestamps end
 * now and span --days.
 *
 * Written with plain SQLite, not through the store API (which would add
 * our tables and roll the rows up as it writes): rows first, then the
 * original's indexes in one pass each, which is much faster than keeping
 * them up to date row by row; the file is in WAL mode when done, as the
 * original leaves it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench.h"
#include "gen.h"
#include "backend/sqlite/db.h"

#define DAY_MS 86400000LL

/* What the original's v4 → v5 added, and the indexes it keeps beside
 * those mcpr__db_legacy_ddl(4) creates with its tables. */
static const char ORIGINAL_V5[] =
    "ALTER TABLE requests ADD COLUMN resource_uri TEXT;"
    "ALTER TABLE requests ADD COLUMN prompt_name TEXT;"
    "UPDATE meta SET value = '5' WHERE key = 'schema_version';";
static const char ORIGINAL_V5_INDEXES[] =
    "CREATE INDEX idx_sessions_client ON sessions(client_name, client_platform);"
    "CREATE INDEX idx_sessions_active ON sessions(proxy, last_seen_at) WHERE ended_at IS NULL;"
    "CREATE INDEX idx_server_schema_proxy_upstream ON server_schema(proxy, upstream_url);"
    "CREATE INDEX idx_schema_changes_proxy_detected ON schema_changes(proxy, detected_at);";

/* The statements of mcpr__db_legacy_ddl(4) that create indexes, run after
 * the rows; the rest (tables, meta) before them. */
static int exec_ddl(sqlite3 *db, const char *ddl, bool indexes) {
  const char *p = ddl;
  while (p && *p) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
    bool is_index = strncmp(p, "CREATE INDEX", 12) == 0;
    if (is_index == indexes) {
      char *one = strndup(p, len);
      int rc = one ? sqlite3_exec(db, one, NULL, NULL, NULL) : SQLITE_NOMEM;
      free(one);
      if (rc != SQLITE_OK)
        return rc;
    }
    p += len;
  }
  return SQLITE_OK;
}

static int bind_opt(sqlite3_stmt *st, int i, const char *v) {
  return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int insert_rows(sqlite3 *db, uint64_t rows, int64_t span_ms) {
  static const char *const STATUS[] = {"ok", "error", "timeout"};
  sqlite3_stmt *req = NULL, *ses = NULL, *end = NULL;
  int rc = sqlite3_prepare_v2(
      db,
      "INSERT INTO requests (request_id, ts, proxy, session_id, method, tool, latency_us,"
      " status, error_code, error_msg, bytes_in, bytes_out, resource_uri, prompt_name)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
      -1, &req, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "INSERT OR IGNORE INTO sessions (session_id, proxy, started_at,"
                            " last_seen_at, client_name, client_version, client_platform)"
                            " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
                            -1, &ses, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db, "UPDATE sessions SET ended_at = ?2, last_seen_at = ?2"
                                " WHERE session_id = ?1 AND ended_at IS NULL",
                            -1, &end, NULL);
  int64_t now = mcpr_now_ms(), start = now - span_ms, ts = start;
  bench_gen_options o = {.seed = 42, .sessions = 64, .id_prefix = "bo", .start_ts_ms = start,
                         .step_us = 1000};
  bench_gen *g = rc == SQLITE_OK ? bench_gen_new(&o) : NULL;
  if (rc == SQLITE_OK && !g)
    rc = SQLITE_NOMEM;
  uint64_t n = 0;
  while (rc == SQLITE_OK && n < rows) {
    const mcpr_store_event *e = bench_gen_next(g);
    sqlite3_stmt *st = NULL;
    if (e->kind == MCPR_STORE_EVENT_REQUEST) {
      const mcpr_request_event *r = &e->u.request;
      ts = start + (int64_t)((double)n * (double)span_ms / (double)rows);
      st = req;
      sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, ts);
      sqlite3_bind_text(st, 3, r->proxy, -1, SQLITE_STATIC);
      bind_opt(st, 4, r->session_id);
      sqlite3_bind_text(st, 5, r->method, -1, SQLITE_STATIC);
      bind_opt(st, 6, r->tool);
      sqlite3_bind_int64(st, 7, r->latency_us);
      sqlite3_bind_text(st, 8, STATUS[r->status], -1, SQLITE_STATIC);
      bind_opt(st, 9, r->error_code);
      bind_opt(st, 10, r->error_msg);
      if (r->bytes_in >= 0)
        sqlite3_bind_int64(st, 11, r->bytes_in);
      if (r->bytes_out >= 0)
        sqlite3_bind_int64(st, 12, r->bytes_out);
      bind_opt(st, 13, r->resource_uri);
      bind_opt(st, 14, r->prompt_name);
      n++;
    } else if (e->kind == MCPR_STORE_EVENT_SESSION) {
      const mcpr_session_event *s = &e->u.session;
      st = ses;
      sqlite3_bind_text(st, 1, s->session_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, s->proxy, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, ts);
      bind_opt(st, 4, s->client_name);
      bind_opt(st, 5, s->client_version);
      bind_opt(st, 6, s->client_platform ? s->client_platform : "unknown");
    } else if (e->kind == MCPR_STORE_EVENT_SESSION_CLOSED) {
      st = end;
      sqlite3_bind_text(st, 1, e->u.session_closed.session_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, ts);
    }
    if (st) {
      rc = sqlite3_step(st);
      rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
  }
  bench_gen_free(g);
  sqlite3_finalize(req);
  sqlite3_finalize(ses);
  sqlite3_finalize(end);
  return rc;
}

static void usage(FILE *out) {
  fputs("usage: mcpr-bench original --db PATH [--rows N] [--days N]\n"
        "  --db PATH  the store file to create (must not exist)\n"
        "  --rows N   requests (default 1000000)\n"
        "  --days N   the days they span, ending now (default 30)\n",
        out);
}

int bench_original_main(int argc, char **argv) {
  uint64_t rows = 1000000;
  int64_t span_ms = 30 * DAY_MS;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--rows") == 0) {
      rows = bench_parse_count("--rows", v), i++;
    } else if (strcmp(a, "--days") == 0) {
      span_ms = (int64_t)bench_parse_count("--days", v) * DAY_MS, i++;
    } else if (strcmp(a, "--db") == 0 && v) {
      path = v, i++;
    } else {
      return bench_unknown_option(a, usage);
    }
  }
  if (!path || access(path, F_OK) == 0) {
    fprintf(stderr, "mcpr-bench original: --db PATH is required and must not exist\n");
    return 2;
  }
  uint64_t t0 = bench_now_ns();
  sqlite3 *db = NULL;
  const char *ddl = mcpr__db_legacy_ddl(4);
  int rc = sqlite3_open(path, &db);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                          " PRAGMA cache_size=-256000; BEGIN",
                      NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = exec_ddl(db, ddl, false);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, ORIGINAL_V5, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = insert_rows(db, rows, span_ms);
  double rows_ms = bench_ms_since(t0);
  if (rc == SQLITE_OK)
    rc = exec_ddl(db, ddl, true);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, ORIGINAL_V5_INDEXES, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "UPDATE sessions SET total_calls = (SELECT count(*) FROM requests r"
                          " WHERE r.session_id = sessions.session_id),"
                          " total_errors = (SELECT count(*) FROM requests r"
                          " WHERE r.session_id = sessions.session_id AND status <> 'ok');"
                          " COMMIT; PRAGMA journal_mode=WAL",
                      NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "mcpr-bench original: %s: %s\n", path, db ? sqlite3_errmsg(db) : "");
    sqlite3_close(db);
    return 1;
  }
  sqlite3_close(db);
  double ms = bench_ms_since(t0);
  printf("built %s: %llu requests in the original's layout in %.1f s (rows %.1f s)\n", path,
         (unsigned long long)rows, ms / 1000, rows_ms / 1000);
  printf("{\"rows\":%llu,\"build_ms\":%.0f}\n", (unsigned long long)rows, ms);
  return 0;
}
