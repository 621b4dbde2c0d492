/*
 * faultvfs.c — see faultvfs.h.
 *
 * Each file opened through the VFS is a fault_file followed in the same
 * allocation (szOsFile) by the real VFS's file object. Methods forward to
 * the real file; xWrite and xSync consult the fault knobs first. Only main
 * database and WAL files are subject to faults and counted in the byte
 * total: those are what a full disk or a failing device hits in the store.
 * Each file's size is touched only under its connection's mutex (SQLite
 * serialises calls on one file), so a plain per-file field is enough; the
 * shared total is an atomic.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "faultvfs.h"

static struct {
  _Atomic int64_t quota;
  _Atomic int write_rc;
  _Atomic int sync_rc;
  _Atomic int64_t total;
  _Atomic uint64_t failed_writes;
  _Atomic uint64_t failed_syncs;
} g;

typedef struct fault_file {
  sqlite3_file base;
  sqlite3_file *real;
  bool tracked;   /* main database or WAL */
  int64_t size;   /* bytes counted in g.total for this file */
} fault_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int register_rc = SQLITE_OK;

/* ---------- file methods ---------- */

static int f_close(sqlite3_file *f) {
  fault_file *p = (fault_file *)f;
  if (p->tracked)
    atomic_fetch_sub(&g.total, p->size);
  return p->real->pMethods->xClose(p->real);
}

static int f_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xRead(p->real, buf, amt, off);
}

static int f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
  fault_file *p = (fault_file *)f;
  int64_t end = (int64_t)off + amt;
  if (p->tracked) {
    int forced = atomic_load(&g.write_rc);
    if (forced) {
      atomic_fetch_add(&g.failed_writes, 1);
      return forced;
    }
    int64_t quota = atomic_load(&g.quota);
    if (quota > 0 && end > p->size && atomic_load(&g.total) + (end - p->size) > quota) {
      atomic_fetch_add(&g.failed_writes, 1);
      return SQLITE_FULL;
    }
  }
  int rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
  if (rc == SQLITE_OK && p->tracked && end > p->size) {
    atomic_fetch_add(&g.total, end - p->size);
    p->size = end;
  }
  return rc;
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
  fault_file *p = (fault_file *)f;
  int rc = p->real->pMethods->xTruncate(p->real, size);
  if (rc == SQLITE_OK && p->tracked && size < p->size) {
    atomic_fetch_sub(&g.total, p->size - size);
    p->size = size;
  }
  return rc;
}

static int f_sync(sqlite3_file *f, int flags) {
  fault_file *p = (fault_file *)f;
  if (p->tracked) {
    int forced = atomic_load(&g.sync_rc);
    if (forced) {
      atomic_fetch_add(&g.failed_syncs, 1);
      return forced;
    }
  }
  return p->real->pMethods->xSync(p->real, flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xFileSize(p->real, size);
}

static int f_lock(sqlite3_file *f, int lock) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xLock(p->real, lock);
}

static int f_unlock(sqlite3_file *f, int lock) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xUnlock(p->real, lock);
}

static int f_check_reserved(sqlite3_file *f, int *out) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int f_sector_size(sqlite3_file *f) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xSectorSize(p->real);
}

static int f_device_chars(sqlite3_file *f) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, out);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f) {
  fault_file *p = (fault_file *)f;
  p->real->pMethods->xShmBarrier(p->real);
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xShmUnmap(p->real, delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xFetch(p->real, off, amt, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr) {
  fault_file *p = (fault_file *)f;
  return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

/* SQLite reads iVersion of the methods a file carries to decide whether
 * it may call the shm and mmap methods: mirror the real file's version. */
static const sqlite3_io_methods methods_v3 = {
    3,           f_close,          f_read,         f_write,          f_truncate,
    f_sync,      f_file_size,      f_lock,         f_unlock,         f_check_reserved,
    f_file_control, f_sector_size, f_device_chars, f_shm_map,        f_shm_lock,
    f_shm_barrier, f_shm_unmap,    f_fetch,        f_unfetch,
};
static const sqlite3_io_methods methods_v1 = {
    1,           f_close,          f_read,         f_write,          f_truncate,
    f_sync,      f_file_size,      f_lock,         f_unlock,         f_check_reserved,
    f_file_control, f_sector_size, f_device_chars, NULL,             NULL,
    NULL,        NULL,             NULL,           NULL,
};

/* ---------- VFS methods ---------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                  int *out_flags) {
  (void)vfs;
  fault_file *p = (fault_file *)f;
  memset(p, 0, sizeof *p);
  p->real = (sqlite3_file *)&p[1];
  int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
  if (rc != SQLITE_OK || !p->real->pMethods) {
    p->base.pMethods = NULL; /* SQLite will not call xClose */
    return rc;
  }
  p->tracked = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
  if (p->tracked) {
    sqlite3_int64 size = 0;
    if (p->real->pMethods->xFileSize(p->real, &size) == SQLITE_OK && size > 0) {
      p->size = size;
      atomic_fetch_add(&g.total, size);
    }
  }
  p->base.pMethods = p->real->pMethods->iVersion >= 3 ? &methods_v3 : &methods_v1;
  return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
  (void)vfs;
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void) {
  (void)vfs;
  return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h) {
  (void)vfs;
  real_vfs->xDlClose(real_vfs, h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64)
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
  double d = 0;
  int rc = real_vfs->xCurrentTime(real_vfs, &d);
  *out = (sqlite3_int64)(d * 86400000.0);
  return rc;
}

static void do_register(void) {
  if (sqlite3_initialize() != SQLITE_OK || !(real_vfs = sqlite3_vfs_find(NULL))) {
    register_rc = SQLITE_ERROR;
    return;
  }
  fault_vfs = (sqlite3_vfs){
      .iVersion = 2,
      .szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile,
      .mxPathname = real_vfs->mxPathname,
      .zName = FAULTVFS_NAME,
      .xOpen = v_open,
      .xDelete = v_delete,
      .xAccess = v_access,
      .xFullPathname = v_full_pathname,
      .xDlOpen = v_dlopen,
      .xDlError = v_dlerror,
      .xDlSym = v_dlsym,
      .xDlClose = v_dlclose,
      .xRandomness = v_randomness,
      .xSleep = v_sleep,
      .xCurrentTime = v_current_time,
      .xGetLastError = v_last_error,
      .xCurrentTimeInt64 = v_current_time64,
  };
  register_rc = sqlite3_vfs_register(&fault_vfs, 0);
}

int faultvfs_register(void) {
  pthread_once(&once, do_register);
  return register_rc;
}

void faultvfs_reset(void) {
  atomic_store(&g.quota, 0);
  atomic_store(&g.write_rc, 0);
  atomic_store(&g.sync_rc, 0);
  atomic_store(&g.failed_writes, 0);
  atomic_store(&g.failed_syncs, 0);
}

void faultvfs_set_quota(int64_t quota_bytes) { atomic_store(&g.quota, quota_bytes); }
void faultvfs_fail_writes(int sqlite_rc) { atomic_store(&g.write_rc, sqlite_rc); }
void faultvfs_fail_syncs(int sqlite_rc) { atomic_store(&g.sync_rc, sqlite_rc); }
int64_t faultvfs_bytes(void) { return atomic_load(&g.total); }
uint64_t faultvfs_failed_writes(void) { return atomic_load(&g.failed_writes); }
uint64_t faultvfs_failed_syncs(void) { return atomic_load(&g.failed_syncs); }
