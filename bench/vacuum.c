/*
 * vacuum.c — `mcpr-bench vacuum`: `mcpr store vacuum` on a store of the
 * project's own shape (issue 12).
 *
 * The store: N requests (default 1M) over --days (default 30) ending now,
 * in --sessions sessions (default 20k), recorded through the store API like
 * a proxy would: sessions run side by side (a few hundred open at once, each
 * making N/sessions requests spread over about a day), 3 in 4 end with
 * SessionClosed, the rest are abandoned; 1 in 5 belongs to docs-server, the
 * others to api-server; 1 request in 50 has no session. The store keeps no
 * index on requests(session_id), as always.
 *
 * Then, on a copy of it (the built file is kept for the next run with
 * --db): a dry run (timed), optionally the original's dry-run session count
 * (a correlated scan per session, given up after --baseline S seconds),
 * and the real vacuum while a writer thread in this process, on its own
 * connection, records a request and flushes it every few ms, timing each
 * flush: a flush waits for the commit lock the vacuum's batches take. The
 * longest wait is reported twice: during the deletes (the batches) and
 * overall (the final VACUUM holds the lock for its whole run).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "core/clock.h"
#include "gen.h"
#include "mcpr/mcpr.h"
#include "mcpr/query.h"
#include "backend/sqlite/query.h"

#define DAY_MS (24LL * 3600000)
#define OPEN_AT_ONCE 700

typedef struct slot {
  char id[48];
  const char *proxy;
  uint64_t serial; /* of the session in this slot */
  int left;        /* requests before it ends; 0: start a new one */
} slot;

/* Request contents come from the generator; session, proxy and time are
 * this store's. */
static int build_store(const char *path, uint64_t rows, uint64_t sessions, int64_t span_ms) {
  mcpr_store *s = bench_store_open(path);
  if (!s)
    return -1;
  int64_t now = mcpr_now_ms(), start = now - span_ms;
  bench_gen_options o = {.seed = 7, .sessions = 64, .id_prefix = "g", .start_ts_ms = start,
                         .step_us = 1000};
  bench_gen *g = bench_gen_new(&o);
  slot *slots = calloc(OPEN_AT_ONCE, sizeof *slots);
  if (!g || !slots) {
    bench_gen_free(g);
    free(slots);
    mcpr_store_close(s, NULL);
    return -1;
  }
  /* 49 in 50 requests have a session. */
  int per_session = (int)(rows * 49 / 50 / sessions) > 0 ? (int)(rows * 49 / 50 / sessions) : 1;
  uint64_t t0 = bench_now_ns(), started = 0, ended = 0;
  int rc = 0;
  for (uint64_t i = 0; i < rows && rc == 0; i++) {
    int64_t ts = start + (int64_t)((double)i * (double)span_ms / (double)rows);
    const mcpr_store_event *ge;
    while ((ge = bench_gen_next(g))->kind != MCPR_STORE_EVENT_REQUEST)
      ;
    mcpr_store_event e = *ge;
    e.u.request.ts_ms = ts;
    slot *sl = NULL;
    if (i % 50 != 49) {
      sl = &slots[i % OPEN_AT_ONCE];
      if (sl->left == 0) {
        snprintf(sl->id, sizeof sl->id, "vs-%08llx-%06llu",
                 (unsigned long long)((started * 0x9E3779B97F4A7C15ull) >> 32),
                 (unsigned long long)started);
        sl->proxy = started % 5 == 4 ? "docs-server" : "api-server";
        sl->left = per_session;
        sl->serial = started;
        mcpr_store_event se = {.kind = MCPR_STORE_EVENT_SESSION};
        se.u.session = (mcpr_session_event){sl->id, sl->proxy, ts, "cursor", "1.4.2", NULL};
        rc = bench_record_retry(s, &se);
        started++;
      }
    }
    e.u.request.session_id = sl ? sl->id : NULL;
    if (sl)
      e.u.request.proxy = sl->proxy;
    if (rc == 0)
      rc = bench_record_retry(s, &e);
    if (sl && --sl->left == 0 && sl->serial % 4 != 3 && rc == 0) {
      /* 3 in 4 end, the others are abandoned (open for ever). */
      mcpr_store_event ce = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
      ce.u.session_closed = (mcpr_session_closed_event){sl->id, ts + 1};
      rc = bench_record_retry(s, &ce);
      ended++;
    }
  }
  /* The sessions still going when the data ends follow the same rule. */
  for (int k = 0; k < OPEN_AT_ONCE && rc == 0; k++) {
    slot *sl = &slots[k];
    if (sl->left == 0 || sl->serial % 4 == 3)
      continue;
    mcpr_store_event ce = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
    ce.u.session_closed = (mcpr_session_closed_event){sl->id, now};
    rc = bench_record_retry(s, &ce);
    ended++;
  }
  bench_gen_free(g);
  free(slots);
  mcpr_store_stats st;
  rc = bench_store_close(s, rc, &st);
  printf("built %s: %llu requests, %llu sessions (%llu ended) in %.1f s\n", path,
         (unsigned long long)rows, (unsigned long long)started, (unsigned long long)ended,
         bench_ms_since(t0) / 1000);
  return rc;
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  int rc = in && out ? 0 : -1;
  char buf[1 << 16];
  size_t n;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n)
      rc = -1;
  if (in)
    fclose(in);
  if (out && fclose(out) != 0)
    rc = -1;
  if (rc != 0)
    fprintf(stderr, "mcpr-bench: cannot copy %s to %s\n", from, to);
  return rc;
}

