/*
 * query.c — the public read API (query.h). Backend-neutral: argument
 * checks, result-set lifecycles, and the logic that is the same whatever
 * the database — stats from a stream of samples (stats.c), the session
 * prefix rule, schema payload parsing (jansson) for schema status and
 * unused tools. The SQL is in the backend (backend/sqlite/query.c for SQLite).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/query.h"
#include "mcpr/util.h"
#include "query/backend.h"
#include "store/backend.h"

/* Payloads are the store's own rows, but a corrupt or hostile one must not
 * take all memory or stack: bound what we parse. */
#define MAX_PAYLOAD_BYTES (16 * 1024 * 1024)
#define MAX_TOOLS 10000

static mcpr_status bad_handle(mcpr_error *err) {
  return mcpr_error_set(err, MCPR_EINVAL, "query handle or output is NULL");
}

/*
 * Every result set is an array of rows whose strings live in one pool.
 * rows_begin zeroes the set (so releasing it is always safe), checks the
 * limit when there is one (limit NULL: none) and gives it its pool;
 * rows_release frees both and zeroes the set again.
 */
static mcpr_status rows_begin(void *set, size_t set_size, const int64_t *limit,
                              mcpr__query_pool **pool, mcpr_error *err) {
  memset(set, 0, set_size);
  if (limit && *limit <= 0)
    return mcpr_error_set(err, MCPR_EINVAL, "limit must be positive");
  *pool = mcpr__pool_new();
  if (!*pool)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  return MCPR_OK;
}

static void rows_release(void *set, size_t set_size, void *rows, mcpr__query_pool *pool) {
  free(rows);
  mcpr__pool_free(pool);
  memset(set, 0, set_size);
}

mcpr_status mcpr_query_open(mcpr_query **out, const char *path, mcpr_error *err) {
  if (!out)
    return bad_handle(err);
  *out = NULL;
  char *resolved = mcpr_store_resolve_path(path, err);
  if (!resolved)
    return err && err->status != MCPR_OK ? err->status : MCPR_EINVAL;
  mcpr_query *q = calloc(1, sizeof *q);
  if (!q) {
    free(resolved);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  }
  /* The handle keeps the target only to show it: password redacted. */
  char shown[1024];
  q->path = strdup(mcpr_store_target_redact(resolved, shown, sizeof shown));
  const char *target;
  const mcpr__backend *be = mcpr__backend_find(resolved, &target, err);
  mcpr_status st = !q->path ? mcpr_error_set(err, MCPR_ENOMEM, "out of memory")
                   : be     ? be->query_open(target, &q->backend, &q->impl, err)
                            : (err ? err->status : MCPR_EINVAL);
  free(resolved);
  if (st != MCPR_OK) {
    free(q->path);
    free(q);
    return st;
  }
  *out = q;
  return MCPR_OK;
}

void mcpr_query_close(mcpr_query *q) {
  if (!q)
    return;
  q->backend->close(q->impl);
  free(q->path);
  free(q);
}

const char *mcpr_query_path(const mcpr_query *q) { return q ? q->path : NULL; }

/* ---------- requests ---------- */

void mcpr_log_filter_init(mcpr_log_filter *f) {
  memset(f, 0, sizeof *f);
  f->since_ms = MCPR_QUERY_NO_CUTOFF;
  f->limit = 50;
}

