/*
 * spool.c — the cloud sink's on-disk spool: batches waiting for delivery.
 *
 * Layout of a spool directory (mode 0700, under the store's directory):
 *   b-<created_ms>-<pid>-<n>.rec   one batch per record file, oldest first
 *                                  by name; never modified once written
 *   .tmp-<pid>-<n>                 a record being written
 *   rejected/<name> + .reason      batches the server refused (4xx)
 *   corrupt/<name> + .reason       torn or damaged records, set aside
 *   state.json                     counters and the last error
 *   *.lock                         flock(2) files (append, state, delivery)
 *
 * A record is a fixed header and the JSON body:
 *   0  "MCPRSPL1"      8  u32 body_len    12 u32 nevents
 *   16 u64 created_ms  24 Idempotency-Key (36 chars)
 *   60 SHA-256 of bytes 8..59 and of the body (32 bytes)   92 body
 * Integers are little-endian. It is written to a temporary file, fsync'd,
 * renamed into place and the directory fsync'd, so a record file either
 * exists whole or not at all; a crash mid-write leaves only a .tmp file
 * (swept to corrupt/ once its process is gone). A record damaged later
 * fails its checksum on read and is set aside; every other record is still
 * delivered.
 *
 * Processes share a spool: appends (and the cap, which drops the oldest
 * records) run under append.lock, counter updates under state.lock, and
 * only the holder of delivery.lock uploads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpr/util.h"
#include "sink/spool.h"

#define MAGIC "MCPRSPL1"
#define HDR_LEN 92
#define HASHED_HDR_BEGIN 8
#define HASHED_HDR_END 60
#define BODY_MAX (64u * 1024 * 1024)

static atomic_uint g_counter; /* unique temp/record names within a process */

