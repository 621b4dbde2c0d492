/*
 * mcpr-bench write — how fast the store takes and writes realistic traffic.
 *
 * P producer threads each generate their share of N events and hand them
 * to one mcpr_store with mcpr_store_record(), timing every call; an event
 * refused because the queue is full is offered again after a short pause,
 * so all N end up in the store. The clock stops when mcpr_store_close()
 * has committed the last one.
 *
 * --baseline also runs the original's design on the same traffic, in the
 * same run, into a second file: one writer thread, batches of 500 in one
 * transaction, and one sqlite3_prepare per statement executed (what
 * rusqlite's Connection::execute does), one session UPDATE per request,
 * with the original's index set. The last line is one JSON object.
 *
 * --db may be a postgresql:// URL: the run then writes into a fresh
 * schema of that database (dropped afterwards), --sqlite PATH runs the
 * same traffic into a new SQLite file first and reports the ratio, and
 * --processes K splits the events over K writer processes, each with its
 * own store handle, as K proxies on K machines would write.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "gen.h"
#include "mcpr/mcpr.h"
#include "backend/sqlite/db.h"

typedef struct run_config {
  uint64_t events;
  unsigned producers;
  unsigned sessions;
  const char *db;
  bool baseline;
  unsigned index_base; /* first producer index: distinct ids per process */
  unsigned processes;
  const char *sqlite; /* --sqlite PATH */
} run_config;

typedef struct producer {
  pthread_t thread;
  mcpr_store *store;
  unsigned index;
  uint64_t events;
  unsigned sessions;
  uint32_t *lat_ns; /* one per record() call, including re-offers */
  uint64_t calls, refused, failed;
  size_t lat_cap;
} producer;

#define BENCH_START_TS_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static bench_gen *make_gen(unsigned index, unsigned sessions) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "p%u", index);
  bench_gen_options o = {.seed = 1000 + index, .sessions = sessions, .id_prefix = prefix,
                         .start_ts_ms = BENCH_START_TS_MS, .step_us = 2000};
  return bench_gen_new(&o);
}

static void record_lat(producer *p, uint64_t ns) {
  if (p->calls < p->lat_cap)
    p->lat_ns[p->calls] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
  p->calls++;
}

