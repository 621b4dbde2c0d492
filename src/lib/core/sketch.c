/*
 * sketch.c — the log-bucketed latency histogram of sketch.h.
 *
 * Keys: 0 for 0, i + 1 for a positive v in bucket i (v = 1 is bucket 0),
 * −(i + 1) for a negative v whose magnitude is in bucket i, so keys sort as
 * the values do and a rank walk over ascending keys meets values in order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sketch.h"

#define GAMMA ((1.0 + MCPR__SKETCH_ALPHA) / (1.0 - MCPR__SKETCH_ALPHA))
/* Above key(INT64_MAX) (≈ 4,370): a bound for what decode accepts. */
#define KEY_MAX 8192
#define VERSION 1

static double log_gamma(void) { return log(GAMMA); }

static int32_t magnitude_key(double m) {
  /* m >= 1; ceil of log_gamma(m), never below 0. */
  double i = ceil(log(m) / log_gamma());
  if (i < 0)
    i = 0;
  if (i > KEY_MAX - 2)
    i = KEY_MAX - 2;
  return (int32_t)i + 1;
}

int32_t mcpr__sketch_key(int64_t v) {
  if (v == 0)
    return 0;
  if (v > 0)
    return magnitude_key((double)v);
  return -magnitude_key(-(double)v);
}

static int64_t magnitude_value(int32_t key) {
  double e = 2.0 * pow(GAMMA, (double)(key - 1)) / (GAMMA + 1.0);
  if (e >= 9.2e18)
    return INT64_MAX;
  return (int64_t)llround(e);
}

int64_t mcpr__sketch_key_value(int32_t key) {
  if (key == 0)
    return 0;
  return key > 0 ? magnitude_value(key) : -magnitude_value(-key);
}

/* Make room for keys [lo, hi]. */
static bool cover(mcpr__sketch *s, int32_t lo, int32_t hi) {
  if (s->n && lo >= s->lo && hi < s->lo + (int32_t)s->n)
    return true;
  int32_t nlo = s->n && s->lo < lo ? s->lo : lo;
  int32_t nhi = s->n && s->lo + (int32_t)s->n - 1 > hi ? s->lo + (int32_t)s->n - 1 : hi;
  size_t nn = (size_t)(nhi - nlo) + 1;
  int64_t *c = calloc(nn, sizeof *c);
  if (!c)
    return false;
  if (s->n)
    memcpy(c + (s->lo - nlo), s->counts, s->n * sizeof *c);
  free(s->counts);
  s->counts = c;
  s->lo = nlo;
  s->n = nn;
  return true;
}

bool mcpr__sketch_add(mcpr__sketch *s, int64_t v, int64_t count) {
  return mcpr__sketch_add_key(s, mcpr__sketch_key(v), count);
}

bool mcpr__sketch_add_key(mcpr__sketch *s, int32_t k, int64_t count) {
  if (count <= 0)
    return true;
  if (!cover(s, k, k))
    return false;
  s->counts[k - s->lo] += count;
  s->total += count;
  return true;
}

bool mcpr__sketch_merge(mcpr__sketch *dst, const mcpr__sketch *src) {
  if (!src->n || !src->total)
    return true;
  if (!cover(dst, src->lo, src->lo + (int32_t)src->n - 1))
    return false;
  int64_t *d = dst->counts + (src->lo - dst->lo);
  for (size_t i = 0; i < src->n; i++)
    d[i] += src->counts[i];
  dst->total += src->total;
  return true;
}

int64_t mcpr__sketch_rank(const mcpr__sketch *s, int64_t rank) {
  int64_t seen = 0;
  for (size_t i = 0; i < s->n; i++) {
    seen += s->counts[i];
    if (seen > rank)
      return mcpr__sketch_key_value(s->lo + (int32_t)i);
  }
  return s->n ? mcpr__sketch_key_value(s->lo + (int32_t)s->n - 1) : 0;
}

int64_t mcpr__sketch_p95(const mcpr__sketch *s) {
  if (s->total <= 0)
    return 0;
  /* ceil(0.95·n) − 1 without overflow for any int64 n. */
  int64_t n = s->total;
  int64_t q = n / 100, r = n % 100;
  int64_t rank = 95 * q + (95 * r + 99) / 100 - 1;
  return mcpr__sketch_rank(s, rank);
}

/* ---------- serialised form ---------- */

static size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return false;
    unsigned char b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return true;
    }
  }
  return false;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

bool mcpr__sketch_encode(const mcpr__sketch *s, unsigned char **out, size_t *len) {
  size_t used = 0;
  for (size_t i = 0; i < s->n; i++)
    used += s->counts[i] != 0;
  unsigned char *b = malloc(1 + 10 + used * 20);
  if (!b)
    return false;
  size_t n = 0;
  b[n++] = VERSION;
  n += put_varint(b + n, used);
  int64_t prev = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (!s->counts[i])
      continue;
    int64_t k = s->lo + (int64_t)i;
    n += put_varint(b + n, zigzag(k - prev));
    n += put_varint(b + n, (uint64_t)s->counts[i]);
    prev = k;
  }
  *out = b;
  *len = n;
  return true;
}

