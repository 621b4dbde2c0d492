#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/sqlite/db.h"
#include "store_fixtures.h"
#include "testutil.h"

static sqlite3 *open_rw(const char *path, bool create) {
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
    fail_msg("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
  sqlite3_busy_timeout(db, 10000);
  return db;
}

static void exec_db(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    char copy[512];
    snprintf(copy, sizeof copy, "%s", msg ? msg : "?");
    sqlite3_free(msg);
    fail_msg("sql error in '%.200s': %s", sql, copy);
  }
}

void sf_exec(const char *path, const char *sql) {
  sqlite3 *db = open_rw(path, false);
  exec_db(db, sql);
  sqlite3_close(db);
}

const char SF_ORIGINAL_V05_DDL[] =
    "CREATE TABLE IF NOT EXISTS sessions (\n"
    "    id              TEXT PRIMARY KEY,\n"
    "    proxy           TEXT NOT NULL,\n"
    "    state           TEXT NOT NULL CHECK (state IN ('active','closed')),\n"
    "    client_name     TEXT,\n"
    "    client_version  TEXT,\n"
    "    created_at      INTEGER NOT NULL,\n"
    "    last_active     INTEGER NOT NULL,\n"
    "    request_count   INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS requests (\n"
    "    id              INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    ts              INTEGER NOT NULL,\n"
    "    proxy           TEXT NOT NULL,\n"
    "    session_id      TEXT,\n"
    "    request_id      TEXT NOT NULL,\n"
    "    method          TEXT NOT NULL,\n"
    "    tool            TEXT,\n"
    "    resource_uri    TEXT,\n"
    "    prompt_name     TEXT,\n"
    "    bytes_in        INTEGER,\n"
    "    UNIQUE (session_id, request_id)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS responses (\n"
    "    id              INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    ts              INTEGER NOT NULL,\n"
    "    session_id      TEXT,\n"
    "    request_id      TEXT NOT NULL,\n"
    "    status          TEXT NOT NULL CHECK (status IN ('ok','error')),\n"
    "    error_code      INTEGER,\n"
    "    error_msg       TEXT,\n"
    "    bytes_out       INTEGER,\n"
    "    UNIQUE (session_id, request_id)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS schema_items (\n"
    "    id              INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    proxy           TEXT NOT NULL,\n"
    "    kind            TEXT NOT NULL CHECK (kind IN ('tool','prompt','resource','resource_template')),\n"
    "    item_key        TEXT NOT NULL,\n"
    "    payload         TEXT NOT NULL,\n"
    "    payload_hash    TEXT NOT NULL,\n"
    "    captured_at     INTEGER NOT NULL,\n"
    "    UNIQUE (proxy, kind, item_key)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS schema_changes (\n"
    "    id              INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    proxy           TEXT NOT NULL,\n"
    "    kind            TEXT NOT NULL,\n"
    "    item_key        TEXT NOT NULL,\n"
    "    reason          TEXT NOT NULL CHECK (reason IN ('added','observed')),\n"
    "    old_hash        TEXT,\n"
    "    new_hash        TEXT NOT NULL,\n"
    "    detected_at     INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS meta (\n"
    "    key   TEXT PRIMARY KEY,\n"
    "    value TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS idx_requests_proxy_ts   ON requests (proxy, ts);\n"
    "CREATE INDEX IF NOT EXISTS idx_requests_session    ON requests (session_id) WHERE session_id IS NOT NULL;\n"
    "CREATE INDEX IF NOT EXISTS idx_requests_tool       ON requests (tool, ts) WHERE tool IS NOT NULL;\n"
    "CREATE INDEX IF NOT EXISTS idx_requests_method     ON requests (method, ts);\n"
    "CREATE INDEX IF NOT EXISTS idx_responses_join      ON responses (session_id, request_id);\n"
    "CREATE INDEX IF NOT EXISTS idx_responses_status    ON responses (status, ts);\n"
    "CREATE INDEX IF NOT EXISTS idx_sessions_proxy      ON sessions (proxy, last_active);\n"
    "CREATE INDEX IF NOT EXISTS idx_sessions_active     ON sessions (proxy, last_active) WHERE state = 'active';\n"
    "CREATE INDEX IF NOT EXISTS idx_schema_items_proxy  ON schema_items (proxy, kind);\n"
    "CREATE INDEX IF NOT EXISTS idx_schema_changes_proxy ON schema_changes (proxy, detected_at);\n"
    "CREATE VIEW IF NOT EXISTS request_log AS\n"
    "SELECT\n"
    "    r.id,\n"
    "    r.ts,\n"
    "    r.proxy,\n"
    "    r.session_id,\n"
    "    r.request_id,\n"
    "    r.method,\n"
    "    r.tool,\n"
    "    r.resource_uri,\n"
    "    r.prompt_name,\n"
    "    r.bytes_in,\n"
    "    (res.ts - r.ts) * 1000                AS latency_us,\n"
    "    COALESCE(res.status, 'pending')       AS status,\n"
    "    CAST(res.error_code AS TEXT)          AS error_code,\n"
    "    res.error_msg,\n"
    "    res.bytes_out\n"
    "FROM requests r\n"
    "LEFT JOIN responses res\n"
    "    ON r.session_id = res.session_id\n"
    "   AND r.request_id = res.request_id;\n"
    "CREATE VIEW IF NOT EXISTS sessions_view AS\n"
    "SELECT\n"
    "    s.id            AS session_id,\n"
    "    s.proxy,\n"
    "    s.client_name,\n"
    "    s.client_version,\n"
    "    CASE\n"
    "        WHEN s.client_name IS NULL                         THEN NULL\n"
    "        WHEN s.client_name LIKE 'claude%'                  THEN 'claude'\n"
    "        WHEN s.client_name LIKE 'cursor%'                  THEN 'cursor'\n"
    "        WHEN s.client_name LIKE 'chatgpt%'                 THEN 'chatgpt'\n"
    "        WHEN s.client_name LIKE 'vscode%'                  THEN 'vscode'\n"
    "        WHEN s.client_name LIKE 'visual-studio-code%'      THEN 'vscode'\n"
    "        ELSE 'unknown'\n"
    "    END                                                 AS client_platform,\n"
    "    s.created_at    AS started_at,\n"
    "    s.last_active   AS last_seen_at,\n"
    "    CASE WHEN s.state = 'closed' THEN s.last_active ELSE NULL END AS ended_at,\n"
    "    s.request_count AS total_calls,\n"
    "    (SELECT COUNT(*) FROM responses res\n"
    "     WHERE res.session_id = s.id AND res.status = 'error') AS total_errors,\n"
    "    s.state\n"
    "FROM sessions s;\n";

