/*
 * series.c — the time series of query.h (mcpr_query_series): requests,
 * errors and p50/p95 latency per time bucket, for the dashboard's charts.
 *
 * Backend-neutral, like stats.c: the backend hands over the window's
 * requests (series_scan: ts, label, latency, error) in any order and this
 * file buckets them — counts per bucket and per label, every known latency
 * kept per bucket until the end, when p50/p95 are selected (nearest rank,
 * the stats rule) with a quickselect. Memory: 8 bytes per request of the
 * window, as stats. A backend with rollups may hand over whole hours
 * instead (parts: counts and a latency sketch); a bucket that got one
 * takes its p50/p95 from the merged sketch, within 1 % as stats does.
 *
 * A backend without series_scan (the field is optional) still gets
 * series: the engine asks stats_scan — whose samples carry no timestamp,
 * only a lower time bound — for the requests at or after every bucket
 * boundary in turn, and a bucket is the multiset difference of two
 * successive answers. Exact for a quiet store, nb+1 scans of a shrinking
 * window: correct but slow, a stopgap until the backend gives series_scan.
 */
#include <stdlib.h>
#include <string.h>

#include "core/sketch.h"
#include "mcpr/query.h"
#include "query/backend.h"
#include "query/pool.h"

#define LABEL_MAX 4096 /* distinct labels kept per series set */

typedef struct lat_vec {
  int64_t *v;
  size_t n, cap;
} lat_vec;

typedef struct label_slot {
  char *name; /* "tool" or "<method>"; NULL: empty slot */
  size_t index;
} label_slot;

typedef struct series_acc {
  const mcpr_series_filter *f;
  size_t nb;
  int64_t *requests, *errors; /* nb each */
  lat_vec *lat;               /* nb */
  /* nb; a bucket's sketch is used once a rollup part falls in it: its
   * raw latencies then join the sketch (p50/p95 within 1 %, as stats) */
  mcpr__sketch *sketch;
  bool *has_sketch;
  /* by_label: labels in first-seen order, their counts (nb per label) */
  char **labels;
  size_t nlabels, labels_cap;
  int64_t **label_requests, **label_errors;
  label_slot *slots; /* open addressing, 2·LABEL_MAX */
  size_t nslots;
  int oom;
} series_acc;

static uint64_t fnv1a(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* The label of a sample, as stats names it: tool, or "<method>". Returns
 * its index, or SIZE_MAX when out of memory or past LABEL_MAX (the label
 * is then left out of the per-label series, never of the total). */
static size_t acc_label(series_acc *a, const char *tool, size_t tool_len, const char *method,
                        size_t method_len) {
  const char *s = tool ? tool : method ? method : "";
  size_t n = tool ? tool_len : method ? method_len : 0;
  int bracket = tool == NULL;
  uint64_t h = 14695981039346656037ull;
  if (bracket)
    h = fnv1a("<", 1, h);
  h = fnv1a(s, n, h);
  if (bracket)
    h = fnv1a(">", 1, h);
  size_t i = (size_t)(h % a->nslots);
  for (;; i = (i + 1) % a->nslots) {
    const char *name = a->slots[i].name;
    if (!name)
      break;
    if (strlen(name) == n + 2 * (size_t)bracket &&
        (bracket ? name[0] == '<' && memcmp(name + 1, s, n) == 0 && name[n + 1] == '>'
                 : memcmp(name, s, n) == 0))
      return a->slots[i].index;
  }
  if (a->nlabels >= LABEL_MAX)
    return SIZE_MAX;
  if (a->nlabels == a->labels_cap) {
    size_t cap = a->labels_cap ? a->labels_cap * 2 : 16;
    char **l = realloc(a->labels, cap * sizeof *l);
    if (l)
      a->labels = l;
    int64_t **r1 = l ? realloc(a->label_requests, cap * sizeof *r1) : NULL;
    if (r1)
      a->label_requests = r1;
    int64_t **r2 = r1 ? realloc(a->label_errors, cap * sizeof *r2) : NULL;
    if (r2)
      a->label_errors = r2;
    if (!r2) {
      a->oom = 1;
      return SIZE_MAX;
    }
    a->labels_cap = cap;
  }
  char *copy = malloc(n + 3);
  int64_t *rq = calloc(a->nb, sizeof *rq), *er = calloc(a->nb, sizeof *er);
  if (!copy || !rq || !er) {
    free(copy);
    free(rq);
    free(er);
    a->oom = 1;
    return SIZE_MAX;
  }
  if (bracket) {
    copy[0] = '<';
    memcpy(copy + 1, s, n);
    copy[n + 1] = '>';
    copy[n + 2] = '\0';
  } else {
    memcpy(copy, s, n);
    copy[n] = '\0';
  }
  size_t idx = a->nlabels++;
  a->labels[idx] = copy;
  a->label_requests[idx] = rq;
  a->label_errors[idx] = er;
  a->slots[i].name = copy;
  a->slots[i].index = idx;
  return idx;
}

static void acc_add(series_acc *a, size_t bucket, size_t label, int64_t latency_us,
                    int is_error) {
  a->requests[bucket]++;
  a->errors[bucket] += is_error != 0;
  if (label != SIZE_MAX) {
    a->label_requests[label][bucket]++;
    a->label_errors[label][bucket] += is_error != 0;
  }
  if (latency_us == MCPR_QUERY_NULL)
    return;
  lat_vec *v = &a->lat[bucket];
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 64;
    int64_t *nv = realloc(v->v, cap * sizeof *nv);
    if (!nv) {
      a->oom = 1;
      return;
    }
    v->v = nv;
    v->cap = cap;
  }
  v->v[v->n++] = latency_us;
}

