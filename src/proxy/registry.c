/*
 * registry.c — ~/.mcpr/proxies/NAME/ (see registry.h).
 *
 * Taking the lock is atomic without a lock on the lock: the JSON is
 * written whole to a private temp file, then link()ed to lock.json, which
 * fails with EEXIST when another proxy got there first. So a reader never
 * sees half a lock, and two proxies started at once with the same name
 * cannot both win. A stale lock (its pid dead, or reused by a program that
 * is not mcpr) is unlinked and the link tried once more.
 *
 * Liveness: kill(pid, 0), then on Linux /proc/PID/cmdline must name an
 * mcpr program, so a pid recycled by an unrelated process reads as stale.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SMALL_FILE_MAX 8192

const char *mcpr_proxy_state_name(mcpr_proxy_state s) {
  switch (s) {
  case MCPR_PROXY_RUNNING:
    return "running";
  case MCPR_PROXY_STALE:
    return "stale";
  default:
    return "stopped";
  }
}

bool mcpr_registry_name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > MCPR_REGISTRY_NAME_MAX || name[0] == '.')
    return false;
  for (const char *c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '.' || *c == '_' || *c == '-'))
      return false;
  return true;
}

void mcpr_registry_localhost_url(const mcpr_proxy_entry *e, char *buf, size_t size) {
  snprintf(buf, size, "http://localhost:%d", e->port);
}

static const char *home_dir(void) {
  const char *home = getenv("HOME");
  if (home && *home)
    return home;
  struct passwd *pw = getpwuid(getuid());
  return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

/* ~/.mcpr/proxies[/NAME[/FILE]] into buf; false when it does not fit or
 * there is no home directory. */
static bool reg_path(char *buf, size_t size, const char *name, const char *file) {
  const char *home = home_dir();
  if (!home)
    return false;
  int n = snprintf(buf, size, "%s/.mcpr/proxies%s%s%s%s", home, name ? "/" : "", name ? name : "",
                   file ? "/" : "", file ? file : "");
  return n > 0 && (size_t)n < size;
}

static mcpr_status make_dirs(const char *name, mcpr_error *err) {
  const char *home = home_dir();
  char p[1400];
  if (!home)
    return mcpr_error_set(err, MCPR_EINVAL, "HOME is not set: cannot find ~/.mcpr");
  const char *parts[] = {"/.mcpr", "/proxies", "/", name};
  size_t len = (size_t)snprintf(p, sizeof p, "%s", home);
  for (size_t i = 0; i < 4; i++) {
    int n = snprintf(p + len, sizeof p - len, "%s", parts[i]);
    if (n < 0 || (size_t)n >= sizeof p - len)
      return mcpr_error_set(err, MCPR_EINVAL, "path too long under %s", home);
    len += (size_t)n;
    if (i == 2)
      continue;
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
      return mcpr_error_set(err, MCPR_EIO, "cannot create %s: %s", p, strerror(errno));
  }
  return MCPR_OK;
}

/* Read a small file whole (NUL-terminated, new string) or NULL. */
static char *read_small(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *buf = malloc(SMALL_FILE_MAX + 1);
  size_t n = buf ? fread(buf, 1, SMALL_FILE_MAX, f) : 0;
  fclose(f);
  if (buf)
    buf[n] = '\0';
  return buf;
}

/* Write a 0600 file atomically: PATH.tmp.PID, then rename (or link when
 * exclusive: EEXIST if path is there). */
static int write_small(const char *path, const char *text, bool exclusive) {
  char tmp[1500];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno;
  size_t len = strlen(text), off = 0;
  int rc = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = errno ? errno : EIO;
      break;
    }
    off += (size_t)w;
  }
  if (close(fd) != 0 && !rc)
    rc = errno;
  if (!rc && (exclusive ? link(tmp, path) : rename(tmp, path)) != 0)
    rc = errno;
  unlink(tmp); /* after link, or after a failure; a no-op after rename */
  return rc;
}

/* Linux: the process's argv[0] names an mcpr program. Elsewhere (no
 * /proc) a live pid is taken as the proxy. */