static void remove_store(const char *path) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-mcprlock"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char p[4200];
    int n = snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
    if (n > 0 && (size_t)n < sizeof p)
      unlink(p);
  }
}

/* ---------- the writer beside the vacuum ---------- */

#define MAX_FLUSHES 200000

typedef struct writer {
  const char *path;
  atomic_int stop;
  int64_t *ended_ms; /* mcpr__mono_ms() as each flush returned */
  double *waited_ms;
  size_t flushes;
  int failed;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, w->path, NULL, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: writer: %s\n", err.message);
    w->failed = 1;
    return NULL;
  }
  for (unsigned long long i = 0; !atomic_load(&w->stop) && w->flushes < MAX_FLUSHES; i++) {
    char id[64];
    snprintf(id, sizeof id, "bench-live-%llu", i);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = mcpr_now_ms(),
                                       .proxy = "live", .method = "tools/call", .tool = "w",
                                       .latency_us = 1, .status = MCPR_REQUEST_OK,
                                       .bytes_in = -1, .bytes_out = -1};
    if (bench_record_retry(s, &e) != 0) {
      w->failed = 1;
      break;
    }
    uint64_t t0 = bench_now_ns();
    if (mcpr_store_flush(s, 600000, &err) != MCPR_OK) {
      fprintf(stderr, "mcpr-bench: writer: flush: %s\n", err.message);
      w->failed = 1;
      break;
    }
    w->ended_ms[w->flushes] = mcpr__mono_ms();
    w->waited_ms[w->flushes++] = bench_ms_since(t0);
    mcpr__sleep_ms(5);
  }
  mcpr_store_close(s, NULL);
  return NULL;
}

static void usage(FILE *out) {
  fputs("usage: mcpr-bench vacuum [--requests N] [--sessions N] [--days D] [--before D]\n"
        "                         [--proxy P] [--db PATH] [--baseline SECONDS]\n"
        "  --requests N  requests in the store (default 1000000)\n"
        "  --sessions N  sessions (default 20000; 3 in 4 end)\n"
        "  --days D      days the data spans, ending now (default 30)\n"
        "  --before D    vacuum's cutoff, as `store vacuum --before` (default 15d)\n"
        "  --proxy P     vacuum one proxy (api-server or docs-server)\n"
        "  --db PATH     the built store: reused when it exists, else built and kept\n"
        "                (default: a temporary file, removed at the end); the\n"
        "                vacuums run on a copy\n"
        "  --baseline S  also time the original's dry-run session count, giving\n"
        "                up after S seconds (default 0: skip)\n",
        out);
}

