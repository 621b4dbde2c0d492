/*
 * store_fixtures.h — helpers for the store tests: build store files of old
 * schema versions, read rows back with plain sqlite3 (independent of the
 * library), compare files byte for byte, and build events.
 *
 * Every helper fails the running cmocka test on an unexpected SQLite error,
 * so tests read as a list of facts about the rows.
 */
#ifndef MCPR_STORE_FIXTURES_H
#define MCPR_STORE_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpr/mcpr.h"

/* Fixed rows that sf_build_legacy() puts in every old store. */
#define SF_LEGACY_CREATED_AT "1700000000000"
#define SF_LEGACY_REQUESTS 3
/* Latencies as stored by a pre-v4 store (ms) for request r-1, r-2, r-3. */
#define SF_LEGACY_LATENCY_1 12
#define SF_LEGACY_LATENCY_2 0
#define SF_LEGACY_LATENCY_3 7

/*
 * Create path (must not exist) as a store of schema version v (0..4) with
 * the DDL of mcpr__db_legacy_ddl(v), in rollback-journal mode as the
 * original left it, and fill it with:
 *   requests r-1, r-2, r-3 (latency_ms 12, 0, 7 for v0..v3; latency_us
 *   12000, 0, 7000 for v4), r-2 with status 'error' and error fields;
 *   sessions s-1 (total_calls 3, total_errors 1) and s-2 (ended);
 *   for v >= 2: server_schema rows for tools/list and prompts/list of
 *   http://up, and two schema_changes rows.
 */
void sf_build_legacy(const char *path, int v);

/*
 * The original mcpr's 0.5.x store layout: its DDL exactly as its
 * crates/mcpr-integrations/src/store/schema.rs creates it (tables,
 * indexes, the request_log and sessions_view views), without rows.
 */
extern const char SF_ORIGINAL_V05_DDL[];

/*
 * Create path (must not exist) in that layout, meta.schema_version '1',
 * in WAL mode as the original leaves it (no -wal or -shm once closed), with
 * rows relative to now_ms (see store_fixtures.c for the full list):
 *   sessions sess-a (api, active, claude-ai 0.1, 22 calls), sess-b (api,
 *   closed, Cursor 2.0), sess-c (web, active but idle 20 min, openai-mcp);
 *   proxy api: 21 `search` calls in sess-a in the last 20 min, the i-th
 *   (1..20) answered after i ms — the 7th with an error (-32603 "boom") —
 *   and the 21st never answered; one tools/list answered at once; one
 *   `fetch` in sess-b 100 min ago, answered in 3 ms; proxy web: one
 *   resources/read without a session (its response cannot be joined);
 *   schema items: tools search, fetch, unused and prompt greet of api;
 *   changes: search added then modified, greet added.
 */
void sf_build_original_v05(const char *path, int64_t now_ms);

/* A request row as another program (the original) inserts it into a
 * store: NULL strings and negative bytes are stored as NULL. */
typedef struct sf_request_row {
  char request_id[64];
  int64_t ts;
  const char *proxy, *method, *tool, *status;
  int64_t latency_us, bytes_in, bytes_out;
} sf_request_row;

/* Insert n request rows into the store at path with plain INSERTs in one
 * transaction, as another writer would (above our rollups' watermark);
 * row(ctx, i, r) fills the i-th, r zeroed (status NULL: 'ok'). */
void sf_insert_requests(const char *path, int n, void (*row)(void *ctx, int i, sf_request_row *r),
                        void *ctx);

/* Run sql (may hold several statements) on path; fails the test on error. */
void sf_exec(const char *path, const char *sql);

/* First column of the first row of sql as a new string, NULL for SQL NULL;
 * fails the test when there is no row. */
char *sf_sql_text(const char *path, const char *sql);

/* All rows of sql, columns joined by '|' and rows by '\n' (NULL as "∅"), as
 * a new string. For comparing whole tables before and after. */
char *sf_sql_dump(const char *path, const char *sql);

/* Fail the test unless sf_sql_dump(path, sql) equals want / the first
 * column of the first row is the text want. */
void sf_assert_dump(const char *path, const char *sql, const char *want);
void sf_assert_text(const char *path, const char *sql, const char *want);

/* Table names of the store (sorted, without sqlite_ internals), '\n'-joined. */
char *sf_tables(const char *path);
/* pragma_table_info of table as a dump (cid|name|type|notnull|dflt|pk). */
char *sf_table_info(const char *path, const char *table);

/* Whole file contents; *len receives the size. NULL when it cannot be read. */
unsigned char *sf_read_file(const char *path, size_t *len);
/* Write len bytes to path (create/truncate). */
void sf_write_file(const char *path, const void *data, size_t len);
bool sf_exists(const char *path);

/* A request event with the given id, ts and session (may be NULL): proxy
 * "api", method tools/call, tool "search", latency 1500 µs, status ok,
 * everything optional absent. */
mcpr_store_event sf_request(const char *request_id, int64_t ts_ms, const char *session_id);
mcpr_store_event sf_session(const char *session_id, int64_t started_at_ms,
                            const char *client_name);
mcpr_store_event sf_session_closed(const char *session_id, int64_t ended_at_ms);
mcpr_store_event sf_schema(int64_t ts_ms, const char *proxy, const char *method,
                           const char *payload, const char *hash);

/* Open a store at path with batch_size/flush_interval (0: default);
 * fails the test on error. */
mcpr_store *sf_open(const char *path, size_t batch_size, uint32_t flush_interval_ms);
/* Open a store at path with options o, record sf_record_n(s, "warm", 3)
 * and flush them: a store whose writer has committed once. Fails the test
 * on error. */
mcpr_store *sf_open_warm(const char *path, const mcpr_store_options *o);
/* Record e and assert MCPR_OK. */
void sf_record(mcpr_store *s, mcpr_store_event e);
/* Record n requests "<prefix>-0000", "<prefix>-0001", … (ts 1700000000000
 * + i, proxy "p", tools/call "t", 5 µs, ok), asserting MCPR_OK for each. */
void sf_record_n(mcpr_store *s, const char *prefix, int n);

#endif
