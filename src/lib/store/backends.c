/*
 * backends.c — the table of store backends and how a store target picks
 * one (see backend.h). A target with a URL scheme (`name://…`, or
 * `sqlite:`) goes to the backend of that scheme or is refused: it is never
 * taken for a file name. Anything else is a path, and paths are SQLite's.
 */
#include <string.h>
#include <strings.h>

#include "backend/postgres/postgres.h"
#include "backend/sqlite/sqlite.h"
#include "store/backend.h"

static const mcpr__backend BACKENDS[] = {
    {"sqlite", mcpr__sqlite_match, &mcpr__sqlite_store_backend, mcpr__sqlite_query_open},
    {"postgres", mcpr__pg_match, &mcpr__pg_store_backend, mcpr__pg_query_open},
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
                 "(use a file path, sqlite:PATH or postgresql://…)",
                 (int)(n ? n : 16), target);
  return NULL;
}

const char *mcpr__store_target_file(const char *target) {
  const char *rest;
  const mcpr__backend *be = target ? mcpr__backend_find(target, &rest, NULL) : NULL;
  return be && strcmp(be->name, "sqlite") == 0 ? rest : NULL;
}

/* Append src[0..n) to out (size bytes) at *len, cutting when full. */
static void put(char *out, size_t size, size_t *len, const char *src, size_t n) {
  if (*len + 1 >= size)
    return;
  if (n > size - 1 - *len)
    n = size - 1 - *len;
  memcpy(out + *len, src, n);
  *len += n;
  out[*len] = '\0';
}

#define REDACTED "****"

/*
 * A URL's secrets are its userinfo's password (scheme://user:SECRET@host)
 * and a password=SECRET query parameter (libpq takes both). Everything
 * else is kept, so the message still names the server and database.
 */
const char *mcpr_store_target_redact(const char *target, char *buf, size_t size) {
  if (!buf || size == 0)
    return "";
  buf[0] = '\0';
  if (!target)
    return buf;
  size_t len = 0;
  size_t scheme = mcpr__url_scheme_len(target);
  if (scheme == 0 || strncmp(target + scheme, "://", 3) != 0) {
    put(buf, size, &len, target, strlen(target));
    return buf;
  }
  const char *auth = target + scheme + 3;
  size_t auth_len = strcspn(auth, "/?#");
  put(buf, size, &len, target, (size_t)(auth - target));
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++)
    if (auth[i] == '@')
      at = auth + i;
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
      put(buf, size, &len, auth, (size_t)(colon - auth) + 1);
      put(buf, size, &len, REDACTED, strlen(REDACTED));
      put(buf, size, &len, at, (size_t)(auth + auth_len - at));
    } else {
      put(buf, size, &len, auth, auth_len);
    }
  } else {
    put(buf, size, &len, auth, auth_len);
  }
  const char *p = auth + auth_len;
  const char *query = strchr(p, '?');
  if (!query) {
    put(buf, size, &len, p, strlen(p));
    return buf;
  }
  put(buf, size, &len, p, (size_t)(query - p) + 1);
  p = query + 1;
  while (*p) {
    size_t item = strcspn(p, "&#");
    const char *eq = memchr(p, '=', item);
    if (eq && (size_t)(eq - p) == 8 && strncasecmp(p, "password", 8) == 0) {
      put(buf, size, &len, p, 9);
      put(buf, size, &len, REDACTED, strlen(REDACTED));
    } else {
      put(buf, size, &len, p, item);
    }
    p += item;
    if (*p == '&') {
      put(buf, size, &len, "&", 1);
      p++;
    } else if (*p == '#') {
      put(buf, size, &len, p, strlen(p));
      break;
    }
  }
  return buf;
}
