/*
 * sqlite.h — internal: the SQLite backend as the engine sees it (see
 * store/backend.h). Everything else in backend/sqlite/ is private to it.
 */
#ifndef MCPR__BACKEND_SQLITE_H
#define MCPR__BACKEND_SQLITE_H

#include "store/backend.h"

/* A plain path, or "sqlite:PATH" (also sqlite://PATH): the path; else NULL. */
const char *mcpr__sqlite_match(const char *target);

extern const mcpr__store_backend mcpr__sqlite_store_backend;
/* The read side (query.c): its table, and how to open it. */
extern const mcpr__query_backend mcpr__query_sqlite_backend;
mcpr_status mcpr__query_sqlite_open(const char *path, void **impl, mcpr_error *err);
/* The read side of the original's 0.5.x layout (query_v05.c): read-only. */
extern const mcpr__query_backend mcpr__query_v05_backend;
mcpr_status mcpr__query_v05_open(const char *path, void **impl, mcpr_error *err);
/* mcpr__query_backend_open for SQLite: identifies the file first (writing
 * nothing), then opens it with the read side of its layout. */
mcpr_status mcpr__sqlite_query_open(const char *path, const mcpr__query_backend **be,
                                    void **impl, mcpr_error *err);

#endif
