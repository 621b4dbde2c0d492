/*
 * The writer's rules (SPEC §2, §5), checked on the rows a user reads back
 * with plain sqlite3 after flush() or close(): session insert-or-ignore,
 * session counters from requests (and not from duplicates), SessionClosed,
 * error_msg truncation, optional fields, refused events, client platform,
 * schema versions and their change rows, batching options, and the stats
 * identity accepted == written + duplicates + failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

#define NUL "\xE2\x88\x85"
/* Long enough that a batch only closes on flush(), close() or size. */
#define NEVER_MS 600000

typedef struct fixture {
  char *dir;
  char *path;
  int n;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* A new store file per test. */
static const char *fresh_path(fixture *f) {
  char name[32];
  snprintf(name, sizeof name, "store-%d.db", f->n++);
  free(f->path);
  f->path = tu_path(f->dir, name);
  return f->path;
}

static int test_teardown(void **state) {
  fixture *f = *state;
  free(f->path);
  f->path = NULL;
  return 0;
}

static void flush_ok(mcpr_store *s) {
  mcpr_error err = {0};
  mcpr_status st = mcpr_store_flush(s, 30000, &err);
  if (st != MCPR_OK)
    fail_msg("flush: %s: %s", mcpr_status_name(st), err.message);
}

static mcpr_store_stats close_ok(mcpr_store *s) {
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_OK);
  assert_int_equal(st.accepted, st.written + st.duplicates + mcpr_store_stats_failed(&st));
  assert_int_equal(st.queue_depth, 0);
  return st;
}

static mcpr_store_event request_status(const char *id, int64_t ts, const char *session,
                                       mcpr_request_status status) {
  mcpr_store_event e = sf_request(id, ts, session);
  e.u.request.status = status;
  return e;
}

#define SESSION_SQL                                                            \
    "SELECT started_at, last_seen_at, ended_at, client_name, client_version,"   \
    " client_platform, total_calls, total_errors FROM sessions WHERE session_id='%s'"

static void assert_session(const char *path, const char *id, const char *want) {
  char sql[512];
  snprintf(sql, sizeof sql, SESSION_SQL, id);
  sf_assert_dump(path, sql, want);
}

/* ---------- sessions ---------- */

static void test_session_insert_or_ignore(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "claude-desktop"));
  mcpr_store_event again = sf_session("s-1", 2000, "Cursor");
  again.u.session.client_version = "9.9";
  sf_record(s, again); /* same batch */
  flush_ok(s);
  sf_record(s, again); /* a later batch */
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.accepted, 3);
  assert_int_equal(st.written, 1);
  assert_int_equal(st.duplicates, 2);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), 1);
  assert_session(path, "s-1", "1000|1000|" NUL "|claude-desktop|1.0|claude|0|0\n");
}

static void test_request_counters(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "cursor"));
  sf_record(s, sf_session("s-2", 1000, "cursor"));
  sf_record(s, request_status("r-1", 5000, "s-1", MCPR_REQUEST_OK));
  sf_record(s, request_status("r-2", 6000, "s-1", MCPR_REQUEST_ERROR));
  sf_record(s, request_status("r-3", 4000, "s-1", MCPR_REQUEST_TIMEOUT));
  sf_record(s, request_status("r-4", 7000, "s-2", MCPR_REQUEST_OK));
  flush_ok(s);
  assert_session(path, "s-1", "1000|6000|" NUL "|cursor|1.0|cursor|3|2\n");
  assert_session(path, "s-2", "1000|7000|" NUL "|cursor|1.0|cursor|1|0\n");

  /* An older request in a later batch counts but does not lower last_seen_at. */
  sf_record(s, request_status("r-5", 3000, "s-1", MCPR_REQUEST_ERROR));
  /* One older than the session's start leaves last_seen_at at least there. */
  sf_record(s, request_status("r-6", 10, "s-2", MCPR_REQUEST_OK));
  close_ok(s);
  assert_session(path, "s-1", "1000|6000|" NUL "|cursor|1.0|cursor|4|3\n");
  assert_session(path, "s-2", "1000|7000|" NUL "|cursor|1.0|cursor|2|0\n");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 6);
  sf_assert_dump(path, "SELECT request_id, status FROM requests ORDER BY id",
                 "r-1|ok\nr-2|error\nr-3|timeout\nr-4|ok\nr-5|error\nr-6|ok\n");
}