void sf_build_original_v05(const char *path, int64_t now_ms) {
  assert_false(sf_exists(path));
  sqlite3 *db = open_rw(path, true);
  exec_db(db, "PRAGMA journal_mode=WAL");
  exec_db(db, "BEGIN");
  exec_db(db, SF_ORIGINAL_V05_DDL);
  exec_db(db, "INSERT INTO meta (key, value) VALUES ('schema_version', '1'),"
              " ('created_at', '1700000000000'), ('mcpr_version', '0.5.3')");
  const int64_t min = 60000;
  char sql[4096];
  snprintf(sql, sizeof sql,
           "INSERT INTO sessions (id, proxy, state, client_name, client_version, created_at,"
           " last_active, request_count) VALUES"
           " ('sess-a', 'api', 'active', 'claude-ai', '0.1', %lld, %lld, 22),"
           " ('sess-b', 'api', 'closed', 'Cursor', '2.0', %lld, %lld, 1),"
           " ('sess-c', 'web', 'active', 'openai-mcp', '1.0', %lld, %lld, 0);",
           (long long)(now_ms - 30 * min), (long long)(now_ms - 1 * min),
           (long long)(now_ms - 120 * min), (long long)(now_ms - 90 * min),
           (long long)(now_ms - 3 * 1440 * min), (long long)(now_ms - 20 * min));
  exec_db(db, sql);
  for (int i = 1; i <= 21; i++) {
    int64_t ts = now_ms - 20 * min + i * 1000;
    snprintf(sql, sizeof sql,
             "INSERT INTO requests (ts, proxy, session_id, request_id, method, tool)"
             " VALUES (%lld, 'api', 'sess-a', '%d', 'tools/call', 'search');",
             (long long)ts, i);
    exec_db(db, sql);
    if (i == 21)
      continue; /* never answered */
    snprintf(sql, sizeof sql,
             "INSERT INTO responses (ts, session_id, request_id, status, error_code, error_msg)"
             " VALUES (%lld, 'sess-a', '%d', '%s', %s, %s);",
             (long long)(ts + i), i, i == 7 ? "error" : "ok", i == 7 ? "-32603" : "NULL",
             i == 7 ? "'boom'" : "NULL");
    exec_db(db, sql);
  }
  snprintf(sql, sizeof sql,
           "INSERT INTO requests (ts, proxy, session_id, request_id, method, tool, resource_uri)"
           " VALUES (%lld, 'api', 'sess-a', '22', 'tools/list', NULL, NULL),"
           " (%lld, 'api', 'sess-b', '1', 'tools/call', 'fetch', NULL),"
           " (%lld, 'web', NULL, '1', 'resources/read', NULL, 'file:///x');"
           "INSERT INTO responses (ts, session_id, request_id, status) VALUES"
           " (%lld, 'sess-a', '22', 'ok'), (%lld, 'sess-b', '1', 'ok'), (%lld, NULL, '1', 'ok');",
           (long long)(now_ms - 2 * min), (long long)(now_ms - 100 * min),
           (long long)(now_ms - 10 * min), (long long)(now_ms - 2 * min),
           (long long)(now_ms - 100 * min + 3), (long long)(now_ms - 10 * min + 5));
  exec_db(db, sql);
  snprintf(sql, sizeof sql,
           "INSERT INTO schema_items (proxy, kind, item_key, payload, payload_hash, captured_at)"
           " VALUES"
           " ('api', 'tool', 'search', '{\"name\":\"search\",\"description\":\"Search the docs\"}',"
           "  'h-search-2', %lld),"
           " ('api', 'tool', 'fetch', '{\"name\":\"fetch\",\"description\":\"Fetch a page\"}',"
           "  'h-fetch', %lld),"
           " ('api', 'tool', 'unused', '{\"name\":\"unused\",\"description\":\"Nobody calls it\"}',"
           "  'h-unused', %lld),"
           " ('api', 'prompt', 'greet', '{\"name\":\"greet\"}', 'h-greet', %lld);"
           "INSERT INTO schema_changes (proxy, kind, item_key, reason, old_hash, new_hash,"
           " detected_at) VALUES"
           " ('api', 'tool', 'search', 'added', NULL, 'h-search-1', %lld),"
           " ('api', 'prompt', 'greet', 'added', NULL, 'h-greet', %lld),"
           " ('api', 'tool', 'search', 'observed', 'h-search-1', 'h-search-2', %lld);",
           (long long)(now_ms - 50 * min), (long long)(now_ms - 60 * min),
           (long long)(now_ms - 60 * min), (long long)(now_ms - 60 * min),
           (long long)(now_ms - 60 * min), (long long)(now_ms - 59 * min),
           (long long)(now_ms - 50 * min));
  exec_db(db, sql);
  exec_db(db, "COMMIT");
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

void sf_build_legacy(const char *path, int v) {
  const char *ddl = mcpr__db_legacy_ddl(v);
  assert_non_null(ddl);
  assert_false(sf_exists(path));
  sqlite3 *db = open_rw(path, true);
  exec_db(db, "BEGIN");
  exec_db(db, ddl);
  int mult = v >= 4 ? 1000 : 1;
  const char *lat = v >= 4 ? "latency_us" : "latency_ms";
  char sql[2048];
  snprintf(sql, sizeof sql,
           "INSERT INTO requests (request_id, ts, proxy, session_id, method, tool, %s,"
           " status, error_code, error_msg, bytes_in, bytes_out) VALUES"
           " ('r-1', 1000, 'api', 's-1', 'tools/call', 'search', %d, 'ok', NULL, NULL, 10, 20),"
           " ('r-2', 2000, 'api', 's-1', 'tools/call', 'fetch', %d, 'error', '-32601',"
           "  'no such tool', NULL, NULL),"
           " ('r-3', 3000, 'web', NULL, 'resources/read', NULL, %d, 'ok', NULL, NULL, 5, 6);"
           "INSERT INTO sessions (session_id, proxy, started_at, last_seen_at, ended_at,"
           " client_name, client_version, client_platform, total_calls, total_errors) VALUES"
           " ('s-1', 'api', 900, 2000, NULL, 'claude-ai', '0.1', 'claude', 3, 1),"
           " ('s-2', 'web', 500, 600, 700, 'Cursor', '2.0', 'cursor', 0, 0);",
           lat, SF_LEGACY_LATENCY_1 * mult, SF_LEGACY_LATENCY_2 * mult,
           SF_LEGACY_LATENCY_3 * mult);
  exec_db(db, sql);
  if (v >= 2) {
    exec_db(db, "INSERT INTO server_schema (upstream_url, method, payload, captured_at,"
                " schema_hash) VALUES"
                " ('http://up', 'tools/list', '{\"tools\":[{\"name\":\"search\"}]}', 1100,"
                "  'hash-tools'),"
                " ('http://up', 'prompts/list', '{\"prompts\":[]}', 1200, 'hash-prompts');"
                "INSERT INTO schema_changes (upstream_url, method, change_type, item_name,"
                " old_hash, new_hash, detected_at) VALUES"
                " ('http://up', 'tools/list', 'initial', NULL, NULL, 'hash-tools', 1100),"
                " ('http://up', 'prompts/list', 'initial', NULL, NULL, 'hash-prompts', 1200);");
  }
  exec_db(db, "COMMIT");
  sqlite3_close(db);
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("sql error in '%s': %s", sql, sqlite3_errmsg(db));
  return st;
}

static sqlite3 *open_ro(const char *path) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("cannot open %s read-only", path);
  sqlite3_busy_timeout(db, 10000);
  return db;
}

