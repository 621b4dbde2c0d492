/*
 * series.h — internal to the SQLite backend: the read of mcpr_query_series
 * (series.c), which query.c's table points at.
 */
#ifndef MCPR__SQLITE_SERIES_H
#define MCPR__SQLITE_SERIES_H

#include <sqlite3.h>

#include "query/backend.h"

/* mcpr__query_backend.series_scan on the connection db. */
mcpr_status mcpr__sqlite_series_scan(sqlite3 *db, const mcpr_series_filter *f,
                                     const mcpr__series_sinks *sinks, mcpr_error *err);

#endif
