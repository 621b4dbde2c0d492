/*
 * The scenarios of test_io_open.c that expose defects in opening a store
 * (fixed in db.c; kept as regressions):
 *   - a new store with the 8th file operation failing once (or the 6th
 *     and every later one), and a v0 store with the 7th and every later
 *     one failing: mcpr__db_open() returns MCPR_OK with no connection
 *     (mcpr__db_schema_version() loses sqlite3_step's error), so
 *     mcpr_store_open() says OK and carries on with a NULL database;
 *   - a v0 store with the 7th operation (a read) failing once: refused as
 *     "not an mcpr store" (ENOTSTORE) instead of an I/O error.
 */
#define IO_OPEN_DEFECTS 1
#include "test_io_open.c"