char *sf_sql_text(const char *path, const char *sql) {
  sqlite3 *db = open_ro(path);
  sqlite3_stmt *st = prepare(db, sql);
  if (sqlite3_step(st) != SQLITE_ROW)
    fail_msg("no row from '%s': %s", sql, sqlite3_errmsg(db));
  const char *v = (const char *)sqlite3_column_text(st, 0);
  char *out = v ? strdup(v) : NULL;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

/* A growing string for dumps (tests only: small tables). */
typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
  size_t k = strlen(s);
  if (b->n + k + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + k + 1)
      cap *= 2;
    b->p = realloc(b->p, cap);
    assert_non_null(b->p);
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, k + 1);
  b->n += k;
}

static char *dump_db(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = prepare(db, sql);
  sbuf b = {0};
  sb_add(&b, "");
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
      const char *v = (const char *)sqlite3_column_text(st, i);
      sb_add(&b, v ? v : "\xE2\x88\x85");
      sb_add(&b, i + 1 < n ? "|" : "\n");
    }
  }
  if (rc != SQLITE_DONE)
    fail_msg("error reading '%s': %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return b.p;
}

char *sf_sql_dump(const char *path, const char *sql) {
  sqlite3 *db = open_ro(path);
  char *out = dump_db(db, sql);
  sqlite3_close(db);
  return out;
}

