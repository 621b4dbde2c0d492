/*
 * pg_fixture.h — what the PostgreSQL tests share: the server the test run
 * started (scripts/pg-test-server.sh exports MCPR_TEST_PG_URL, and
 * MCPR_TEST_PG_CTL to restart it), one schema of its own per test (so
 * tests running in parallel never see each other's rows), and a lock that
 * keeps the server-restart test from running beside the others.
 * Header-only: each test program includes it once.
 */
#ifndef MCPR_TEST_PG_FIXTURE_H
#define MCPR_TEST_PG_FIXTURE_H

#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "testutil.h"

/* The server's URL, or NULL when the run has none. */
static inline const char *pg_url(void) {
  const char *u = getenv("MCPR_TEST_PG_URL");
  return u && *u ? u : NULL;
}

/* Skip the calling test (cmocka skip) when there is no server. */
#define PG_REQUIRE()                                                                   \
  do {                                                                                 \
    if (!pg_url()) {                                                                   \
      print_message("MCPR_TEST_PG_URL is not set: skipped (scripts/pg-test-server.sh " \
                    "starts a PostgreSQL 15 and sets it; scripts/test.sh does)\n");    \
      skip();                                                                          \
    }                                                                                  \
  } while (0)

/* Every test holds this lock shared; the restart test exclusively. */
static int pg_lock_held = -1;

/* A failed test returns without its pg_unlock(): the next pg_lock()
 * drops what is still held first. */
static inline int pg_lock(int exclusive) {
  if (pg_lock_held >= 0) {
    close(pg_lock_held);
    pg_lock_held = -1;
  }
  unsigned h = 2166136261u;
  for (const char *p = pg_url(); *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  char path[256];
  snprintf(path, sizeof path, "/tmp/mcpr-pg-test-%08x.lock", h);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, exclusive ? LOCK_EX : LOCK_SH), 0);
  pg_lock_held = fd;
  return fd;
}

static inline void pg_unlock(int fd) {
  if (fd >= 0 && fd == pg_lock_held) {
    close(fd);
    pg_lock_held = -1;
  }
}

static void pg_quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static inline PGconn *pg_admin(const char *url) {
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK)
    fail_msg("cannot connect to the test server: %s", PQerrorMessage(c));
  PQsetNoticeProcessor(c, pg_quiet, NULL);
  return c;
}

static inline void pg_exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
}

/* A schema of its own: "<name>_<pid>", created empty (dropped first). */
typedef struct pg_space {
  char schema[64];
  char url[1200]; /* the server URL with search_path set to the schema */
} pg_space;

static inline void pg_space_init(pg_space *s, const char *name) {
  snprintf(s->schema, sizeof s->schema, "t_%s_%d", name, (int)getpid());
  const char *base = pg_url();
  snprintf(s->url, sizeof s->url, "%s%coptions=-csearch_path%%3D%s", base,
           strchr(base, '?') ? '&' : '?', s->schema);
  PGconn *c = pg_admin(base);
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", s->schema,
           s->schema);
  pg_exec_ok(c, sql);
  PQfinish(c);
}

static inline void pg_space_drop(pg_space *s) {
  PGconn *c = pg_admin(pg_url());
  char sql[128];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", s->schema);
  pg_exec_ok(c, sql);
  PQfinish(c);
}

/* One integer from sql, run in the space (test assertions only). */
static inline long long pg_int(const pg_space *s, const char *sql) {
  PGconn *c = pg_admin(s->url);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  long long v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(c);
  return v;
}

/* The server URL with its password replaced by pw (a new string in buf). */
static inline const char *pg_url_with_password(const char *pw, char *buf, size_t size) {
  const char *u = pg_url();
  const char *start = strstr(u, "://");
  assert_non_null(start);
  start += 3;
  const char *at = strchr(start, '@');
  const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
  assert_non_null(colon);
  snprintf(buf, size, "%.*s%s%s", (int)(colon + 1 - u), u, pw, at);
  return buf;
}

/* The server's password, as the URL holds it (a new string in buf). */
static inline const char *pg_password(char *buf, size_t size) {
  const char *start = strstr(pg_url(), "://") + 3;
  const char *at = strchr(start, '@');
  const char *colon = memchr(start, ':', (size_t)(at - start));
  snprintf(buf, size, "%.*s", (int)(at - colon - 1), colon + 1);
  return buf;
}

#endif
