/*
 * rollup.c — maintaining the request rollups (see rollup.h for the design).
 *
 * A catch-up aggregates in C first: rows are grouped in an open-addressing
 * table by (hour, proxy, is_tool, name), so each group costs one upsert
 * however many of its rows the range holds.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/rollup.h"
#include "core/sketch.h"

const char MCPR__ROLLUP_DDL[] =
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_hour ("
    " hour INTEGER NOT NULL, proxy TEXT NOT NULL, is_tool INTEGER NOT NULL,"
    " name TEXT NOT NULL, calls INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " sum_us INTEGER NOT NULL, min_us INTEGER NOT NULL, max_us INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
    " sketch BLOB NOT NULL,"
    " PRIMARY KEY (hour, proxy, is_tool, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_state ("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO mcpr_rollup_state VALUES ('watermark', 0);"
    /* The daily level: built once from the hours (a store whose hourly
     * rollups predate it), then kept by every catch-up and forget. */
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_day ("
    " day INTEGER NOT NULL, proxy TEXT NOT NULL, is_tool INTEGER NOT NULL,"
    " name TEXT NOT NULL, calls INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " sum_us INTEGER NOT NULL, min_us INTEGER NOT NULL, max_us INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
    " sketch BLOB NOT NULL,"
    " PRIMARY KEY (day, proxy, is_tool, name)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO mcpr_rollup_state VALUES ('day_level', 0);"
    "DELETE FROM mcpr_rollup_day"
    " WHERE (SELECT value FROM mcpr_rollup_state WHERE key = 'day_level') = 0;"
    "INSERT INTO mcpr_rollup_day (day, proxy, is_tool, name, calls, errors, sum_us, min_us,"
    " max_us, bytes_in, bytes_out, last_ts, sketch)"
    " SELECT " MCPR__ROLLUP_DAY_OF("hour") ", proxy, is_tool, name, calls, errors, sum_us,"
    " min_us, max_us, bytes_in, bytes_out, last_ts, sketch FROM mcpr_rollup_hour"
    " WHERE (SELECT value FROM mcpr_rollup_state WHERE key = 'day_level') = 0"
    " ORDER BY hour" MCPR__ROLLUP_DAY_UPSERT ";"
    "UPDATE mcpr_rollup_state SET value = 1 WHERE key = 'day_level';";

enum {
  ST_WATERMARK,
  ST_MAX_ID,
  ST_ROWS,
  ST_UPSERT,
  ST_UPSERT_DAY,
  ST_SET_WATERMARK,
  ST_WRITER_COUNT, /* the writer's; those below are prepared when first used */
  ST_HOUR_ROWS = ST_WRITER_COUNT,
  ST_FORGET,
  ST_FORGET_DAY,
  ST_DAY_FROM_HOURS,
  ST_COUNT
};

static const char *const SQL[ST_COUNT] = {
    [ST_WATERMARK] = "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'",
    [ST_MAX_ID] = "SELECT coalesce(max(id), 0) FROM requests",
    [ST_ROWS] = "SELECT ts, proxy, tool, method, latency_us, status <> 'ok', bytes_in,"
                " bytes_out FROM requests WHERE id > ?1 AND id <= ?2",
    [ST_UPSERT] =
        "INSERT INTO mcpr_rollup_hour (hour, proxy, is_tool, name, calls, errors, sum_us,"
        " min_us, max_us, bytes_in, bytes_out, last_ts, sketch)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        " ON CONFLICT (hour, proxy, is_tool, name) DO UPDATE SET"
        " calls = calls + excluded.calls, errors = errors + excluded.errors,"
        " sum_us = sum_us + excluded.sum_us, min_us = min(min_us, excluded.min_us),"
        " max_us = max(max_us, excluded.max_us), bytes_in = bytes_in + excluded.bytes_in,"
        " bytes_out = bytes_out + excluded.bytes_out,"
        " last_ts = max(last_ts, excluded.last_ts),"
        " sketch = mcpr_sketch_merge(sketch, excluded.sketch)",
    [ST_UPSERT_DAY] =
        "INSERT INTO mcpr_rollup_day (day, proxy, is_tool, name, calls, errors, sum_us,"
        " min_us, max_us, bytes_in, bytes_out, last_ts, sketch)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        MCPR__ROLLUP_DAY_UPSERT,
    [ST_SET_WATERMARK] = "UPDATE mcpr_rollup_state SET value = ?1 WHERE key = 'watermark'",
    /* The rows of one hour up to the watermark (?4 NULL: every proxy). */
    [ST_HOUR_ROWS] = "SELECT ts, proxy, tool, method, latency_us, status <> 'ok', bytes_in,"
                     " bytes_out FROM requests WHERE ts >= ?1 AND ts < ?2 AND id <= ?3"
                     " AND (?4 IS NULL OR proxy = ?4)",
    [ST_FORGET] = "DELETE FROM mcpr_rollup_hour WHERE hour < ?1 AND hour >= ?2"
                  " AND (?3 IS NULL OR proxy = ?3)",
    [ST_FORGET_DAY] = "DELETE FROM mcpr_rollup_day WHERE day < ?1 AND day >= ?2"
                      " AND (?3 IS NULL OR proxy = ?3)",
    /* The day the cutoff falls in, again from its hours. */
    [ST_DAY_FROM_HOURS] =
        "INSERT INTO mcpr_rollup_day (day, proxy, is_tool, name, calls, errors, sum_us,"
        " min_us, max_us, bytes_in, bytes_out, last_ts, sketch)"
        " SELECT " MCPR__ROLLUP_DAY_OF("hour") ", proxy, is_tool, name, calls, errors, sum_us,"
        " min_us, max_us, bytes_in, bytes_out, last_ts, sketch FROM mcpr_rollup_hour"
        " WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR proxy = ?3) ORDER BY hour"
        MCPR__ROLLUP_DAY_UPSERT,
};

typedef struct group {
  int64_t hour;
  char *proxy, *name;
  int is_tool;
  uint64_t hash;
  int64_t calls, errors, sum_us, min_us, max_us, bytes_in, bytes_out, last_ts;
  mcpr__sketch sketch;
} group;

struct mcpr__rollup {
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
  group *groups;
  size_t ngroups, cap;
  size_t *slots; /* index + 1, 0 empty */
  size_t nslots;
  bool fed;         /* the groups are being fed the batch's rows (see rollup.h) */
  int64_t fed_from; /* the watermark when feeding began */
};

/* ---------- mcpr_sketch_merge(a, b) ---------- */

static void sketch_merge_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  /* The common case: two good sketches, merged as they are stored. */
  const void *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
  unsigned char *merged = NULL;
  size_t merged_len = 0;
  int mrc = a && b ? mcpr__sketch_merge_encoded(a, (size_t)sqlite3_value_bytes(argv[0]), b,
                                                (size_t)sqlite3_value_bytes(argv[1]), &merged,
                                                &merged_len)
                   : -1;
  if (mrc == 0) {
    sqlite3_result_blob(ctx, merged, (int)merged_len, free);
    return;
  }
  if (mrc == -2) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  mcpr__sketch s = {0};
  int ok = 0;
  for (int i = 0; i < 2; i++) {
    const void *p = sqlite3_value_blob(argv[i]);
    int n = sqlite3_value_bytes(argv[i]);
    int rc = p ? mcpr__sketch_decode_add(&s, p, (size_t)n) : -1;
    if (rc == -2) {
      mcpr__sketch_release(&s);
      sqlite3_result_error_nomem(ctx);
      return;
    }
    ok += rc == 0;
  }
  unsigned char *out = NULL;
  size_t len = 0;
  if (!ok) {
    /* Neither side is a sketch: keep the new one as given. */
    sqlite3_result_value(ctx, argv[1]);
  } else if (mcpr__sketch_encode(&s, &out, &len)) {
    sqlite3_result_blob(ctx, out, (int)len, free);
  } else {
    sqlite3_result_error_nomem(ctx);
  }
  mcpr__sketch_release(&s);
}