static void test_request_unknown_session(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "cursor"));
  sf_record(s, request_status("r-1", 5000, "ghost", MCPR_REQUEST_ERROR));
  sf_record(s, request_status("r-2", 5000, NULL, MCPR_REQUEST_ERROR));
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.written, 3);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), 1);
  assert_session(path, "s-1", "1000|1000|" NUL "|cursor|1.0|cursor|0|0\n");
  sf_assert_dump(path, "SELECT request_id, session_id FROM requests ORDER BY id",
                 "r-1|ghost\nr-2|" NUL "\n");
}

/* Row by row, a request written before its session's row counts nothing;
 * batching must not change that. */
static void test_request_before_session(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, request_status("r-1", 5000, "s-late", MCPR_REQUEST_ERROR));
  sf_record(s, sf_session("s-late", 1000, "claude"));
  sf_record(s, request_status("r-2", 4000, "s-late", MCPR_REQUEST_OK));
  flush_ok(s);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.batches, 1); /* the three were one transaction */
  assert_session(path, "s-late", "1000|4000|" NUL "|claude|1.0|claude|1|0\n");

  /* Across batches: the request committed first, the session later. */
  sf_record(s, request_status("r-3", 9000, "s-later", MCPR_REQUEST_ERROR));
  flush_ok(s);
  sf_record(s, sf_session("s-later", 8000, "claude"));
  close_ok(s);
  assert_session(path, "s-later", "8000|8000|" NUL "|claude|1.0|claude|0|0\n");
}

static void test_duplicate_request_id(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "cursor"));
  sf_record(s, sf_session("s-2", 1000, "cursor"));
  sf_record(s, request_status("r-1", 5000, "s-1", MCPR_REQUEST_ERROR));
  /* Same batch: same id again, even with another status and a later ts. */
  sf_record(s, request_status("r-1", 6000, "s-1", MCPR_REQUEST_TIMEOUT));
  flush_ok(s);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.duplicates, 1);
  assert_session(path, "s-1", "1000|5000|" NUL "|cursor|1.0|cursor|1|1\n");

  /* Across batches, and naming another session: still nothing counted. */
  sf_record(s, request_status("r-1", 9000, "s-1", MCPR_REQUEST_ERROR));
  sf_record(s, request_status("r-1", 9000, "s-2", MCPR_REQUEST_ERROR));
  /* A request stored without a session, re-sent with one. */
  sf_record(s, request_status("r-2", 5500, NULL, MCPR_REQUEST_OK));
  flush_ok(s);
  sf_record(s, request_status("r-2", 9500, "s-2", MCPR_REQUEST_TIMEOUT));
  st = close_ok(s);
  assert_int_equal(st.accepted, 8);
  assert_int_equal(st.duplicates, 4);
  assert_int_equal(st.written, 4);
  assert_session(path, "s-1", "1000|5000|" NUL "|cursor|1.0|cursor|1|1\n");
  assert_session(path, "s-2", "1000|1000|" NUL "|cursor|1.0|cursor|0|0\n");
  sf_assert_dump(path, "SELECT request_id, ts, session_id, status FROM requests ORDER BY id",
                 "r-1|5000|s-1|error\nr-2|5500|" NUL "|ok\n");
}

