/*
 * query.c — `mcpr-bench query`: the read side at scale.
 *
 * Builds a store of N generated requests (bench/gen.h, recorded through the
 * store API like a proxy would) whose timestamps end now and span --span
 * (default 7d: 1M requests a week is ~1.7 requests/s, a busy server), so a
 * 1h window holds ~0.6% of the rows and 7d holds all of them. Then times,
 * on that same file in this same run, every query the CLI makes with its
 * default window, and the stats three ways over ALL rows: ours (one
 * unordered pass, p95 by selection), one pass ordered in SQL, and the
 * original's (per label: an aggregate query plus a sorted fetch of all its
 * latencies). The three must agree; the last line is a JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "bench.h"
#include "gen.h"
#include "mcpr/mcpr.h"
#include "mcpr/query.h"
#include "backend/sqlite/query.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

typedef struct timing {
  const char *name;
  double ms; /* best of the runs */
} timing;

static int build_store(const char *path, uint64_t rows, int64_t span_ms) {
  mcpr_store *s = bench_store_open(path);
  if (!s)
    return -1;
  int64_t now = mcpr_now_ms(), start = now - span_ms;
  bench_gen_options o = {.seed = 42, .sessions = 64, .id_prefix = "bq", .start_ts_ms = start,
                         .step_us = 1000};
  bench_gen *g = bench_gen_new(&o);
  if (!g) {
    mcpr_store_close(s, NULL);
    return -1;
  }
  /*
   * Timestamps: the i-th request gets start + i·span/rows, so the data ends
   * now and is spread evenly; session starts and ends take the time of the
   * request position they occur at.
   */
  uint64_t t0 = bench_now_ns(), requests = 0;
  int64_t ts = start;
  int rc = 0;
  while (requests < rows && rc == 0) {
    mcpr_store_event e = *bench_gen_next(g);
    switch (e.kind) {
    case MCPR_STORE_EVENT_REQUEST:
      ts = start + (int64_t)((double)requests * (double)span_ms / (double)rows);
      e.u.request.ts_ms = ts;
      requests++;
      break;
    case MCPR_STORE_EVENT_SESSION:
      e.u.session.started_at_ms = ts;
      break;
    case MCPR_STORE_EVENT_SESSION_CLOSED:
      e.u.session_closed.ended_at_ms = ts;
      break;
    default:
      break;
    }
    rc = bench_record_retry(s, &e);
  }
  for (const mcpr_store_event *e; rc == 0 && (e = bench_gen_finish(g));) {
    mcpr_store_event closed = *e;
    closed.u.session_closed.ended_at_ms = ts;
    rc = bench_record_retry(s, &closed);
  }
  /* A captured tools/list per proxy (all but two tools), for `unused`. */
  static const char *const proxies[] = {"api-server", "docs-server"};
  for (size_t p = 0; p < 2 && rc == 0; p++) {
    char payload[2048];
    size_t len = (size_t)snprintf(payload, sizeof payload, "{\"tools\":[");
    for (size_t i = 0; bench_gen_tools[i]; i++)
      len += (size_t)snprintf(payload + len, sizeof payload - len, "%s{\"name\":\"%s\"}",
                              i ? "," : "", bench_gen_tools[i]);
    len += (size_t)snprintf(payload + len, sizeof payload - len,
                            ",{\"name\":\"never_a\"},{\"name\":\"never_b\"}]}");
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
    e.u.schema_version = (mcpr_schema_version_event){now - span_ms, proxies[p], "http://upstream",
                                                     "tools/list", payload, "bench-hash"};
    rc = bench_record_retry(s, &e);
  }
  bench_gen_free(g);
  mcpr_store_stats st;
  rc = bench_store_close(s, rc, &st);
  double ms = bench_ms_since(t0);
  printf("built %s: %llu requests (%llu events written) in %.1f s (%.0f events/s)\n", path,
         (unsigned long long)requests, (unsigned long long)st.written, ms / 1000,
         (double)st.written / (ms / 1000));
  return rc;
}

