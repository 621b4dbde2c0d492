/*
 * cmd_ingest.c — `mcpr ingest [FILE|-]`: proxy events (SPEC §3), one JSON
 * object per line, into the store (and the cloud when configured).
 *
 * The input is read as a stream with poll() + read() and a bounded line
 * buffer, so `tail -f proxy.log | mcpr ingest -` works: whenever the input
 * has been idle for 500 ms the fan-out is flushed, so rows reach the store
 * within about a second of their line. The store's writer commits in
 * batches (one short transaction each), never one transaction for the
 * whole input, so other writers, readers and a vacuum get their turn.
 *
 * A line over the 1 MiB limit is skipped up to its newline without being
 * buffered. A bad line is reported as `line N: <reason>` and skipped.
 *
 * Nothing silent: a store that cannot write is reported on stderr as soon
 * as the writer meets it (store_report.c), and again when it writes again;
 * the store's retry window bounds how long that can hold the run up.
 * SIGINT or SIGTERM stops the reading, flushes what was handed over (the
 * store stops retrying, so this takes about one attempt per batch), prints
 * the summary and exits 130 or 143. SIGINT is left alone when it is
 * ignored on entry (a background job of a non-interactive shell), as shells
 * expect.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_config.h"
#include "config_warn.h"
#include "format.h"
#include "mcpr/config.h"
#include "mcpr/mcpr.h"
#include "mcpr/event.h"
#include "mcpr/sink.h"
#include "store_report.h"

#define IDLE_FLUSH_MS 500
#define READ_CHUNK (64 * 1024)
#define BUF_CAP (MCPR_EVENT_LINE_MAX + READ_CHUNK + 2)
#define PROGRESS_MIN_BYTES (8 * 1024 * 1024)

extern const mcpr_cli_command cmd_ingest;

#define EMIT_WAIT_SLICE_MS 200

typedef struct ingest_counts {
  uint64_t lineno;  /* physical line number, for messages */
  uint64_t lines;   /* non-blank lines read */
  uint64_t events, rejected, heartbeats, emit_refused;
  uint64_t not_handed; /* read, but the stop signal came before the store took it */
} ingest_counts;

/* The stop signal received, 0 while none. */
static volatile sig_atomic_t stop_signal;
/* The store, once open: a signal that comes after the input was read (while
 * the fan-out and the store drain) must still cut a failing store's retries
 * short. mcpr_store_stop_retrying() is async-signal-safe. */
static mcpr_store *volatile signal_store;

static void on_stop_signal(int sig) {
  stop_signal = sig;
  if (signal_store)
    mcpr_store_stop_retrying(signal_store);
}

/* SIGTERM always; SIGINT unless ignored on entry. No SA_RESTART: the
 * signal must interrupt a poll() on a quiet pipe. */
static void install_stop_handlers(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  struct sigaction old;
  if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
    sigaction(SIGINT, &sa, NULL);
}