static void *producer_main(void *arg) {
  producer *p = arg;
  bench_gen *g = make_gen(p->index, p->sessions);
  if (!g)
    return NULL;
  for (uint64_t i = 0; i < p->events; i++) {
    const mcpr_store_event *e = bench_gen_next(g);
    for (;;) {
      uint64_t t0 = bench_now_ns();
      mcpr_status st = mcpr_store_record(p->store, e);
      record_lat(p, bench_now_ns() - t0);
      if (st == MCPR_OK)
        break;
      if (st != MCPR_EQUEUEFULL) {
        p->failed++;
        break;
      }
      p->refused++;
      struct timespec pause = {0, 1000000}; /* let the writer catch up */
      nanosleep(&pause, NULL);
    }
  }
  bench_gen_free(g);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static int refuse_existing(const char *path) {
  if (file_exists(path)) {
    fprintf(stderr, "mcpr-bench: %s exists; the benchmark writes a new store — remove it or"
                    " pick another --db\n", path);
    return 1;
  }
  return 0;
}

typedef struct result {
  double seconds;
  uint64_t written, refused, retries, calls;
  uint32_t p50, p99, max;
} result;

static int bench_write_pg(const run_config *cfg_in);

static int run_store(const run_config *cfg, result *res) {
  mcpr_store *store = bench_store_open(cfg->db);
  if (!store)
    return 1;
  producer *ps = calloc(cfg->producers, sizeof *ps);
  if (!ps)
    return 1;
  uint64_t per = cfg->events / cfg->producers;
  uint64_t t0 = bench_now_ns();
  for (unsigned i = 0; i < cfg->producers; i++) {
    ps[i].store = store;
    ps[i].index = cfg->index_base + i;
    ps[i].events = per + (i == 0 ? cfg->events % cfg->producers : 0);
    ps[i].sessions = cfg->sessions / cfg->producers ? cfg->sessions / cfg->producers : 1;
    ps[i].lat_cap = ps[i].events * 2;
    ps[i].lat_ns = malloc(ps[i].lat_cap * sizeof(uint32_t));
    if (!ps[i].lat_ns || pthread_create(&ps[i].thread, NULL, producer_main, &ps[i]) != 0) {
      fprintf(stderr, "mcpr-bench: cannot start producer %u\n", i);
      return 1;
    }
  }
  for (unsigned i = 0; i < cfg->producers; i++)
    pthread_join(ps[i].thread, NULL);
  mcpr_store_stats st;
  mcpr_status cst = mcpr_store_close(store, &st);
  res->seconds = (double)(bench_now_ns() - t0) / 1e9;
  if (cst != MCPR_OK)
    fprintf(stderr, "mcpr-bench: close: %s (%s)\n", mcpr_strerror(cst), st.last_error_message);

  size_t total = 0;
  for (unsigned i = 0; i < cfg->producers; i++)
    total += ps[i].calls < ps[i].lat_cap ? ps[i].calls : ps[i].lat_cap;
  uint32_t *all = malloc((total ? total : 1) * sizeof *all);
  if (!all)
    return 1;
  size_t k = 0;
  for (unsigned i = 0; i < cfg->producers; i++) {
    size_t n = ps[i].calls < ps[i].lat_cap ? ps[i].calls : ps[i].lat_cap;
    memcpy(all + k, ps[i].lat_ns, n * sizeof *all);
    k += n;
    res->calls += ps[i].calls;
    free(ps[i].lat_ns);
  }
  qsort(all, total, sizeof *all, cmp_u32);
  res->p50 = total ? all[(total - 1) / 2] : 0;
  res->p99 = total ? all[(size_t)((double)total * 0.99 + 0.999999) - 1] : 0;
  res->max = total ? all[total - 1] : 0;
  res->written = st.written + st.duplicates;
  res->refused = mcpr_store_stats_refused(&st);
  res->retries = st.retries;
  free(all);
  free(ps);
  return cst == MCPR_OK ? 0 : 1;
}

/* ---------- the original's design ---------- */

static const char ORIGINAL_INDEXES[] =
    "DROP INDEX IF EXISTS idx_requests_ts; DROP INDEX IF EXISTS idx_requests_proxy_ts;"
    "DROP INDEX IF EXISTS idx_requests_tool_ts; DROP INDEX IF EXISTS idx_requests_session;"
    "CREATE INDEX idx_requests_ts ON requests(ts);"
    "CREATE INDEX idx_requests_proxy_ts ON requests(proxy, ts);"
    "CREATE INDEX idx_requests_tool_ts ON requests(tool, ts) WHERE tool IS NOT NULL;"
    "CREATE INDEX idx_requests_session ON requests(session_id) WHERE session_id IS NOT NULL;"
    "CREATE INDEX idx_requests_status_ts ON requests(status, ts);"
    "CREATE INDEX idx_requests_latency ON requests(proxy, latency_us DESC, ts);";

/* rusqlite's execute(): prepare, bind, step, finalize — every time. */
static int execute(sqlite3 *db, const char *sql, const mcpr_store_event *e) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  if (e->kind == MCPR_STORE_EVENT_REQUEST) {
    const mcpr_request_event *r = &e->u.request;
    if (sqlite3_bind_parameter_count(st) == 3) { /* the session UPDATE */
      sqlite3_bind_int(st, 1, r->status != MCPR_REQUEST_OK);
      sqlite3_bind_int64(st, 2, r->ts_ms);
      sqlite3_bind_text(st, 3, r->session_id, -1, SQLITE_STATIC);
    } else {
      sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, r->ts_ms);
      sqlite3_bind_text(st, 3, r->proxy, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, r->session_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 5, r->method, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 6, r->tool, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 7, r->latency_us);
      sqlite3_bind_text(st, 8, mcpr_request_status_str(r->status), -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 9, r->error_code, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 10, r->error_msg, -1, SQLITE_STATIC);
      if (r->bytes_in >= 0)
        sqlite3_bind_int64(st, 11, r->bytes_in);
      if (r->bytes_out >= 0)
        sqlite3_bind_int64(st, 12, r->bytes_out);
      sqlite3_bind_text(st, 13, r->resource_uri, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 14, r->prompt_name, -1, SQLITE_STATIC);
    }
  } else if (e->kind == MCPR_STORE_EVENT_SESSION) {
    const mcpr_session_event *s = &e->u.session;
    sqlite3_bind_text(st, 1, s->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->proxy, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, s->started_at_ms);
    sqlite3_bind_text(st, 4, s->client_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->client_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, s->client_platform ? s->client_platform
                                                : mcpr_client_platform(s->client_name),
                      -1, SQLITE_STATIC);
  } else if (e->kind == MCPR_STORE_EVENT_SESSION_CLOSED) {
    sqlite3_bind_int64(st, 1, e->u.session_closed.ended_at_ms);
    sqlite3_bind_text(st, 2, e->u.session_closed.session_id, -1, SQLITE_STATIC);
  }
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int baseline_write(sqlite3 *db, const mcpr_store_event *e) {
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    int rc = execute(db,
                     "INSERT INTO requests (request_id, ts, proxy, session_id, method, tool,"
                     " latency_us, status, error_code, error_msg, bytes_in, bytes_out,"
                     " resource_uri, prompt_name)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                     e);
    if (rc == SQLITE_OK && e->u.request.session_id)
      rc = execute(db,
                   "UPDATE sessions SET total_calls = total_calls + 1,"
                   " total_errors = total_errors + ?1, last_seen_at = MAX(last_seen_at, ?2)"
                   " WHERE session_id = ?3",
                   e);
    return rc;
  }
  case MCPR_STORE_EVENT_SESSION:
    return execute(db,
                   "INSERT OR IGNORE INTO sessions (session_id, proxy, started_at, last_seen_at,"
                   " client_name, client_version, client_platform)"
                   " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
                   e);
  case MCPR_STORE_EVENT_SESSION_CLOSED:
    return execute(db,
                   "UPDATE sessions SET ended_at = ?1 WHERE session_id = ?2 AND ended_at IS NULL",
                   e);
  default:
    return SQLITE_OK;
  }
}

