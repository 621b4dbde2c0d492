/*
 * A full disk and failing I/O (SPEC §5: every event that is not written is
 * counted, by cause; nothing is dropped silently).
 *
 * The store is opened on tests/support/faultvfs, which makes writes fail
 * with SQLITE_FULL past a byte quota or on demand, and writes or syncs
 * fail with SQLITE_IOERR_* on demand. For each fault:
 *
 *   - transient (space or the device comes back within io_retry_limit_ms):
 *     the writer retries, nothing is lost, nothing counted as failed;
 *   - lasting (io_retry_limit_ms = 300): the batch is counted in
 *     failed_disk_full / failed_io, mcpr_store_flush() returns the cause
 *     and says how many, later events are written once the fault is gone,
 *     and written + duplicates + failed + refused == offered after close.
 *
 * Every case ends with PRAGMA integrity_check == "ok". While the disk is
 * full, record() keeps accepting (or refuses with a counted
 * MCPR_EQUEUEFULL once the queue is full). Last, the same on a real tiny
 * tmpfs filled with a filler file, when this process may mount one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultvfs.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

/* A 300-character message makes each event a few hundred bytes, so a
 * batch needs new WAL space. */
static const char LONG_MSG[] =
    "upstream failed: "
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/* Records n events tagged with `phase`; returns how many were accepted and
 * adds refusals for a full queue to *refused_full. Any other result fails. */
static uint64_t record_n(mcpr_store *s, const char *phase, int n, uint64_t *refused_full) {
  uint64_t accepted = 0;
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%06d", phase, i);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1700000000000 + i,
                                       .proxy = phase, .method = "tools/call",
                                       .tool = "search", .latency_us = i,
                                       .status = MCPR_REQUEST_ERROR, .error_code = "-32000",
                                       .error_msg = LONG_MSG, .bytes_in = i,
                                       .bytes_out = -1};
    mcpr_status st = mcpr_store_record(s, &e);
    if (st == MCPR_OK)
      accepted++;
    else if (st == MCPR_EQUEUEFULL && refused_full)
      (*refused_full)++;
    else
      fail_msg("record %s %d: %s", phase, i, mcpr_status_name(st));
  }
  return accepted;
}

static void assert_integrity_ok(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Polls until the writer has failed and retried at least once. */
static void wait_for_retry(mcpr_store *s, bool (*fault_hit)(void)) {
  mcpr_store_stats st;
  for (int i = 0; i < 2000; i++) {
    mcpr_store_stats_get(s, &st);
    if (fault_hit() && st.retries > 0)
      return;
    tu_sleep_ms(5);
  }
  fail_msg("the writer never hit the injected fault (retries %llu)",
           (unsigned long long)st.retries);
}

static bool write_fault_hit(void) { return faultvfs_failed_writes() > 0; }
static bool sync_fault_hit(void) { return faultvfs_failed_syncs() > 0; }

/* ---------- one fault, transient or lasting ---------- */

typedef enum fault_kind {
  FAULT_FULL,        /* every write: SQLITE_FULL */
  FAULT_QUOTA,       /* writes that grow the files: SQLITE_FULL */
  FAULT_IOERR_WRITE, /* every write: SQLITE_IOERR_WRITE */
  FAULT_IOERR_FSYNC, /* every sync: SQLITE_IOERR_FSYNC */
} fault_kind;

static void inject(fault_kind kind, const char *path) {
  switch (kind) {
  case FAULT_FULL:
    faultvfs_fail_writes(SQLITE_FULL);
    break;
  case FAULT_QUOTA:
    faultvfs_set_quota(faultvfs_bytes()); /* not one more byte */
    break;
  case FAULT_IOERR_WRITE:
    faultvfs_fail_writes(SQLITE_IOERR_WRITE);
    break;
  case FAULT_IOERR_FSYNC: {
    /* In WAL mode with synchronous=NORMAL a commit syncs only when it
     * starts a new WAL (its header). Empty the WAL from the side, so the
     * writer's next batch starts one and meets the failing sync. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    /* A read first: until then the connection has not seen the file is WAL. */
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM meta", NULL, NULL, NULL), SQLITE_OK);
    int log = -1, ckpt = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt),
                     SQLITE_OK);
    assert_int_equal(log, 0);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    faultvfs_fail_syncs(SQLITE_IOERR_FSYNC);
    break;
  }
  }
}