static bool tool_matches(const mcpr_series_filter *f, const char *tool, size_t tool_len) {
  return !f->tool ||
         (tool && strlen(f->tool) == tool_len && memcmp(f->tool, tool, tool_len) == 0);
}

static int sink_series(void *ctx, const mcpr__series_sample *s) {
  series_acc *a = ctx;
  const mcpr_series_filter *f = a->f;
  if (s->ts_ms < f->since_ms || s->ts_ms >= f->until_ms ||
      !tool_matches(f, s->tool, s->tool_len))
    return 0;
  size_t bucket = (size_t)((s->ts_ms - f->since_ms) / f->bucket_ms);
  size_t label = f->by_label
                     ? acc_label(a, s->tool, s->tool_len, s->method, s->method_len)
                     : SIZE_MAX;
  acc_add(a, bucket, label, s->latency_us, s->is_error);
  return a->oom;
}

static int sink_part(void *ctx, const mcpr__series_part *p) {
  series_acc *a = ctx;
  const mcpr_series_filter *f = a->f;
  if (p->hour_start_ms < f->since_ms || p->hour_start_ms >= f->until_ms)
    return 0;
  size_t bucket = (size_t)((p->hour_start_ms - f->since_ms) / f->bucket_ms);
  size_t label = SIZE_MAX;
  if (f->by_label)
    label = p->is_tool ? acc_label(a, p->name, p->name_len, NULL, 0)
                       : acc_label(a, NULL, 0, p->name, p->name_len);
  if (a->oom)
    return 1;
  a->requests[bucket] += p->calls;
  a->errors[bucket] += p->errors;
  if (label != SIZE_MAX) {
    a->label_requests[label][bucket] += p->calls;
    a->label_errors[label][bucket] += p->errors;
  }
  a->has_sketch[bucket] = true;
  int rc = mcpr__sketch_decode_add(&a->sketch[bucket], p->sketch, p->sketch_len);
  if (rc == -2)
    a->oom = 1;
  return a->oom;
}

/* ---------- the fallback: buckets from stats_scan ---------- */

typedef struct scan_item {
  size_t label;
  int64_t latency_us;
  int is_error;
} scan_item;

typedef struct scan_list {
  series_acc *a;
  scan_item *items;
  size_t n, cap;
} scan_list;

static int sink_scan(void *ctx, const mcpr__stats_sample *s) {
  scan_list *l = ctx;
  if (!tool_matches(l->a->f, s->tool, s->tool_len))
    return 0;
  scan_item it = {SIZE_MAX, s->latency_us, s->is_error != 0};
  if (l->a->f->by_label) {
    it.label = acc_label(l->a, s->tool, s->tool_len, s->method, s->method_len);
    if (l->a->oom)
      return 1;
  }
  scan_item *slot = mcpr__array_push((void **)&l->items, &l->n, &l->cap, sizeof *slot);
  if (!slot)
    return 1;
  *slot = it;
  return 0;
}

static int cmp_item(const void *x, const void *y) {
  const scan_item *a = x, *b = y;
  if (a->label != b->label)
    return a->label < b->label ? -1 : 1;
  if (a->latency_us != b->latency_us)
    return a->latency_us < b->latency_us ? -1 : 1;
  return a->is_error - b->is_error;
}

static mcpr_status scan_from(mcpr_query *q, series_acc *a, int64_t since_ms, scan_list *out,
                             mcpr_error *err) {
  out->n = 0;
  mcpr_stats_filter sf = {a->f->proxy, since_ms, 1};
  mcpr_status st = q->backend->stats_scan(q->impl, &sf, sink_scan, out, err);
  if (st == MCPR_OK && a->oom)
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  if (st == MCPR_OK && out->n > 1)
    qsort(out->items, out->n, sizeof *out->items, cmp_item);
  return st;
}