/* The CLI's queries. Each returns 0 on success; rows counts results. The
 * stats fields are the arguments and result of q_stats. */
typedef struct ctx {
  mcpr_query *q;
  int64_t now;
  const char *session_id;
  size_t rows;
  mcpr__stats_strategy strategy;
  int64_t since;
  mcpr_stats stats, *keep;
} ctx;

/* The log queries differ only in their filter: the CLI's default (last
 * hour, 50 rows) changed by the caller. */
static mcpr_log_filter last_hour(const ctx *c) {
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.since_ms = c->now - HOUR_MS;
  return f;
}

static int run_logs(ctx *c, const mcpr_log_filter *f, bool slow) {
  mcpr_log_rows r;
  mcpr_status st = slow ? mcpr_query_slow(c->q, f, &r, NULL) : mcpr_query_logs(c->q, f, &r, NULL);
  if (st != MCPR_OK)
    return -1;
  c->rows = r.count;
  mcpr_log_rows_release(&r);
  return 0;
}

static int q_logs(ctx *c) {
  mcpr_log_filter f = last_hour(c);
  return run_logs(c, &f, false);
}

static int q_logs_errors(ctx *c) {
  mcpr_log_filter f = last_hour(c);
  f.has_status = true;
  f.status = MCPR_REQUEST_ERROR;
  return run_logs(c, &f, false);
}

static int q_logs_tool(ctx *c) {
  mcpr_log_filter f = last_hour(c);
  f.tool = "send_email";
  return run_logs(c, &f, false);
}

static int q_logs_session(ctx *c) {
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.session_prefix = c->session_id;
  return run_logs(c, &f, false);
}

static int q_slow(ctx *c) {
  mcpr_log_filter f = last_hour(c);
  f.min_latency_us = 500000;
  f.limit = 20;
  return run_logs(c, &f, true);
}

/* The long windows of issue 15 (40 days: the whole store). */
static int run_slow_40d(ctx *c, const char *tool) {
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.since_ms = c->now - 40 * DAY_MS;
  f.min_latency_us = 500000;
  f.limit = 20;
  f.tool = tool;
  return run_logs(c, &f, true);
}
static int q_slow_40d(ctx *c) { return run_slow_40d(c, NULL); }
static int q_slow_40d_tool(ctx *c) { return run_slow_40d(c, "send_email"); }

static int q_status(ctx *c) {
  mcpr_stats_filter f = {NULL, c->now - HOUR_MS, 0};
  mcpr_status_summary s;
  if (mcpr_query_status(c->q, &f, c->now, &s, NULL) != MCPR_OK)
    return -1;
  c->rows = (size_t)s.stats.total_calls;
  mcpr_status_summary_release(&s);
  return 0;
}

/* status over the whole span (--since 40d): from the rollups, raw, and
 * for one proxy. */
static int run_status_long(ctx *c, const char *proxy, int exact) {
  mcpr_stats_filter f = {proxy, c->now - 40 * DAY_MS, exact};
  mcpr_status_summary s;
  if (mcpr_query_status(c->q, &f, c->now, &s, NULL) != MCPR_OK)
    return -1;
  c->rows = (size_t)s.stats.total_calls;
  mcpr_status_summary_release(&s);
  return 0;
}
static int q_status_40d(ctx *c) { return run_status_long(c, NULL, 0); }
static int q_status_40d_proxy(ctx *c) { return run_status_long(c, "api-server", 0); }
static int q_status_40d_exact(ctx *c) { return run_status_long(c, NULL, 1); }
static int q_status_2d(ctx *c) {
  mcpr_stats_filter f = {NULL, c->now - 2 * DAY_MS, 0};
  mcpr_status_summary s;
  if (mcpr_query_status(c->q, &f, c->now, &s, NULL) != MCPR_OK)
    return -1;
  c->rows = (size_t)s.stats.total_calls;
  mcpr_status_summary_release(&s);
  return 0;
}