static void test_session_closed(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "cursor"));
  sf_record(s, sf_session("s-2", 1000, "cursor"));
  sf_record(s, sf_session_closed("s-1", 7000));
  sf_record(s, sf_session_closed("s-1", 8000)); /* same batch */
  flush_ok(s);
  sf_record(s, sf_session_closed("s-1", 9000)); /* later batch */
  sf_record(s, sf_session_closed("ghost", 9000));
  mcpr_store_stats st = close_ok(s);
  sf_assert_dump(path, "SELECT session_id, ended_at FROM sessions ORDER BY session_id",
                 "s-1|7000\ns-2|" NUL "\n");
  /* Closes that changed nothing are duplicates, not writes. */
  assert_int_equal(st.written, 3);
  assert_int_equal(st.duplicates, 3);
  /* of them, the close of a session never started */
  assert_int_equal(st.unknown_session_closes, 1);
}

/* A replayed log (mcpr ingest of the same file again, or an older file
 * after a newer one) repeats versions: they change nothing. */
static void test_schema_replay(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  const char *v1 = "{\"tools\":[{\"name\":\"a\"}]}";
  const char *v2 = "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}";
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "api", "tools/list", v1, "h1"));
  sf_record(s, sf_schema(2000, "api", "tools/list", v2, "h2"));
  flush_ok(s);
  sf_record(s, sf_schema(1000, "api", "tools/list", v1, "h1")); /* older */
  sf_record(s, sf_schema(2000, "api", "tools/list", v2, "h2")); /* same */
  sf_record(s, sf_schema(3000, "api", "tools/list", v2, "h2")); /* same content, later */
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.written, 2);
  assert_int_equal(st.duplicates, 3);
  sf_assert_dump(path, "SELECT change_type, item_name, detected_at FROM schema_changes ORDER BY id",
                 "initial|" NUL "|1000\ntool_added|b|2000\n");
  sf_assert_dump(path, "SELECT schema_hash, captured_at FROM server_schema", "h2|2000\n");
}

/* ---------- request fields ---------- */

static bool valid_utf8(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n)
      return false;
    for (size_t k = 1; k < len; k++)
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
    i += len;
  }
  return true;
}

static char *repeat(const char *prefix, const char *unit, int times) {
  size_t n = strlen(prefix) + strlen(unit) * (size_t)times + 1;
  char *out = malloc(n);
  assert_non_null(out);
  size_t k = strlen(prefix);
  memcpy(out, prefix, k);
  for (int i = 0; i < times; i++) {
    memcpy(out + k, unit, strlen(unit));
    k += strlen(unit);
  }
  out[k] = '\0';
  return out;
}

static void test_error_msg_truncated_at_utf8_boundary(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  static const struct {
    const char *prefix, *unit;
    int times;
    int want_chars;
  } cases[] = {
      {"", "\xC3\xA9", 600, 512},              /* é, 2 bytes */
      {"", "\xF0\x9F\x98\x80", 600, 512},      /* 😀, 4 bytes */
      {"a", "\xF0\x9F\x98\x80", 600, 512},     /* the cut inside a 4-byte char */
      {"ab", "\xE2\x82\xAC", 600, 512},        /* €, 3 bytes */
      {"", "x", 512, 512},                     /* exactly the limit */
      {"", "x", 513, 512},
      {"", "\xC3\xA9", 511, 511},              /* under the limit: kept whole */
  };
  size_t n = sizeof cases / sizeof cases[0];
  char *msgs[sizeof cases / sizeof cases[0]];
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  for (size_t i = 0; i < n; i++) {
    msgs[i] = repeat(cases[i].prefix, cases[i].unit, cases[i].times);
    char id[16];
    snprintf(id, sizeof id, "r-%zu", i);
    mcpr_store_event e = request_status(id, 1000, NULL, MCPR_REQUEST_ERROR);
    e.u.request.error_msg = msgs[i];
    sf_record(s, e);
  }
  close_ok(s);
  for (size_t i = 0; i < n; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT error_msg FROM requests WHERE request_id='r-%zu'", i);
    char *got = sf_sql_text(path, sql);
    assert_non_null(got);
    size_t bytes = strlen(got);
    if (!valid_utf8((const unsigned char *)got, bytes))
      fail_msg("case %zu: stored error_msg is not valid UTF-8", i);
    /* The stored text is a prefix of the message, cut at a character. */
    assert_memory_equal(got, msgs[i], bytes);
    snprintf(sql, sizeof sql, "SELECT length(error_msg) FROM requests WHERE request_id='r-%zu'",
             i);
    if (tu_sql_int(path, sql) != cases[i].want_chars)
      fail_msg("case %zu: %lld characters stored, want %d", i, (long long)tu_sql_int(path, sql),
               cases[i].want_chars);
    free(got);
    free(msgs[i]);
  }
  /* 600 × é → exactly 512 é. */
  char *want = repeat("", "\xC3\xA9", 512);
  sf_assert_text(path, "SELECT error_msg FROM requests WHERE request_id='r-0'", want);
  free(want);
}