static int run_baseline(const run_config *cfg, const char *path, result *res) {
  sqlite3 *db = NULL;
  mcpr_error err = {0};
  if (mcpr__db_open(path, MCPR__DB_CREATE, NULL, &db, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: %s\n", err.message);
    return 1;
  }
  if (mcpr__db_exec(db, ORIGINAL_INDEXES) != SQLITE_OK) {
    fprintf(stderr, "mcpr-bench: baseline indexes: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return 1;
  }
  /* The same traffic: the same generators, interleaved as the producers'
   * events would reach a single channel. */
  bench_gen **gens = calloc(cfg->producers, sizeof *gens);
  uint64_t *left = calloc(cfg->producers, sizeof *left);
  if (!gens || !left)
    return 1;
  uint64_t per = cfg->events / cfg->producers;
  for (unsigned i = 0; i < cfg->producers; i++) {
    unsigned sessions = cfg->sessions / cfg->producers ? cfg->sessions / cfg->producers : 1;
    gens[i] = make_gen(i, sessions);
    left[i] = per + (i == 0 ? cfg->events % cfg->producers : 0);
  }
  uint64_t t0 = bench_now_ns(), done = 0, in_batch = 0;
  int rc = SQLITE_OK;
  unsigned turn = 0;
  while (done < cfg->events && rc == SQLITE_OK) {
    while (!left[turn])
      turn = (turn + 1) % cfg->producers;
    const mcpr_store_event *e = bench_gen_next(gens[turn]);
    left[turn]--;
    turn = (turn + 1) % cfg->producers;
    if (in_batch == 0)
      rc = mcpr__db_exec(db, "BEGIN");
    if (rc == SQLITE_OK)
      rc = baseline_write(db, e);
    done++;
    if (rc == SQLITE_OK && (++in_batch == 500 || done == cfg->events)) {
      rc = mcpr__db_exec(db, "COMMIT");
      in_batch = 0;
    }
  }
  res->seconds = (double)(bench_now_ns() - t0) / 1e9;
  if (rc != SQLITE_OK)
    fprintf(stderr, "mcpr-bench: baseline: %s\n", sqlite3_errmsg(db));
  res->written = rc == SQLITE_OK ? done : 0;
  for (unsigned i = 0; i < cfg->producers; i++)
    bench_gen_free(gens[i]);
  free(gens);
  free(left);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : 1;
}

/* ---------- PostgreSQL: a fresh schema, several processes ---------- */

static bool is_pg(const char *db) {
  return strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0;
}

static void pg_quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static bool pg_run(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  bool ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    PGresult *r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      fprintf(stderr, "mcpr-bench: %s", PQresultErrorMessage(r));
    PQclear(r);
  } else {
    fprintf(stderr, "mcpr-bench: cannot connect to the PostgreSQL --db\n");
  }
  PQfinish(c);
  return ok;
}

/* A new empty schema for this run; *out is url with search_path on it. */
static bool pg_fresh(const char *url, char *schema, size_t schema_size, char *out,
                     size_t out_size) {
  snprintf(schema, schema_size, "mcpr_bench_%d", (int)getpid());
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  int n = snprintf(out, out_size, "%s%coptions=-csearch_path%%3D%s", url,
                   strchr(url, '?') ? '&' : '?', schema);
  return n > 0 && (size_t)n < out_size && pg_run(url, sql);
}

/* K processes, each run_store() on its share with its own ids; the time
 * is the wall time until the last has closed its store. */
static int run_processes(const run_config *cfg, result *res) {
  unsigned k = cfg->processes;
  pid_t pids[64];
  uint64_t t0 = bench_now_ns();
  for (unsigned i = 0; i < k; i++) {
    pids[i] = fork();
    if (pids[i] < 0)
      return 1;
    if (pids[i] == 0) {
      run_config c = *cfg;
      c.events = cfg->events / k + (i == 0 ? cfg->events % k : 0);
      c.index_base = i * cfg->producers;
      result r = {0};
      int rc = run_store(&c, &r);
      _exit(rc == 0 && r.written == c.events ? 0 : 1);
    }
  }
  int rc = 0;
  for (unsigned i = 0; i < k; i++) {
    int status = 0;
    if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status))
      rc = 1;
  }
  res->seconds = (double)(bench_now_ns() - t0) / 1e9;
  res->written = rc == 0 ? cfg->events : 0;
  return rc;
}