static int q_sessions(ctx *c) {
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  f.since_ms = c->now - HOUR_MS;
  f.now_ms = c->now;
  mcpr_session_rows r;
  if (mcpr_query_sessions(c->q, &f, &r, NULL) != MCPR_OK)
    return -1;
  c->rows = r.count;
  mcpr_session_rows_release(&r);
  return 0;
}

static int q_session_detail(ctx *c) {
  mcpr_session_detail d;
  if (mcpr_query_session(c->q, c->session_id, c->now, &d, NULL) != MCPR_OK)
    return -1;
  c->rows = d.requests.count;
  mcpr_session_detail_release(&d);
  return 0;
}

static int q_sessions_40d(ctx *c) {
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  f.since_ms = c->now - 40 * DAY_MS;
  f.now_ms = c->now;
  mcpr_session_rows r;
  if (mcpr_query_sessions(c->q, &f, &r, NULL) != MCPR_OK)
    return -1;
  c->rows = r.count;
  mcpr_session_rows_release(&r);
  return 0;
}

static int run_clients(ctx *c, int64_t window_ms) {
  mcpr_client_rows r;
  if (mcpr_query_clients(c->q, NULL, c->now - window_ms, &r, NULL) != MCPR_OK)
    return -1;
  c->rows = r.count;
  mcpr_client_rows_release(&r);
  return 0;
}
static int q_clients(ctx *c) { return run_clients(c, 7 * DAY_MS); }
static int q_clients_40d(ctx *c) { return run_clients(c, 40 * DAY_MS); }

static int run_unused(ctx *c, const char *proxy, int64_t window_ms) {
  mcpr_unused_tool_rows r;
  if (mcpr_query_unused_tools(c->q, proxy, c->now - window_ms, &r, NULL) != MCPR_OK)
    return -1;
  c->rows = r.count;
  mcpr_unused_tool_rows_release(&r);
  return 0;
}

static int q_unused(ctx *c) { return run_unused(c, NULL, 7 * DAY_MS); }
static int q_unused_proxy(ctx *c) { return run_unused(c, "docs-server", 7 * DAY_MS); }
static int q_unused_40d(ctx *c) { return run_unused(c, NULL, 40 * DAY_MS); }
static int q_unused_proxy_40d(ctx *c) { return run_unused(c, "docs-server", 40 * DAY_MS); }

static int q_store_stats(ctx *c) {
  mcpr_store_info info;
  if (mcpr_query_store_info(c->q, &info, NULL) != MCPR_OK)
    return -1;
  c->rows = (size_t)info.total_requests;
  return 0;
}

/* Stats over c->since with c->strategy, left in c->stats. */
static int q_stats(ctx *c) {
  /* exact: the three ways must give identical rows (rollups would give
   * p95 within 1 %, timed apart as status --since 40d). */
  mcpr_stats_filter f = {NULL, c->since, 1};
  mcpr_error err = {0};
  mcpr_status st = c->strategy == MCPR__STATS_ONE_PASS
                       ? mcpr_query_stats(c->q, &f, &c->stats, &err)
                       : mcpr__query_sqlite_stats(c->q, &f, c->strategy, &c->stats, &err);
  if (st != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: stats: %s\n", err.message);
    return -1;
  }
  return 0;
}

/* After run i of q_stats, outside the timing: keep the first result when
 * asked, release the others. */
static void keep_first_stats(ctx *c, int i) {
  if (i == 0 && c->keep)
    *c->keep = c->stats;
  else
    mcpr_stats_release(&c->stats);
}

/* The best time of runs calls of fn; after (may be NULL) runs untimed
 * after each. -1 when fn fails. */
static double best_of(ctx *c, int (*fn)(ctx *), void (*after)(ctx *, int), int runs) {
  double best = -1;
  for (int i = 0; i < runs; i++) {
    uint64_t t0 = bench_now_ns();
    if (fn(c) != 0)
      return -1;
    double ms = bench_ms_since(t0);
    if (best < 0 || ms < best)
      best = ms;
    if (after)
      after(c, i);
  }
  return best;
}

