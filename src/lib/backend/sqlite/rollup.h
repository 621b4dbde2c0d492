/*
 * rollup.h — internal to the SQLite backend: the request rollups (issue 15).
 *
 * Two extra tables in the store file, which the original never reads:
 *
 *   mcpr_rollup_hour — per hour (ts div 3,600,000) × proxy × label (a tool,
 *     or a method when there is none; is_tool tells which) the calls,
 *     errors (status not ok), latency sum/min/max, bytes in/out, the last
 *     ts and a latency sketch (core/sketch.h), of the requests with
 *     id <= the watermark;
 *   mcpr_rollup_state — key/value: 'watermark', the highest requests.id
 *     whose row is counted in mcpr_rollup_hour. Every row with a lower id
 *     is counted (ids are never reused: requests is AUTOINCREMENT).
 *
 * So a read takes the full hours of its window from the rollups, and reads
 * raw the partial hour at its start and every row above the watermark —
 * rows the original, an older mcpr or any other writer of the same file
 * added: they count exactly, without anyone having to maintain the
 * rollups for them.
 *
 * The watermark only moves over a contiguous range of ids: a catch-up reads
 * the rows (watermark, hi] by rowid, aggregates them in C per (hour,
 * proxy, label), upserts one row per group (the sketch merged by the SQL
 * function mcpr_sketch_merge) and sets the watermark to hi — all in the
 * caller's write transaction. The writer catches up after every batch
 * when what lies above the watermark is small (its own batch, plus a few
 * rows another writer added); `mcpr store rollup` (and the first writer
 * of a big store without rollups) catches up in chunks, one short
 * transaction each.
 */
#ifndef MCPR__SQLITE_ROLLUP_H
#define MCPR__SQLITE_ROLLUP_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "mcpr/error.h"
#include "mcpr/query.h"

#define MCPR__ROLLUP_HOUR_MS 3600000

/*
 * The daily level, mcpr_rollup_day: the same columns per UTC day (hour
 * div 24, rounded down) × proxy × label, the sum of its hours — so a
 * month's window merges ~30 rows per label, not ~720. Every catch-up
 * upserts each group into its hour and its day in the same transaction;
 * forget drops the days before the cutoff's and rebuilds that one from
 * its hours. A store whose hours predate the day table gets it filled
 * from them by the migration that creates it (state key 'day_level' = 1
 * once done; readers use the days only then).
 */
#define MCPR__ROLLUP_DAY_OF(h) "(CASE WHEN " h " >= 0 THEN " h " / 24 ELSE (" h " - 23) / 24 END)"
#define MCPR__ROLLUP_DAY_UPSERT                                                           \
  " ON CONFLICT (day, proxy, is_tool, name) DO UPDATE SET"                               \
  " calls = calls + excluded.calls, errors = errors + excluded.errors,"                  \
  " sum_us = sum_us + excluded.sum_us, min_us = min(min_us, excluded.min_us),"           \
  " max_us = max(max_us, excluded.max_us), bytes_in = bytes_in + excluded.bytes_in,"     \
  " bytes_out = bytes_out + excluded.bytes_out,"                                         \
  " last_ts = max(last_ts, excluded.last_ts),"                                           \
  " sketch = mcpr_sketch_merge(sketch, excluded.sketch)"

/* DDL of the rollup tables (IF NOT EXISTS: run by every migration). */
extern const char MCPR__ROLLUP_DDL[];

/* Register mcpr_sketch_merge(a, b) on a connection. Returns an SQLite code. */
int mcpr__rollup_register(sqlite3 *db);

/* Statements prepared once on one connection. */
typedef struct mcpr__rollup mcpr__rollup;
/* NULL with *rc set when the statements cannot be prepared (an old file
 * opened read-only has no rollup tables). */
mcpr__rollup *mcpr__rollup_new(sqlite3 *db, int *rc);
void mcpr__rollup_free(mcpr__rollup *r);

