/*
 * retention.h — internal to the SQLite backend: deleting what is older
 * than the store's retention ([store] retention, keep_errors,
 * rollup_retention), in bounded steps run by the writer (writer.c), and
 * the counts of what it deleted, kept in the store file.
 *
 * One more table of our own in the store file, which the original never
 * reads:
 *
 *   mcpr_retention_state — key/value: 'requests_deleted',
 *     'sessions_deleted', 'rollups_deleted' (rows deleted by retention,
 *     ever, by any writer of the file), 'last_run_ms' (wall clock of
 *     the last step that deleted something, or of the last round's end)
 *     and 'rolled_gap': how many of the calls the rollups count have no
 *     row any more (retention deleted it), so that the number of requests
 *     is the rollups' sum less the gap plus the rows above the watermark,
 *     without counting 10M rows (`store stats`).
 *     Updated in the transaction that deletes, so a crash never leaves a
 *     count that disagrees with the rows.
 *
 * A round (at most one per hour of wall clock: the cutoffs are whole
 * hours, the rollups' unit) goes through phases, each a series of steps
 * of one short write transaction under the commit lock:
 *
 *   1. requests with ts < the errors' cutoff (keep_errors, else retention),
 *      whatever their status, RETENTION_CHUNK at a time through the ts
 *      index;
 *   2. with keep_errors: the ok requests between the two cutoffs, found by
 *      walking that range in (ts, id) order, at most RETENTION_SCAN rows
 *      looked at per step, so the failed ones kept there cost a bounded
 *      walk per step and one walk per round;
 *   3. sessions that ended before the cutoff (and last seen an hour
 *      before it) with no request left: looked for on the (proxy, ts)
 *      index between their start and last activity, an hour either side,
 *      as the read side finds a session's requests (no session_id index);
 *   4. rollup hours older than rollup_retention, a day of hours per step.
 *
 * Only requests with id <= the rollups' watermark are deleted: every row
 * deleted is already counted in the rollups, which keep counting it. Rows
 * above it (another writer's, not yet rolled up) wait for the next round;
 * while the rollups lag far behind (a big store being caught up), phases
 * 1 and 2 wait.
 */
#ifndef MCPR__SQLITE_RETENTION_H
#define MCPR__SQLITE_RETENTION_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "mcpr/error.h"
#include "mcpr/query.h"

/* DDL of the state table (IF NOT EXISTS: run by every migration). */
extern const char MCPR__RETENTION_DDL[];

typedef struct mcpr__retention mcpr__retention;

/* A retention handle on the writer's connection (0: that part is off).
 * NULL when out of memory. */
mcpr__retention *mcpr__retention_new(sqlite3 *db, int64_t retention_ms, int64_t keep_errors_ms,
                                     int64_t rollup_retention_ms);
void mcpr__retention_free(mcpr__retention *r);

/*
 * One step at wall-clock now_ms, in a transaction of its own; the caller
 * holds the commit lock and no transaction is open. *more: a step is
 * still due in this round. Returns SQLITE_OK or an SQLite error (the
 * transaction was rolled back: nothing of the step happened).
 */
int mcpr__retention_step(mcpr__retention *r, int64_t now_ms, bool *more);

/*
 * The number of requests, read in a few pages whatever the store's size
 * (in the caller's read transaction): the calls the rollups count, less
 * those whose rows retention deleted ('rolled_gap', kept with every
 * delete), plus the rows above the watermark. false: no rollups here, or
 * the figures do not hold together — count the rows instead.
 */
bool mcpr__retention_count_requests(sqlite3 *db, int64_t *out);

/* Recompute 'rolled_gap' from the rows, after something other than
 * retention deleted rows the rollups count (`store vacuum`). Its own
 * write transaction; the caller holds the commit lock. SQLite code. */
int mcpr__retention_recount(sqlite3 *db);

/* The counters into out's retention_* fields (zero when the table is
 * missing: a store retention never ran on, or an old read-only file). */
void mcpr__retention_read(sqlite3 *db, mcpr_store_info *out);

#endif