void sf_assert_dump(const char *path, const char *sql, const char *want) {
  char *got = sf_sql_dump(path, sql);
  if (strcmp(got, want) != 0)
    fail_msg("%s\n--- got ---\n%s--- want ---\n%s", sql, got, want);
  free(got);
}

void sf_assert_text(const char *path, const char *sql, const char *want) {
  char *got = sf_sql_text(path, sql);
  if (!got || strcmp(got, want) != 0)
    fail_msg("%s: got '%s', want '%s'", sql, got ? got : "(NULL)", want);
  free(got);
}

char *sf_tables(const char *path) {
  return sf_sql_dump(path, "SELECT name FROM sqlite_master WHERE type='table'"
                           " AND name NOT LIKE 'sqlite_%' ORDER BY name");
}

char *sf_table_info(const char *path, const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('%s')"
           " ORDER BY cid",
           table);
  return sf_sql_dump(path, sql);
}

unsigned char *sf_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    fclose(f);
    return NULL;
  }
  size_t n = (size_t)sb.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  assert_non_null(buf);
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  assert_int_equal(got, n);
  *len = n;
  return buf;
}

void sf_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (len)
    assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

bool sf_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

mcpr_store_event sf_request(const char *request_id, int64_t ts_ms, const char *session_id) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){.request_id = request_id,
                                     .ts_ms = ts_ms,
                                     .proxy = "api",
                                     .session_id = session_id,
                                     .method = "tools/call",
                                     .tool = "search",
                                     .latency_us = 1500,
                                     .status = MCPR_REQUEST_OK,
                                     .bytes_in = -1,
                                     .bytes_out = -1};
  return e;
}