int mcpr__sketch_decode_add(mcpr__sketch *s, const void *data, size_t len) {
  const unsigned char *p = data, *end = p + len;
  uint64_t used;
  if (len < 2 || *p++ != VERSION || !get_varint(&p, end, &used) || used > 2 * KEY_MAX + 1)
    return -1;
  /* Two passes: check everything and find the key range, then add. */
  const unsigned char *body = p;
  int64_t k = 0, lo = 0, hi = 0, total = 0;
  for (uint64_t i = 0; i < used; i++) {
    uint64_t dk, c;
    if (!get_varint(&p, end, &dk) || !get_varint(&p, end, &c))
      return -1;
    int64_t d = unzigzag(dk);
    if (d < -2 * KEY_MAX || d > 2 * KEY_MAX)
      return -1;
    k += d;
    if (k < -KEY_MAX || k > KEY_MAX || (i && d <= 0) || c > (uint64_t)INT64_MAX ||
        __builtin_add_overflow(total, (int64_t)c, &total))
      return -1;
    if (i == 0)
      lo = k;
    hi = k;
  }
  if (p != end || __builtin_add_overflow(s->total, total, &total))
    return -1;
  if (!used)
    return 0;
  if (!cover(s, (int32_t)lo, (int32_t)hi))
    return -2;
  p = body;
  k = 0;
  for (uint64_t i = 0; i < used; i++) {
    uint64_t dk = 0, c = 0;
    get_varint(&p, end, &dk);
    get_varint(&p, end, &c);
    k += unzigzag(dk);
    s->counts[k - s->lo] += (int64_t)c;
  }
  s->total = total;
  return 0;
}

void mcpr__sketch_release(mcpr__sketch *s) {
  if (!s)
    return;
  free(s->counts);
  memset(s, 0, sizeof *s);
}

/* ---------- merging serialised sketches ---------- */

typedef struct reader {
  const unsigned char *p, *end;
  uint64_t left;
  int64_t key, count, total;
  bool first;
} reader;

static int reader_open(reader *r, const void *data, size_t len) {
  r->p = data;
  r->end = r->p + len;
  r->key = 0;
  r->total = 0;
  r->first = true;
  if (len < 2 || *r->p++ != VERSION || !get_varint(&r->p, r->end, &r->left) ||
      r->left > 2 * KEY_MAX + 1)
    return -1;
  return 0;
}

/* The next bucket into key/count: 1, 0 at the end, -1 on bad bytes. */
static int reader_next(reader *r) {
  if (!r->left)
    return r->p == r->end ? 0 : -1;
  uint64_t dk, c;
  if (!get_varint(&r->p, r->end, &dk) || !get_varint(&r->p, r->end, &c))
    return -1;
  int64_t d = unzigzag(dk);
  if (d < -2 * KEY_MAX || d > 2 * KEY_MAX || (!r->first && d <= 0))
    return -1;
  r->key += d;
  if (r->key < -KEY_MAX || r->key > KEY_MAX || c > (uint64_t)INT64_MAX ||
      __builtin_add_overflow(r->total, (int64_t)c, &r->total))
    return -1;
  r->count = (int64_t)c;
  r->first = false;
  r->left--;
  return 1;
}

int mcpr__sketch_merge_encoded(const void *a, size_t alen, const void *b, size_t blen,
                               unsigned char **out, size_t *len) {
  reader x, y;
  if (reader_open(&x, a, alen) != 0 || reader_open(&y, b, blen) != 0)
    return -1;
  uint64_t most = x.left + y.left;
  unsigned char *o = malloc(1 + 10 + most * 20);
  if (!o)
    return -2;
  size_t n = 1 + 10; /* the header is written last, in front */
  uint64_t used = 0;
  int64_t prev = 0, total = 0;
  int hx = reader_next(&x), hy = reader_next(&y);
  while (hx > 0 || hy > 0) {
    int64_t k, c;
    if (hy <= 0 || (hx > 0 && x.key < y.key)) {
      k = x.key, c = x.count, hx = reader_next(&x);
    } else if (hx <= 0 || y.key < x.key) {
      k = y.key, c = y.count, hy = reader_next(&y);
    } else {
      k = x.key;
      if (__builtin_add_overflow(x.count, y.count, &c))
        hx = -1;
      hx = hx < 0 ? hx : reader_next(&x);
      hy = reader_next(&y);
    }
    if (hx < 0 || hy < 0 || __builtin_add_overflow(total, c, &total))
      break;
    n += put_varint(o + n, zigzag(k - prev));
    n += put_varint(o + n, (uint64_t)c);
    prev = k;
    used++;
  }
  if (hx < 0 || hy < 0 || hx > 0 || hy > 0) {
    free(o);
    return -1;
  }
  /* Header: version and count, moved up against the buckets. */
  unsigned char head[11];
  size_t h = 0;
  head[h++] = VERSION;
  h += put_varint(head + h, used);
  memmove(o + h, o + 11, n - 11);
  memcpy(o, head, h);
  *out = o;
  *len = h + n - 11;
  return 0;
}
