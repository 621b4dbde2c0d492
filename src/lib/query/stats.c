/*
 * stats.c — per-label request stats in one pass (SPEC §6 "stats").
 *
 * The original asks the database once per tool for count/avg/min/max and
 * then fetches each tool's latencies sorted to read p95 off the list: 2N+1
 * queries and N sorts. Here the backend streams every request of the
 * window once, in whatever order is cheapest for it (no ORDER BY), and this
 * accumulator groups them by label in a hash table, keeping counts, sums,
 * min and max as they go and each group's latencies in an array. At the
 * end p95 is the exact nearest-rank value — the element at index
 * ceil(0.95·n)−1 of the sorted latencies — found by quickselect in O(n)
 * without sorting. Memory is 8 bytes per request of the window plus one
 * entry per label.
 *
 * A request whose latency is unknown (MCPR_QUERY_NULL: in the original's
 * 0.5 layout, one that has no response) counts as a call — and as an
 * error unless its status is ok — but not in avg/min/max/p95, which are
 * over the known latencies only (MCPR_QUERY_NULL when there are none).
 *
 * Latencies and sizes come from the store, which may hold anything a
 * writer put there (the event decoder bounds them, a direct caller of the
 * store API need not): the sums saturate at INT64_MAX / INT64_MIN instead
 * of overflowing.
 *
 * Rollups arrive as parts (many requests of a label with their latency
 * sketch, core/sketch.h): a group that got one reports p95 from its
 * sketch, with its raw latencies added in — within 1 % of the exact
 * value; a group that got only samples keeps the exact p95.
 */
#include <stdlib.h>
#include <string.h>

#include "core/sketch.h"
#include "query/backend.h"

typedef struct group {
  char *label;
  uint64_t hash;
  int is_tool;
  int64_t calls, sum_us, min_us, max_us, errors, bytes_in, bytes_out;
  int64_t *lat; /* the latencies known: timed of them */
  size_t timed, lat_cap;
  int64_t part_timed; /* latencies counted in sketch only */
  bool has_sketch;
  mcpr__sketch sketch;
} group;

struct mcpr__stats_acc {
  group *groups;
  size_t count, cap;
  size_t *slots; /* open addressing: index+1 into groups, 0 = empty */
  size_t nslots;
};

mcpr__stats_acc *mcpr__stats_acc_new(void) {
  mcpr__stats_acc *acc = calloc(1, sizeof *acc);
  if (!acc)
    return NULL;
  acc->nslots = 64;
  acc->slots = calloc(acc->nslots, sizeof *acc->slots);
  if (!acc->slots) {
    free(acc);
    return NULL;
  }
  return acc;
}

void mcpr__stats_acc_free(mcpr__stats_acc *acc) {
  if (!acc)
    return;
  for (size_t i = 0; i < acc->count; i++) {
    free(acc->groups[i].label);
    free(acc->groups[i].lat);
    mcpr__sketch_release(&acc->groups[i].sketch);
  }
  free(acc->groups);
  free(acc->slots);
  free(acc);
}

static uint64_t hash_bytes(const char *s, size_t n, int is_tool) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)is_tool;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static bool same_key(const group *g, const char *name, size_t n, int is_tool) {
  if (g->is_tool != is_tool)
    return false;
  /* Method labels are stored as "<method>". */
  const char *label = is_tool ? g->label : g->label + 1;
  size_t len = strlen(g->label) - (is_tool ? 0 : 2);
  return len == n && memcmp(label, name, n) == 0;
}

static int rehash(mcpr__stats_acc *acc) {
  size_t n = acc->nslots * 2;
  size_t *slots = calloc(n, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i < acc->count; i++) {
    size_t j = acc->groups[i].hash & (n - 1);
    while (slots[j])
      j = (j + 1) & (n - 1);
    slots[j] = i + 1;
  }
  free(acc->slots);
  acc->slots = slots;
  acc->nslots = n;
  return 0;
}