static int path_of(char *buf, size_t size, const char *dir, const char *a, const char *b) {
  int n = b ? snprintf(buf, size, "%s/%s/%s", dir, a, b) : snprintf(buf, size, "%s/%s", dir, a);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static int checksum(const unsigned char *hdr, const char *body, size_t len, unsigned char out[32]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(ctx, hdr + HASHED_HDR_BEGIN, HASHED_HDR_END - HASHED_HDR_BEGIN) &&
           EVP_DigestUpdate(ctx, body, len) && EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return ok && n == 32 ? 0 : -1;
}

static int lock_file(const char *dir, const char *name, int how) {
  char p[4096];
  if (path_of(p, sizeof p, dir, name, NULL) < 0)
    return -1;
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  while (flock(fd, how) != 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

static void unlock_file(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}

int mcpr__spool_lock_delivery(const char *dir) { return lock_file(dir, "delivery.lock", LOCK_EX | LOCK_NB); }
void mcpr__spool_unlock_delivery(int fd) { unlock_file(fd); }

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

mcpr_status mcpr__spool_prepare(const char *dir, mcpr_error *err) {
  char p[4096];
  const char *subs[] = {NULL, "rejected", "corrupt"};
  for (size_t i = 0; i < 3; i++) {
    if (subs[i] ? path_of(p, sizeof p, dir, subs[i], NULL) < 0
                : snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
      return mcpr_error_set(err, MCPR_EINVAL, "spool path too long");
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
      return mcpr_error_set(err, errno == ENOSPC ? MCPR_EDISKFULL : MCPR_EIO,
                            "cannot create the spool directory %s: %s", p, strerror(errno));
  }
  return MCPR_OK;
}

/* --- state.json --- */

static void state_read(const char *dir, mcpr_spool_status *s) {
  char p[4096];
  if (path_of(p, sizeof p, dir, "state.json", NULL) < 0)
    return;
  json_t *root = json_load_file(p, 0, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    return;
  }
#define RD(f) s->f = (uint64_t)json_integer_value(json_object_get(root, #f))
  RD(delivered_batches);
  RD(delivered_events);
  RD(rejected_batches);
  RD(rejected_events);
  RD(dropped_batches);
  RD(dropped_events);
  RD(corrupt_records);
#undef RD
  s->last_error_at_ms = json_integer_value(json_object_get(root, "last_error_at_ms"));
  s->last_delivery_at_ms = json_integer_value(json_object_get(root, "last_delivery_at_ms"));
  s->paused = json_is_true(json_object_get(root, "paused"));
  const char *le = json_string_value(json_object_get(root, "last_error"));
  snprintf(s->last_error, sizeof s->last_error, "%s", le ? le : "");
  json_decref(root);
}

static void state_write(const char *dir, const mcpr_spool_status *s) {
  char p[4096], tmp[4096];
  if (path_of(p, sizeof p, dir, "state.json", NULL) < 0 ||
      path_of(tmp, sizeof tmp, dir, ".state.json.tmp", NULL) < 0)
    return;
  json_t *root = json_pack(
      "{sI sI sI sI sI sI sI ss sI sI sb}", "delivered_batches", (json_int_t)s->delivered_batches,
      "delivered_events", (json_int_t)s->delivered_events, "rejected_batches",
      (json_int_t)s->rejected_batches, "rejected_events", (json_int_t)s->rejected_events,
      "dropped_batches", (json_int_t)s->dropped_batches, "dropped_events",
      (json_int_t)s->dropped_events, "corrupt_records", (json_int_t)s->corrupt_records,
      "last_error", s->last_error, "last_error_at_ms", (json_int_t)s->last_error_at_ms,
      "last_delivery_at_ms", (json_int_t)s->last_delivery_at_ms, "paused", s->paused);
  if (root && json_dump_file(root, tmp, JSON_COMPACT) == 0)
    rename(tmp, p);
  json_decref(root);
}

typedef void (*state_fn)(mcpr_spool_status *s, const void *ctx);

static void state_update(const char *dir, state_fn fn, const void *ctx) {
  int fd = lock_file(dir, "state.lock", LOCK_EX);
  mcpr_spool_status s;
  memset(&s, 0, sizeof s);
  state_read(dir, &s);
  fn(&s, ctx);
  state_write(dir, &s);
  unlock_file(fd);
}

typedef struct counted {
  uint32_t nevents;
  const char *message;
  bool paused;
} counted;

static void on_delivered(mcpr_spool_status *s, const void *ctx) {
  const counted *c = ctx;
  s->delivered_batches++;
  s->delivered_events += c->nevents;
  s->last_delivery_at_ms = mcpr_now_ms();
  s->paused = false;
}
static void on_rejected(mcpr_spool_status *s, const void *ctx) {
  const counted *c = ctx;
  s->rejected_batches++;
  s->rejected_events += c->nevents;
  snprintf(s->last_error, sizeof s->last_error, "%s", c->message);
  s->last_error_at_ms = mcpr_now_ms();
}
static void on_corrupt(mcpr_spool_status *s, const void *ctx) {
  const counted *c = ctx;
  s->corrupt_records++;
  snprintf(s->last_error, sizeof s->last_error, "%s", c->message);
  s->last_error_at_ms = mcpr_now_ms();
}
static void on_dropped(mcpr_spool_status *s, const void *ctx) {
  const counted *c = ctx;
  s->dropped_batches++;
  s->dropped_events += c->nevents;
}
static void on_error(mcpr_spool_status *s, const void *ctx) {
  const counted *c = ctx;
  snprintf(s->last_error, sizeof s->last_error, "%s", c->message);
  s->last_error_at_ms = mcpr_now_ms();
  if (c->paused)
    s->paused = true;
}

void mcpr__spool_delivered(const char *dir, const char *name, uint32_t nevents) {
  char p[4096];
  if (path_of(p, sizeof p, dir, name, NULL) == 0 && unlink(p) == 0) {
    counted c = {nevents, NULL, false};
    state_update(dir, on_delivered, &c);
  }
}

void mcpr__spool_note_error(const char *dir, const char *message, bool paused) {
  counted c = {0, message, paused};
  state_update(dir, on_error, &c);
}

void mcpr__spool_set_aside(const char *dir, const char *name, const char *sub, uint32_t nevents,
                           const char *reason) {
  char from[4096], to[4096], why[4096];
  if (path_of(from, sizeof from, dir, name, NULL) < 0 || path_of(to, sizeof to, dir, sub, name) < 0 ||
      snprintf(why, sizeof why, "%s.reason", to) >= (int)sizeof why)
    return;
  if (rename(from, to) != 0)
    return; /* another process moved it first */
  FILE *f = fopen(why, "w");
  if (f) {
    fprintf(f, "%s\n", reason);
    fclose(f);
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", name, reason);
  counted c = {nevents, msg, false};
  state_update(dir, strcmp(sub, "rejected") == 0 ? on_rejected : on_corrupt, &c);
}

/* --- records --- */

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const mcpr__spool_entry *)a)->name, ((const mcpr__spool_entry *)b)->name);
}

static bool is_record_name(const char *n) {
  size_t len = strlen(n);
  return strncmp(n, "b-", 2) == 0 && len > 6 && len < MCPR__SPOOL_NAME_MAX &&
         strcmp(n + len - 4, ".rec") == 0;
}

mcpr_status mcpr__spool_list(const char *dir, mcpr__spool_entry **out, size_t *n, mcpr_error *err) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT)
      return MCPR_OK;
    return mcpr_error_set(err, MCPR_EIO, "cannot read the spool %s: %s", dir, strerror(errno));
  }
  size_t cap = 0;
  mcpr__spool_entry *v = NULL;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!is_record_name(de->d_name))
      continue;
    char p[4096];
    struct stat sb;
    if (path_of(p, sizeof p, dir, de->d_name, NULL) < 0 || stat(p, &sb) != 0)
      continue;
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      mcpr__spool_entry *nv = realloc(v, nc * sizeof *nv);
      if (!nv) {
        free(v);
        closedir(d);
        return mcpr_error_set(err, MCPR_ENOMEM, "out of memory listing the spool");
      }
      v = nv;
      cap = nc;
    }
    /* is_record_name() bounded the length; copy exactly that many bytes
     * (a snprintf of a d_name, up to NAME_MAX, trips -Wformat-truncation) */
    size_t name_len = strlen(de->d_name);
    if (name_len >= sizeof v[*n].name)
      continue;
    memcpy(v[*n].name, de->d_name, name_len + 1);
    v[*n].size = (uint64_t)sb.st_size;
    (*n)++;
  }
  closedir(d);
  if (*n)
    qsort(v, *n, sizeof *v, cmp_entry);
  *out = v;
  return MCPR_OK;
}

