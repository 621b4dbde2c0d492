/*
 * query_v05.c — the SQLite backend's read side for the original mcpr's
 * 0.5.x store layout (SPEC §10), behind the same query/backend.h table as
 * query.c. Those releases dropped the observability commands; this file
 * keeps `logs`, `slow`, `status`, `sessions`, `session`, `clients`,
 * `schema` and `--unused` working on their store.db.
 *
 * The layout (meta.schema_version '1'): `requests` and `responses` are
 * written separately and joined on (session_id, request_id) — a request
 * with no response row (no session, a JSON-RPC error the original could
 * not correlate, or simply not answered yet) has no latency and the status
 * `pending`, as in the original's own `request_log` view; `sessions` keeps
 * a state ('active' | 'closed'), a creation and a last-activity time and a
 * call count; `schema_items` keeps the latest payload of each tool,
 * prompt, resource and resource template, and `schema_changes` one row per
 * item change. It is mapped onto the query API as docs/original-v05.md
 * lists; what it does not record (bytes in and out, upstream URLs,
 * initialize, a snapshot hash, removals) is left empty.
 *
 * Strictly read-only: the file is opened by mcpr__db_open_untouched()
 * (nothing is created beside it: no -wal, -shm, -journal or -mcprlock),
 * with query_only set, and nothing here writes — no migration, no pragma
 * that changes the file, no vacuum. The original's index set is what it
 * is (no index on requests.ts): a time window with no proxy, tool, method
 * or session filter goes through (proxy, ts) one proxy at a time, the
 * proxies found by hopping along that index (PROXIES below), never by
 * walking the table. docs/query-plans.md shows every plan.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/query.h"
#include "backend/sqlite/sqlb.h"
#include "backend/sqlite/sqlite.h"
#include "mcpr/util.h"
#include "query/backend.h"

typedef struct v05_impl {
  sqlite3 *db;
  char *path;
} v05_impl;

/* ---------- open / close ---------- */

mcpr_status mcpr__query_v05_open(const char *path, void **out, mcpr_error *err) {
  *out = NULL;
  v05_impl *impl = calloc(1, sizeof *impl);
  if (!impl)
    return oom_error(err);
  impl->path = strdup(path);
  if (!impl->path) {
    free(impl);
    return oom_error(err);
  }
  int rc = mcpr__db_open_untouched(path, NULL, &impl->db);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(impl->db, 1);
    sqlite3_busy_timeout(impl->db, 5000);
    /* Never a checkpoint on close, and no statement may write. */
    sqlite3_db_config(impl->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    rc = sqlite3_exec(impl->db, "PRAGMA query_only=1", NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    mcpr_status st = mcpr_error_set(err, mcpr__db_status(rc), "cannot open %s: %s", path,
                                    impl->db ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc));
    sqlite3_close_v2(impl->db);
    free(impl->path);
    free(impl);
    return st;
  }
  *out = impl;
  return MCPR_OK;
}

static void v05_close(void *p) {
  v05_impl *impl = p;
  if (!impl)
    return;
  sqlite3_close_v2(impl->db);
  free(impl->path);
  free(impl);
}

/* ---------- the mapping ---------- */

/* The distinct proxy names of requests, one seek each on (proxy, ts). */
#define PROXIES                                                                \
  "WITH RECURSIVE p(name) AS ("                                                \
  " SELECT (SELECT min(proxy) FROM requests)"                                  \
  " UNION ALL"                                                                 \
  " SELECT (SELECT min(proxy) FROM requests WHERE proxy > p.name) FROM p"      \
  " WHERE p.name IS NOT NULL)"

/* A request's response, as the original's request_log view joins them. */
#define JOIN_RESPONSE                                                          \
  " FROM requests r LEFT JOIN responses res"                                   \
  " ON res.session_id = r.session_id AND res.request_id = r.request_id"

#define LATENCY_US "(res.ts - r.ts) * 1000"
#define STATUS "coalesce(res.status, 'pending')"