/* Options that open a store on the fault VFS, registered and with no
 * fault armed. */
static void fault_options(mcpr_store_options *opts) {
  assert_int_equal(faultvfs_register(), SQLITE_OK);
  faultvfs_reset();
  mcpr_store_options_init(opts);
  opts->vfs_name = FAULTVFS_NAME;
}

/* A new store.db in a new temporary directory (*dir, *path: new strings),
 * opened with opts; fails the test when it does not open. */
static mcpr_store *open_in_tmpdir(const mcpr_store_options *opts, char **dir, char **path) {
  *dir = tu_tmpdir();
  *path = tu_path(*dir, "store.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, *path, opts, &err) != MCPR_OK)
    fail_msg("opening %s: %s", *path, err.message);
  return s;
}

static void run_fault(fault_kind kind, bool lasting) {
  char *dir, *path;
  mcpr_store_options opts;
  fault_options(&opts);
  opts.io_retry_limit_ms = lasting ? 300 : 60000;
  mcpr_store *s = open_in_tmpdir(&opts, &dir, &path);
  mcpr_error err = {0};

  uint64_t offered = 0, accepted = 0;
  accepted += record_n(s, "before", 10, NULL);
  offered += 10;
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);

  inject(kind, path);
  accepted += record_n(s, "during", 100, NULL);
  offered += 100;
  bool (*hit)(void) = kind == FAULT_IOERR_FSYNC ? sync_fault_hit : write_fault_hit;
  mcpr_status cause = (kind == FAULT_FULL || kind == FAULT_QUOTA) ? MCPR_EDISKFULL : MCPR_EIO;
  mcpr_store_stats st;
  if (lasting) {
    mcpr_error_clear(&err);
    assert_int_equal(mcpr_store_flush(s, 60000, &err), cause);
    assert_int_equal(err.status, cause);
    assert_non_null(strstr(err.message, "100 events")); /* says how many */
    mcpr_store_stats_get(s, &st);
    assert_int_equal(cause == MCPR_EDISKFULL ? st.failed_disk_full : st.failed_io, 100);
    assert_int_equal(mcpr_store_stats_failed(&st), 100);
    assert_int_equal(st.last_error, cause);
    assert_true(hit());
  } else {
    wait_for_retry(s, hit);
    mcpr_store_stats_get(s, &st);
    assert_int_equal(st.written, 10); /* held back, not lost */
    assert_int_equal(mcpr_store_stats_failed(&st), 0);
    assert_int_equal(st.last_error, cause);
  }
  faultvfs_reset(); /* the space / the device is back */
  if (!lasting)
    assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
  accepted += record_n(s, "after", 50, NULL);
  offered += 50;
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);

  mcpr_store_stats fin;
  mcpr_status cst = mcpr_store_close(s, &fin);
  assert_int_equal(cst, lasting ? cause : MCPR_OK);
  assert_int_equal(fin.accepted, accepted);
  assert_int_equal(accepted, offered);
  uint64_t failed = mcpr_store_stats_failed(&fin);
  assert_int_equal(failed, lasting ? 100 : 0);
  assert_int_equal(fin.written, lasting ? 60 : 160);
  assert_int_equal(fin.written + fin.duplicates + failed + mcpr_store_stats_refused(&fin),
                   offered);
  assert_integrity_ok(path);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)fin.written);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy='during'"),
                   lasting ? 0 : 100);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy='after'"), 50);
  faultvfs_reset();
  free(path);
  tu_rmdir(dir);
}

static void test_full_transient(void **state) { (void)state; run_fault(FAULT_FULL, false); }
static void test_full_lasting(void **state) { (void)state; run_fault(FAULT_FULL, true); }
static void test_quota_transient(void **state) { (void)state; run_fault(FAULT_QUOTA, false); }
static void test_quota_lasting(void **state) { (void)state; run_fault(FAULT_QUOTA, true); }
static void test_ioerr_write_transient(void **state) {
  (void)state;
  run_fault(FAULT_IOERR_WRITE, false);
}
static void test_ioerr_write_lasting(void **state) {
  (void)state;
  run_fault(FAULT_IOERR_WRITE, true);
}
static void test_ioerr_fsync_transient(void **state) {
  (void)state;
  run_fault(FAULT_IOERR_FSYNC, false);
}
static void test_ioerr_fsync_lasting(void **state) {
  (void)state;
  run_fault(FAULT_IOERR_FSYNC, true);
}