static void usage(FILE *out) {
  fputs("usage: mcpr-bench write --events N --db PATH [--producers P] [--sessions S]"
        " [--baseline] [--retention D]\n\n"
        "  --events N     events to record (required)\n"
        "  --db PATH      a new store file to write (must not exist)\n"
        "  --producers P  recording threads (default 4)\n"
        "  --sessions S   concurrent sessions in the traffic (default 200)\n"
        "  --baseline     also run the original's design into PATH.baseline\n"
        "  --retention D  run mcpr's store with [store] retention = D (the traffic's\n"
        "                 timestamps start in the past, so it deletes as it writes)\n"
        "  --db URL       postgresql://…: write into a fresh schema of that database\n"
        "  --sqlite PATH  with a PostgreSQL --db: the same traffic into a new SQLite\n"
        "                 file PATH first, and the ratio of the two\n"
        "  --processes K  K writer processes sharing the events (default 1)\n",
        out);
}

static void report(const char *what, const run_config *cfg, const result *r) {
  printf("%s: %llu events in %.2f s = %.0f events/s (%u process%s x %u producers)\n", what,
         (unsigned long long)r->written, r->seconds, (double)r->written / r->seconds,
         cfg->processes, cfg->processes > 1 ? "es" : "", cfg->producers);
}

/* --db postgresql://…: optionally SQLite first, then PostgreSQL with one
 * process, then with --processes K when K > 1. */
static int bench_write_pg(const run_config *cfg_in) {
  run_config cfg = *cfg_in;
  unsigned k = cfg.processes;
  result lite = {0}, one = {0}, many = {0};
  int rc = 0;
  if (cfg.sqlite) {
    if (refuse_existing(cfg.sqlite))
      return 1;
    run_config c = cfg;
    c.db = cfg.sqlite;
    c.processes = 1;
    rc |= run_store(&c, &lite);
    report("sqlite", &c, &lite);
  }
  char schema[64], url[4200];
  if (!pg_fresh(cfg_in->db, schema, sizeof schema, url, sizeof url))
    return 1;
  cfg.db = url;
  cfg.processes = 1;
  rc |= run_store(&cfg, &one);
  report("postgres", &cfg, &one);
  if (k > 1) {
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE; CREATE SCHEMA %s", schema, schema);
    rc |= !pg_run(cfg_in->db, sql);
    cfg.processes = k;
    rc |= run_processes(&cfg, &many);
    report("postgres", &cfg, &many);
  }
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
  pg_run(cfg_in->db, sql);
  double pg_eps = (double)one.written / one.seconds;
  printf("{\"events\":%llu,\"postgres_events_per_sec\":%.0f",
         (unsigned long long)cfg.events, pg_eps);
  if (cfg.sqlite) {
    double lite_eps = (double)lite.written / lite.seconds;
    printf(",\"sqlite_events_per_sec\":%.0f,\"postgres_vs_sqlite\":%.2f", lite_eps,
           lite_eps > 0 ? pg_eps / lite_eps : 0.0);
  }
  if (k > 1) {
    double many_eps = (double)many.written / many.seconds;
    printf(",\"processes\":%u,\"postgres_processes_events_per_sec\":%.0f,"
           "\"processes_vs_one\":%.2f",
           k, many_eps, pg_eps > 0 ? many_eps / pg_eps : 0.0);
  }
  printf("}\n");
  if (one.written != cfg.events || (k > 1 && many.written != cfg.events)) {
    fprintf(stderr, "mcpr-bench: not every event reached the PostgreSQL store\n");
    rc = 1;
  }
  return rc;
}