/* SPEC §9's client platform, from the name (the layout does not keep it). */
#define PLATFORM                                                               \
  "CASE WHEN s.client_name IS NULL THEN NULL"                                  \
  " WHEN instr(lower(s.client_name), 'claude') THEN 'claude'"                  \
  " WHEN instr(lower(s.client_name), 'cursor') THEN 'cursor'"                  \
  " WHEN instr(lower(s.client_name), 'chatgpt')"                               \
  " OR instr(lower(s.client_name), 'openai') THEN 'chatgpt'"                   \
  " WHEN instr(lower(s.client_name), 'copilot')"                               \
  " OR instr(lower(s.client_name), 'vscode')"                                  \
  " OR instr(lower(s.client_name), 'vs-code') THEN 'vscode'"                   \
  " WHEN instr(lower(s.client_name), 'windsurf') THEN 'windsurf'"              \
  " ELSE 'unknown' END"

/* A session's errors: its error responses (as the sessions_view counts). */
#define SESSION_ERRORS                                                         \
  "(SELECT count(*) FROM responses res WHERE res.session_id = s.id"            \
  " AND +res.status = 'error')"

/* The list method whose items a schema_items kind holds, and its key. */
#define KIND_METHOD                                                            \
  "CASE kind WHEN 'tool' THEN 'tools/list' WHEN 'prompt' THEN 'prompts/list'"   \
  " WHEN 'resource' THEN 'resources/list'"                                     \
  " WHEN 'resource_template' THEN 'resources/templates/list' ELSE kind END"
#define KIND_ARRAY                                                             \
  "CASE kind WHEN 'tool' THEN 'tools' WHEN 'prompt' THEN 'prompts'"             \
  " WHEN 'resource' THEN 'resources'"                                          \
  " WHEN 'resource_template' THEN 'resourceTemplates' ELSE kind END"

/* The schema_items kind a list method filter names; a method no kind
 * stands for (initialize...) filters on itself and matches nothing. */
static const char *kind_of_method(const char *method) {
  static const char *const map[][2] = {
      {"tools/list", "tool"},
      {"prompts/list", "prompt"},
      {"resources/list", "resource"},
      {"resources/templates/list", "resource_template"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(method, map[i][0]) == 0)
      return map[i][1];
  return method;
}

/* A time window with no other indexed filter: one range of (proxy, ts)
 * per proxy instead of the whole table (there is no index on ts). */
static void sb_window(sqlb *b, int64_t since_ms, bool indexed) {
  if (since_ms == MCPR_QUERY_NO_CUTOFF)
    return;
  if (!indexed)
    sb_add(b, " AND r.proxy IN (" PROXIES " SELECT name FROM p WHERE name IS NOT NULL)");
  sb_int(b, " AND r.ts >= ?", since_ms);
}

/* ---------- requests ---------- */

#define LOG_COLUMNS                                                            \
  "SELECT r.id, r.request_id, r.ts, r.proxy, r.method, r.tool, r.resource_uri,"  \
  " r.prompt_name, " LATENCY_US ", " STATUS ", CAST(res.error_code AS TEXT),"   \
  " res.error_msg, r.session_id, r.bytes_in, res.bytes_out" JOIN_RESPONSE      \
  " WHERE 1"

static void build_logs(sqlb *b, mcpr__log_kind kind, const mcpr_log_filter *f) {
  bool indexed = f->proxy || f->tool;
  sb_init(b);
  sb_add(b, LOG_COLUMNS);
  if (f->proxy)
    sb_text(b, " AND r.proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND r.tool = ?", f->tool);
  if (kind != MCPR__SLOW) {
    if (f->method) {
      sb_text(b, " AND r.method = ?", f->method);
      indexed = true;
    }
    if (f->error_code)
      sb_text(b, " AND CAST(res.error_code AS TEXT) = ?", f->error_code);
    if (f->has_status)
      sb_text(b, " AND " STATUS " = ?", mcpr_request_status_str(f->status));
    if (f->session_id) {
      sb_text(b, " AND r.session_id = ?", f->session_id);
      indexed = true;
    } else if (f->session_prefix && *f->session_prefix) {
      sb_prefix(b, " AND r.session_id >= ?", " AND r.session_id < ?", f->session_prefix);
      indexed = true;
    }
  }
  if (kind != MCPR__FOLLOW && kind != MCPR__OLDEST_FIRST)
    sb_window(b, f->since_ms, indexed);
  if (f->min_latency_us > 0)
    sb_int(b, " AND " LATENCY_US " >= ?", f->min_latency_us);
  if (f->after_row_id > 0)
    sb_int(b, " AND r.id > ?", f->after_row_id);
  if (f->up_to_row_id > 0)
    sb_int(b, " AND r.id <= ?", f->up_to_row_id);
  switch (kind) {
  case MCPR__LOGS:
    sb_add(b, " ORDER BY r.ts DESC, r.id DESC");
    break;
  case MCPR__SLOW:
    sb_add(b, " ORDER BY " LATENCY_US " DESC, r.ts DESC, r.id DESC");
    break;
  case MCPR__FOLLOW:
    sb_add(b, " ORDER BY r.id");
    break;
  case MCPR__OLDEST_FIRST:
    sb_add(b, " ORDER BY r.ts, r.id");
    break;
  }
  sb_int(b, " LIMIT ?", f->limit);
}

static mcpr_status v05_logs(void *p, mcpr__log_kind kind, const mcpr_log_filter *f,
                            mcpr_log_rows *out, size_t *cap, mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  build_logs(&b, kind, f);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows,
                   out->pool, read_log_row, err);
}