/* Malformed UTF-8 (a sequence cut by the end of the string) is stored
 * without reading past the terminator. */
static void test_error_msg_malformed_utf8(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  static const char *const msgs[] = {"\xF0\x9F", "abc\xE2", "\xC3", "\x80\x80x"};
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  for (size_t i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof id, "m-%zu", i);
    /* Heap copies so ASan sees any read past the NUL. */
    char *copy = strdup(msgs[i]);
    mcpr_store_event e = request_status(id, 1000, NULL, MCPR_REQUEST_ERROR);
    e.u.request.error_msg = copy;
    sf_record(s, e);
    free(copy);
  }
  close_ok(s);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 4);
  assert_int_equal(tu_sql_int(path, "SELECT length(CAST(error_msg AS BLOB)) FROM requests"
                                    " WHERE request_id='m-1'"),
                   4);
}

static void test_optional_fields(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  mcpr_store_event bare = sf_request("r-bare", 1000, NULL);
  bare.u.request.tool = NULL;
  bare.u.request.method = "initialize";
  sf_record(s, bare);
  mcpr_store_event full = sf_request("r-full", 2000, "s-x");
  full.u.request.method = "resources/read";
  full.u.request.tool = NULL;
  full.u.request.resource_uri = "file:///a";
  full.u.request.prompt_name = "p";
  full.u.request.status = MCPR_REQUEST_TIMEOUT;
  full.u.request.error_code = "-32001";
  full.u.request.error_msg = "slow";
  full.u.request.bytes_in = 0; /* measured zero is not absent */
  full.u.request.bytes_out = 42;
  full.u.request.latency_us = 0;
  sf_record(s, full);
  mcpr_store_event neg = sf_request("r-neg", 3000, NULL);
  neg.u.request.bytes_in = -7;
  neg.u.request.bytes_out = INT64_MIN;
  sf_record(s, neg);
  close_ok(s);
  sf_assert_dump(path,
                 "SELECT request_id, ts, proxy, session_id, method, tool, latency_us, status,"
                 " error_code, error_msg, bytes_in, bytes_out, resource_uri, prompt_name"
                 " FROM requests ORDER BY id",
                 "r-bare|1000|api|" NUL "|initialize|" NUL "|1500|ok|" NUL "|" NUL "|" NUL "|" NUL
                 "|" NUL "|" NUL "\n"
                 "r-full|2000|api|s-x|resources/read|" NUL "|0|timeout|-32001|slow|0|42|file:///a|p\n"
                 "r-neg|3000|api|" NUL "|tools/call|search|1500|ok|" NUL "|" NUL "|" NUL "|" NUL
                 "|" NUL "|" NUL "\n");
  assert_int_equal(tu_sql_int(path, "SELECT typeof(bytes_in)='null' AND typeof(bytes_out)='null'"
                                    " FROM requests WHERE request_id='r-bare'"),
                   1);
}