void mcpr_log_rows_release(mcpr_log_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

mcpr_log_row *mcpr__log_rows_push(mcpr_log_rows *rows, size_t *cap) {
  return mcpr__array_push((void **)&rows->rows, &rows->count, cap, sizeof(mcpr_log_row));
}

static mcpr_status run_logs(mcpr_query *q, mcpr__log_kind kind, const mcpr_log_filter *f,
                            mcpr_log_rows *out, mcpr_error *err) {
  if (!q || !f || !out)
    return bad_handle(err);
  size_t cap = 0;
  mcpr_status st = rows_begin(out, sizeof *out, &f->limit, &out->pool, err);
  if (st == MCPR_OK)
    st = q->backend->logs(q->impl, kind, f, out, &cap, err);
  if (st != MCPR_OK)
    mcpr_log_rows_release(out);
  return st;
}

mcpr_status mcpr_query_logs(mcpr_query *q, const mcpr_log_filter *f, mcpr_log_rows *out,
                            mcpr_error *err) {
  return run_logs(q, MCPR__LOGS, f, out, err);
}

mcpr_status mcpr_query_slow(mcpr_query *q, const mcpr_log_filter *f, mcpr_log_rows *out,
                            mcpr_error *err) {
  return run_logs(q, MCPR__SLOW, f, out, err);
}

mcpr_status mcpr_query_follow(mcpr_query *q, const mcpr_log_filter *f, mcpr_log_rows *out,
                              mcpr_error *err) {
  return run_logs(q, MCPR__FOLLOW, f, out, err);
}

mcpr_status mcpr_query_last_row_id(mcpr_query *q, int64_t *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  return q->backend->last_row_id(q->impl, out, err);
}

/* ---------- stats ---------- */

mcpr_status mcpr_query_stats(mcpr_query *q, const mcpr_stats_filter *f, mcpr_stats *out,
                             mcpr_error *err) {
  if (!q || !f || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  mcpr__stats_acc *acc = mcpr__stats_acc_new();
  if (!acc)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  mcpr_status st;
  if (q->backend->stats_rollup && !f->exact) {
    mcpr__stats_sinks sinks = {mcpr__stats_acc_add, mcpr__stats_acc_add_part, acc};
    st = q->backend->stats_rollup(q->impl, f, &sinks, err);
  } else {
    st = q->backend->stats_scan(q->impl, f, mcpr__stats_acc_add, acc, err);
  }
  if (st == MCPR_OK)
    st = mcpr__stats_acc_finish(acc, out, err);
  mcpr__stats_acc_free(acc);
  return st;
}

static int64_t now_or(int64_t now_ms) { return now_ms > 0 ? now_ms : mcpr_now_ms(); }

mcpr_status mcpr_query_status(mcpr_query *q, const mcpr_stats_filter *f, int64_t now_ms,
                              mcpr_status_summary *out, mcpr_error *err) {
  if (!q || !f || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  mcpr_status st = mcpr_query_stats(q, f, &out->stats, err);
  if (st != MCPR_OK)
    return st;
  st = q->backend->session_counts(q->impl, f->proxy, f->since_ms, now_or(now_ms),
                                  &out->active_sessions, &out->total_sessions, err);
  if (st != MCPR_OK)
    mcpr_status_summary_release(out);
  return st;
}

void mcpr_status_summary_release(mcpr_status_summary *s) {
  if (!s)
    return;
  mcpr_stats_release(&s->stats);
  memset(s, 0, sizeof *s);
}

/* ---------- sessions and clients ---------- */

void mcpr_session_filter_init(mcpr_session_filter *f) {
  memset(f, 0, sizeof *f);
  f->since_ms = MCPR_QUERY_NO_CUTOFF;
  f->limit = 50;
}

void mcpr_session_rows_release(mcpr_session_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

mcpr_status mcpr_query_sessions(mcpr_query *q, const mcpr_session_filter *f,
                                mcpr_session_rows *out, mcpr_error *err) {
  if (!q || !f || !out)
    return bad_handle(err);
  mcpr_status st = rows_begin(out, sizeof *out, &f->limit, &out->pool, err);
  if (st == MCPR_OK)
    st = q->backend->sessions(q->impl, f, now_or(f->now_ms), out, err);
  if (st != MCPR_OK)
    mcpr_session_rows_release(out);
  return st;
}

void mcpr_session_detail_release(mcpr_session_detail *d) {
  if (!d)
    return;
  mcpr_log_rows_release(&d->requests);
  mcpr__pool_free(d->pool);
  memset(d, 0, sizeof *d);
}

mcpr_status mcpr_query_session(mcpr_query *q, const char *id_prefix, int64_t now_ms,
                               mcpr_session_detail *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  if (!id_prefix || !*id_prefix)
    return mcpr_error_set(err, MCPR_EINVAL, "a session id (or its first characters) is needed");
  if (strlen(id_prefix) > 1024)
    return mcpr_error_set(err, MCPR_EINVAL, "session id is too long");
  int64_t now = now_or(now_ms);
  mcpr_session_rows found = {0};
  found.pool = mcpr__pool_new();
  if (!found.pool)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  mcpr_status st = q->backend->sessions_by_prefix(q->impl, id_prefix, now, 4, &found, err);
  if (st != MCPR_OK)
    goto done;
  bool exact = found.count >= 1 && strcmp(found.rows[0].session_id, id_prefix) == 0;
  if (found.count == 0) {
    st = mcpr_error_set(err, MCPR_ENOTFOUND, "no session with id or prefix '%.200s'", id_prefix);
    goto done;
  }
  if (found.count > 1 && !exact) {
    st = mcpr_error_set(err, MCPR_EINVAL,
                        "session prefix '%.100s' is ambiguous: it matches %s, %s%s; give more"
                        " characters",
                        id_prefix, found.rows[0].session_id, found.rows[1].session_id,
                        found.count > 2 ? " and more" : "");
    goto done;
  }
  /* The detail keeps the found rows' pool: the session's strings live there. */
  out->session = found.rows[0];
  out->pool = found.pool;
  found.pool = NULL;
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.session_id = out->session.session_id;
  f.limit = INT64_MAX;
  st = run_logs(q, MCPR__OLDEST_FIRST, &f, &out->requests, err);
  if (st != MCPR_OK)
    mcpr_session_detail_release(out);
done:
  mcpr_session_rows_release(&found);
  return st;
}

void mcpr_client_rows_release(mcpr_client_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

mcpr_status mcpr_query_clients(mcpr_query *q, const char *proxy, int64_t since_ms,
                               mcpr_client_rows *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  mcpr_status st = rows_begin(out, sizeof *out, NULL, &out->pool, err);
  if (st == MCPR_OK)
    st = q->backend->clients(q->impl, proxy, since_ms, out, err);
  if (st != MCPR_OK)
    mcpr_client_rows_release(out);
  return st;
}

/* ---------- schema ---------- */

void mcpr_schema_rows_release(mcpr_schema_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

mcpr_status mcpr_query_schema(mcpr_query *q, const char *proxy, const char *method,
                              mcpr_schema_rows *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  mcpr_status st = rows_begin(out, sizeof *out, NULL, &out->pool, err);
  if (st == MCPR_OK)
    st = q->backend->schema(q->impl, proxy, method, out, err);
  if (st != MCPR_OK)
    mcpr_schema_rows_release(out);
  return st;
}

const char *mcpr_schema_completeness_str(mcpr_schema_completeness c) {
  switch (c) {
  case MCPR_SCHEMA_COMPLETE:
    return "complete";
  case MCPR_SCHEMA_PARTIAL:
    return "partial";
  default:
    return "unknown";
  }
}

static json_t *parse_payload(const char *payload) {
  if (!payload)
    return NULL;
  size_t n = strlen(payload);
  if (n > MAX_PAYLOAD_BYTES)
    return NULL;
  return json_loadb(payload, n, JSON_DECODE_ANY, NULL);
}

static bool is_list_method(const char *m) {
  size_t n = strlen(m);
  return n > 5 && strcmp(m + n - 5, "/list") == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mcpr_schema_statuses_release(mcpr_schema_statuses *s) {
  if (s)
    rows_release(s, sizeof *s, s->rows, s->pool);
}

/* Fill server name/version, protocol version, capabilities from the
 * initialize result. */
static int read_initialize(mcpr__query_pool *pool, mcpr_schema_status *r, const char *payload) {
  int oom = 0;
  json_t *root = parse_payload(payload);
  if (!json_is_object(root)) {
    json_decref(root);
    return 0;
  }
  json_t *info = json_object_get(root, "serverInfo");
  r->server_name = mcpr__pool_strdup(pool, json_string_value(json_object_get(info, "name")), &oom);
  r->server_version =
      mcpr__pool_strdup(pool, json_string_value(json_object_get(info, "version")), &oom);
  r->protocol_version =
      mcpr__pool_strdup(pool, json_string_value(json_object_get(root, "protocolVersion")), &oom);
  json_t *caps = json_object_get(root, "capabilities");
  size_t n = json_is_object(caps) ? json_object_size(caps) : 0;
  if (n) {
    const char **names = mcpr__pool_alloc(pool, n * sizeof *names);
    if (!names) {
      oom = 1;
    } else {
      const char *key;
      json_t *value;
      size_t i = 0;
      json_object_foreach(caps, key, value) {
        (void)value;
        if (i < n)
          names[i++] = mcpr__pool_strdup(pool, key, &oom);
      }
      if (!oom) {
        qsort(names, i, sizeof *names, cmp_str);
        r->capabilities = names;
        r->capability_count = i;
      }
    }
  }
  json_decref(root);
  return oom ? -1 : 0;
}

mcpr_status mcpr_query_schema_status(mcpr_query *q, const char *proxy,
                                     mcpr_schema_statuses *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  mcpr_schema_rows snaps;
  mcpr_status st = mcpr_query_schema(q, proxy, NULL, &snaps, err);
  if (st != MCPR_OK)
    return st;
  out->pool = mcpr__pool_new();
  size_t cap = 0;
  int oom = out->pool == NULL;
  /* Snapshots come ordered by upstream_url, method: one run per upstream
   * (and proxy, which can differ for the same URL). */
  for (size_t i = 0; i < snaps.count && !oom;) {
    size_t j = i;
    while (j < snaps.count && strcmp(snaps.rows[j].upstream_url, snaps.rows[i].upstream_url) == 0 &&
           strcmp(snaps.rows[j].proxy, snaps.rows[i].proxy) == 0)
      j++;
    mcpr_schema_status *r =
        mcpr__array_push((void **)&out->rows, &out->count, &cap, sizeof *r);
    if (!r) {
      oom = 1;
      break;
    }
    r->proxy = mcpr__pool_strdup(out->pool, snaps.rows[i].proxy, &oom);
    r->upstream_url = mcpr__pool_strdup(out->pool, snaps.rows[i].upstream_url, &oom);
    r->methods = mcpr__pool_alloc(out->pool, (j - i) * sizeof *r->methods);
    if (!r->methods) {
      oom = 1;
      break;
    }
    bool has_init = false, has_list = false;
    for (size_t k = i; k < j; k++) {
      const mcpr_schema_row *s = &snaps.rows[k];
      r->methods[r->method_count++] = mcpr__pool_strdup(out->pool, s->method, &oom);
      if (s->captured_at_ms > r->last_captured_ms)
        r->last_captured_ms = s->captured_at_ms;
      if (strcmp(s->method, "initialize") == 0) {
        has_init = true;
        if (read_initialize(out->pool, r, s->payload) != 0)
          oom = 1;
      } else if (is_list_method(s->method)) {
        has_list = true;
      }
    }
    r->status = has_init && has_list ? MCPR_SCHEMA_COMPLETE : MCPR_SCHEMA_PARTIAL;
    i = j;
  }
  mcpr_schema_rows_release(&snaps);
  if (oom) {
    mcpr_schema_statuses_release(out);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  }
  return MCPR_OK;
}

void mcpr_schema_change_rows_release(mcpr_schema_change_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

mcpr_status mcpr_query_schema_changes(mcpr_query *q, const char *proxy, const char *method,
                                      int64_t limit, mcpr_schema_change_rows *out,
                                      mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  mcpr_status st = rows_begin(out, sizeof *out, &limit, &out->pool, err);
  if (st == MCPR_OK)
    st = q->backend->schema_changes(q->impl, proxy, method, limit, out, err);
  if (st != MCPR_OK)
    mcpr_schema_change_rows_release(out);
  return st;
}

void mcpr_unused_tool_rows_release(mcpr_unused_tool_rows *rows) {
  if (rows)
    rows_release(rows, sizeof *rows, rows->rows, rows->pool);
}

static int cmp_unused(const void *pa, const void *pb) {
  const mcpr_unused_tool_row *a = pa, *b = pb;
  if (a->calls != b->calls)
    return a->calls < b->calls ? -1 : 1;
  return strcmp(a->tool_name, b->tool_name);
}

mcpr_status mcpr_query_unused_tools(mcpr_query *q, const char *proxy, int64_t since_ms,
                                    mcpr_unused_tool_rows *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  mcpr_schema_rows snaps;
  mcpr_status st = mcpr_query_schema(q, proxy, "tools/list", &snaps, err);
  if (st != MCPR_OK)
    return st;
  const char **names = NULL;
  mcpr__tool_usage *usage = NULL;
  size_t cap = 0;
  int oom = 0;
  out->pool = mcpr__pool_new();
  if (!out->pool)
    oom = 1;
  /* The union of the tools of every captured tools/list, first
   * description wins; a name listed by two upstreams is one row. */
  for (size_t i = 0; i < snaps.count && !oom; i++) {
    json_t *root = parse_payload(snaps.rows[i].payload);
    json_t *tools = json_object_get(root, "tools");
    size_t k;
    json_t *item;
    json_array_foreach(tools, k, item) {
      const char *name = json_string_value(json_object_get(item, "name"));
      if (!name)
        continue;
      if (out->count >= MAX_TOOLS)
        break;
      bool seen = false;
      for (size_t m = 0; m < out->count && !seen; m++)
        seen = strcmp(out->rows[m].tool_name, name) == 0;
      if (seen)
        continue;
      mcpr_unused_tool_row *r =
          mcpr__array_push((void **)&out->rows, &out->count, &cap, sizeof *r);
      if (!r) {
        oom = 1;
        break;
      }
      r->tool_name = mcpr__pool_strdup(out->pool, name, &oom);
      r->description = mcpr__pool_strdup(
          out->pool, json_string_value(json_object_get(item, "description")), &oom);
      r->last_called_at_ms = MCPR_QUERY_NULL;
    }
    json_decref(root);
  }
  mcpr_schema_rows_release(&snaps);
  if (!oom && out->count) {
    names = calloc(out->count, sizeof *names);
    usage = calloc(out->count, sizeof *usage);
    oom = !names || !usage;
  }
  if (oom) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto fail;
  }
  if (out->count) {
    for (size_t i = 0; i < out->count; i++) {
      names[i] = out->rows[i].tool_name;
      usage[i].last_called_at_ms = MCPR_QUERY_NULL;
    }
    st = q->backend->tool_usage(q->impl, proxy, since_ms, names, out->count, usage, err);
    if (st != MCPR_OK)
      goto fail;
    for (size_t i = 0; i < out->count; i++) {
      out->rows[i].calls = usage[i].calls;
      out->rows[i].errors = usage[i].errors;
      out->rows[i].last_called_at_ms = usage[i].last_called_at_ms;
    }
    qsort(out->rows, out->count, sizeof *out->rows, cmp_unused);
  }
  free(names);
  free(usage);
  return MCPR_OK;
fail:
  free(names);
  free(usage);
  mcpr_unused_tool_rows_release(out);
  return st;
}

/* ---------- the store ---------- */

mcpr_status mcpr_query_store_info(mcpr_query *q, mcpr_store_info *out, mcpr_error *err) {
  if (!q || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  return q->backend->store_info(q->impl, out, err);
}

mcpr_status mcpr_query_rollup(mcpr_query *q, mcpr_rollup_progress_fn fn, void *ctx,
                              mcpr_rollup_progress *out, mcpr_error *err) {
  mcpr_rollup_progress unused;
  if (!out)
    out = &unused;
  memset(out, 0, sizeof *out);
  if (!q)
    return bad_handle(err);
  if (!q->backend->rollup)
    return mcpr_error_set(err, MCPR_EINVAL, "%s: this store layout has no rollups (%s)",
                          q->path, q->backend->name);
  return q->backend->rollup(q->impl, fn, ctx, out, err);
}

mcpr_status mcpr_query_rollup_behind(mcpr_query *q, int64_t *rows, mcpr_error *err) {
  if (!q || !rows)
    return bad_handle(err);
  *rows = 0;
  return q->backend->rollup_behind ? q->backend->rollup_behind(q->impl, rows, err) : MCPR_OK;
}

mcpr_status mcpr_query_vacuum(mcpr_query *q, const mcpr_vacuum_options *o,
                              mcpr_vacuum_result *out, mcpr_error *err) {
  if (!q || !o || !out)
    return bad_handle(err);
  memset(out, 0, sizeof *out);
  if (o->before_ms == MCPR_QUERY_NO_CUTOFF)
    return mcpr_error_set(err, MCPR_EINVAL, "vacuum needs a cutoff (--before)");
  return q->backend->vacuum(q->impl, o, out, err);
}