/* ---------- flush as a durability barrier ---------- */

/*
 * store.h: flush "returns MCPR_OK when all of [the events accepted before
 * this call] were written". A caller that takes MCPR_OK as "everything I
 * handed over is on disk" (as a proxy checkpointing its input would) must
 * not get it when some of those events were given up on before it asked.
 */
static void test_flush_after_batch_failed_reports_it(void **state) {
  (void)state;
  char *dir, *path;
  mcpr_store_options opts;
  fault_options(&opts);
  opts.io_retry_limit_ms = 300;
  mcpr_store *s = open_in_tmpdir(&opts, &dir, &path);
  mcpr_error err = {0};

  faultvfs_fail_writes(SQLITE_FULL);
  assert_int_equal(record_n(s, "lost", 100, NULL), 100);
  mcpr_store_stats st;
  for (int i = 0; i < 2000; i++) {
    mcpr_store_stats_get(s, &st);
    if (st.failed_disk_full == 100)
      break;
    tu_sleep_ms(5);
  }
  assert_int_equal(st.failed_disk_full, 100); /* given up before anyone flushed */
  faultvfs_reset();

  mcpr_error_clear(&err);
  mcpr_status fst = mcpr_store_flush(s, 10000, &err);
  mcpr_store_stats fin;
  mcpr_status cst = mcpr_store_close(s, &fin);
  free(path);
  tu_rmdir(dir); /* before the checks, so a failure leaves nothing behind */
  if (fst != MCPR_EDISKFULL)
    fail_msg("flush after 100 events were given up on returned %s (\"%s\"), want EDISKFULL",
             mcpr_status_name(fst), err.message);
  assert_non_null(strstr(err.message, "100 events"));
  assert_int_equal(cst, MCPR_EDISKFULL);
  assert_int_equal(fin.failed_disk_full, 100);
}

/* ---------- fsync failing at close ---------- */

/* Closing checkpoints the WAL into the database, which syncs. If those
 * syncs fail, what was committed stays in the WAL: nothing is lost. */
static void test_close_while_syncs_fail_loses_nothing(void **state) {
  (void)state;
  char *dir, *path;
  mcpr_store_options opts;
  fault_options(&opts);
  mcpr_store *s = open_in_tmpdir(&opts, &dir, &path);
  mcpr_error err = {0};
  assert_int_equal(record_n(s, "kept", 300, NULL), 300);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  faultvfs_fail_syncs(SQLITE_IOERR_FSYNC);
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(fin.written, 300);
  assert_true(faultvfs_failed_syncs() > 0); /* the checkpoint did meet the fault */
  faultvfs_reset();
  assert_integrity_ok(path);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 300);
  /* And the store opens again on it and goes on writing. */
  assert_int_equal(mcpr_store_open(&s, path, &opts, &err), MCPR_OK);
  assert_int_equal(record_n(s, "more", 10, NULL), 10);
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 310);
  free(path);
  tu_rmdir(dir);
}

/* ---------- a small queue while the disk is full ---------- */

static void test_full_disk_small_queue_refuses_counted(void **state) {
  (void)state;
  char *dir, *path;
  mcpr_store_options opts;
  fault_options(&opts);
  opts.queue_capacity = 64;
  mcpr_store *s = open_in_tmpdir(&opts, &dir, &path);
  mcpr_error err = {0};

  faultvfs_fail_writes(SQLITE_FULL);
  uint64_t refused_full = 0;
  uint64_t accepted = record_n(s, "full", 500, &refused_full);
  wait_for_retry(s, write_fault_hit);
  /* More while the writer is stuck: the queue is full by now. */
  uint64_t refused_more = 0;
  accepted += record_n(s, "full2", 500, &refused_more);
  refused_full += refused_more;
  assert_true(refused_more > 0);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.refused_queue_full, refused_full);
  assert_int_equal(st.accepted, accepted);
  assert_int_equal(mcpr_store_stats_failed(&st), 0);

  faultvfs_reset();
  assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(fin.written, accepted);
  assert_int_equal(mcpr_store_stats_failed(&fin), 0);
  assert_int_equal(fin.accepted + mcpr_store_stats_refused(&fin), 1000);
  assert_integrity_ok(path);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)accepted);
  free(path);
  tu_rmdir(dir);
}

