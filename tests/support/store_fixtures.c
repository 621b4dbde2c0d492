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
