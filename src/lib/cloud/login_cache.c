/*
 * login_cache.c — ~/.mcpr/auth.json: the `mcpr setup` login, kept so a
 * second setup does not ask for an e-mail code again (SPEC §8).
 *
 * The file holds a JWT, so it is written like a key file: the directory is
 * 0700, the file 0600, created under a temporary name with that mode from
 * the start (never briefly world-readable) and renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpr/cloud.h"

#define LOGIN_CACHE_MAX_BYTES 65536
#define REUSE_MARGIN_S 300

char *mcpr_cloud_login_cache_path(mcpr_error *err) {
  const char *home = getenv("HOME");
  if (!home || !*home) {
    mcpr_error_set(err, MCPR_EINVAL, "HOME is not set: cannot find ~/.mcpr/auth.json");
    return NULL;
  }
  size_t n = strlen(home) + sizeof "/.mcpr/auth.json";
  char *p = malloc(n);
  if (!p) {
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    return NULL;
  }
  snprintf(p, n, "%s/.mcpr/auth.json", home);
  return p;
}

void mcpr_cloud_login_cache_free(mcpr_cloud_login_cache *cache) {
  if (!cache)
    return;
  if (cache->jwt) {
    volatile char *v = cache->jwt;
    while (*v)
      *v++ = 0;
  }
  free(cache->jwt);
  free(cache->email);
  free(cache->cloud_url);
  free(cache);
}

mcpr_status mcpr_cloud_login_cache_load(const char *path, mcpr_cloud_login_cache **out,
                                        mcpr_error *err) {
  *out = NULL;
  json_error_t je;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT)
      return mcpr_error_set(err, MCPR_ENOTFOUND, "no saved login at %s", path);
    return mcpr_error_set(err, MCPR_EIO, "cannot read %s: %s", path, strerror(errno));
  }
  if (!S_ISREG(sb.st_mode) || sb.st_size > LOGIN_CACHE_MAX_BYTES)
    return mcpr_error_set(err, MCPR_EPARSE, "%s is not a saved login (not a small file)", path);
  json_t *j = json_load_file(path, 0, &je);
  if (!json_is_object(j)) {
    json_decref(j);
    /* je.text could quote the file, which holds a JWT: say only where. */
    return mcpr_error_set(err, MCPR_EPARSE, "%s is not a valid saved login (line %d)", path,
                          je.line);
  }
  mcpr_cloud_login_cache *c = calloc(1, sizeof *c);
  mcpr_status st = MCPR_OK;
  if (!c) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }
  const char *jwt = json_string_value(json_object_get(j, "jwt"));
  const char *email = json_string_value(json_object_get(j, "email"));
  const char *url = json_string_value(json_object_get(j, "cloud_url"));
  if (!jwt || !url) {
    st = mcpr_error_set(err, MCPR_EPARSE, "%s lacks 'jwt' or 'cloud_url'", path);
    goto out;
  }
  c->jwt = strdup(jwt);
  c->email = email ? strdup(email) : NULL;
  c->cloud_url = strdup(url);
  if (!c->jwt || !c->cloud_url || (email && !c->email)) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }
  *out = c;
  c = NULL;
out:
  mcpr_cloud_login_cache_free(c);
  json_decref(j);
  return st;
}

mcpr_status mcpr_cloud_login_cache_save(const char *path, const mcpr_cloud_login_cache *cache,
                                        mcpr_error *err) {
  mcpr_status st = MCPR_OK;
  char dir[PATH_MAX], tmp[PATH_MAX];
  char *text = NULL;
  int fd = -1;
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
    return mcpr_error_set(err, MCPR_EINVAL, "path too long: %s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
      return mcpr_error_set(err, MCPR_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 077) &&
        sb.st_uid == getuid() && chmod(dir, 0700) != 0)
      return mcpr_error_set(err, MCPR_EIO, "cannot make %s private: %s", dir, strerror(errno));
  } else {
    snprintf(dir, sizeof dir, "%s", slash ? "/" : ".");
  }
  json_t *j = json_pack("{s:s, s:s?, s:s}", "jwt", cache->jwt ? cache->jwt : "", "email",
                        cache->email, "cloud_url", cache->cloud_url ? cache->cloud_url : "");
  if (!j)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory saving the login");
  text = json_dumps(j, JSON_INDENT(2));
  json_decref(j);
  if (!text)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory saving the login");
  if (snprintf(tmp, sizeof tmp, "%s/.auth.json.tmp-XXXXXX", dir) >= (int)sizeof tmp) {
    tmp[0] = '\0';
    st = mcpr_error_set(err, MCPR_EINVAL, "path too long: %s", dir);
    goto out;
  }
  fd = mkstemp(tmp); /* created 0600 */
  if (fd < 0) {
    tmp[0] = '\0';
    st = mcpr_error_set(err, MCPR_EIO, "cannot save the login in %s: %s", dir, strerror(errno));
    goto out;
  }
  size_t len = strlen(text);
  if (fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
      fsync(fd) != 0) {
    st = mcpr_error_set(err, errno == ENOSPC ? MCPR_EDISKFULL : MCPR_EIO,
                        "cannot save the login: %s", strerror(errno));
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, path) != 0) {
    st = mcpr_error_set(err, MCPR_EIO, "cannot save the login to %s: %s", path, strerror(errno));
    goto out;
  }
  tmp[0] = '\0';
out:
  if (fd >= 0)
    close(fd);
  if (tmp[0] && st != MCPR_OK)
    unlink(tmp);
  if (text) {
    memset(text, 0, strlen(text));
    free(text);
  }
  return st;
}

static size_t trimmed_len(const char *url) {
  size_t n = strlen(url);
  while (n > 0 && url[n - 1] == '/')
    n--;
  return n;
}

bool mcpr_cloud_login_cache_usable(const mcpr_cloud_login_cache *cache, const char *cloud_url,
                                   int64_t now_s) {
  if (!cache || !cache->jwt || !cache->cloud_url || !cloud_url)
    return false;
  size_t a = trimmed_len(cache->cloud_url), b = trimmed_len(cloud_url);
  if (a != b || strncmp(cache->cloud_url, cloud_url, a) != 0)
    return false;
  int64_t exp = 0;
  if (mcpr_jwt_exp(cache->jwt, &exp, NULL) != MCPR_OK)
    return false;
  return exp > now_s + REUSE_MARGIN_S;
}
