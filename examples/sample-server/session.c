/*
 * session.c — the session table.
 *
 * Sessions are found by id on every request, so they sit in a fixed array
 * of hash buckets; they are also kept on a least-recently-used list so that
 * a client that initializes without ever deleting (a benchmark, a crashed
 * agent) cannot grow the table without bound: at the limit the stalest
 * session is ended, and its client gets 404 and re-initializes, which is
 * what the spec tells clients to do.
 *
 * A session can outlive its place in the table: a slow call or a stream
 * still running when the session is deleted holds a reference, and the
 * memory goes with the last one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sample.h"

#define SS_BUCKETS 1024

struct ss_sessions {
  ss_session *buckets[SS_BUCKETS];
  ss_session *lru_head, *lru_tail; /* head: most recently used */
  size_t count, max;
  ss_session_end_fn on_end;
  void *on_end_arg;
};

static size_t bucket_of(const char *id) {
  /* FNV-1a: the ids are random already, this only folds them. */
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % SS_BUCKETS;
}

static void lru_unlink(ss_sessions *t, ss_session *s) {
  if (s->lru_prev)
    s->lru_prev->lru_next = s->lru_next;
  else
    t->lru_head = s->lru_next;
  if (s->lru_next)
    s->lru_next->lru_prev = s->lru_prev;
  else
    t->lru_tail = s->lru_prev;
  s->lru_prev = s->lru_next = NULL;
}

static void lru_push_front(ss_sessions *t, ss_session *s) {
  s->lru_prev = NULL;
  s->lru_next = t->lru_head;
  if (t->lru_head)
    t->lru_head->lru_prev = s;
  t->lru_head = s;
  if (!t->lru_tail)
    t->lru_tail = s;
}

ss_sessions *ss_sessions_new(size_t max, ss_session_end_fn on_end, void *arg) {
  ss_sessions *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->max = max ? max : 1;
  t->on_end = on_end;
  t->on_end_arg = arg;
  return t;
}

void ss_sessions_free(ss_sessions *t) {
  if (!t)
    return;
  while (t->lru_head)
    ss_sessions_end(t, t->lru_head);
  free(t);
}

size_t ss_sessions_count(const ss_sessions *t) { return t->count; }

static bool random_hex(char *out, size_t bytes) {
  unsigned char raw[32];
  if (bytes > sizeof raw)
    return false;
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw + got, bytes - got, 0);
    if (n <= 0)
      return false;
    got += (size_t)n;
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[2 * bytes] = '\0';
  return true;
}

ss_session *ss_sessions_create(ss_sessions *t) {
  if (t->count >= t->max && t->lru_tail)
    ss_sessions_end(t, t->lru_tail);

  ss_session *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->backlog = json_array();
  if (!s->backlog || !random_hex(s->id, 16))
    goto fail;
  snprintf(s->protocol_version, sizeof s->protocol_version, "%s", SS_PROTOCOL_LATEST);
  s->log_level = SS_LOG_INFO;
  s->refs = 1;

  size_t b = bucket_of(s->id);
  s->hash_next = t->buckets[b];
  t->buckets[b] = s;
  lru_push_front(t, s);
  t->count++;
  return s;

fail:
  json_decref(s->backlog);
  free(s);
  return NULL;
}

ss_session *ss_sessions_find(ss_sessions *t, const char *id) {
  for (ss_session *s = t->buckets[bucket_of(id)]; s; s = s->hash_next) {
    if (strcmp(s->id, id) == 0) {
      lru_unlink(t, s);
      lru_push_front(t, s);
      return s;
    }
  }
  return NULL;
}

void ss_sessions_end(ss_sessions *t, ss_session *s) {
  ss_session **pp = &t->buckets[bucket_of(s->id)];
  while (*pp && *pp != s)
    pp = &(*pp)->hash_next;
  if (!*pp)
    return; /* not in this table: already ended */
  *pp = s->hash_next;
  s->hash_next = NULL;
  lru_unlink(t, s);
  t->count--;
  s->ended = true;
  if (t->on_end)
    t->on_end(s, t->on_end_arg);
  ss_session_unref(s);
}

void ss_session_ref(ss_session *s) { s->refs++; }

void ss_session_unref(ss_session *s) {
  if (!s || --s->refs > 0)
    return;
  json_decref(s->backlog);
  free(s);
}