void mcpr__spool_record_release(mcpr__spool_record *rec) {
  if (rec) {
    free(rec->body);
    memset(rec, 0, sizeof *rec);
  }
}

mcpr_status mcpr__spool_read(const char *dir, const char *name, mcpr__spool_record *rec,
                             mcpr_error *err) {
  memset(rec, 0, sizeof *rec);
  char p[4096];
  if (path_of(p, sizeof p, dir, name, NULL) < 0)
    return mcpr_error_set(err, MCPR_EINVAL, "spool path too long");
  FILE *f = fopen(p, "rb");
  if (!f)
    return mcpr_error_set(err, errno == ENOENT ? MCPR_ENOTFOUND : MCPR_EIO, "cannot open %s: %s",
                          name, strerror(errno));
  mcpr_status st = MCPR_OK;
  unsigned char hdr[HDR_LEN], sum[32];
  if (fread(hdr, 1, HDR_LEN, f) != HDR_LEN) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "torn record: header incomplete");
    goto out;
  }
  if (memcmp(hdr, MAGIC, 8) != 0) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "not a spool record (bad magic)");
    goto out;
  }
  uint32_t len = get_u32(hdr + 8);
  if (len > BODY_MAX) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "damaged record: body length %u", len);
    goto out;
  }
  rec->body = malloc((size_t)len + 1);
  if (!rec->body) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading %s", name);
    goto out;
  }
  size_t got = fread(rec->body, 1, len, f);
  if (got != len) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "torn record: %zu of %u body bytes", got, len);
    goto out;
  }
  if (fgetc(f) != EOF) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "damaged record: trailing bytes");
    goto out;
  }
  if (checksum(hdr, rec->body, len, sum) != 0 || memcmp(sum, hdr + 60, 32) != 0) {
    st = mcpr_error_set(err, MCPR_ECORRUPT, "damaged record: checksum mismatch");
    goto out;
  }
  rec->body[len] = 0;
  rec->body_len = len;
  rec->nevents = get_u32(hdr + 12);
  rec->created_ms = (int64_t)get_u64(hdr + 16);
  memcpy(rec->key, hdr + 24, MCPR__SPOOL_KEY_LEN);
  rec->key[MCPR__SPOOL_KEY_LEN] = 0;
out:
  fclose(f);
  if (st != MCPR_OK)
    mcpr__spool_record_release(rec);
  return st;
}