static double time_stats(ctx *c, mcpr__stats_strategy s, int64_t since, int runs,
                         mcpr_stats *keep) {
  c->strategy = s;
  c->since = since;
  c->keep = keep;
  return best_of(c, q_stats, keep_first_stats, runs);
}

static bool same_stats(const mcpr_stats *a, const mcpr_stats *b) {
  if (a->count != b->count || a->total_calls != b->total_calls ||
      a->total_errors != b->total_errors)
    return false;
  for (size_t i = 0; i < a->count; i++) {
    const mcpr_stats_row *x = &a->rows[i], *y = &b->rows[i];
    if (strcmp(x->label, y->label) || x->calls != y->calls || x->p95_us != y->p95_us ||
        x->min_us != y->min_us || x->max_us != y->max_us || x->errors != y->errors ||
        x->total_bytes_in != y->total_bytes_in || x->total_bytes_out != y->total_bytes_out ||
        x->avg_us - y->avg_us > 1 || y->avg_us - x->avg_us > 1)
      return false;
  }
  return true;
}

/*
 * A command as a user runs it: `mcpr ARGS...` as a process on the store
 * (MCPR_DB), output to /dev/null; wall time from fork to exit, process
 * start included. -1 when it cannot run or exits non-zero.
 */
static double run_cli_once(const char *mcpr, const char *db, char *const *args) {
  uint64_t t0 = bench_now_ns();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      close(fd);
    }
    setenv("MCPR_DB", db, 1);
    unsetenv("MCPR_CONFIG");
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)mcpr;
    for (size_t i = 0; args[i] && n < 15; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execv(mcpr, argv);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return bench_ms_since(t0);
}

static double run_cli(const char *mcpr, const char *db, char *const *args, int runs) {
  double best = -1;
  for (int i = 0; i < runs; i++) {
    double ms = run_cli_once(mcpr, db, args);
    if (ms < 0)
      return -1;
    if (best < 0 || ms < best)
      best = ms;
  }
  return best;
}

static void usage(FILE *out) {
  fputs("usage: mcpr-bench query [--rows N] [--db PATH] [--span D|--days N] [--runs N]\n"
        "                         [--no-original] [--mcpr PATH]\n"
        "  --rows N   requests in the store (default 1000000)\n"
        "  --db PATH  store file: reused when it exists, else built (default: a\n"
        "             temporary file, removed at the end)\n"
        "  --span D   time the data spans, ending now (default 7d)\n"
        "  --days N   the same in days (--days 30 is --span 30d)\n"
        "  --runs N   timed runs per query, the best is kept (default 5)\n"
        "  --no-original  skip the stats over all rows three ways (ours, sorted\n"
        "             SQL, the original's): minutes at 10M rows\n"
        "  --mcpr PATH  also time each command of issue 15 as a user runs it:\n"
        "             the mcpr program at PATH as a process, start included\n",
        out);
}