static mcpr_status series_from_stats(mcpr_query *q, series_acc *a, mcpr_error *err) {
  const mcpr_series_filter *f = a->f;
  scan_list prev = {a, NULL, 0, 0}, cur = {a, NULL, 0, 0};
  mcpr_status st = scan_from(q, a, f->since_ms, &prev, err);
  for (size_t b = 0; st == MCPR_OK && b < a->nb; b++) {
    int64_t end = f->since_ms + (int64_t)(b + 1) * f->bucket_ms;
    if (end > f->until_ms)
      end = f->until_ms;
    st = scan_from(q, a, end, &cur, err);
    if (st != MCPR_OK)
      break;
    /* prev − cur (both sorted): the requests of [start, end). A request
     * stored between the two scans is in cur only and is ignored here. */
    size_t j = 0;
    for (size_t i = 0; i < prev.n; i++) {
      while (j < cur.n && cmp_item(&cur.items[j], &prev.items[i]) < 0)
        j++;
      if (j < cur.n && cmp_item(&cur.items[j], &prev.items[i]) == 0) {
        j++;
        continue;
      }
      acc_add(a, b, prev.items[i].label, prev.items[i].latency_us, prev.items[i].is_error);
    }
    if (a->oom) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
      break;
    }
    scan_list t = prev;
    prev = cur;
    cur = t;
    cur.n = 0;
  }
  free(prev.items);
  free(cur.items);
  return st;
}

/* ---------- results ---------- */

static void swap64(int64_t *x, int64_t *y) {
  int64_t t = *x;
  *x = *y;
  *y = t;
}

/* The k-th smallest of v[0..n) (k < n), reordering v. */
static int64_t select_kth(int64_t *v, size_t n, size_t k) {
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t pivot = v[lo + (hi - lo) / 2];
    size_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot)
        i++;
      while (v[j] > pivot)
        j--;
      if (i <= j) {
        swap64(&v[i], &v[j]);
        i++;
        if (j == 0)
          break;
        j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return v[k];
  }
  return v[k];
}

static size_t p50_index(size_t n) { return (n + 1) / 2 - 1; }

typedef struct label_order {
  size_t index;
  int64_t requests;
  const char *name;
} label_order;

static int cmp_label(const void *x, const void *y) {
  const label_order *a = x, *b = y;
  if (a->requests != b->requests)
    return a->requests > b->requests ? -1 : 1;
  return strcmp(a->name, b->name);
}

static mcpr_status acc_finish(series_acc *a, mcpr_series_set *out, mcpr_error *err) {
  const mcpr_series_filter *f = a->f;
  size_t count = 1;
  for (size_t l = 0; l < a->nlabels; l++)
    for (size_t b = 0; b < a->nb; b++)
      if (a->label_requests[l][b]) {
        count++;
        break;
      }
  label_order *order = calloc(a->nlabels ? a->nlabels : 1, sizeof *order);
  out->series = mcpr__pool_alloc(out->pool, count * sizeof *out->series);
  if (!order || !out->series)
    goto oom;
  for (size_t s = 0; s < count; s++) {
    mcpr_series_point *p = mcpr__pool_alloc(out->pool, a->nb * sizeof *p);
    if (!p)
      goto oom;
    out->series[s].points = p;
    for (size_t b = 0; b < a->nb; b++) {
      p[b].start_ms = f->since_ms + (int64_t)b * f->bucket_ms;
      p[b].p50_us = p[b].p95_us = MCPR_QUERY_NULL;
    }
  }
  mcpr_series *total = &out->series[0];
  for (size_t b = 0; b < a->nb; b++) {
    mcpr_series_point *p = &total->points[b];
    p->requests = a->requests[b];
    p->errors = a->errors[b];
    total->requests += p->requests;
    lat_vec *v = &a->lat[b];
    if (a->has_sketch[b]) {
      mcpr__sketch *sk = &a->sketch[b];
      for (size_t i = 0; i < v->n; i++)
        if (!mcpr__sketch_add(sk, v->v[i], 1))
          goto oom;
      if (sk->total > 0) {
        p->p50_us = mcpr__sketch_rank(sk, (sk->total + 1) / 2 - 1);
        p->p95_us = mcpr__sketch_p95(sk);
      }
    } else if (v->n) {
      p->p50_us = select_kth(v->v, v->n, p50_index(v->n));
      p->p95_us = select_kth(v->v, v->n, mcpr__p95_index(v->n));
    }
  }
  for (size_t l = 0; l < a->nlabels; l++) {
    order[l] = (label_order){l, 0, a->labels[l]};
    for (size_t b = 0; b < a->nb; b++)
      order[l].requests += a->label_requests[l][b];
  }
  /* Labels the fallback saw only outside the window have no requests:
   * left out, as series_scan never shows them. */
  if (a->nlabels > 1)
    qsort(order, a->nlabels, sizeof *order, cmp_label);
  for (size_t l = 0; l + 1 < count; l++) {
    mcpr_series *s = &out->series[1 + l];
    int oom = 0;
    s->label = mcpr__pool_strdup(out->pool, order[l].name, &oom);
    if (oom)
      goto oom;
    s->requests = order[l].requests;
    for (size_t b = 0; b < a->nb; b++) {
      s->points[b].requests = a->label_requests[order[l].index][b];
      s->points[b].errors = a->label_errors[order[l].index][b];
    }
  }
  out->count = count;
  free(order);
  return MCPR_OK;
oom:
  free(order);
  return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
}