static void test_invalid_events_refused(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  mcpr_store_event bad[12];
  int n = 0;
  bad[n] = sf_request(NULL, 1000, NULL), n++;
  bad[n] = sf_request("", 1000, NULL), n++;
  bad[n] = sf_request("r-status", 1000, NULL);
  bad[n].u.request.status = (mcpr_request_status)7, n++;
  bad[n] = sf_request("r-status-neg", 1000, NULL);
  bad[n].u.request.status = (mcpr_request_status)-1, n++;
  bad[n] = sf_request("r-latency", 1000, NULL);
  bad[n].u.request.latency_us = -1, n++;
  bad[n] = sf_request("r-proxy", 1000, NULL);
  bad[n].u.request.proxy = NULL, n++;
  bad[n] = sf_request("r-method", 1000, NULL);
  bad[n].u.request.method = NULL, n++;
  bad[n] = sf_session(NULL, 1000, "x"), n++;
  bad[n] = sf_session_closed(NULL, 1000), n++;
  bad[n] = sf_schema(1000, "api", "tools/list", NULL, "h"), n++;
  bad[n] = sf_schema(1000, "api", "tools/list", "{}", NULL), n++;
  bad[n] = sf_request("r-kind", 1000, NULL);
  bad[n].kind = (mcpr_store_event_kind)99, n++;
  for (int i = 0; i < n; i++)
    if (mcpr_store_record(s, &bad[i]) != MCPR_EINVAL)
      fail_msg("invalid event %d was not refused with EINVAL", i);
  assert_int_equal(mcpr_store_record(s, NULL), MCPR_EINVAL);
  sf_record(s, sf_request("r-good", 1000, NULL));
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.refused_invalid, (uint64_t)n);
  assert_int_equal(mcpr_store_stats_refused(&st), (uint64_t)n);
  assert_int_equal(st.accepted, 1);
  assert_int_equal(st.written, 1);
  sf_assert_dump(path, "SELECT request_id FROM requests", "r-good\n");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), 0);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM server_schema"), 0);
}

/* ---------- client platform ---------- */

static void test_client_platform_rule(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"claude-ai", "claude"},        {"Claude Desktop", "claude"},
      {"CURSOR", "cursor"},           {"cursor-vscode", "cursor"},
      {"ChatGPT", "chatgpt"},         {"openai-mcp", "chatgpt"},
      {"GitHub Copilot", "vscode"},   {"Visual Studio Code (vscode)", "vscode"},
      {"VS-Code", "vscode"},          {"windsurf", "windsurf"},
      {"WindSurf Editor", "windsurf"}, {"my-client", "unknown"},
      {"", "unknown"},                {"vs code", "unknown"},
      {"cursor-claude", "claude"},    /* first rule in the list wins */
      {"copilot via openai", "chatgpt"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *got = mcpr_client_platform(cases[i][0]);
    if (!got || strcmp(got, cases[i][1]) != 0)
      fail_msg("mcpr_client_platform(\"%s\") = %s, want %s", cases[i][0], got ? got : "NULL",
               cases[i][1]);
  }
  assert_null(mcpr_client_platform(NULL));
}

static void test_client_platform_stored(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("a", 1, "Claude Desktop"));
  sf_record(s, sf_session("b", 1, "GitHub Copilot"));
  sf_record(s, sf_session("c", 1, "some-bot"));
  sf_record(s, sf_session("d", 1, NULL));
  mcpr_store_event e = sf_session("e", 1, "Cursor");
  e.u.session.client_platform = "custom";
  sf_record(s, e);
  close_ok(s);
  sf_assert_dump(path, "SELECT session_id, client_name, client_platform FROM sessions"
                       " ORDER BY session_id",
                 "a|Claude Desktop|claude\nb|GitHub Copilot|vscode\nc|some-bot|unknown\n"
                 "d|" NUL "|" NUL "\ne|Cursor|custom\n");
}

/* ---------- schema versions ---------- */

static const char CHANGES_SQL[] =
    "SELECT proxy, upstream_url, method, change_type, item_name, old_hash, new_hash,"
    " detected_at FROM schema_changes ORDER BY id";