/*
 * Inside a write transaction: roll up the rows above the watermark, at
 * most max_rows of them. When all_or_nothing and more than max_rows are
 * above it, nothing is done. *rolled (may be NULL): rows rolled up; *left
 * (may be NULL): rows still above the watermark after this call (by id
 * range: an upper bound). Returns SQLITE_DONE or an SQLite error.
 */
int mcpr__rollup_catch_up(mcpr__rollup *r, int64_t max_rows, bool all_or_nothing,
                          int64_t *rolled, int64_t *left);

/*
 * The writer's batch, rolled up from the rows it writes rather than read
 * back. Inside the batch's write transaction, before any row:
 * feed_begin(r, last_id: max(requests.id), which the caller has read)
 * notes whether the watermark is at that last id (no
 * row of anyone else is waiting); then feed each row written; feed_end
 * upserts the groups and moves the watermark to the last id — or, when
 * other rows were waiting (or feeding ran out of memory), does
 * mcpr__rollup_catch_up(r, max_rows, true, NULL, left) instead. feed_drop
 * forgets what was fed (the batch rolled back). Both return SQLITE_DONE
 * or an SQLite error; after a failed feed_begin nothing is fed (the
 * catch-up then meets the error, under the caller's savepoint), unless
 * SQLite rolled the transaction back (sqlite3_get_autocommit()), which
 * the caller must check.
 */
typedef struct mcpr__rollup_row {
  int64_t ts, latency_us;
  const char *proxy, *tool, *method; /* tool NULL: counted under method */
  bool error;                        /* status not ok */
  int64_t bytes_in, bytes_out;       /* < 0: NULL */
} mcpr__rollup_row;
int mcpr__rollup_feed_begin(mcpr__rollup *r, int64_t last_id);
void mcpr__rollup_feed(mcpr__rollup *r, const mcpr__rollup_row *row);
int mcpr__rollup_feed_end(mcpr__rollup *r, int64_t max_rows, int64_t *left);
void mcpr__rollup_feed_drop(mcpr__rollup *r);

/*
 * Inside a write transaction, after requests with ts < cutoff_ms (of proxy;
 * NULL: all) were deleted: drop the rollup hours before the cutoff and
 * rebuild the hour it falls in from the rows left (up to the watermark);
 * the days follow — those wholly before the cutoff go, the one it cuts is
 * summed again from its hours. With a whole-hour cutoff and the hours
 * before it already deleted (retention's rollup_retention), only the days
 * change. Returns SQLITE_DONE or an SQLite error.
 */
int mcpr__rollup_forget_before(mcpr__rollup *r, int64_t cutoff_ms, const char *proxy);


/* The watermark, on any connection; -1 when the tables or the state row
 * are missing (then the rollups count nothing that can be trusted). */
int64_t mcpr__rollup_watermark(sqlite3 *db);

/* Whether mcpr_rollup_day is there and complete ('day_level' = 1). */
bool mcpr__rollup_has_days(sqlite3 *db);

/* ---------- building them (rollup_build.c) ---------- */

/* The most rows one chunk of a build rolls up: about 30 ms of work on an
 * idle core, so a chunk stays near 100 ms on a loaded machine. */
#define MCPR__ROLLUP_BUILD_CHUNK_MAX 50000

/*
 * Roll up every row above the watermark of the store at path (db: a
 * read-write connection to it, no transaction open), in chunks of at most
 * max_chunk_rows (<= 0 or above MCPR__ROLLUP_BUILD_CHUNK_MAX: that), each
 * its own transaction under the commit lock. fn (may be NULL) is called
 * after each chunk with *out, which accumulates (the caller zeroes it).
 */
mcpr_status mcpr__rollup_build(sqlite3 *db, const char *path, int64_t max_chunk_rows,
                               mcpr_rollup_progress_fn fn, void *ctx,
                               mcpr_rollup_progress *out, mcpr_error *err);

/* Rows above the watermark (all of them when there are no rollup tables),
 * by id range: an upper bound; 0 when the rows cannot be read. */
int64_t mcpr__rollup_behind(sqlite3 *db);

#endif