int mcpr__rollup_register(sqlite3 *db) {
  return sqlite3_create_function_v2(db, "mcpr_sketch_merge", 2,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                    NULL, sketch_merge_fn, NULL, NULL, NULL);
}

/* ---------- statements ---------- */

void mcpr__rollup_free(mcpr__rollup *r) {
  if (!r)
    return;
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(r->st[i]);
  free(r->groups);
  free(r->slots);
  free(r);
}

mcpr__rollup *mcpr__rollup_new(sqlite3 *db, int *rc) {
  mcpr__rollup *r = calloc(1, sizeof *r);
  *rc = SQLITE_NOMEM;
  if (!r)
    return NULL;
  r->db = db;
  for (int i = 0; i < ST_WRITER_COUNT; i++) {
    *rc = sqlite3_prepare_v3(db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL);
    if (*rc != SQLITE_OK) {
      mcpr__rollup_free(r);
      return NULL;
    }
  }
  return r;
}

int64_t mcpr__rollup_watermark(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int64_t w = -1;
  if (sqlite3_prepare_v2(db, SQL[ST_WATERMARK], -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    w = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return w;
}

/* ---------- grouping ---------- */

static uint64_t hash_key(int64_t hour, const char *proxy, int is_tool, const char *name) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)hour ^ ((uint64_t)is_tool << 63);
  for (const char *p = proxy; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (const char *p = name; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

static void groups_clear(mcpr__rollup *r) {
  for (size_t i = 0; i < r->ngroups; i++) {
    free(r->groups[i].proxy);
    free(r->groups[i].name);
    mcpr__sketch_release(&r->groups[i].sketch);
  }
  r->ngroups = 0;
  if (r->slots)
    memset(r->slots, 0, r->nslots * sizeof *r->slots);
}

static int grow_slots(mcpr__rollup *r) {
  size_t n = r->nslots ? r->nslots * 2 : 256;
  size_t *s = calloc(n, sizeof *s);
  if (!s)
    return -1;
  for (size_t i = 0; i < r->ngroups; i++) {
    size_t j = r->groups[i].hash & (n - 1);
    while (s[j])
      j = (j + 1) & (n - 1);
    s[j] = i + 1;
  }
  free(r->slots);
  r->slots = s;
  r->nslots = n;
  return 0;
}

static group *find_group(mcpr__rollup *r, int64_t hour, const char *proxy, int is_tool,
                         const char *name) {
  if ((r->ngroups + 1) * 2 > r->nslots && grow_slots(r) != 0)
    return NULL;
  uint64_t h = hash_key(hour, proxy, is_tool, name);
  size_t j = h & (r->nslots - 1);
  while (r->slots[j]) {
    group *g = &r->groups[r->slots[j] - 1];
    if (g->hash == h && g->hour == hour && g->is_tool == is_tool && !strcmp(g->proxy, proxy) &&
        !strcmp(g->name, name))
      return g;
    j = (j + 1) & (r->nslots - 1);
  }
  if (r->ngroups == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 64;
    group *ng = realloc(r->groups, nc * sizeof *ng);
    if (!ng)
      return NULL;
    r->groups = ng;
    r->cap = nc;
  }
  group *g = &r->groups[r->ngroups];
  memset(g, 0, sizeof *g);
  g->proxy = strdup(proxy);
  g->name = strdup(name);
  if (!g->proxy || !g->name) {
    free(g->proxy);
    free(g->name);
    return NULL;
  }
  g->hour = hour;
  g->is_tool = is_tool;
  g->hash = h;
  g->min_us = INT64_MAX;
  g->max_us = INT64_MIN;
  g->last_ts = INT64_MIN;
  r->ngroups++;
  r->slots[j] = r->ngroups;
  return g;
}

static void add_sat(int64_t *sum, int64_t v) {
  if (__builtin_add_overflow(*sum, v, sum))
    *sum = v > 0 ? INT64_MAX : INT64_MIN;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int step_one_int(sqlite3_stmt *st, int64_t *out) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_DONE;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT; /* the state row is created with the tables */
  }
  sqlite3_reset(st);
  return rc;
}

/* One row into its group; bytes_in/bytes_out < 0: NULL. False: out of
 * memory. */
static bool add_row(mcpr__rollup *r, const mcpr__rollup_row *row) {
  const char *tool = row->tool, *method = row->method;
  int64_t lat = row->latency_us;
  group *g = find_group(r, floor_div(row->ts, MCPR__ROLLUP_HOUR_MS), row->proxy ? row->proxy : "",
                        tool != NULL, tool ? tool : (method ? method : ""));
  if (!g || !mcpr__sketch_add(&g->sketch, lat, 1))
    return false;
  g->calls++;
  g->errors += row->error;
  add_sat(&g->sum_us, lat);
  if (lat < g->min_us)
    g->min_us = lat;
  if (lat > g->max_us)
    g->max_us = lat;
  if (row->bytes_in >= 0)
    add_sat(&g->bytes_in, row->bytes_in);
  if (row->bytes_out >= 0)
    add_sat(&g->bytes_out, row->bytes_out);
  if (row->ts > g->last_ts)
    g->last_ts = row->ts;
  return true;
}

static int64_t column_opt_int(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

/* Group the rows st (bound) returns. */
static int aggregate(mcpr__rollup *r, sqlite3_stmt *st, int64_t *rolled) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    mcpr__rollup_row row = {
        .ts = sqlite3_column_int64(st, 0),
        .proxy = (const char *)sqlite3_column_text(st, 1),
        .tool = (const char *)sqlite3_column_text(st, 2),
        .method = (const char *)sqlite3_column_text(st, 3),
        .latency_us = sqlite3_column_int64(st, 4),
        .error = sqlite3_column_int(st, 5) != 0,
        .bytes_in = column_opt_int(st, 6),
        .bytes_out = column_opt_int(st, 7),
    };
    if (!add_row(r, &row)) {
      rc = SQLITE_NOMEM;
      break;
    }
    (*rolled)++;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? SQLITE_NOMEM : rc;
}

/* One group's figures into st (?1 its hour or its day, then the rest in
 * the tables' column order); the step's code. */
static int upsert_one(sqlite3_stmt *st, int64_t at, const group *g, const unsigned char *blob,
                      size_t len) {
  sqlite3_bind_int64(st, 1, at);
  sqlite3_bind_text(st, 2, g->proxy, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, g->is_tool);
  sqlite3_bind_text(st, 4, g->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, g->calls);
  sqlite3_bind_int64(st, 6, g->errors);
  sqlite3_bind_int64(st, 7, g->sum_us);
  sqlite3_bind_int64(st, 8, g->min_us);
  sqlite3_bind_int64(st, 9, g->max_us);
  sqlite3_bind_int64(st, 10, g->bytes_in);
  sqlite3_bind_int64(st, 11, g->bytes_out);
  sqlite3_bind_int64(st, 12, g->last_ts);
  sqlite3_bind_blob(st, 13, blob, (int)len, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* Every group into its hour, and the same into its day. */
static int upsert_groups(mcpr__rollup *r) {
  int rc = SQLITE_DONE;
  for (size_t i = 0; i < r->ngroups && rc == SQLITE_DONE; i++) {
    group *g = &r->groups[i];
    unsigned char *blob = NULL;
    size_t len = 0;
    if (!mcpr__sketch_encode(&g->sketch, &blob, &len))
      return SQLITE_NOMEM;
    rc = upsert_one(r->st[ST_UPSERT], g->hour, g, blob, len);
    if (rc == SQLITE_DONE)
      rc = upsert_one(r->st[ST_UPSERT_DAY], floor_div(g->hour, 24), g, blob, len);
    free(blob);
  }
  return rc;
}

/* Upsert the groups and move the watermark to hi; the groups are cleared
 * whatever happens. */
static int flush_groups(mcpr__rollup *r, int64_t hi) {
  int rc = upsert_groups(r);
  groups_clear(r);
  if (rc == SQLITE_DONE) {
    sqlite3_stmt *st = r->st[ST_SET_WATERMARK];
    sqlite3_bind_int64(st, 1, hi);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
  }
  return rc;
}

/* ---------- fed by the writer ---------- */

int mcpr__rollup_feed_begin(mcpr__rollup *r, int64_t top) {
  groups_clear(r);
  int rc = step_one_int(r->st[ST_WATERMARK], &r->fed_from);
  /* At or above the last id (retention may have deleted the newest rows):
   * the ids this batch gets are all above it (AUTOINCREMENT). */
  r->fed = rc == SQLITE_DONE && r->fed_from >= top;
  return rc;
}

void mcpr__rollup_feed(mcpr__rollup *r, const mcpr__rollup_row *row) {
  if (r->fed && !add_row(r, row)) {
    groups_clear(r);
    r->fed = false; /* the catch-up reads the rows instead */
  }
}

int mcpr__rollup_feed_end(mcpr__rollup *r, int64_t max_rows, int64_t *left) {
  if (!r->fed)
    return mcpr__rollup_catch_up(r, max_rows, true, NULL, left);
  r->fed = false;
  int64_t top = 0;
  int rc = step_one_int(r->st[ST_MAX_ID], &top);
  if (rc == SQLITE_DONE)
    rc = flush_groups(r, top > r->fed_from ? top : r->fed_from);
  else
    groups_clear(r);
  if (left)
    *left = 0;
  return rc;
}

void mcpr__rollup_feed_drop(mcpr__rollup *r) {
  groups_clear(r);
  r->fed = false;
}

int mcpr__rollup_catch_up(mcpr__rollup *r, int64_t max_rows, bool all_or_nothing,
                          int64_t *rolled, int64_t *left) {
  int64_t w = 0, top = 0, n = 0;
  int rc = step_one_int(r->st[ST_WATERMARK], &w);
  if (rc == SQLITE_DONE)
    rc = step_one_int(r->st[ST_MAX_ID], &top);
  if (rc != SQLITE_DONE)
    return rc;
  int64_t hi = top;
  if (top > w && top - w > max_rows) {
    if (all_or_nothing)
      hi = w;
    else
      hi = w + max_rows;
  }
  if (hi > w) {
    sqlite3_bind_int64(r->st[ST_ROWS], 1, w);
    sqlite3_bind_int64(r->st[ST_ROWS], 2, hi);
    rc = aggregate(r, r->st[ST_ROWS], &n);
    if (rc == SQLITE_DONE)
      rc = flush_groups(r, hi);
    else
      groups_clear(r);
  }
  if (rolled)
    *rolled = n;
  if (left)
    *left = top > hi && top > w ? top - (hi > w ? hi : w) : 0;
  return rc;
}

/* Delete the rollup rows in [from, below) of proxy (NULL: all) with st,
 * ST_FORGET (hours) or ST_FORGET_DAY (days). */
static int run_forget_in(sqlite3_stmt *st, int64_t below, int64_t from, const char *proxy) {
  sqlite3_bind_int64(st, 1, below);
  sqlite3_bind_int64(st, 2, from);
  if (proxy)
    sqlite3_bind_text(st, 3, proxy, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc;
}

static int run_forget(mcpr__rollup *r, int64_t below_hour, int64_t from_hour, const char *proxy) {
  return run_forget_in(r->st[ST_FORGET], below_hour, from_hour, proxy);
}

static int run_forget_day(mcpr__rollup *r, int64_t below_day, int64_t from_day,
                          const char *proxy) {
  return run_forget_in(r->st[ST_FORGET_DAY], below_day, from_day, proxy);
}

static int forget_cut_hour(mcpr__rollup *r, int64_t hb, int64_t w, const char *proxy);

int mcpr__rollup_forget_before(mcpr__rollup *r, int64_t cutoff_ms, const char *proxy) {
  int64_t w = 0;
  int rc = SQLITE_OK;
  /* Not prepared with the writer's: an unused statement on an index still
   * makes the writer's closing PRAGMA optimize analyze the table. */
  for (int i = ST_WRITER_COUNT; i < ST_COUNT && rc == SQLITE_OK; i++)
    if (!r->st[i])
      rc = sqlite3_prepare_v2(r->db, SQL[i], -1, &r->st[i], NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = step_one_int(r->st[ST_WATERMARK], &w);
  if (rc != SQLITE_DONE)
    return rc;
  int64_t hb = floor_div(cutoff_ms, MCPR__ROLLUP_HOUR_MS);
  rc = run_forget(r, hb, INT64_MIN, proxy);
  if (rc == SQLITE_DONE && cutoff_ms != hb * MCPR__ROLLUP_HOUR_MS)
    rc = forget_cut_hour(r, hb, w, proxy);
  if (rc != SQLITE_DONE)
    return rc;
  /* The days: those before the cutoff's go; that one, unless the cutoff
   * is its first instant, is summed again from its hours. */
  int64_t day = floor_div(hb, 24);
  rc = run_forget_day(r, day, INT64_MIN, proxy);
  if (rc != SQLITE_DONE || cutoff_ms == day * 24 * MCPR__ROLLUP_HOUR_MS)
    return rc;
  rc = run_forget_day(r, day + 1, day, proxy);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_stmt *st = r->st[ST_DAY_FROM_HOURS];
  sqlite3_bind_int64(st, 1, day * 24);
  sqlite3_bind_int64(st, 2, day * 24 + 24);
  if (proxy)
    sqlite3_bind_text(st, 3, proxy, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc;
}

/* The hour the cutoff cuts: rebuilt from what is left of it. Its groups
 * also go into their day, which the caller then sums again from its hours
 * (the cutoff is inside that day). */
static int forget_cut_hour(mcpr__rollup *r, int64_t hb, int64_t w, const char *proxy) {
  int64_t n = 0;
  int rc = run_forget(r, hb + 1, hb, proxy);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_stmt *st = r->st[ST_HOUR_ROWS];
  sqlite3_bind_int64(st, 1, hb * MCPR__ROLLUP_HOUR_MS);
  sqlite3_bind_int64(st, 2, (hb + 1) * MCPR__ROLLUP_HOUR_MS);
  sqlite3_bind_int64(st, 3, w);
  if (proxy)
    sqlite3_bind_text(st, 4, proxy, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 4);
  rc = aggregate(r, st, &n);
  if (rc == SQLITE_DONE)
    rc = upsert_groups(r);
  groups_clear(r);
  return rc;
}

bool mcpr__rollup_has_days(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  bool yes = sqlite3_prepare_v2(db,
                                "SELECT value FROM mcpr_rollup_state WHERE key = 'day_level'",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 1;
  sqlite3_finalize(st);
  return yes;
}