static const char SNAPSHOT_SQL[] =
    "SELECT proxy, upstream_url, method, payload, captured_at, schema_hash"
    " FROM server_schema ORDER BY proxy, method";

static void test_schema_initial(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "api", "tools/list", "{\"tools\":[{\"name\":\"a\"}]}", "h1"));
  close_ok(s);
  sf_assert_dump(path, CHANGES_SQL,
                 "api|http://up|tools/list|initial|" NUL "|" NUL "|h1|1000\n");
  sf_assert_dump(path, SNAPSHOT_SQL,
                 "api|http://up|tools/list|{\"tools\":[{\"name\":\"a\"}]}|1000|h1\n");
}

static void check_list_diff(fixture *f, const char *method, const char *array,
                            const char *type) {
  const char *path = fresh_path(f);
  char v1[512], v2[512], want[2048];
  snprintf(v1, sizeof v1,
           "{\"%s\":[{\"name\":\"keep\",\"d\":1},{\"name\":\"mod\",\"d\":1},"
           "{\"name\":\"gone\",\"d\":1}]}",
           array);
  snprintf(v2, sizeof v2,
           "{\"%s\":[{\"name\":\"mod\",\"d\":2},{\"name\":\"keep\",\"d\":1},"
           "{\"name\":\"new\",\"d\":1}]}",
           array);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "api", method, v1, "h1"));
  flush_ok(s);
  sf_record(s, sf_schema(2000, "api", method, v2, "h2"));
  close_ok(s);
  snprintf(want, sizeof want,
           "api|http://up|%1$s|initial|" NUL "|" NUL "|h1|1000\n"
           "api|http://up|%1$s|%2$s_modified|mod|h1|h2|2000\n"
           "api|http://up|%1$s|%2$s_added|new|h1|h2|2000\n"
           "api|http://up|%1$s|%2$s_removed|gone|h1|h2|2000\n",
           method, type);
  sf_assert_dump(path, CHANGES_SQL, want);
  snprintf(want, sizeof want, "api|http://up|%s|%s|2000|h2\n", method, v2);
  sf_assert_dump(path, SNAPSHOT_SQL, want);
}

static void test_schema_tools_diff(void **state) {
  check_list_diff(*state, "tools/list", "tools", "tool");
}
static void test_schema_resources_diff(void **state) {
  check_list_diff(*state, "resources/list", "resources", "resource");
}
static void test_schema_resource_templates_diff(void **state) {
  check_list_diff(*state, "resources/templates/list", "resourceTemplates", "resource_template");
}
static void test_schema_prompts_diff(void **state) {
  check_list_diff(*state, "prompts/list", "prompts", "prompt");
}

static void test_schema_updated_rows(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "api", "initialize", "{\"serverInfo\":{\"version\":\"1\"}}", "i1"));
  sf_record(s, sf_schema(1000, "api", "tools/list",
                         "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":\"x\"}", "t1"));
  flush_ok(s);
  sf_record(s, sf_schema(2000, "api", "initialize", "{\"serverInfo\":{\"version\":\"2\"}}", "i2"));
  /* Only a top-level field changed: no item-level difference. */
  sf_record(s, sf_schema(2000, "api", "tools/list",
                         "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":\"y\"}", "t2"));
  close_ok(s);
  sf_assert_dump(path, CHANGES_SQL,
                 "api|http://up|initialize|initial|" NUL "|" NUL "|i1|1000\n"
                 "api|http://up|tools/list|initial|" NUL "|" NUL "|t1|1000\n"
                 "api|http://up|initialize|updated|" NUL "|i1|i2|2000\n"
                 "api|http://up|tools/list|updated|" NUL "|t1|t2|2000\n");
}

