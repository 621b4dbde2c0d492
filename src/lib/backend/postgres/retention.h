/*
 * retention.h — internal to the PostgreSQL backend: retention ([store]
 * retention, keep_errors, rollup_retention) in bounded steps run by the
 * writer (writer.c), with the SQLite store's semantics
 * (backend/sqlite/retention.h): a round per hour of wall clock, whose
 * phases delete
 *
 *   1. requests before the errors' cutoff (keep_errors, else retention),
 *   2. with keep_errors, the ok requests between the two cutoffs, walking
 *      that range in (ts, id) order a bounded number of rows per step,
 *   3. sessions that ended before the cutoff with no request left,
 *   4. rollup hours older than rollup_retention (and what is left of their
 *      rows), a day of hours per step, the days following,
 *
 * each step one short transaction that also adds what it deleted to the
 * counters in mcpr_retention_state ('requests_deleted',
 * 'sessions_deleted', 'rollups_deleted', 'last_run_ms'), which `mcpr
 * store stats` shows. As in SQLite, only requests the rollups count
 * (rolled) are deleted, so the rollups keep counting them; rows another
 * program inserted are counted first (a catch-up at each step of phase 1)
 * and go in a later round.
 *
 * Several writers on several machines: each step first takes
 * pg_try_advisory_xact_lock on (retention, the current schema); a writer
 * that does not get it skips the step and looks again at its next round,
 * so at most one step runs at a time per store and no writer waits.
 * Rounds are each writer's own; one that finds its work done by another
 * deletes nothing and says so.
 */
#ifndef MCPR__PG_RETENTION_H
#define MCPR__PG_RETENTION_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/postgres/pg.h"
#include "mcpr/error.h"
#include "mcpr/query.h"

typedef struct mcpr__pg_retention mcpr__pg_retention;

/* NULL when out of memory; periods as mcpr_store_options (0: off). */
mcpr__pg_retention *mcpr__pg_retention_new(int64_t retention_ms, int64_t keep_errors_ms,
                                           int64_t rollup_retention_ms);
void mcpr__pg_retention_free(mcpr__pg_retention *r);

/*
 * One step at wall-clock now_ms on c (outside a transaction). *more: a
 * step is still due in this round. A failed step changed nothing and is
 * done again at the next call.
 */
mcpr_status mcpr__pg_retention_step(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                                    int64_t now_ms, bool *more, mcpr_error *err);

/* The counters into out's retention_* fields (zero when there are none). */
mcpr_status mcpr__pg_retention_read(PGconn *c, const mcpr__pg_target *t, mcpr_store_info *out,
                                    mcpr_error *err);

#endif