static bool pid_is_mcpr(pid_t pid) {
  char path[64], cmd[512];
  snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return errno == ENOENT ? access("/proc/self", F_OK) != 0 : true;
  size_t n = fread(cmd, 1, sizeof cmd - 1, f);
  fclose(f);
  cmd[n] = '\0'; /* argv[0] ends at its own NUL */
  const char *base = strrchr(cmd, '/');
  base = base ? base + 1 : cmd;
  return strstr(base, "mcpr") != NULL;
}

static bool pid_alive(pid_t pid) {
  if (pid <= 0)
    return false;
  if (kill(pid, 0) != 0 && errno != EPERM)
    return false;
  return pid_is_mcpr(pid);
}

static void copy_str(char *dst, size_t size, json_t *v) {
  snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Fill e from name's lock.json; false when there is none (or unreadable). */
static bool read_lock(const char *name, mcpr_proxy_entry *e) {
  char path[1400];
  if (!reg_path(path, sizeof path, name, "lock.json"))
    return false;
  char *text = read_small(path);
  if (!text)
    return false;
  json_t *o = json_loads(text, 0, NULL);
  free(text);
  json_int_t pid = json_integer_value(json_object_get(o, "pid"));
  bool ok = json_is_object(o) && pid > 0 && pid <= INT32_MAX;
  if (ok) {
    e->pid = (pid_t)pid;
    e->port = (int)json_integer_value(json_object_get(o, "port"));
    e->started_at = json_integer_value(json_object_get(o, "started_at"));
    copy_str(e->upstream_url, sizeof e->upstream_url, json_object_get(o, "upstream_url"));
    copy_str(e->listen_addr, sizeof e->listen_addr, json_object_get(o, "listen_addr"));
    copy_str(e->config_path, sizeof e->config_path, json_object_get(o, "config_path"));
  }
  json_decref(o);
  return ok;
}

/* e->name's state from disk. false: no folder. */
static bool load_entry(const char *name, mcpr_proxy_entry *e) {
  char path[1400];
  struct stat sb;
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  if (!reg_path(path, sizeof path, name, NULL) || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return false;
  if (read_lock(name, e))
    e->state = pid_alive(e->pid) ? MCPR_PROXY_RUNNING : MCPR_PROXY_STALE;
  else
    e->state = MCPR_PROXY_STOPPED;
  return true;
}

static void remove_lock(const char *name) {
  char path[1400];
  if (reg_path(path, sizeof path, name, "lock.json"))
    unlink(path);
}

mcpr_status mcpr_registry_acquire(mcpr_proxy_entry *e, mcpr_proxy_entry *holder, mcpr_error *err) {
  mcpr_status st;
  char path[1400], *text = NULL;
  json_t *o = NULL;
  if (!mcpr_registry_name_ok(e->name))
    return mcpr_error_set(err, MCPR_EINVAL,
                          "proxy name '%s' must be 1-64 letters, digits, '.', '_' or '-'",
                          e->name);
  if ((st = make_dirs(e->name, err)) != MCPR_OK)
    return st;
  if (!reg_path(path, sizeof path, e->name, "lock.json"))
    return mcpr_error_set(err, MCPR_EINVAL, "path too long");
  e->pid = getpid();
  e->started_at = (int64_t)time(NULL);
  o = json_pack("{s:s, s:I, s:i, s:s, s:s, s:I, s:s}", "name", e->name, "pid", (json_int_t)e->pid,
                "port", e->port, "upstream_url", e->upstream_url, "listen_addr", e->listen_addr,
                "started_at", (json_int_t)e->started_at, "config_path", e->config_path);
  if (!o || !(text = json_dumps(o, JSON_COMPACT))) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    int rc = write_small(path, text, true);
    if (rc == 0)
      goto out;
    if (rc != EEXIST) {
      st = mcpr_error_set(err, MCPR_EIO, "cannot write %s: %s", path, strerror(rc));
      goto out;
    }
    mcpr_proxy_entry cur;
    if (load_entry(e->name, &cur) && cur.state == MCPR_PROXY_RUNNING) {
      if (holder)
        *holder = cur;
      st = mcpr_error_set(err, MCPR_EBUSY, "a proxy named '%s' is already running (pid %ld, port %d)",
                          e->name, (long)cur.pid, cur.port);
      goto out;
    }
    remove_lock(e->name); /* stale (or unreadable): take it over */
  }
  st = mcpr_error_set(err, MCPR_EBUSY, "another proxy named '%s' is starting", e->name);
out:
  free(text);
  json_decref(o);
  return st;
}

void mcpr_registry_release(const char *name) {
  mcpr_proxy_entry e;
  memset(&e, 0, sizeof e);
  if (read_lock(name, &e) && e.pid == getpid())
    remove_lock(name);
}

mcpr_status mcpr_registry_get(const char *name, mcpr_proxy_entry *out, mcpr_error *err) {
  if (!mcpr_registry_name_ok(name) || !load_entry(name, out))
    return mcpr_error_set(err, MCPR_ENOTFOUND, "no proxy named '%s'", name);
  return MCPR_OK;
}

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const mcpr_proxy_entry *)a)->name, ((const mcpr_proxy_entry *)b)->name);
}

