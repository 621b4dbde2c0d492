/* sqlite.c — which store targets are SQLite's, and its read side's entry. */
#include <string.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/sqlite.h"

const char *mcpr__sqlite_match(const char *target) {
  size_t n = mcpr__url_scheme_len(target);
  if (n == 0)
    return target;
  if (n != 6 || strncmp(target, "sqlite", 6) != 0)
    return NULL;
  const char *rest = target + 7;
  return strncmp(rest, "//", 2) == 0 ? rest + 2 : rest;
}

mcpr_status mcpr__sqlite_query_open(const char *path, const mcpr__query_backend **be,
                                    void **impl, mcpr_error *err) {
  mcpr__db_layout layout;
  int version;
  mcpr_status st = mcpr__db_identify(path, NULL, &layout, &version, err);
  if (st != MCPR_OK)
    return st;
  if (layout == MCPR__LAYOUT_ORIGINAL_V05) {
    *be = &mcpr__query_v05_backend;
    return mcpr__query_v05_open(path, impl, err);
  }
  *be = &mcpr__query_sqlite_backend;
  return mcpr__query_sqlite_open(path, impl, err);
}
