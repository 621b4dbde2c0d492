/*
 * backends.c — the table of store backends and how a store target picks
 * one (see backend.h). A target with a URL scheme (`name://…`, or
 * `sqlite:`) goes to the backend of that scheme or is refused: it is never
 * taken for a file name. Anything else is a path, and paths are SQLite's.
 */
#include <string.h>

#include "backend/sqlite/sqlite.h"
#include "store/backend.h"

static const mcpr__backend BACKENDS[] = {
    {"sqlite", mcpr__sqlite_match, &mcpr__sqlite_store_backend, mcpr__sqlite_query_open},
};

const mcpr__backend *mcpr__backend_find(const char *target, const char **rest,
                                        mcpr_error *err) {
  *rest = NULL;
  if (!target || !*target) {
    mcpr_error_set(err, MCPR_EINVAL, "no store path or URL given");
    return NULL;
  }
  for (size_t i = 0; i < sizeof BACKENDS / sizeof BACKENDS[0]; i++) {
    const char *r = BACKENDS[i].match(target);
    if (r) {
      if (!*r) {
        mcpr_error_set(err, MCPR_EINVAL, "the store URL '%.200s' names no file", target);
        return NULL;
      }
      *rest = r;
      return &BACKENDS[i];
    }
  }
  size_t n = mcpr__url_scheme_len(target);
  mcpr_error_set(err, MCPR_EINVAL,
                 "store URL scheme '%.*s' is not supported by this build "
                 "(use a file path or sqlite:PATH)",
                 (int)(n ? n : 16), target);
  return NULL;
}