/* Versions in one batch see each other: the second diffs against the first. */
static void test_schema_versions_in_one_batch(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "api", "tools/list", "{\"tools\":[{\"name\":\"a\"}]}", "h1"));
  sf_record(s, sf_schema(2000, "api", "tools/list",
                         "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", "h2"));
  sf_record(s, sf_schema(3000, "api", "tools/list", "{\"tools\":[{\"name\":\"b\"}]}", "h3"));
  close_ok(s);
  sf_assert_dump(path, CHANGES_SQL,
                 "api|http://up|tools/list|initial|" NUL "|" NUL "|h1|1000\n"
                 "api|http://up|tools/list|tool_added|b|h1|h2|2000\n"
                 "api|http://up|tools/list|tool_removed|a|h2|h3|3000\n");
  sf_assert_dump(path, SNAPSHOT_SQL,
                 "api|http://up|tools/list|{\"tools\":[{\"name\":\"b\"}]}|3000|h3\n");
}

static void test_schema_per_proxy(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_schema(1000, "p1", "tools/list", "{\"tools\":[{\"name\":\"a\"}]}", "h1"));
  sf_record(s, sf_schema(1100, "p2", "tools/list", "{\"tools\":[{\"name\":\"a\"}]}", "h1"));
  flush_ok(s);
  sf_record(s, sf_schema(2000, "p2", "tools/list", "{\"tools\":[{\"name\":\"z\"}]}", "h9"));
  close_ok(s);
  sf_assert_dump(path, CHANGES_SQL,
                 "p1|http://up|tools/list|initial|" NUL "|" NUL "|h1|1000\n"
                 "p2|http://up|tools/list|initial|" NUL "|" NUL "|h1|1100\n"
                 "p2|http://up|tools/list|tool_added|z|h1|h9|2000\n"
                 "p2|http://up|tools/list|tool_removed|a|h1|h9|2000\n");
  sf_assert_dump(path, SNAPSHOT_SQL,
                 "p1|http://up|tools/list|{\"tools\":[{\"name\":\"a\"}]}|1000|h1\n"
                 "p2|http://up|tools/list|{\"tools\":[{\"name\":\"z\"}]}|2000|h9\n");
}

/* ---------- batching and stats ---------- */

static void test_batch_size_option(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 3, NEVER_MS);
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof id, "r-%d", i);
    sf_record(s, sf_request(id, 1000 + i, NULL));
  }
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.written, 10);
  assert_true(st.batches >= 4);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 10);
}

/* With no flush() and no close(), an event is committed once the interval
 * has passed (polled with a generous bound: no timing is asserted). */
static void test_flush_interval_option(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 500, 20);
  sf_record(s, sf_request("r-1", 1000, NULL));
  mcpr_store_stats st = {0};
  for (int i = 0; i < 3000 && st.written < 1; i++) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
    mcpr_store_stats_get(s, &st);
  }
  assert_int_equal(st.written, 1);
  assert_int_equal(st.batches, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id='r-1'"), 1);
  close_ok(s);
}

static void test_stats_add_up(void **state) {
  fixture *f = *state;
  const char *path = fresh_path(f);
  mcpr_store *s = sf_open(path, 7, NEVER_MS);
  int accepted = 0;
  for (int i = 0; i < 50; i++) {
    char id[16];
    snprintf(id, sizeof id, "r-%d", i % 30); /* 20 duplicates */
    sf_record(s, request_status(id, 1000 + i, i % 3 ? "s-1" : NULL, MCPR_REQUEST_OK));
    accepted++;
    if (i == 10) {
      sf_record(s, sf_session("s-1", 1000, "x"));
      sf_record(s, sf_session("s-1", 1000, "x"));
      accepted += 2;
    }
  }
  mcpr_store_event bad = sf_request(NULL, 1, NULL);
  assert_int_equal(mcpr_store_record(s, &bad), MCPR_EINVAL);
  mcpr_store_stats st = close_ok(s);
  assert_int_equal(st.accepted, (uint64_t)accepted);
  assert_int_equal(st.written, 31);
  assert_int_equal(st.duplicates, 21);
  assert_int_equal(mcpr_store_stats_failed(&st), 0);
  assert_int_equal(st.refused_invalid, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 30);
  /* Only the first-time requests with a session after its insert count. */
  assert_int_equal(tu_sql_int(path, "SELECT total_calls FROM sessions"),
                   tu_sql_int(path, "SELECT count(*) FROM requests WHERE session_id='s-1'"
                                    " AND ts > 1010"));
}