typedef struct reader {
  int fd;
  char *buf;
  size_t len;      /* bytes in buf */
  bool skipping;   /* inside an over-long line: drop bytes up to its newline */
  bool eof;
  uint64_t bytes_read;
} reader;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hand ev over, waiting for room in slices so a stop signal is seen. */
static mcpr_status emit(mcpr_fanout *fan, const mcpr_event *ev) {
  for (;;) {
    mcpr_status st = mcpr_fanout_emit_wait(fan, ev, EMIT_WAIT_SLICE_MS);
    if (st != MCPR_ETIMEDOUT && st != MCPR_EQUEUEFULL)
      return st;
    if (stop_signal)
      return MCPR_ECLOSING;
  }
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

/* The key field the store refuses when it is empty (a request's id, a
 * session's session_id), or NULL: found here, where the line number is
 * known, rather than later as a refusal with no line to point at. */
static const char *empty_key(const mcpr_event *ev) {
  switch (ev->type) {
  case MCPR_EVENT_REQUEST:
    return ev->u.request.id && !*ev->u.request.id ? "id" : NULL;
  case MCPR_EVENT_SESSION_START:
    return ev->u.session_start.session_id && !*ev->u.session_start.session_id ? "session_id"
                                                                              : NULL;
  case MCPR_EVENT_SESSION_END:
    return ev->u.session_end.session_id && !*ev->u.session_end.session_id ? "session_id" : NULL;
  default:
    return NULL;
  }
}

typedef struct ingest_run {
  mcpr_fanout *fan;
  ingest_counts c;
  bool progress;
  int64_t last_progress_ms;
  off_t total_bytes;
} ingest_run;

static void handle_line(ingest_run *r, const char *line, size_t n, bool too_long) {
  r->c.lineno++;
  if (!too_long && blank(line, n))
    return; /* blank lines are not input, but they count for line numbers */
  r->c.lines++;
  if (too_long) {
    fprintf(stderr, "line %" PRIu64 ": line is longer than the limit of %d bytes\n", r->c.lineno,
            MCPR_EVENT_LINE_MAX);
    r->c.rejected++;
    return;
  }
  mcpr_event ev;
  mcpr_error err = {0};
  if (mcpr_event_decode(line, n, &ev, &err) != MCPR_OK) {
    /* The reason may quote the line (an unknown "type"): escaped. */
    fprintf(stderr, "line %" PRIu64 ": ", r->c.lineno);
    fmt_put_clean(stderr, err.message);
    fputc('\n', stderr);
    r->c.rejected++;
    return;
  }
  const char *empty = empty_key(&ev);
  if (empty) {
    fprintf(stderr, "line %" PRIu64 ": field \"%s\": empty (the store needs it to tell events apart)\n",
            r->c.lineno, empty);
    mcpr_event_release(&ev);
    r->c.rejected++;
    return;
  }
  r->c.events++;
  if (ev.type == MCPR_EVENT_HEARTBEAT)
    r->c.heartbeats++;
  mcpr_status st = emit(r->fan, &ev);
  if (st == MCPR_ECLOSING && stop_signal)
    r->c.not_handed++;
  else if (st != MCPR_OK)
    r->c.emit_refused++;
  mcpr_event_release(&ev);
}

static void show_progress(ingest_run *r, uint64_t bytes, bool final) {
  if (!r->progress)
    return;
  int64_t now = mono_ms();
  if (!final && now - r->last_progress_ms < 500)
    return;
  r->last_progress_ms = now;
  if (r->total_bytes > 0)
    fprintf(stderr, "\ringest: %" PRIu64 " lines, %3d%%", r->c.lines,
            (int)(bytes * 100 / (uint64_t)r->total_bytes));
  else
    fprintf(stderr, "\ringest: %" PRIu64 " lines", r->c.lines);
  if (final)
    fputc('\n', stderr);
}

/* Returns 0 at EOF, 1 when a stop signal came, -1 on a read error
 * (message printed). */
static int pump(ingest_run *r, reader *rd) {
  for (;;) {
    if (stop_signal)
      return 1;
    /* Hand over every complete line in the buffer. */
    size_t start = 0;
    for (;;) {
      char *nl = memchr(rd->buf + start, '\n', rd->len - start);
      if (!nl || stop_signal)
        break;
      size_t n = (size_t)(nl - (rd->buf + start));
      if (rd->skipping) {
        rd->skipping = false;
        handle_line(r, NULL, 0, true);
      } else {
        handle_line(r, rd->buf + start, n, false);
      }
      start += n + 1;
    }
    memmove(rd->buf, rd->buf + start, rd->len - start);
    rd->len -= start;
    if (stop_signal)
      return 1;
    if (rd->len > MCPR_EVENT_LINE_MAX + 1) { /* +1: a trailing \r */
      rd->skipping = true;
      rd->len = 0;
    }
    if (rd->skipping)
      rd->len = 0;
    show_progress(r, rd->bytes_read, false);
    if (rd->eof) {
      if (rd->skipping)
        handle_line(r, NULL, 0, true);
      else if (rd->len > 0)
        handle_line(r, rd->buf, rd->len, false); /* last line without newline */
      rd->len = 0;
      return 0;
    }
    struct pollfd pfd = {.fd = rd->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, IDLE_FLUSH_MS);
    if (pr == 0) {
      /* Idle input (a live pipe): make what we have visible now. */
      mcpr_fanout_flush(r->fan, -1, NULL);
      continue;
    }
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0) {
      fprintf(stderr, "mcpr: reading input: %s\n", strerror(errno));
      return -1;
    }
    ssize_t got = read(rd->fd, rd->buf + rd->len, READ_CHUNK);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      fprintf(stderr, "mcpr: reading input: %s\n", strerror(errno));
      return -1;
    }
    if (got == 0)
      rd->eof = true;
    rd->len += (size_t)got;
    rd->bytes_read += (uint64_t)got;
  }
}

