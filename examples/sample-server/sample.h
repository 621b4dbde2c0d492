/*
 * sample.h — how the parts of mcpr-sample-server meet.
 *
 *   main.c       the command line, signals, the event loop
 *   transport.c  Streamable HTTP: routing, POST exchanges, SSE streams,
 *                session headers, HTTP-level errors
 *   session.c    the session table (hash + LRU, bounded)
 *   methods.c    what each MCP method and tool answers
 *
 * This program stands for any third-party MCP server, so it uses nothing
 * from libmcpr: only libevent and jansson.
 */
#ifndef MCPR_SAMPLE_H
#define MCPR_SAMPLE_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef MCPR_SAMPLE_VERSION
#define MCPR_SAMPLE_VERSION "0.0.0"
#endif

#define SS_PROTOCOL_LATEST "2025-06-18"
#define SS_MAX_BODY_BYTES (1024 * 1024)
#define SS_MAX_JSON_DEPTH 64
#define SS_MAX_SESSIONS 4096
/* Messages kept for a session whose GET stream is not open (oldest dropped). */
#define SS_MAX_BACKLOG 32

typedef struct ss_config {
  char host[256];      /* listen address, without IPv6 brackets */
  int port;            /* 0: the kernel picks one */
  char path[256];      /* the MCP endpoint, e.g. /mcp */
  size_t page_size;    /* tools/list page size; 0: one page */
  int keepalive_ms;    /* SSE comment interval on GET streams */
  bool quiet;          /* no per-request log lines on stderr */
} ss_config;

typedef struct ss_server ss_server;
typedef struct ss_stream ss_stream;

typedef struct ss_session {
  char id[33];                  /* 128 random bits as hex: the Mcp-Session-Id */
  char protocol_version[16];    /* negotiated at initialize */
  bool client_roots;            /* the client declared the roots capability */
  int log_level;                /* index in ss_log_levels: less severe is not sent */
  uint64_t next_event_id;       /* SSE ids, unique across the session's streams */
  uint64_t next_server_request; /* ids of requests this server sends ("srv-N") */
  ss_stream *stream;            /* the open GET stream, or NULL */
  json_t *backlog;              /* messages waiting for a GET stream */
  unsigned refs;                /* the table's, plus one per user (exchange, stream) */
  bool ended;                   /* deleted or evicted: no longer found */
  struct ss_session *hash_next, *lru_prev, *lru_next;
} ss_session;

/* ---- session.c ---- */

typedef struct ss_sessions ss_sessions;
/* Called when a session leaves the table (DELETE, eviction, shutdown). */
typedef void (*ss_session_end_fn)(ss_session *session, void *arg);

/* A table holding at most max sessions; NULL when out of memory. */
ss_sessions *ss_sessions_new(size_t max, ss_session_end_fn on_end, void *arg);
/* Ends every session (on_end for each) and frees the table. NULL: no-op. */
void ss_sessions_free(ss_sessions *table);
/* A new session with a random id, in the table (borrowed: the table holds
 * its reference). When the table is full the least recently used session
 * is ended first. NULL when out of memory or without randomness. */
ss_session *ss_sessions_create(ss_sessions *table);
/* The live session with that id, marked as just used (borrowed), or NULL. */
ss_session *ss_sessions_find(ss_sessions *table, const char *id);
/* Takes the session out of the table, calls on_end, drops the table's ref. */
void ss_sessions_end(ss_sessions *table, ss_session *session);
size_t ss_sessions_count(const ss_sessions *table);
void ss_session_ref(ss_session *session);
/* Drops a reference; the last one frees the session. NULL: no-op. */
void ss_session_unref(ss_session *session);

/* ---- methods.c ---- */

extern const char *const ss_log_levels[8]; /* debug … emergency, RFC 5424 order */
#define SS_LOG_INFO 1

/* What answering one request produced: a response now, or a slow call the
 * transport runs on timers (progress, then ss_slow_result). */
typedef struct ss_outcome {
  json_t *response; /* new reference, or NULL when deferred */
  bool deferred;
  int slow_ms, slow_steps;
} ss_outcome;

typedef struct ss_context {
  ss_server *server;
  ss_session *session; /* borrowed; never NULL for ss_dispatch */
  const ss_config *config;
} ss_context;

bool ss_protocol_supported(const char *version);
/* The initialize result for these params; records the client's protocol
 * version and capabilities in session. New reference. */
json_t *ss_initialize_result(json_t *params, ss_session *session);
/* Answers one JSON-RPC request (object with "method" and "id"). */
void ss_dispatch(const ss_context *ctx, json_t *request, ss_outcome *out);
/* The final result of a slow call that ran ms in steps. New reference. */
json_t *ss_slow_result(json_t *id, int slow_ms, int slow_steps);

/* JSON-RPC builders; each returns a new reference (NULL when out of memory). */
json_t *ss_response(json_t *id, json_t *result /* stolen */);
json_t *ss_error(json_t *id, int code, const char *message);
json_t *ss_notification(const char *method, json_t *params /* stolen, may be NULL */);

/* ---- transport.c ---- */

/* NULL (with a message on stderr) when the address cannot be bound. */
ss_server *ss_server_new(struct event_base *base, const ss_config *config);
/* The port actually bound (the chosen one when config->port was 0). */
int ss_server_port(const ss_server *server);
/* Closes every stream and connection and frees the server. NULL: no-op. */
void ss_server_free(ss_server *server);
/* Sends msg (stolen) on the session's GET stream; without one it waits in
 * the session's backlog. True when it went out now. */
bool ss_session_send(ss_server *server, ss_session *session, json_t *msg);

#endif