/* ---------- a real full tmpfs ---------- */

/* Fill the file system holding `path` up to the last byte. */
static void fill_up(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  static char chunk[65536];
  memset(chunk, 'f', sizeof chunk);
  for (size_t size = sizeof chunk; size >= 1; size /= 2) {
    for (int guard = 0; guard < 100000; guard++) {
      ssize_t n = write(fd, chunk, size);
      if (n < 0) {
        assert_int_equal(errno, ENOSPC);
        break;
      }
    }
  }
  close(fd);
}

static void test_real_tmpfs_full(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *mnt = tu_path(dir, "mnt");
  assert_int_equal(mkdir(mnt, 0700), 0);
  /* 4 MiB: the 1,220 rows with their indexes, both rollup levels and the
   * WAL must fit once the filler is gone (1 MiB did before the daily
   * rollups and retention's index). */
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0) {
    int e = errno;
    printf("# skipped: cannot mount a tmpfs here (%s); the faultvfs tests cover a full"
           " disk\n",
           strerror(e));
    free(mnt);
    tu_rmdir(dir);
    skip();
  }
  char *path = tu_path(mnt, "store.db");
  char *filler = tu_path(mnt, "filler");
  mcpr_store_options opts;
  mcpr_store_options_init(&opts);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &opts, &err), MCPR_OK);
  uint64_t accepted = record_n(s, "before", 20, NULL);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);

  fill_up(filler);
  accepted += record_n(s, "during", 1000, NULL);
  mcpr_store_stats st;
  for (int i = 0; i < 2000; i++) {
    mcpr_store_stats_get(s, &st);
    if (st.retries > 0 && st.last_error == MCPR_EDISKFULL)
      break;
    tu_sleep_ms(5);
  }
  assert_int_equal(st.last_error, MCPR_EDISKFULL);
  assert_int_equal(mcpr_store_stats_failed(&st), 0);
  assert_true(st.written < accepted); /* held back by the full disk */

  assert_int_equal(unlink(filler), 0);
  mcpr_status fst = mcpr_store_flush(s, 60000, &err);
  if (fst != MCPR_OK)
    fail_msg("flush after the disk has room again: %s", err.message);
  accepted += record_n(s, "after", 200, NULL);
  fst = mcpr_store_flush(s, 30000, &err);
  if (fst != MCPR_OK) {
    mcpr_store_stats_get(s, &st);
    fail_msg("flush of the rows after: %s (written %llu of %llu, last error %d, retries %llu)",
             err.message, (unsigned long long)st.written, (unsigned long long)accepted,
             st.last_error, (unsigned long long)st.retries);
  }
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(fin.accepted, accepted);
  assert_int_equal(fin.written, accepted);
  assert_int_equal(mcpr_store_stats_failed(&fin), 0);
  assert_integrity_ok(path);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)accepted);
  printf("# tmpfs: %llu events written around a full disk, %llu retries\n",
         (unsigned long long)fin.written, (unsigned long long)fin.retries);

  assert_int_equal(umount2(mnt, MNT_DETACH), 0);
  free(filler);
  free(path);
  free(mnt);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_transient),
      cmocka_unit_test(test_full_lasting),
      cmocka_unit_test(test_quota_transient),
      cmocka_unit_test(test_quota_lasting),
      cmocka_unit_test(test_ioerr_write_transient),
      cmocka_unit_test(test_ioerr_write_lasting),
      cmocka_unit_test(test_ioerr_fsync_transient),
      cmocka_unit_test(test_ioerr_fsync_lasting),
      cmocka_unit_test(test_full_disk_small_queue_refuses_counted),
      cmocka_unit_test(test_close_while_syncs_fail_loses_nothing),
      cmocka_unit_test(test_flush_after_batch_failed_reports_it),
      cmocka_unit_test(test_real_tmpfs_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