static group *find_or_add(mcpr__stats_acc *acc, const char *name, size_t n, int is_tool) {
  uint64_t h = hash_bytes(name, n, is_tool);
  size_t j = h & (acc->nslots - 1);
  while (acc->slots[j]) {
    group *g = &acc->groups[acc->slots[j] - 1];
    if (g->hash == h && same_key(g, name, n, is_tool))
      return g;
    j = (j + 1) & (acc->nslots - 1);
  }
  if ((acc->count + 1) * 2 > acc->nslots) {
    if (rehash(acc) != 0)
      return NULL;
    return find_or_add(acc, name, n, is_tool);
  }
  char *label = malloc(n + 3);
  if (!label)
    return NULL;
  if (is_tool) {
    memcpy(label, name, n);
    label[n] = '\0';
  } else {
    label[0] = '<';
    memcpy(label + 1, name, n);
    label[n + 1] = '>';
    label[n + 2] = '\0';
  }
  group *g = mcpr__array_push((void **)&acc->groups, &acc->count, &acc->cap, sizeof *g);
  if (!g) {
    free(label);
    return NULL;
  }
  g->label = label;
  g->hash = h;
  g->is_tool = is_tool;
  g->min_us = INT64_MAX;
  g->max_us = INT64_MIN;
  acc->slots[j] = acc->count;
  return g;
}

/* *sum += v, clamped to the int64 range instead of overflowing. */
static void add_saturating(int64_t *sum, int64_t v) {
  if (__builtin_add_overflow(*sum, v, sum))
    *sum = v > 0 ? INT64_MAX : INT64_MIN;
}

/* sum / calls rounded half up (calls > 0), without overflowing near INT64_MAX. */
static int64_t rounded_mean(int64_t sum, int64_t calls) {
  if (sum < 0 || sum <= INT64_MAX - calls / 2)
    return (sum + calls / 2) / calls;
  int64_t rem = sum % calls;
  return sum / calls + (rem >= calls - rem ? 1 : 0);
}

int mcpr__stats_acc_add(void *ctx, const mcpr__stats_sample *s) {
  mcpr__stats_acc *acc = ctx;
  int is_tool = s->tool != NULL;
  group *g = is_tool ? find_or_add(acc, s->tool, s->tool_len, 1)
                     : find_or_add(acc, s->method ? s->method : "", s->method_len, 0);
  if (!g)
    return -1;
  g->calls++;
  g->errors += s->is_error ? 1 : 0;
  if (s->latency_us != MCPR_QUERY_NULL) {
    if (g->timed == g->lat_cap) {
      size_t ncap = g->lat_cap ? g->lat_cap * 2 : 64;
      int64_t *n = realloc(g->lat, ncap * sizeof *n);
      if (!n)
        return -1;
      g->lat = n;
      g->lat_cap = ncap;
    }
    g->lat[g->timed++] = s->latency_us;
    add_saturating(&g->sum_us, s->latency_us);
    if (s->latency_us < g->min_us)
      g->min_us = s->latency_us;
    if (s->latency_us > g->max_us)
      g->max_us = s->latency_us;
  }
  if (s->bytes_in != MCPR_QUERY_NULL)
    add_saturating(&g->bytes_in, s->bytes_in);
  if (s->bytes_out != MCPR_QUERY_NULL)
    add_saturating(&g->bytes_out, s->bytes_out);
  return 0;
}

int mcpr__stats_acc_add_part(void *ctx, const mcpr__stats_part *p) {
  mcpr__stats_acc *acc = ctx;
  if (p->calls <= 0)
    return 0;
  group *g = find_or_add(acc, p->name ? p->name : "", p->name_len, p->is_tool ? 1 : 0);
  if (!g)
    return -1;
  int rc = mcpr__sketch_decode_add(&g->sketch, p->sketch, p->sketch_len);
  if (rc == -2)
    return -1;
  g->has_sketch = true;
  add_saturating(&g->calls, p->calls);
  add_saturating(&g->errors, p->errors);
  add_saturating(&g->part_timed, p->calls);
  add_saturating(&g->sum_us, p->sum_us);
  if (p->min_us < g->min_us)
    g->min_us = p->min_us;
  if (p->max_us > g->max_us)
    g->max_us = p->max_us;
  add_saturating(&g->bytes_in, p->bytes_in);
  add_saturating(&g->bytes_out, p->bytes_out);
  return 0;
}

/* p95 of a group that has a sketch: its raw latencies join the sketch. */
static int64_t sketch_p95(group *g, int *oom) {
  for (size_t i = 0; i < g->timed; i++)
    if (!mcpr__sketch_add(&g->sketch, g->lat[i], 1)) {
      *oom = 1;
      return MCPR_QUERY_NULL;
    }
  return mcpr__sketch_p95(&g->sketch);
}