int bench_vacuum_main(int argc, char **argv) {
  uint64_t rows = 1000000, sessions = 20000, days = 30, baseline_s = 0;
  int64_t before_ms = 15 * DAY_MS;
  const char *db = NULL, *proxy = NULL, *before_text = "15d";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--requests") == 0) {
      rows = bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--sessions") == 0) {
      sessions = bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--days") == 0) {
      days = bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--baseline") == 0) {
      baseline_s = bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--db") == 0 && v) {
      db = v, i++;
    } else if (strcmp(a, "--proxy") == 0 && v) {
      proxy = v, i++;
    } else if (strcmp(a, "--before") == 0) {
      mcpr_error err = {0};
      if (mcpr_parse_duration_ms("--before", v, &before_ms, &err) != MCPR_OK) {
        fprintf(stderr, "mcpr-bench: %s\n", err.message);
        return 2;
      }
      before_text = v, i++;
    } else {
      return bench_unknown_option(a, usage);
    }
  }
  char tmp[256] = "", work[4200];
  if (!db) {
    snprintf(tmp, sizeof tmp, "/tmp/mcpr-bench-vacuum-%ld.db", (long)getpid());
    db = tmp;
  }
  snprintf(work, sizeof work, "%s.vacuum-copy", db);
  if (access(db, F_OK) != 0 && build_store(db, rows, sessions, (int64_t)days * DAY_MS) != 0)
    return 1;
  remove_store(work);
  if (copy_file(db, work) != 0)
    return 1;

  int rc = 1;
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  writer w = {.path = work};
  w.ended_ms = calloc(MAX_FLUSHES, sizeof *w.ended_ms);
  w.waited_ms = calloc(MAX_FLUSHES, sizeof *w.waited_ms);
  if (!w.ended_ms || !w.waited_ms || mcpr_query_open(&q, work, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: %s\n", err.message[0] ? err.message : "out of memory");
    goto out;
  }
  mcpr_store_info info;
  if (mcpr_query_store_info(q, &info, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: %s\n", err.message);
    goto out;
  }
  printf("store: %lld requests, %lld sessions, %.1f MB; vacuum --before %s%s%s\n",
         (long long)info.total_requests, (long long)info.total_sessions,
         (double)(info.db_bytes + info.wal_bytes) / 1048576.0, before_text,
         proxy ? " --proxy " : "", proxy ? proxy : "");

  mcpr_vacuum_options o = {.before_ms = mcpr_now_ms() - before_ms, .proxy = proxy,
                           .dry_run = true};
  mcpr_vacuum_result dry, real;
  mcpr__vacuum_timing t;
  uint64_t t0 = bench_now_ns();
  if (mcpr__query_sqlite_vacuum(q, &o, &dry, &t, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: dry run: %s\n", err.message);
    goto out;
  }
  double dry_ms = bench_ms_since(t0);
  printf("dry run:  %8.2f s  would delete %lld requests, %lld sessions\n", dry_ms / 1000,
         (long long)dry.requests_deleted, (long long)dry.sessions_deleted);

  double baseline_ms = -1;
  bool over = false;
  int64_t baseline_sessions = -1;
  if (baseline_s > 0) {
    t0 = bench_now_ns();
    mcpr_status bs = mcpr__query_sqlite_vacuum_count_original(
        q, &o, (int64_t)baseline_s * 1000, &baseline_sessions, &over, &err);
    baseline_ms = bench_ms_since(t0);
    if (bs != MCPR_OK && !over) {
      fprintf(stderr, "mcpr-bench: baseline: %s\n", err.message);
      goto out;
    }
    if (over)
      printf("original dry-run session count: gave up after %.1f s\n", baseline_ms / 1000);
    else
      printf("original dry-run session count: %8.2f s (%lld sessions)\n", baseline_ms / 1000,
             (long long)baseline_sessions);
  }

  pthread_t th;
  if (pthread_create(&th, NULL, writer_main, &w) != 0)
    goto out;
  mcpr__sleep_ms(500); /* the writer is up and flushing */
  o.dry_run = false;
  t0 = bench_now_ns();
  mcpr_status vs = mcpr__query_sqlite_vacuum(q, &o, &real, &t, &err);
  double real_ms = bench_ms_since(t0);
  mcpr__sleep_ms(500);
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);
  if (vs != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: vacuum: %s\n", err.message);
    goto out;
  }
  double longest = 0, longest_deletes = 0;
  for (size_t i = 0; i < w.flushes; i++) {
    if (w.waited_ms[i] > longest)
      longest = w.waited_ms[i];
    if (w.ended_ms[i] <= t.vacuum_started_mono_ms && w.waited_ms[i] > longest_deletes)
      longest_deletes = w.waited_ms[i];
  }
  bool agree = !w.failed && real.requests_deleted == dry.requests_deleted &&
               real.sessions_deleted == dry.sessions_deleted &&
               (baseline_sessions < 0 || baseline_sessions == dry.sessions_deleted);
  printf("vacuum:   %8.2f s  deleted %lld requests, %lld sessions; %.1f MB -> %.1f MB\n",
         real_ms / 1000, (long long)real.requests_deleted, (long long)real.sessions_deleted,
         (double)real.bytes_before / 1048576.0, (double)real.bytes_after / 1048576.0);
  printf("  delete requests %.2f s, find sessions %.2f s, delete sessions %.2f s,"
         " VACUUM %.2f s, optimize %.2f s, checkpoint %.2f s\n",
         t.delete_requests_ms / 1000, t.find_sessions_ms / 1000, t.delete_sessions_ms / 1000,
         t.vacuum_ms / 1000, t.optimize_ms / 1000, t.checkpoint_ms / 1000);
  printf("  %lld delete transactions, the longest held the commit lock %lld ms\n",
         (long long)t.batches, (long long)t.longest_batch_ms);
  printf("writer beside it: %zu flushes, longest wait %.1f ms during the deletes,"
         " %.1f ms overall (VACUUM included)\n",
         w.flushes, longest_deletes, longest);
  printf("dry run and vacuum %s\n", agree ? "agree" : "DIFFER");
  printf("{\"bench\":\"vacuum\",\"requests\":%lld,\"sessions\":%lld,\"dry_run_ms\":%.1f,"
         "\"baseline_dry_run_ms\":%.1f,\"baseline_over_budget\":%s,\"vacuum_ms\":%.1f,"
         "\"delete_requests_ms\":%.1f,\"find_sessions_ms\":%.1f,\"delete_sessions_ms\":%.1f,"
         "\"vacuum_stmt_ms\":%.1f,\"batches\":%lld,\"longest_batch_ms\":%lld,"
         "\"writer_flushes\":%zu,\"writer_longest_wait_deletes_ms\":%.1f,"
         "\"writer_longest_wait_ms\":%.1f,\"requests_deleted\":%lld,\"sessions_deleted\":%lld,"
         "\"agree\":%s}\n",
         (long long)info.total_requests, (long long)info.total_sessions, dry_ms, baseline_ms,
         over ? "true" : "false", real_ms, t.delete_requests_ms, t.find_sessions_ms,
         t.delete_sessions_ms, t.vacuum_ms, (long long)t.batches, (long long)t.longest_batch_ms,
         w.flushes, longest_deletes, longest, (long long)real.requests_deleted,
         (long long)real.sessions_deleted, agree ? "true" : "false");
  rc = agree ? 0 : 1;
out:
  mcpr_query_close(q);
  free(w.ended_ms);
  free(w.waited_ms);
  remove_store(work);
  if (tmp[0])
    remove_store(tmp);
  return rc;
}