static const char SQL_LAST_ROW_ID[] = "SELECT max(id) FROM requests";

static mcpr_status v05_last_row_id(void *p, int64_t *out, mcpr_error *err) {
  v05_impl *impl = p;
  mcpr_status s = fixed_row(impl->db, SQL_LAST_ROW_ID, out, NULL, err);
  if (s == MCPR_OK && *out == MCPR_QUERY_NULL)
    *out = 0;
  return s;
}

/* ---------- stats ---------- */

static void build_stats(sqlb *b, const mcpr_stats_filter *f) {
  sb_init(b);
  sb_add(b, "SELECT r.tool, r.method, " LATENCY_US ", " STATUS " <> 'ok', r.bytes_in,"
            " res.bytes_out" JOIN_RESPONSE " WHERE 1");
  if (f->proxy)
    sb_text(b, " AND r.proxy = ?", f->proxy);
  sb_window(b, f->since_ms, f->proxy != NULL);
}

typedef struct sample_sink {
  mcpr__stats_sink sink;
  void *ctx;
} sample_sink;

static int pass_sample(void *ctx, sqlite3_stmt *st) {
  sample_sink *k = ctx;
  mcpr__stats_sample sm;
  sm.tool = (const char *)sqlite3_column_text(st, 0);
  sm.tool_len = (size_t)sqlite3_column_bytes(st, 0);
  sm.method = (const char *)sqlite3_column_text(st, 1);
  sm.method_len = (size_t)sqlite3_column_bytes(st, 1);
  sm.latency_us = col_int(st, 2); /* NULL: no response, no latency */
  sm.is_error = sqlite3_column_int(st, 3);
  sm.bytes_in = col_int(st, 4);
  sm.bytes_out = col_int(st, 5);
  return k->sink(k->ctx, &sm);
}

static mcpr_status v05_stats_scan(void *p, const mcpr_stats_filter *f, mcpr__stats_sink sink,
                                  void *ctx, mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  build_stats(&b, f);
  sample_sink k = {sink, ctx};
  return each_row(impl->db, &b, pass_sample, &k, err);
}

/* ---------- sessions ---------- */

static void build_active_count(sqlb *b, const char *proxy, int64_t now_ms) {
  sb_init(b);
  sb_add(b, "SELECT count(*) FROM sessions WHERE state = 'active'");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  sb_int(b, " AND last_active > ?", now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
}

static void build_total_count(sqlb *b, const char *proxy, int64_t since_ms) {
  sb_init(b);
  sb_add(b, "SELECT count(*) FROM sessions WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND created_at >= ?", since_ms);
}

static mcpr_status v05_session_counts(void *p, const char *proxy, int64_t since_ms,
                                      int64_t now_ms, int64_t *active, int64_t *total,
                                      mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  build_active_count(&b, proxy, now_ms);
  mcpr_status s = count_one(impl->db, &b, active, err);
  if (s != MCPR_OK)
    return s;
  build_total_count(&b, proxy, since_ms);
  return count_one(impl->db, &b, total, err);
}

/* ended_at: the last activity of a closed session (the layout keeps no
 * end time), as the original's sessions_view has it. */
#define SESSION_COLUMNS                                                        \
  "SELECT s.id, s.proxy, s.client_name, s.client_version, " PLATFORM ","        \
  " s.created_at, s.last_active,"                                              \
  " CASE WHEN s.state = 'closed' THEN s.last_active END,"                      \
  " s.request_count, " SESSION_ERRORS ","                                      \
  " s.state = 'active' AND s.last_active > ? FROM sessions s WHERE 1"

static void build_sessions(sqlb *b, const mcpr_session_filter *f, int64_t now_ms) {
  int64_t active_after = now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS;
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, active_after);
  if (f->proxy)
    sb_text(b, " AND s.proxy = ?", f->proxy);
  if (f->client_name)
    sb_text(b, " AND s.client_name = ?", f->client_name);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND s.created_at >= ?", f->since_ms);
  if (f->active_only)
    sb_int(b, " AND s.state = 'active' AND s.last_active > ?", active_after);
  sb_int(b, " ORDER BY s.last_active DESC, s.id LIMIT ?", f->limit);
}