static uint32_t record_events(const char *dir, const char *name) {
  mcpr__spool_record rec;
  if (mcpr__spool_read(dir, name, &rec, NULL) != MCPR_OK)
    return 0;
  uint32_t n = rec.nevents;
  mcpr__spool_record_release(&rec);
  return n;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

mcpr_status mcpr__spool_append(const char *dir, const char *body, size_t len, uint32_t nevents,
                               uint64_t max_bytes, mcpr_error *err) {
  if (len > BODY_MAX)
    return mcpr_error_set(err, MCPR_ETOOBIG, "batch of %zu bytes is too large to spool", len);
  mcpr_status st = mcpr__spool_prepare(dir, err);
  if (st != MCPR_OK)
    return st;
  int64_t now = mcpr_now_ms();
  unsigned n = atomic_fetch_add(&g_counter, 1);
  char name[MCPR__SPOOL_NAME_MAX], tmp_name[MCPR__SPOOL_NAME_MAX], path[4096], tmp[4096];
  snprintf(name, sizeof name, "b-%013lld-%07d-%06u.rec", (long long)now, (int)getpid(), n % 1000000u);
  snprintf(tmp_name, sizeof tmp_name, ".tmp-%d-%u", (int)getpid(), n);
  if (path_of(path, sizeof path, dir, name, NULL) < 0 || path_of(tmp, sizeof tmp, dir, tmp_name, NULL) < 0)
    return mcpr_error_set(err, MCPR_EINVAL, "spool path too long");

  unsigned char hdr[HDR_LEN];
  memcpy(hdr, MAGIC, 8);
  put_u32(hdr + 8, (uint32_t)len);
  put_u32(hdr + 12, nevents);
  put_u64(hdr + 16, (uint64_t)now);
  char key[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(now, key);
  memcpy(hdr + 24, key, MCPR__SPOOL_KEY_LEN);
  if (checksum(hdr, body, len, hdr + 60) != 0)
    return mcpr_error_set(err, MCPR_ENOMEM, "cannot checksum a batch");

  /* The cap: drop the oldest records until the new one fits. */
  int lk = lock_file(dir, "append.lock", LOCK_EX);
  mcpr__spool_entry *v = NULL;
  size_t nv = 0;
  if (mcpr__spool_list(dir, &v, &nv, NULL) == MCPR_OK) {
    uint64_t total = 0;
    for (size_t i = 0; i < nv; i++)
      total += v[i].size;
    for (size_t i = 0; i < nv && total + HDR_LEN + len > max_bytes; i++) {
      char p[4096];
      uint32_t ev = record_events(dir, v[i].name);
      if (path_of(p, sizeof p, dir, v[i].name, NULL) == 0 && unlink(p) == 0) {
        counted c = {ev, NULL, false};
        state_update(dir, on_dropped, &c);
        total -= v[i].size;
      }
    }
  }
  free(v);

  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    st = mcpr_error_set(err, errno == ENOSPC ? MCPR_EDISKFULL : MCPR_EIO, "cannot create %s: %s",
                        tmp, strerror(errno));
    goto out;
  }
  if (write_all(fd, hdr, HDR_LEN) != 0 || write_all(fd, body, len) != 0 || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    st = mcpr_error_set(err, e == ENOSPC ? MCPR_EDISKFULL : MCPR_EIO, "cannot write the spool: %s",
                        strerror(e));
    goto out;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    st = mcpr_error_set(err, MCPR_EIO, "cannot rename into the spool: %s", strerror(e));
    goto out;
  }
  fsync_dir(dir);
out:
  unlock_file(lk);
  return st;
}

void mcpr__spool_sweep(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int pid = 0;
    unsigned n = 0;
    if (sscanf(de->d_name, ".tmp-%d-%u", &pid, &n) != 2)
      continue;
    if (pid == (int)getpid() || kill(pid, 0) == 0 || errno != ESRCH)
      continue; /* its writer may still be at work */
    mcpr__spool_set_aside(dir, de->d_name, "corrupt", 0,
                          "torn record: its writer died before finishing it");
  }
  closedir(d);
}

mcpr_status mcpr__spool_status(const char *dir, mcpr_spool_status *out, mcpr_error *err) {
  memset(out, 0, sizeof *out);
  int fd = lock_file(dir, "state.lock", LOCK_SH);
  state_read(dir, out);
  unlock_file(fd);
  mcpr__spool_entry *v = NULL;
  size_t n = 0;
  mcpr_status st = mcpr__spool_list(dir, &v, &n, err);
  if (st != MCPR_OK)
    return st;
  for (size_t i = 0; i < n; i++) {
    out->pending_batches++;
    out->pending_bytes += v[i].size;
    out->pending_events += record_events(dir, v[i].name);
  }
  free(v);
  return MCPR_OK;
}