int bench_write_main(int argc, char **argv) {
  run_config cfg = {.producers = 4, .sessions = 200, .processes = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--events") == 0) {
      cfg.events = bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--producers") == 0) {
      cfg.producers = (unsigned)bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--sessions") == 0) {
      cfg.sessions = (unsigned)bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--db") == 0 && v) {
      cfg.db = v, i++;
    } else if (strcmp(a, "--sqlite") == 0 && v) {
      cfg.sqlite = v, i++;
    } else if (strcmp(a, "--processes") == 0) {
      cfg.processes = (unsigned)bench_parse_count(a, v), i++;
    } else if (strcmp(a, "--baseline") == 0) {
      cfg.baseline = true;
    } else if (strcmp(a, "--retention") == 0 && v) {
      mcpr_error err = {0};
      if (mcpr_parse_duration_ms(a, v, &bench_retention_ms, &err) != MCPR_OK) {
        fprintf(stderr, "mcpr-bench write: %s\n", err.message);
        return 2;
      }
      i++;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "mcpr-bench write: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!cfg.events || !cfg.db || cfg.producers > 256 || !cfg.processes || cfg.processes > 64 ||
      (cfg.sqlite && !is_pg(cfg.db)) || (cfg.baseline && is_pg(cfg.db))) {
    usage(stderr);
    return 2;
  }
  if (is_pg(cfg.db))
    return bench_write_pg(&cfg);
  char base_path[4096];
  snprintf(base_path, sizeof base_path, "%s.baseline", cfg.db);
  if (refuse_existing(cfg.db) || (cfg.baseline && refuse_existing(base_path)))
    return 1;

  result ours = {0}, base = {0};
  int rc = 0;
  if (cfg.baseline) {
    rc |= run_baseline(&cfg, base_path, &base);
    printf("baseline (original design): %llu events in %.2f s = %.0f events/s\n",
           (unsigned long long)base.written, base.seconds, (double)base.written / base.seconds);
  }
  rc |= run_store(&cfg, &ours);
  double eps = (double)ours.written / ours.seconds;
  printf("mcpr store: %llu events in %.2f s = %.0f events/s (%u producers, %llu re-offers,"
         " %llu retries)\n",
         (unsigned long long)ours.written, ours.seconds, eps, cfg.producers,
         (unsigned long long)ours.refused, (unsigned long long)ours.retries);
  printf("record(): p50 %u ns, p99 %u ns, max %u ns over %llu calls\n", ours.p50, ours.p99,
         ours.max, (unsigned long long)ours.calls);
  printf("{\"events\":%llu,\"written\":%llu,\"refused\":%llu,\"retries\":%llu,\"seconds\":%.3f,"
         "\"events_per_sec\":%.0f,\"record_p50_ns\":%u,\"record_p99_ns\":%u,\"record_max_ns\":%u",
         (unsigned long long)cfg.events, (unsigned long long)ours.written,
         (unsigned long long)ours.refused, (unsigned long long)ours.retries, ours.seconds, eps,
         ours.p50, ours.p99, ours.max);
  if (cfg.baseline) {
    double beps = (double)base.written / base.seconds;
    printf(",\"baseline_written\":%llu,\"baseline_seconds\":%.3f,\"baseline_events_per_sec\":%.0f,"
           "\"speedup\":%.2f",
           (unsigned long long)base.written, base.seconds, beps, beps > 0 ? eps / beps : 0.0);
  }
  printf("}\n");
  if (ours.written != cfg.events) {
    fprintf(stderr, "mcpr-bench: only %llu of %llu events reached the store\n",
            (unsigned long long)ours.written, (unsigned long long)cfg.events);
    rc = 1;
  }
  return rc;
}