int bench_query_main(int argc, char **argv) {
  uint64_t rows = 1000000, runs = 5;
  const char *db = NULL, *mcpr = NULL;
  bool original = true;
  int64_t span_ms = 7 * DAY_MS;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--rows") == 0) {
      rows = bench_parse_count("--rows", v), i++;
    } else if (strcmp(a, "--runs") == 0) {
      runs = bench_parse_count("--runs", v), i++;
    } else if (strcmp(a, "--no-original") == 0) {
      original = false;
    } else if (strcmp(a, "--mcpr") == 0 && v) {
      mcpr = v, i++;
    } else if (strcmp(a, "--db") == 0 && v) {
      db = v, i++;
    } else if (strcmp(a, "--days") == 0) {
      span_ms = (int64_t)bench_parse_count("--days", v) * DAY_MS, i++;
    } else if (strcmp(a, "--span") == 0) {
      mcpr_error err = {0};
      if (mcpr_parse_duration_ms("--span", v, &span_ms, &err) != MCPR_OK) {
        fprintf(stderr, "mcpr-bench: %s\n", err.message);
        return 2;
      }
      i++;
    } else {
      return bench_unknown_option(a, usage);
    }
  }
  char tmp[256] = "";
  if (!db) {
    snprintf(tmp, sizeof tmp, "/tmp/mcpr-bench-query-%ld.db", (long)getpid());
    db = tmp;
  }
  if (access(db, F_OK) != 0 && build_store(db, rows, span_ms) != 0)
    return 1;

  ctx c = {.now = mcpr_now_ms()};
  mcpr_error err = {0};
  if (mcpr_query_open(&c.q, db, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: %s\n", err.message);
    return 1;
  }
  mcpr_store_info info;
  mcpr_query_store_info(c.q, &info, NULL);
  printf("store: %lld requests, %lld sessions, spanning %.1f h, %.1f MB\n",
         (long long)info.total_requests, (long long)info.total_sessions,
         (double)(info.newest_request_ms - info.oldest_request_ms) / HOUR_MS,
         (double)(info.db_bytes + info.wal_bytes) / 1048576.0);
  /* A real session for the session queries: the most recently seen. */
  mcpr_session_filter sf;
  mcpr_session_filter_init(&sf);
  sf.limit = 1;
  mcpr_session_rows srows;
  static char session_id[128] = "bq";
  if (mcpr_query_sessions(c.q, &sf, &srows, NULL) == MCPR_OK && srows.count)
    snprintf(session_id, sizeof session_id, "%s", srows.rows[0].session_id);
  mcpr_session_rows_release(&srows);
  c.session_id = session_id;

  static const struct {
    const char *name, *what;
    int (*fn)(ctx *);
  } queries[] = {
      {"logs", "logs --since 1h --tail 50", q_logs},
      {"logs_errors", "logs --status error", q_logs_errors},
      {"logs_tool", "logs --tool send_email", q_logs_tool},
      {"logs_session", "logs --session ID (all time)", q_logs_session},
      {"slow", "slow --threshold 500ms --since 1h", q_slow},
      {"slow_40d", "slow --since 40d", q_slow_40d},
      {"slow_40d_tool", "slow --since 40d --tool send_email", q_slow_40d_tool},
      {"status", "status --since 1h", q_status},
      {"status_2d", "status --since 2d", q_status_2d},
      {"status_40d", "status --since 40d (rollups)", q_status_40d},
      {"status_40d_proxy", "status NAME --since 40d (rollups)", q_status_40d_proxy},
      {"status_40d_exact", "status --since 40d --exact (raw)", q_status_40d_exact},
      {"sessions", "sessions --since 1h", q_sessions},
      {"sessions_40d", "sessions --since 40d", q_sessions_40d},
      {"session", "session ID", q_session_detail},
      {"clients", "clients --since 7d", q_clients},
      {"clients_40d", "clients --since 40d", q_clients_40d},
      {"unused", "schema --unused --since 7d", q_unused},
      {"unused_proxy", "schema docs-server --unused", q_unused_proxy},
      {"unused_40d", "schema --unused --since 40d", q_unused_40d},
      {"unused_proxy_40d", "schema docs-server --unused --since 40d", q_unused_proxy_40d},
      {"store_stats", "store stats", q_store_stats},
  };
  size_t nq = sizeof queries / sizeof queries[0];
  double ms[32];
  printf("\n%-34s %10s %10s\n", "query (default window)", "ms", "rows");
  for (size_t i = 0; i < nq; i++) {
    ms[i] = best_of(&c, queries[i].fn, NULL, (int)runs);
    printf("%-34s %10.2f %10zu\n", queries[i].what, ms[i], c.rows);
  }

  mcpr_stats ours = {0}, sorted = {0}, orig = {0};
  double t_ours = -1, t_sorted = -1, t_orig = -1, t_orig_1h = -1, speedup = 0;
  bool agree = true;
  if (original) {
    int stat_runs = runs > 3 ? 3 : (int)runs;
    t_ours = time_stats(&c, MCPR__STATS_ONE_PASS, MCPR_QUERY_NO_CUTOFF, stat_runs, &ours);
    t_sorted = time_stats(&c, MCPR__STATS_SORTED_SQL, MCPR_QUERY_NO_CUTOFF, stat_runs, &sorted);
    t_orig = time_stats(&c, MCPR__STATS_ORIGINAL, MCPR_QUERY_NO_CUTOFF, stat_runs, &orig);
    t_orig_1h = time_stats(&c, MCPR__STATS_ORIGINAL, c.now - HOUR_MS, (int)runs, NULL);
    agree = same_stats(&ours, &sorted) && same_stats(&ours, &orig);
    printf("\nstats over all %lld requests (%zu labels):\n", (long long)ours.total_calls,
           ours.count);
    printf("  %-40s %10.1f ms\n", "one pass, p95 by selection (ours)", t_ours);
    printf("  %-40s %10.1f ms\n", "one pass ordered by label, latency", t_sorted);
    printf("  %-40s %10.1f ms\n", "original: 2N+1 queries, sorted fetches", t_orig);
    printf("  %-40s %10.1f ms\n", "original, --since 1h", t_orig_1h);
    speedup = t_ours > 0 ? t_orig / t_ours : 0;
    printf("  speed-up over the original: %.1fx; results %s\n", speedup,
           agree ? "identical" : "DIFFER");
    mcpr_stats_release(&ours);
    mcpr_stats_release(&sorted);
    mcpr_stats_release(&orig);
  }
  mcpr_query_close(c.q);

  /* Issue 15's commands, each as a user runs it (process start included). */
  static const struct {
    const char *name;
    char *args[8];
  } cli[] = {
      {"status_40d", {"proxy", "status", "--since", "40d"}},
      {"status_40d_proxy", {"proxy", "status", "api-server", "--since", "40d"}},
      {"status_2d", {"proxy", "status", "--since", "2d"}},
      {"slow_40d", {"proxy", "slow", "--since", "40d"}},
      {"slow_40d_tool", {"proxy", "slow", "--since", "40d", "--tool", "send_email"}},
      {"schema_unused_40d", {"proxy", "schema", "docs-server", "--unused", "--since", "40d"}},
      {"clients_40d", {"proxy", "clients", "--since", "40d"}},
      {"sessions_40d", {"proxy", "sessions", "--since", "40d"}},
      {"logs", {"proxy", "logs"}},
      {"session", {"proxy", "session", session_id}},
      {"store_stats", {"store", "stats"}},
  };
  size_t ncli = mcpr ? sizeof cli / sizeof cli[0] : 0;
  double cli_ms[16];
  if (ncli)
    printf("\n%-34s %10s\n", "command (mcpr as a process)", "ms");
  for (size_t i = 0; i < ncli; i++) {
    cli_ms[i] = run_cli(mcpr, db, cli[i].args, (int)runs);
    printf("mcpr");
    for (size_t k = 0; cli[i].args[k]; k++)
      printf(" %s", cli[i].args[k]);
    printf("%*s %10.2f\n", 1, "", cli_ms[i]);
  }

  printf("{\"bench\":\"query\",\"rows\":%lld,\"span_hours\":%.1f", (long long)info.total_requests,
         (double)span_ms / HOUR_MS);
  for (size_t i = 0; i < nq; i++)
    printf(",\"%s_ms\":%.2f", queries[i].name, ms[i]);
  for (size_t i = 0; i < ncli; i++)
    printf(",\"cli_%s_ms\":%.2f", cli[i].name, cli_ms[i]);
  if (original)
    printf(",\"stats_all_ms\":%.1f,\"stats_sorted_sql_ms\":%.1f,\"stats_original_ms\":%.1f,"
           "\"stats_original_1h_ms\":%.2f,\"stats_speedup\":%.2f,\"stats_agree\":%s",
           t_ours, t_sorted, t_orig, t_orig_1h, speedup, agree ? "true" : "false");
  printf("}\n");
  if (tmp[0]) {
    char wal[300], shm[300];
    snprintf(wal, sizeof wal, "%s-wal", tmp);
    snprintf(shm, sizeof shm, "%s-shm", tmp);
    unlink(tmp);
    unlink(wal);
    unlink(shm);
  }
  return agree ? 0 : 1;
}