/* The cloud sink is built in cmd_cloud.c from the same config. */
mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err);

static int run_ingest(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const char *input = NULL;
  int64_t retry_window_ms = 0;
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      printf("%s\n", cmd_ingest.usage);
      return CLI_EXIT_OK;
    } else if (strcmp(argv[i], "--retry-window") == 0 ||
               strncmp(argv[i], "--retry-window=", 15) == 0) {
      const char *v = argv[i][14] == '=' ? argv[i] + 15 : (i + 1 < argc ? argv[++i] : NULL);
      mcpr_error perr = {0};
      if (!v)
        return cli_usage_error(&cmd_ingest, "--retry-window needs a duration (e.g. 60s)");
      if (mcpr_parse_duration_ms("--retry-window", v, &retry_window_ms, &perr) != MCPR_OK)
        return cli_usage_error(&cmd_ingest, "%s", perr.message);
      if (retry_window_ms > 86400000)
        return cli_usage_error(&cmd_ingest, "--retry-window is at most 1d");
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      return cli_usage_error(&cmd_ingest, "unknown option '%s'", argv[i]);
    } else if (input) {
      return cli_usage_error(&cmd_ingest, "only one input file, got '%s' and '%s'", input, argv[i]);
    } else {
      input = argv[i];
    }
  }
  if (!input)
    input = "-";

  int code = CLI_EXIT_FAIL;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  char *db_path = NULL;
  mcpr_store *store = NULL;
  ingest_run r = {0};
  reader rd = {.fd = -1};
  mcpr_sink *sink = NULL;
  bool cloud = false;

  /* The store of this run (--db, the config's [store] path, ...). The
   * cloud only with an explicit -c/--config: a ./mcpr.toml that holds the
   * proxy's own [cloud] token must not make a replayed log reach the
   * cloud a second time. The config's [store] retention applies whenever
   * the config is read (as for `mcpr proxy run`): not with --db alone. */
  if (ctx->config_path || !(ctx->db_path && *ctx->db_path)) {
    if ((code = cli_config_load(ctx, false, &cfg)) != 0)
      goto out;
    code = CLI_EXIT_FAIL;
    if (!(db_path = mcpr_config_store_path(cfg, ctx->db_path, &err))) {
      code = cli_fail("%s", err.message);
      goto out;
    }
  } else if ((code = cli_store_path(ctx, &db_path)) != 0) {
    goto out;
  }
  code = CLI_EXIT_FAIL;
  if (strcmp(input, "-") == 0) {
    rd.fd = STDIN_FILENO;
  } else if ((rd.fd = open(input, O_RDONLY | O_CLOEXEC)) < 0) {
    code = cli_fail("cannot open %s: %s", input, strerror(errno));
    goto out;
  }
  struct stat sb;
  if (fstat(rd.fd, &sb) == 0 && S_ISREG(sb.st_mode))
    r.total_bytes = sb.st_size;
  r.progress = isatty(STDERR_FILENO) && (r.total_bytes == 0 || r.total_bytes >= PROGRESS_MIN_BYTES) &&
               !(r.total_bytes == 0 && isatty(rd.fd));
  if (!(rd.buf = malloc(BUF_CAP))) {
    code = cli_fail("out of memory");
    goto out;
  }
  mcpr_store_options so;
  mcpr_store_options_init(&so);
  so.on_health = cli_store_health_print;
  mcpr_config_store_options(cfg, &so);
  if (retry_window_ms)
    so.io_retry_limit_ms = so.lock_wait_limit_ms = (uint32_t)retry_window_ms;
  if (mcpr_store_open(&store, db_path, &so, &err) != MCPR_OK) {
    char shown[1024];
    code = cli_fail("cannot open the store %s: %s",
                    mcpr_store_target_redact(db_path, shown, sizeof shown), err.message);
    goto out;
  }
  if (mcpr_fanout_new(&r.fan, &err) != MCPR_OK || mcpr_sink_store_new(&sink, store, NULL, &err) != MCPR_OK ||
      mcpr_fanout_add(r.fan, sink, &err) != MCPR_OK) {
    code = cli_fail("%s", err.message);
    goto out;
  }
  if (ctx->config_path && cfg && cfg->cloud.token && cfg->cloud.token[0]) {
    sink = NULL;
    if (cli_cloud_sink_from_config(cfg, db_path, &sink, &err) != MCPR_OK ||
        mcpr_fanout_add(r.fan, sink, &err) != MCPR_OK) {
      code = cli_fail("cloud sink: %s", err.message);
      goto out;
    }
    cloud = true;
  }

  signal_store = store;
  install_stop_handlers();
  int rc = pump(&r, &rd);
  show_progress(&r, rd.bytes_read, true);
  if (rc == 1)
    fprintf(stderr, "mcpr: %s: stopping after line %" PRIu64 "; writing what was read\n",
            stop_signal == SIGINT ? "interrupted" : "terminated", r.c.lineno);

  mcpr_sink_stats fin[2];
  memset(fin, 0, sizeof fin);
  mcpr_fanout_close(r.fan, fin, 2);
  r.fan = NULL;
  mcpr_store_stats st;
  mcpr_status close_st = mcpr_store_close(store, &st);
  signal_store = NULL;
  store = NULL;
  if (rc == 0 && stop_signal) { /* came after the input was read: cut the drain short */
    fprintf(stderr, "mcpr: %s: stopping after line %" PRIu64 "; wrote what was read\n",
            stop_signal == SIGINT ? "interrupted" : "terminated", r.c.lineno);
    rc = 1;
  }
  /* Refusals are not counted from the counters: the store sink offers a
   * refused event to the store again until it is accepted, or fails it
   * (fin[0].failed), and emit() offers one to the fan-out again in slices
   * (each slice a counted refusal) until it is taken or refused for good
   * (r.c.emit_refused). */
  uint64_t sink_failed = fin[0].failed + r.c.emit_refused;
  uint64_t failed = mcpr_store_stats_failed(&st) + sink_failed;
  fprintf(stderr,
          "ingest: read %" PRIu64 " lines, stored %" PRIu64 ", duplicates %" PRIu64
          ", rejected %" PRIu64 "",
          r.c.lines, st.written, st.duplicates - st.unknown_session_closes, r.c.rejected);
  if (st.unknown_session_closes)
    fprintf(stderr, ", session ends for unknown sessions %" PRIu64 " (not stored)",
            st.unknown_session_closes);
  if (r.c.heartbeats)
    fprintf(stderr, ", heartbeats %" PRIu64 " (not stored)", r.c.heartbeats);
  if (failed || r.c.not_handed) {
    fprintf(stderr, ", not stored %" PRIu64, failed + r.c.not_handed);
    cli_store_print_failed_by_cause(stderr, &st);
    if (sink_failed)
      fprintf(stderr, ", refused by the store's queue %" PRIu64, sink_failed);
    if (r.c.not_handed)
      fprintf(stderr, ", stopped before handing over %" PRIu64, r.c.not_handed);
  }
  fputc('\n', stderr);
  if (failed)
    fprintf(stderr, "mcpr: %" PRIu64 " event%s could not be stored: %s\n", failed,
            failed == 1 ? "" : "s",
            st.last_error_message[0] ? st.last_error_message
            : fin[0].last_error_message[0] ? fin[0].last_error_message
                                           : mcpr_strerror(close_st));
  if (failed || r.c.not_handed || rc == 1)
    fprintf(stderr, "mcpr: running the same ingest again is safe: events already stored are "
                    "skipped as duplicates and the rest is loaded\n");
  if (cloud) {
    mcpr_spool_status sp;
    char *dir = mcpr_cloud_spool_dir(db_path);
    if (dir && mcpr_cloud_spool_status(dir, &sp, NULL) == MCPR_OK) {
      fprintf(stderr,
              "cloud: %" PRIu64 " events handed to the cloud sink, %" PRIu64 " not accepted; %" PRIu64
              " events waiting in the spool (see 'mcpr cloud status')\n",
              fin[1].delivered, fin[1].failed, sp.pending_events);
      if (sp.paused || (sp.pending_events && sp.last_error[0]))
        fprintf(stderr, "cloud: %s\n", sp.last_error);
    }
    free(dir);
  }
  if (rc == 1)
    code = 128 + (int)stop_signal; /* 130 for SIGINT, 143 for SIGTERM, as shells report */
  else
    code = (rc == 0 && r.c.rejected == 0 && failed == 0) ? CLI_EXIT_OK
                                                                                 : CLI_EXIT_FAIL;