/* The scheduling policy of this process's thread named `name`, -1 if none. */
static int thread_policy(const char *name) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int policy = -1;
  struct dirent *e;
  while ((e = readdir(d)) && policy < 0) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *fp = fopen(path, "r");
    if (!fp)
      continue;
    if (fgets(comm, sizeof comm, fp))
      comm[strcspn(comm, "\n")] = '\0';
    fclose(fp);
    if (strcmp(comm, name) != 0)
      continue;
    /* its scheduling policy: field 41 of stat, the 39th after the ")"
     * that ends the name */
    char stat[1024] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    if ((fp = fopen(path, "r"))) {
      size_t n = fread(stat, 1, sizeof stat - 1, fp);
      stat[n] = '\0';
      fclose(fp);
    }
    const char *f = strrchr(stat, ')');
    for (int field = 2; f && field < 41; field++)
      f = strchr(f + 1, ' ');
    if (f)
      policy = atoi(f + 1);
  }
  closedir(d);
  return policy;
}

static void *idle_and_back(void *arg) {
  struct sched_param sp = {0};
  *(bool *)arg = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0 &&
                 pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp) == 0;
  return NULL;
}

/* options.background_writer: an idle writer waits in SCHED_IDLE where the
 * process may come back from it (as root, as CI runs: always), and every
 * event is still written, a burst of half the queue's capacity included
 * (which sends it back to normal priority while it catches up). Without
 * the option it keeps normal priority. */
static void test_background_writer(void **state) {
  fixture *f = *state;
  bool allowed = false;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, idle_and_back, &allowed), 0);
  pthread_join(t, NULL);
  for (int on = 0; on <= 1; on++) {
    const char *path = fresh_path(f);
    mcpr_store_options o;
    mcpr_store_options_init(&o);
    o.flush_interval_ms = 20;
    o.queue_capacity = 1024;
    o.background_writer = on;
    mcpr_error err = {0};
    mcpr_store *s = NULL;
    assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
    sf_record_n(s, "a", 10);
    flush_ok(s);
    int want = on && allowed ? SCHED_IDLE : SCHED_OTHER, policy = -1;
    for (int i = 0; i < 500 && policy != want; i++) { /* it gets there on its way to sleep */
      struct timespec ts = {0, 2 * 1000000L};
      nanosleep(&ts, NULL);
      policy = thread_policy("mcpr-writer");
    }
    assert_int_equal(policy, want);
    sf_record_n(s, "b", 512);
    mcpr_store_stats st = close_ok(s);
    assert_int_equal(st.written, 522);
    assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 522);
  }
}

int main(void) {
#define T(fn) cmocka_unit_test_teardown(fn, test_teardown)
  const struct CMUnitTest tests[] = {
      T(test_session_insert_or_ignore),
      T(test_request_counters),
      T(test_request_unknown_session),
      T(test_request_before_session),
      T(test_duplicate_request_id),
      T(test_session_closed),
      T(test_schema_replay),
      T(test_error_msg_truncated_at_utf8_boundary),
      T(test_error_msg_malformed_utf8),
      T(test_optional_fields),
      T(test_invalid_events_refused),
      T(test_client_platform_rule),
      T(test_client_platform_stored),
      T(test_schema_initial),
      T(test_schema_tools_diff),
      T(test_schema_resources_diff),
      T(test_schema_resource_templates_diff),
      T(test_schema_prompts_diff),
      T(test_schema_updated_rows),
      T(test_schema_versions_in_one_batch),
      T(test_schema_per_proxy),
      T(test_batch_size_option),
      T(test_flush_interval_option),
      T(test_stats_add_up),
      T(test_background_writer),
  };
#undef T
  return cmocka_run_group_tests(tests, setup, teardown);
}