mcpr_store_event sf_session(const char *session_id, int64_t started_at_ms,
                            const char *client_name) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION};
  e.u.session = (mcpr_session_event){.session_id = session_id,
                                     .proxy = "api",
                                     .started_at_ms = started_at_ms,
                                     .client_name = client_name,
                                     .client_version = "1.0"};
  return e;
}

mcpr_store_event sf_session_closed(const char *session_id, int64_t ended_at_ms) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
  e.u.session_closed = (mcpr_session_closed_event){session_id, ended_at_ms};
  return e;
}

mcpr_store_event sf_schema(int64_t ts_ms, const char *proxy, const char *method,
                           const char *payload, const char *hash) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
  e.u.schema_version = (mcpr_schema_version_event){.ts_ms = ts_ms,
                                                   .proxy = proxy,
                                                   .upstream_url = "http://up",
                                                   .method = method,
                                                   .payload = payload,
                                                   .content_hash = hash};
  return e;
}

mcpr_store *sf_open(const char *path, size_t batch_size, uint32_t flush_interval_ms) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  if (batch_size)
    o.batch_size = batch_size;
  if (flush_interval_ms)
    o.flush_interval_ms = flush_interval_ms;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  mcpr_status st = mcpr_store_open(&s, path, &o, &err);
  if (st != MCPR_OK)
    fail_msg("mcpr_store_open(%s): %s: %s", path, mcpr_status_name(st), err.message);
  return s;
}

void sf_record(mcpr_store *s, mcpr_store_event e) {
  mcpr_status st = mcpr_store_record(s, &e);
  if (st != MCPR_OK)
    fail_msg("mcpr_store_record: %s", mcpr_status_name(st));
}

void sf_record_n(mcpr_store *s, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1700000000000 + i,
                                       .proxy = "p", .method = "tools/call", .tool = "t",
                                       .latency_us = 5, .status = MCPR_REQUEST_OK,
                                       .bytes_in = -1, .bytes_out = -1};
    assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
  }
}

mcpr_store *sf_open_warm(const char *path, const mcpr_store_options *o) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, o, &err), MCPR_OK);
  sf_record_n(s, "warm", 3);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  return s;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

static void bind_count_or_null(sqlite3_stmt *st, int i, int64_t v) {
  if (v >= 0)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

void sf_insert_requests(const char *path, int n, void (*row)(void *ctx, int i, sf_request_row *r),
                        void *ctx) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "INSERT INTO requests (request_id, ts, proxy, method,"
                                      " tool, latency_us, status, bytes_in, bytes_out)"
                                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                      -1, &st, NULL),
                   SQLITE_OK);
  for (int i = 0; i < n; i++) {
    sf_request_row r;
    memset(&r, 0, sizeof r);
    row(ctx, i, &r);
    sqlite3_bind_text(st, 1, r.request_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, r.ts);
    bind_text_or_null(st, 3, r.proxy);
    bind_text_or_null(st, 4, r.method);
    bind_text_or_null(st, 5, r.tool);
    sqlite3_bind_int64(st, 6, r.latency_us);
    sqlite3_bind_text(st, 7, r.status ? r.status : "ok", -1, SQLITE_STATIC);
    bind_count_or_null(st, 8, r.bytes_in);
    bind_count_or_null(st, 9, r.bytes_out);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}
