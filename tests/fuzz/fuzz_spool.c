/*
 * fuzz_spool.c — libFuzzer target for the cloud spool's record reader
 * (sink/spool.h) and its state file.
 *
 * A record carries a SHA-256 over its header and body, so random bytes
 * would almost never get past the checksum. The input therefore describes
 * a spool directory: chunks separated by "#REC#", each starting with a
 * kind byte:
 *   0  the rest of the chunk written as a record file, raw;
 *   1  a good record whose body is the rest of the chunk (built here, by
 *      the format documented at the top of spool.c);
 *   2  a good record with one byte flipped (position from the chunk);
 *   3  a good record cut short;
 *   4  the rest of the chunk as state.json (the counters file).
 * Then it runs what the cloud sink does on each delivery pass: status,
 * list, read every record, set damaged ones aside into corrupt/.
 * Properties: no crash/leak/sanitizer report; every good record reads
 * back with its exact body, event count, time and key, and is still in the
 * spool afterwards; a record that fails to read says why.
 */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/spool.h"

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

#define SEP "#REC#"
#define MAX_RECORDS 16
#define HDR_LEN 92

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[256];

static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
  close(fd);
}

/* Header + body of a record as mcpr__spool_append writes it. *len out. */
static unsigned char *good_record(const uint8_t *body, size_t len, uint32_t nevents,
                                  uint64_t created_ms, const char *key, size_t *out_len) {
  unsigned char *r = malloc(HDR_LEN + len);
  CHECK(r != NULL);
  memcpy(r, "MCPRSPL1", 8);
  put_le(r + 8, len, 4);
  put_le(r + 12, nevents, 4);
  put_le(r + 16, created_ms, 8);
  memcpy(r + 24, key, 36);
  if (len)
    memcpy(r + HDR_LEN, body, len);
  unsigned int n = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  CHECK(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, r + 8, 52) &&
        EVP_DigestUpdate(ctx, body, len) && EVP_DigestFinal_ex(ctx, r + 60, &n) && n == 32);
  EVP_MD_CTX_free(ctx);
  *out_len = HDR_LEN + len;
  return r;
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end) {
  size_t k = strlen(SEP);
  for (; (size_t)(end - p) >= k; p++)
    if (memcmp(p, SEP, k) == 0)
      return p;
  return NULL;
}

static void clear_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (de->d_type == DT_DIR)
      clear_dir(p), rmdir(p);
    else
      unlink(p);
  }
  closedir(d);
}

typedef struct expected {
  char name[MCPR__SPOOL_NAME_MAX];
  const uint8_t *body;
  size_t len;
  uint32_t nevents;
  uint64_t created_ms;
  char key[37];
} expected;

static void remove_dir(void) {
  clear_dir(g_dir);
  rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_dir[0]) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/mcpr-fuzz-spool-XXXXXX", base);
    CHECK(mkdtemp(g_dir) != NULL);
    atexit(remove_dir);
  }
  clear_dir(g_dir);
  mcpr_error err = {0};
  CHECK(mcpr__spool_prepare(g_dir, &err) == MCPR_OK);

  expected good[MAX_RECORDS];
  size_t n_good = 0, n_files = 0, n_record_files = 0;
  const uint8_t *p = data, *end = data + size;
  while (p < end && n_files < MAX_RECORDS) {
    const uint8_t *sep = find_sep(p, end);
    const uint8_t *stop = sep ? sep : end;
    int kind = *p % 5;
    const uint8_t *body = p + 1;
    size_t len = stop > body ? (size_t)(stop - body) : 0;
    char name[MCPR__SPOOL_NAME_MAX];
    snprintf(name, sizeof name, "b-%013zu-0000001-%06zu.rec", 1700000000000 + n_files, n_files);
    if (kind == 4) {
      write_file(g_dir, "state.json", body, len);
    } else if (kind == 0) {
      write_file(g_dir, name, body, len);
      n_record_files++;
    } else {
      n_record_files++;
      char key[37];
      snprintf(key, sizeof key, "019b76a3-bd68-7a3b-8199-%012zu", n_files);
      uint32_t nevents = (uint32_t)(len * 7 + n_files);
      size_t rlen;
      unsigned char *r = good_record(body, len, nevents, 1700000000000 + n_files, key, &rlen);
      size_t at = len ? (size_t)body[0] * 131 % rlen : 0;
      if (kind == 2)
        r[at] ^= 0x5a;
      write_file(g_dir, name, r, kind == 3 ? at : rlen);
      free(r);
      if (kind == 1) {
        expected *e = &good[n_good++];
        snprintf(e->name, sizeof e->name, "%s", name);
        e->body = body;
        e->len = len;
        e->nevents = nevents;
        e->created_ms = 1700000000000 + n_files;
        memcpy(e->key, key, sizeof key);
      }
    }
    n_files++;
    p = sep ? sep + strlen(SEP) : end;
  }

  mcpr_spool_status status;
  CHECK(mcpr__spool_status(g_dir, &status, &err) == MCPR_OK);
  CHECK(status.pending_batches == n_record_files);

  mcpr__spool_entry *v = NULL;
  size_t nv = 0;
  CHECK(mcpr__spool_list(g_dir, &v, &nv, &err) == MCPR_OK);
  size_t n_ok = 0;
  for (size_t i = 0; i < nv; i++) {
    mcpr__spool_record rec;
    mcpr_error rerr = {0};
    mcpr_status st = mcpr__spool_read(g_dir, v[i].name, &rec, &rerr);
    const expected *e = NULL;
    for (size_t k = 0; k < n_good; k++)
      if (strcmp(good[k].name, v[i].name) == 0)
        e = &good[k];
    if (e) {
      CHECK(st == MCPR_OK);
      CHECK(rec.body_len == e->len && memcmp(rec.body, e->body, e->len) == 0);
      CHECK(rec.body[rec.body_len] == '\0');
      CHECK(rec.nevents == e->nevents && (uint64_t)rec.created_ms == e->created_ms);
      CHECK(strcmp(rec.key, e->key) == 0);
    }
    if (st == MCPR_OK) {
      n_ok++;
      mcpr__spool_record_release(&rec);
    } else {
      CHECK(rerr.message[0] != '\0');
      if (st == MCPR_ECORRUPT)
        mcpr__spool_set_aside(g_dir, v[i].name, "corrupt", 0, rerr.message);
    }
  }
  free(v);
  CHECK(n_ok >= n_good);

  /* Every good record is still pending; the damaged ones are gone from it. */
  CHECK(mcpr__spool_list(g_dir, &v, &nv, &err) == MCPR_OK);
  CHECK(nv == n_ok);
  for (size_t k = 0; k < n_good; k++) {
    bool found = false;
    for (size_t i = 0; i < nv; i++)
      found = found || strcmp(v[i].name, good[k].name) == 0;
    CHECK(found);
  }
  free(v);
  CHECK(mcpr__spool_status(g_dir, &status, &err) == MCPR_OK);
  CHECK(status.pending_batches == n_ok);
  return 0;
}