static void acc_release(series_acc *a) {
  for (size_t b = 0; a->lat && b < a->nb; b++)
    free(a->lat[b].v);
  for (size_t l = 0; l < a->nlabels; l++) {
    free(a->labels[l]);
    free(a->label_requests[l]);
    free(a->label_errors[l]);
  }
  free(a->labels);
  free(a->label_requests);
  free(a->label_errors);
  for (size_t b = 0; a->sketch && b < a->nb; b++)
    mcpr__sketch_release(&a->sketch[b]);
  free(a->sketch);
  free(a->has_sketch);
  free(a->slots);
  free(a->lat);
  free(a->requests);
  free(a->errors);
}

void mcpr_series_filter_init(mcpr_series_filter *f) {
  if (f)
    memset(f, 0, sizeof *f);
}

void mcpr_series_set_release(mcpr_series_set *s) {
  if (!s)
    return;
  mcpr__pool_free(s->pool);
  memset(s, 0, sizeof *s);
}

mcpr_status mcpr_query_series(mcpr_query *q, const mcpr_series_filter *f,
                              mcpr_series_set *out, mcpr_error *err) {
  if (!q || !f || !out)
    return mcpr_error_set(err, MCPR_EINVAL, "query handle or output is NULL");
  memset(out, 0, sizeof *out);
  if (f->bucket_ms <= 0)
    return mcpr_error_set(err, MCPR_EINVAL, "series bucket must be positive");
  if (f->until_ms <= f->since_ms || f->since_ms == MCPR_QUERY_NO_CUTOFF)
    return mcpr_error_set(err, MCPR_EINVAL, "series window must end after it starts");
  /* In unsigned arithmetic: until − since may not fit an int64_t. */
  uint64_t span = (uint64_t)f->until_ms - (uint64_t)f->since_ms;
  uint64_t nb = span / (uint64_t)f->bucket_ms + (span % (uint64_t)f->bucket_ms != 0);
  if (nb > MCPR_SERIES_MAX_BUCKETS)
    return mcpr_error_set(err, MCPR_EINVAL, "series of more than %d buckets",
                          MCPR_SERIES_MAX_BUCKETS);
  series_acc a = {.f = f, .nb = (size_t)nb, .nslots = 2 * LABEL_MAX};
  a.requests = calloc(a.nb, sizeof *a.requests);
  a.errors = calloc(a.nb, sizeof *a.errors);
  a.lat = calloc(a.nb, sizeof *a.lat);
  a.slots = calloc(a.nslots, sizeof *a.slots);
  a.sketch = calloc(a.nb, sizeof *a.sketch);
  a.has_sketch = calloc(a.nb, sizeof *a.has_sketch);
  out->pool = mcpr__pool_new();
  mcpr_status st = MCPR_OK;
  if (!a.requests || !a.errors || !a.lat || !a.slots || !a.sketch || !a.has_sketch ||
      !out->pool) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto done;
  }
  out->buckets = a.nb;
  out->since_ms = f->since_ms;
  out->bucket_ms = f->bucket_ms;
  if (q->backend->series_scan) {
    mcpr__series_sinks sinks = {sink_series, sink_part, &a};
    st = q->backend->series_scan(q->impl, f, &sinks, err);
    if (st == MCPR_OK && a.oom)
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  } else {
    st = series_from_stats(q, &a, err);
  }
  if (st == MCPR_OK)
    st = acc_finish(&a, out, err);
done:
  acc_release(&a);
  if (st != MCPR_OK)
    mcpr_series_set_release(out);
  return st;
}