static mcpr_status v05_sessions(void *p, const mcpr_session_filter *f, int64_t now_ms,
                                mcpr_session_rows *out, mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_sessions(&b, f, now_ms);
  return read_sessions(impl->db, &b, out, &cap, err);
}

static void build_session_exact(sqlb *b, const char *id, int64_t now_ms) {
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  sb_text(b, " AND s.id = ?", id);
}

static void build_session_prefix(sqlb *b, const char *prefix, int64_t now_ms, size_t max) {
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  sb_prefix(b, " AND s.id >= ?", " AND s.id < ?", prefix);
  sb_int(b, " ORDER BY s.id LIMIT ?", (int64_t)max);
}

static mcpr_status v05_sessions_by_prefix(void *p, const char *prefix, int64_t now_ms,
                                          size_t max, mcpr_session_rows *out,
                                          mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_session_exact(&b, prefix, now_ms);
  mcpr_status s = read_sessions(impl->db, &b, out, &cap, err);
  if (s != MCPR_OK || out->count > 0)
    return s;
  build_session_prefix(&b, prefix, now_ms, max);
  return read_sessions(impl->db, &b, out, &cap, err);
}

static void build_clients(sqlb *b, const char *proxy, int64_t since_ms) {
  sb_init(b);
  sb_add(b, "SELECT s.client_name, s.client_version, " PLATFORM " AS platform, count(*),"
            " sum(s.request_count), sum(" SESSION_ERRORS "), min(s.created_at),"
            " max(s.last_active) FROM sessions s WHERE 1");
  if (proxy)
    sb_text(b, " AND s.proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND s.created_at >= ?", since_ms);
  sb_add(b, " GROUP BY s.client_name, s.client_version, platform"
            " ORDER BY sum(s.request_count) DESC, count(*) DESC, s.client_name,"
            " s.client_version");
}

static mcpr_status v05_clients(void *p, const char *proxy, int64_t since_ms,
                               mcpr_client_rows *out, mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_clients(&b, proxy, since_ms);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows,
                   out->pool, read_client_row, err);
}

/* ---------- schema ---------- */

/*
 * One snapshot per (proxy, kind), as a list method's result would carry
 * it: {"tools": [every tool's payload]} for kind 'tool', and so
 * on — so schema status and unused tools read it like any tools/list. The
 * layout records no upstream URL ("") and no hash of the whole list
 * (NULL); captured_at is the newest item's. A payload that is not JSON is
 * a null item.
 */
static void build_schema(sqlb *b, const char *proxy, const char *method) {
  sb_init(b);
  sb_add(b, "SELECT proxy, '', " KIND_METHOD ", json_object(" KIND_ARRAY ","
            " json_group_array(CASE WHEN json_valid(payload) THEN json(payload) END)),"
            " max(captured_at), NULL FROM schema_items WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (method)
    sb_text(b, " AND kind = ?", kind_of_method(method));
  sb_add(b, " GROUP BY proxy, kind ORDER BY proxy, 3");
}

static mcpr_status v05_schema(void *p, const char *proxy, const char *method,
                              mcpr_schema_rows *out, mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_schema(&b, proxy, method);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows,
                   out->pool, read_schema_row, err);
}

/* An item first seen (no old hash) is `<kind>_added`, a later payload
 * `<kind>_modified`; the layout never records a removal. */
static void build_changes(sqlb *b, const char *proxy, const char *method, int64_t limit) {
  sb_init(b);
  sb_add(b, "SELECT proxy, '', " KIND_METHOD ", kind || CASE WHEN old_hash IS NULL"
            " THEN '_added' ELSE '_modified' END, item_key, old_hash, new_hash, detected_at"
            " FROM schema_changes WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (method)
    sb_text(b, " AND kind = ?", kind_of_method(method));
  sb_int(b, " ORDER BY detected_at DESC, id DESC LIMIT ?", limit);
}

static mcpr_status v05_schema_changes(void *p, const char *proxy, const char *method,
                                      int64_t limit, mcpr_schema_change_rows *out,
                                      mcpr_error *err) {
  v05_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_changes(&b, proxy, method, limit);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows,
                   out->pool, read_change_row, err);
}