size_t mcpr__p95_index(size_t n) { return n == 0 ? 0 : (95 * n + 99) / 100 - 1; }

static void swap64(int64_t *a, int64_t *b) {
  int64_t t = *a;
  *a = *b;
  *b = t;
}

/*
 * The k-th smallest of a[0..n) (0-based), reordering a. Three-way
 * partitioning keeps runs of equal latencies (every timeout is 30 s) from
 * degrading it; the pivot is the median of three.
 */
static int64_t select_kth(int64_t *a, size_t n, size_t k) {
  size_t lo = 0, hi = n; /* [lo, hi) holds the answer */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    int64_t x = a[lo], y = a[mid], z = a[hi - 1];
    int64_t pivot = (x < y) ? ((y < z) ? y : (x < z ? z : x)) : ((x < z) ? x : (y < z ? z : y));
    /* Dutch flag: [lo,lt) < pivot, [lt,i) == pivot, (gt,hi) > pivot. */
    size_t lt = lo, i = lo, gt = hi;
    while (i < gt) {
      if (a[i] < pivot)
        swap64(&a[lt++], &a[i++]);
      else if (a[i] > pivot)
        swap64(&a[i], &a[--gt]);
      else
        i++;
    }
    if (k < lt)
      hi = lt;
    else if (k >= gt)
      lo = gt;
    else
      return pivot;
  }
  return a[lo];
}

static int cmp_rows(const void *pa, const void *pb) {
  const mcpr_stats_row *a = pa, *b = pb;
  if (a->calls != b->calls)
    return a->calls > b->calls ? -1 : 1;
  return strcmp(a->label, b->label);
}

void mcpr__stats_order(mcpr_stats *s) {
  if (s->count > 1)
    qsort(s->rows, s->count, sizeof *s->rows, cmp_rows);
  s->total_calls = 0;
  s->total_errors = 0;
  for (size_t i = 0; i < s->count; i++) {
    s->total_calls += s->rows[i].calls;
    s->total_errors += s->rows[i].errors;
  }
  s->error_pct = s->total_calls ? 100.0 * (double)s->total_errors / (double)s->total_calls : 0.0;
}

mcpr_status mcpr__stats_acc_finish(mcpr__stats_acc *acc, mcpr_stats *out, mcpr_error *err) {
  memset(out, 0, sizeof *out);
  out->pool = mcpr__pool_new();
  if (!out->pool)
    goto oom;
  if (acc->count) {
    out->rows = calloc(acc->count, sizeof *out->rows);
    if (!out->rows)
      goto oom;
  }
  int oom = 0;
  for (size_t i = 0; i < acc->count; i++) {
    group *g = &acc->groups[i];
    mcpr_stats_row *r = &out->rows[i];
    r->label = mcpr__pool_strdup(out->pool, g->label, &oom);
    r->calls = g->calls;
    int64_t timed = (int64_t)g->timed;
    add_saturating(&timed, g->part_timed);
    if (timed > 0) {
      r->avg_us = rounded_mean(g->sum_us, timed);
      r->min_us = g->min_us;
      r->max_us = g->max_us;
      r->p95_us = g->has_sketch ? sketch_p95(g, &oom)
                                : select_kth(g->lat, g->timed, mcpr__p95_index(g->timed));
      /* The exact p95 lies between the exact min and max: clamping only
       * brings a sketch's answer closer. */
      if (r->p95_us != MCPR_QUERY_NULL && r->p95_us > r->max_us)
        r->p95_us = r->max_us;
      if (r->p95_us != MCPR_QUERY_NULL && r->p95_us < r->min_us)
        r->p95_us = r->min_us;
    } else {
      r->avg_us = r->min_us = r->max_us = r->p95_us = MCPR_QUERY_NULL;
    }
    r->errors = g->errors;
    r->error_pct = 100.0 * (double)g->errors / (double)g->calls;
    r->total_bytes_in = g->bytes_in;
    r->total_bytes_out = g->bytes_out;
  }
  if (oom)
    goto oom;
  out->count = acc->count;
  mcpr__stats_order(out);
  return MCPR_OK;
oom:
  mcpr_stats_release(out);
  return mcpr_error_set(err, MCPR_ENOMEM, "out of memory computing stats");
}

void mcpr_stats_release(mcpr_stats *stats) {
  if (!stats)
    return;
  free(stats->rows);
  mcpr__pool_free(stats->pool);
  memset(stats, 0, sizeof *stats);
}