out:
  mcpr_fanout_close(r.fan, NULL, 0);
  signal_store = NULL;
  mcpr_store_close(store, NULL);
  if (rd.fd > STDIN_FILENO)
    close(rd.fd);
  free(rd.buf);
  free(db_path);
  mcpr_config_free(cfg);
  return code;
}

const mcpr_cli_command cmd_ingest = {
    .group = NULL,
    .name = "ingest",
    .summary = "read proxy events (JSON lines) into the store",
    .usage = "mcpr ingest [FILE|-] [--db PATH] [-c|--config FILE] [--retry-window D]\n"
             "\n"
             "Reads proxy events (one JSON object per line, the format of mcpr's\n"
             "JSON log) from FILE, or standard input when FILE is '-' or absent,\n"
             "into the store. Works on a live pipe: tail -f proxy.log | mcpr ingest -\n"
             "\n"
             "A bad line is reported as 'line N: <reason>' and skipped; every good\n"
             "line is stored. Ingesting the same events twice stores them once.\n"
             "\n"
             "  --db PATH      store file (default: [store] path of the config, else\n"
             "                 $MCPR_DB, else ~/.mcpr/store.db)\n"
             "  -c, --config FILE  mcpr.toml (default ./mcpr.toml when present): its\n"
             "                 [store] path; and, given explicitly, its [cloud] section:\n"
             "                 with a token the events are also sent to the cloud\n"
             "  --retry-window D  how long a store that cannot write (full disk, I/O\n"
             "                 error, read-only, locked) is retried before events are\n"
             "                 counted as not stored (default 60s; 120s for a lock)\n"
             "\n"
             "Events the cloud cannot take now wait in the spool beside the store\n"
             "('mcpr cloud status', 'mcpr cloud flush'); that is not a failure.\n"
             "\n"
             "A store that cannot write (disk full, I/O error, read-only, locked) is\n"
             "reported at once; after its retry window (--retry-window) further events are\n"
             "counted as not stored until a write succeeds. SIGINT/SIGTERM stop the\n"
             "reading, store what was read and print the summary; running the same\n"
             "ingest again is safe.\n"
             "\n"
             "Exit status: 0 every line stored, 1 some line rejected or not stored,\n"
             "2 usage error, 130/143 stopped by SIGINT/SIGTERM.",
    .run = run_ingest,
};