static void build_tool_usage(sqlb *b, const char *names_json, const char *proxy,
                             int64_t since_ms) {
  sb_init(b);
  sb_text(b, "SELECT r.tool, count(*), sum(" STATUS " <> 'ok'), max(r.ts)" JOIN_RESPONSE
             " WHERE r.tool IN (SELECT value FROM json_each(?))", names_json);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND r.ts >= ?", since_ms);
  if (proxy)
    sb_text(b, " AND r.proxy = ?", proxy);
  sb_add(b, " GROUP BY r.tool");
}

typedef struct usage_sink {
  const char *const *names;
  size_t n;
  mcpr__tool_usage *usage;
} usage_sink;

static int match_usage(void *ctx, sqlite3_stmt *st) {
  usage_sink *k = ctx;
  const char *tool = (const char *)sqlite3_column_text(st, 0);
  for (size_t i = 0; tool && i < k->n; i++) {
    if (strcmp(k->names[i], tool) == 0) {
      k->usage[i].calls = sqlite3_column_int64(st, 1);
      k->usage[i].errors = sqlite3_column_int64(st, 2);
      k->usage[i].last_called_at_ms = col_int(st, 3);
      break;
    }
  }
  return 0;
}

static mcpr_status v05_tool_usage(void *p, const char *proxy, int64_t since_ms,
                                  const char *const *names, size_t n, mcpr__tool_usage *usage,
                                  mcpr_error *err) {
  v05_impl *impl = p;
  char *json = names_to_json(names, n);
  if (!json)
    return oom_error(err);
  sqlb b;
  build_tool_usage(&b, json, proxy, since_ms);
  usage_sink k = {names, n, usage};
  mcpr_status s = each_row(impl->db, &b, match_usage, &k, err);
  free(json);
  return s;
}

/* ---------- store info ---------- */

static const char SQL_INFO_REQUESTS[] = "SELECT count(*) FROM requests";
static const char SQL_INFO_SESSIONS[] = "SELECT count(*) FROM sessions";
/* No index on ts: the oldest and newest of each proxy on (proxy, ts). */
static const char SQL_INFO_RANGE[] =
    PROXIES " SELECT min((SELECT min(ts) FROM requests WHERE proxy = p.name)),"
            " max((SELECT max(ts) FROM requests WHERE proxy = p.name))"
            " FROM p WHERE p.name IS NOT NULL";
static const char SQL_INFO_PROXIES[] = PROXIES " SELECT count(name) FROM p";

static mcpr_status v05_store_info(void *p, mcpr_store_info *out, mcpr_error *err) {
  v05_impl *impl = p;
  mcpr_status s = fixed_row(impl->db, SQL_INFO_REQUESTS, &out->total_requests, NULL, err);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_SESSIONS, &out->total_sessions, NULL, err);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_RANGE, &out->oldest_request_ms, &out->newest_request_ms,
                  err);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_PROXIES, &out->proxies, NULL, err);
  if (s != MCPR_OK)
    return s;
  out->schema_version = mcpr__db_schema_version(impl->db, NULL);
  out->db_bytes = file_size(impl->path, "");
  out->wal_bytes = file_size(impl->path, "-wal");
  return MCPR_OK;
}

static mcpr_status v05_vacuum(void *p, const mcpr_vacuum_options *o, mcpr_vacuum_result *out,
                              mcpr_error *err) {
  v05_impl *impl = p;
  (void)o;
  (void)out;
  return mcpr__db_refuse_v05(impl->path, err);
}

/* ---------- plans ---------- */