mcpr_status mcpr_registry_list(mcpr_proxy_entry **out, size_t *n, mcpr_error *err) {
  char path[1400];
  *out = NULL;
  *n = 0;
  if (!reg_path(path, sizeof path, NULL, NULL))
    return mcpr_error_set(err, MCPR_EINVAL, "HOME is not set: cannot find ~/.mcpr");
  DIR *d = opendir(path);
  if (!d)
    return errno == ENOENT ? MCPR_OK
                           : mcpr_error_set(err, MCPR_EIO, "cannot read %s: %s", path, strerror(errno));
  mcpr_status st = MCPR_OK;
  size_t cap = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    if (!mcpr_registry_name_ok(de->d_name))
      continue;
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      if (ncap > 100000) /* bounded: a folder nobody would fill by hand */
        break;
      mcpr_proxy_entry *grown = realloc(*out, ncap * sizeof *grown);
      if (!grown) {
        st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
        break;
      }
      *out = grown;
      cap = ncap;
    }
    if (load_entry(de->d_name, &(*out)[*n]))
      (*n)++;
  }
  closedir(d);
  if (st != MCPR_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
    return st;
  }
  if (*n)
    qsort(*out, *n, sizeof **out, entry_cmp);
  return MCPR_OK;
}

mcpr_status mcpr_registry_stop(const char *name, int timeout_ms, mcpr_proxy_entry *was,
                               mcpr_error *err) {
  mcpr_status st = mcpr_registry_get(name, was, err);
  if (st != MCPR_OK)
    return st;
  if (was->state == MCPR_PROXY_STOPPED)
    return mcpr_error_set(err, MCPR_ENOTFOUND, "proxy '%s' is not running", name);
  if (was->state == MCPR_PROXY_STALE) {
    remove_lock(name);
    return MCPR_OK;
  }
  if (kill(was->pid, SIGTERM) != 0 && errno != ESRCH)
    return mcpr_error_set(err, MCPR_EIO, "cannot signal pid %ld: %s", (long)was->pid,
                          strerror(errno));
  for (int waited = 0; pid_alive(was->pid); waited += 50) {
    if (waited >= timeout_ms)
      return mcpr_error_set(err, MCPR_ETIMEDOUT,
                            "proxy '%s' (pid %ld) is still running %d s after SIGTERM (it "
                            "may be draining requests; see drain_timeout)",
                            name, (long)was->pid, timeout_ms / 1000);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  /* The proxy removes its own lock at a clean exit; this covers a crash
   * during the drain. */
  mcpr_proxy_entry now;
  if (load_entry(name, &now) && now.state != MCPR_PROXY_RUNNING && now.pid == was->pid)
    remove_lock(name);
  return MCPR_OK;
}

mcpr_status mcpr_registry_delete(const char *name, mcpr_error *err) {
  mcpr_proxy_entry e;
  mcpr_status st = mcpr_registry_get(name, &e, err);
  if (st != MCPR_OK)
    return st;
  if (e.state == MCPR_PROXY_RUNNING)
    return mcpr_error_set(err, MCPR_EBUSY,
                          "proxy '%s' is running (pid %ld); stop it first with `mcpr proxy stop %s`",
                          name, (long)e.pid, name);
  char dir[1400], path[1700];
  if (!reg_path(dir, sizeof dir, name, NULL))
    return mcpr_error_set(err, MCPR_EINVAL, "path too long");
  DIR *d = opendir(dir);
  if (d) {
    /* Only our own files live here: a flat folder. */
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path)
        unlink(path);
    }
    closedir(d);
  }
  if (rmdir(dir) != 0)
    return mcpr_error_set(err, MCPR_EIO, "cannot remove %s: %s", dir, strerror(errno));
  return MCPR_OK;
}

