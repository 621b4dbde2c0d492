/*
 * extra_schema.h — internal to the SQLite backend: indexes this project
 * adds to the store for its read side, beyond the original's (SPEC §4).
 * The original never reads them; SQLite maintains them on its writes too,
 * so rows any writer adds are covered.
 *
 * Each is optional: the queries that use one check that it exists and,
 * until it does, answer the same from the original's indexes (slower).
 * Creating one on a big store is a full pass over its table, so they are
 * meant to be built by the open path's background index machinery (db.c),
 * not inline by every open: run the DDL (IF NOT EXISTS: idempotent) in a
 * write transaction of its own, under the commit lock like any other
 * migration step. A store of ~100k sessions builds this one in well under
 * a second (the sessions table is ~10 MB at 10M requests).
 */
#ifndef MCPR__SQLITE_EXTRA_SCHEMA_H
#define MCPR__SQLITE_EXTRA_SCHEMA_H

/*
 * mcpr_sessions_seen — sessions by proxy, then by max(last_seen_at,
 * started_at), the session's "seen" key: `proxy sessions` lists the most
 * recently seen first, and this key orders them without a sort of the
 * whole table. It is last_seen_at itself for every row our writer keeps
 * (last_seen_at starts at started_at and only grows); taking the max makes
 * the walk exact for a row another writer left with last_seen_at before
 * started_at too: the key is never below started_at nor below last_seen_at,
 * so a walk down the keys can stop at the window's cutoff and as soon as a
 * key falls below the last seen time of the rows it already holds
 * (backend/sqlite/query.c, sessions_walk).
 *
 * Cost to the writer: each request of a session moves that session's
 * entry (its last_seen_at changes), as idx_sessions_active already does
 * for open sessions — one more index update per request, at the hot end
 * of the index.
 */
#define MCPR__SESSIONS_SEEN_INDEX "mcpr_sessions_seen"
#define MCPR__SESSIONS_SEEN_KEY "max(last_seen_at, started_at)"
#define MCPR__SESSIONS_SEEN_DDL                                                     \
  "CREATE INDEX IF NOT EXISTS " MCPR__SESSIONS_SEEN_INDEX " ON sessions(proxy, " \
  MCPR__SESSIONS_SEEN_KEY ")"

#endif