mcpr_status mcpr__query_v05_plans(mcpr_query *q, mcpr__plan_fn fn, void *ctx,
                                  mcpr_error *err) {
  if (q->backend != &mcpr__query_v05_backend)
    return mcpr_error_set(err, MCPR_EINVAL, "%s is not in the original's 0.5 layout", q->path);
  v05_impl *impl = q->impl;
  sqlite3 *db = impl->db;
  int64_t now = mcpr_now_ms(), hour = now - 3600000, week = now - 7 * 86400000LL;
  int stop = 0;
  mcpr_status s = MCPR_OK;
  sqlb b;
#define PLAN(name)                                                             \
  do {                                                                         \
    if (s == MCPR_OK && !stop)                                                 \
      s = explain(db, &b, "0.5 layout: " name, fn, ctx, &stop, err);           \
  } while (0)

  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.since_ms = hour;
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --since 1h");
  f.proxy = "api";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs NAME --since 1h");
  f.proxy = NULL;
  f.tool = "search";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --tool T");
  f.tool = NULL;
  f.method = "tools/list";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --method M");
  f.method = NULL;
  f.has_status = true;
  f.status = MCPR_REQUEST_ERROR;
  f.error_code = "-32601";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --status error --error-code C");
  f.has_status = false;
  f.error_code = NULL;
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  f.session_prefix = "0198";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --session PREFIX (all time)");
  f.session_prefix = NULL;
  f.after_row_id = 1000;
  build_logs(&b, MCPR__FOLLOW, &f);
  PLAN("logs --follow (poll)");
  f.after_row_id = 0;
  f.up_to_row_id = 1000;
  f.since_ms = hour;
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --follow (initial tail)");
  f.up_to_row_id = 0;
  f.min_latency_us = 500000;
  f.limit = 20;
  build_logs(&b, MCPR__SLOW, &f);
  PLAN("slow --since 1h");
  f.tool = "search";
  build_logs(&b, MCPR__SLOW, &f);
  PLAN("slow --tool T");
  f.tool = NULL;
  sb_init(&b);
  sb_add(&b, SQL_LAST_ROW_ID);
  PLAN("follow start (last row id)");

  mcpr_stats_filter sf = {NULL, hour, 0};
  build_stats(&b, &sf);
  PLAN("status/stats --since 1h");
  sf.proxy = "api";
  build_stats(&b, &sf);
  PLAN("status/stats NAME --since 1h");
  build_active_count(&b, "api", now);
  PLAN("status: active sessions");
  build_total_count(&b, "api", hour);
  PLAN("status: sessions in window");

  mcpr_session_filter sess;
  mcpr_session_filter_init(&sess);
  sess.since_ms = hour;
  build_sessions(&b, &sess, now);
  PLAN("sessions --since 1h");
  sess.proxy = "api";
  sess.active_only = true;
  build_sessions(&b, &sess, now);
  PLAN("sessions NAME --active");
  build_session_exact(&b, "0198abcd", now);
  PLAN("session ID (exact)");
  build_session_prefix(&b, "0198", now, 4);
  PLAN("session PREFIX");
  mcpr_log_filter_init(&f);
  f.session_id = "0198abcd";
  f.limit = INT64_MAX;
  build_logs(&b, MCPR__OLDEST_FIRST, &f);
  PLAN("session ID: its requests");

  build_clients(&b, NULL, week);
  PLAN("clients --since 7d");
  build_schema(&b, "api", NULL);
  PLAN("schema NAME");
  build_schema(&b, NULL, "tools/list");
  PLAN("schema --method M");
  build_changes(&b, "api", NULL, 50);
  PLAN("schema --changes");
  build_tool_usage(&b, "[\"search\",\"fetch\"]", NULL, week);
  PLAN("schema --unused --since 7d");
  build_tool_usage(&b, "[\"search\",\"fetch\"]", "api", week);
  PLAN("schema NAME --unused");

  sb_init(&b);
  sb_add(&b, SQL_INFO_REQUESTS);
  PLAN("store stats: requests");
  sb_init(&b);
  sb_add(&b, SQL_INFO_RANGE);
  PLAN("store stats: oldest/newest");
  sb_init(&b);
  sb_add(&b, SQL_INFO_PROXIES);
  PLAN("store stats: proxies");
#undef PLAN
  return s;
}

const mcpr__query_backend mcpr__query_v05_backend = {
    .name = "sqlite (original 0.5 layout, read-only)",
    .close = v05_close,
    .logs = v05_logs,
    .last_row_id = v05_last_row_id,
    .stats_scan = v05_stats_scan,
    .session_counts = v05_session_counts,
    .sessions = v05_sessions,
    .sessions_by_prefix = v05_sessions_by_prefix,
    .clients = v05_clients,
    .schema = v05_schema,
    .schema_changes = v05_schema_changes,
    .tool_usage = v05_tool_usage,
    .store_info = v05_store_info,
    .vacuum = v05_vacuum,
};