mcpr_status mcpr_registry_reload_request(const char *name, uint64_t nonce,
                                         const char *config_path, mcpr_error *err) {
  char path[1400], text[1200];
  if (!mcpr_registry_name_ok(name) || !reg_path(path, sizeof path, name, "reload_request"))
    return mcpr_error_set(err, MCPR_EINVAL, "bad proxy name '%s'", name);
  if (snprintf(text, sizeof text, "%" PRIu64 "\n%s\n", nonce, config_path ? config_path : "") >=
          (int)sizeof text ||
      (config_path && strchr(config_path, '\n')))
    return mcpr_error_set(err, MCPR_EINVAL, "config path too long or with a newline");
  int rc = write_small(path, text, false);
  if (rc)
    return mcpr_error_set(err, MCPR_EIO, "cannot write %s: %s", path, strerror(rc));
  return MCPR_OK;
}

/* "N\nREST": the number and where REST starts. */
static bool split_nonce(char *text, uint64_t *nonce, char **rest) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || errno || *end != '\n')
    return false;
  *nonce = v;
  *rest = end + 1;
  return true;
}

bool mcpr_registry_reload_read_request(const char *name, uint64_t *nonce, char *config_path,
                                       size_t size) {
  char path[1400], *rest;
  if (!reg_path(path, sizeof path, name, "reload_request"))
    return false;
  char *text = read_small(path);
  bool ok = text && split_nonce(text, nonce, &rest);
  unlink(path); /* consumed: a later bare SIGHUP does not replay it */
  if (ok) {
    rest[strcspn(rest, "\n")] = '\0';
    snprintf(config_path, size, "%s", rest);
  }
  free(text);
  return ok;
}

mcpr_status mcpr_registry_reload_result(const char *name, uint64_t nonce,
                                        mcpr_reload_outcome outcome, const char *message) {
  char path[1400], text[2048];
  if (!reg_path(path, sizeof path, name, "reload_result"))
    return MCPR_EINVAL;
  snprintf(text, sizeof text, "%" PRIu64 "\n%s\n%s\n", nonce,
           outcome == MCPR_RELOAD_APPLIED ? "applied" : "rejected", message ? message : "");
  return write_small(path, text, false) ? MCPR_EIO : MCPR_OK;
}

bool mcpr_registry_reload_read_result(const char *name, uint64_t nonce,
                                      mcpr_reload_outcome *outcome, char *message, size_t size) {
  char path[1400], *rest;
  uint64_t got = 0;
  if (!reg_path(path, sizeof path, name, "reload_result"))
    return false;
  char *text = read_small(path);
  bool ok = text && split_nonce(text, &got, &rest) && got == nonce;
  if (ok) {
    char *nl = strchr(rest, '\n');
    ok = nl != NULL;
    if (ok) {
      *nl = '\0';
      ok = strcmp(rest, "applied") == 0 || strcmp(rest, "rejected") == 0;
      *outcome = strcmp(rest, "applied") == 0 ? MCPR_RELOAD_APPLIED : MCPR_RELOAD_REJECTED;
      size_t len = strlen(nl + 1);
      while (len && nl[len] == '\n')
        nl[len--] = '\0';
      snprintf(message, size, "%s", nl + 1);
    }
  }
  free(text);
  return ok;
}
