/*
 * postgres.h — internal: the PostgreSQL backend as the engine sees it (see
 * store/backend.h). Everything else in backend/postgres/ is private to it.
 */
#ifndef MCPR__BACKEND_POSTGRES_H
#define MCPR__BACKEND_POSTGRES_H

#include "store/backend.h"

/* "postgres://…" or "postgresql://…": the whole URL (libpq reads it);
 * else NULL. */
const char *mcpr__pg_match(const char *target);

extern const mcpr__store_backend mcpr__pg_store_backend;
/* The read side (query.c). */
extern const mcpr__query_backend mcpr__query_pg_backend;
mcpr_status mcpr__pg_query_open(const char *url, const mcpr__query_backend **be, void **impl,
                                mcpr_error *err);

/* Tests: stats read the rollups once they hold more than rows requests
 * (default 50,000, the SQLite store's bound); 0: whenever they can. */
void mcpr__query_pg_set_rollup_raw_max(mcpr_query *q, int64_t rows);

#endif
