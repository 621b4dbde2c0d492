/*
 * allocfail.h — allocation-failure injection for the tests in tests/inject
 * (header-only: include it in exactly one test file per program).
 *
 * As jansson's and SQLite's own suites do, a test runs an operation with
 * the Nth allocation failing, for N = 1, 2, ... until a run completes
 * without reaching N. Three doors lead to the same counter:
 *   - jansson: json_set_alloc_funcs(), its documented hook;
 *   - SQLite: sqlite3_config(SQLITE_CONFIG_MALLOC), its documented hook
 *     (must run before sqlite3_initialize, so af_install() is called first
 *     thing in main);
 *   - everything else (libmcpr's malloc/calloc/realloc, and strdup and
 *     stdio inside libc): malloc, calloc, realloc and free are defined
 *     here and forward to the next definition (dlsym RTLD_NEXT: glibc's,
 *     or ASan's under -fsanitize=address, so ASan still tracks every
 *     block and LeakSanitizer reports leaks). Interposing in the test was
 *     chosen over -Wl,--wrap=malloc because tests/CMakeLists.txt builds
 *     every test the same way (no per-test link flags), and because it
 *     also reaches libc's own allocations (strdup, fopen), which --wrap
 *     would miss. strdup and strndup are defined here as well (under ASan
 *     they would otherwise be ASan's and bypass malloc).
 * Only allocations made while armed count, from any thread (the store's
 * writer thread too). The functions that run before ASan is initialised
 * must not be instrumented (no_sanitize).
 *
 * Leaks: LeakSanitizer (asan run) reports them at exit; in every build
 * af_disarm() also returns the balance of blocks allocated and freed while
 * armed, which a test may check after a warm-up run.
 */
#ifndef MCPR_TEST_ALLOCFAIL_H
#define MCPR_TEST_ALLOCFAIL_H

#ifndef _GNU_SOURCE
#error "#define _GNU_SOURCE before the first #include (allocfail.h needs dladdr)"
#endif

#include <dlfcn.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AF_NOSAN __attribute__((no_sanitize_address, no_sanitize_undefined))

typedef void *(*af_malloc_fn)(size_t);
typedef void *(*af_calloc_fn)(size_t, size_t);
typedef void *(*af_realloc_fn)(void *, size_t);
typedef void (*af_free_fn)(void *);

static af_malloc_fn af_real_malloc;
static af_calloc_fn af_real_calloc;
static af_realloc_fn af_real_realloc;
static af_free_fn af_real_free;
static _Thread_local int af_in_dlsym;
/* dlsym may calloc before the real calloc is known. */
static char af_boot[8192] __attribute__((aligned(16)));
static size_t af_boot_used;

static atomic_bool af_armed;
static atomic_long af_count, af_fail_at, af_hits, af_balance;

AF_NOSAN static void af_resolve(void) {
  if (af_real_free)
    return;
  af_in_dlsym = 1;
  af_real_calloc = (af_calloc_fn)dlsym(RTLD_NEXT, "calloc");
  af_real_malloc = (af_malloc_fn)dlsym(RTLD_NEXT, "malloc");
  af_real_realloc = (af_realloc_fn)dlsym(RTLD_NEXT, "realloc");
  af_real_free = (af_free_fn)dlsym(RTLD_NEXT, "free");
  af_in_dlsym = 0;
}

/* A place for a debugger's breakpoint: the injected failure happens now. */
__attribute__((noinline, used)) static void af_hit_point(void) { __asm__ volatile(""); }

/*
 * Allocations never failed. Under ASan: every allocation glibc makes
 * itself. ASan's runtime calls pthread_getattr_np() when a thread starts;
 * a failed calloc in glibc's internal __pthread_attr_extension() there is
 * not checked (glibc 2.36 then crashes in pthread_attr_setaffinity_np),
 * and ASan aborts on any failure of it. That is the sanitizer's and libc's
 * bookkeeping, not code under test. The plain build fails libc's
 * allocations too (its threads start without pthread_getattr_np). The
 * failure moves to the next allocation.
 */
AF_NOSAN static bool af_exempt_caller(void *caller) {
#if defined(__SANITIZE_ADDRESS__)
  Dl_info info;
  return dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "/libc.so");
#else
  (void)caller;
  return false;
#endif
}

/* True when this allocation (called from caller) is the one to fail. */
AF_NOSAN static bool af_fail_now_from(void *caller) {
  if (!atomic_load(&af_armed))
    return false;
  long n = atomic_fetch_add(&af_count, 1) + 1;
  if (n == atomic_load(&af_fail_at) && af_exempt_caller(caller)) {
    atomic_fetch_add(&af_fail_at, 1);
    return false;
  }
  if (n == atomic_load(&af_fail_at)) {
    atomic_fetch_add(&af_hits, 1);
    af_hit_point();
    return true;
  }
  return false;
}

AF_NOSAN static void af_note_alloc(const void *p) {
  if (p && atomic_load(&af_armed))
    atomic_fetch_add(&af_balance, 1);
}
AF_NOSAN static void af_note_free(const void *p) {
  if (p && atomic_load(&af_armed))
    atomic_fetch_sub(&af_balance, 1);
}

AF_NOSAN static bool af_is_boot(const void *p) {
  return (const char *)p >= af_boot && (const char *)p < af_boot + sizeof af_boot;
}

#define af_fail_now() af_fail_now_from(__builtin_return_address(0))

AF_NOSAN void *malloc(size_t n) {
  af_resolve();
  if (af_fail_now())
    return NULL;
  void *p = af_real_malloc(n);
  af_note_alloc(p);
  return p;
}

AF_NOSAN void *calloc(size_t a, size_t b) {
  if (!af_real_calloc) {
    if (af_in_dlsym) {
      size_t n = a * b, need = (n + 15) & ~(size_t)15;
      if (af_boot_used + need > sizeof af_boot)
        return NULL;
      void *p = af_boot + af_boot_used;
      af_boot_used += need;
      return p; /* static storage: already zero */
    }
    af_resolve();
  }
  if (af_fail_now())
    return NULL;
  void *p = af_real_calloc(a, b);
  af_note_alloc(p);
  return p;
}

AF_NOSAN void *realloc(void *old, size_t n) {
  af_resolve();
  if (af_is_boot(old)) { /* never happens in practice: be safe anyway */
    void *p = af_real_malloc(n);
    if (p)
      memcpy(p, old, n < sizeof af_boot ? n : sizeof af_boot);
    return p;
  }
  if (af_fail_now())
    return NULL;
  void *p = af_real_realloc(old, n);
  if (!old)
    af_note_alloc(p);
  else if (n == 0 && !p)
    af_note_free(old);
  return p;
}

AF_NOSAN void free(void *p) {
  if (!p || af_is_boot(p))
    return;
  af_resolve();
  af_note_free(p);
  af_real_free(p);
}

/*
 * strdup and strndup too: under ASan they are ASan's own and would not pass
 * through malloc, so they are defined here (for every build, so that the
 * counts and the balance mean the same in the plain and the asan run).
 */
AF_NOSAN char *strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

AF_NOSAN char *strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = malloc(len + 1);
  if (p) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

/*
 * jansson's door. af_json_exempt: jansson's allocations are not failed
 * (still tracked). jansson 2.14's lexer ignores a failed buffer growth
 * (lex_save() drops strbuffer_append_byte()'s result: akheron/jansson
 * #362, fix pending in #747), so a failure there silently drops a byte of
 * a string; tests that check exact results exempt jansson.
 */
static atomic_bool af_json_exempt;
AF_NOSAN static void *af_json_malloc(size_t n) {
  if (atomic_load(&af_json_exempt)) {
    af_resolve();
    void *p = af_real_malloc(n);
    af_note_alloc(p);
    return p;
  }
  return malloc(n);
}
static void af_json_free(void *p) { free(p); }

/* SQLite's door: xSize needs the block size, kept in a 16-byte prefix. */
static void *af_sql_malloc(int n) {
  if (n <= 0)
    return NULL;
  int64_t *p = malloc((size_t)n + 16);
  if (!p)
    return NULL;
  p[0] = n;
  return p + 2;
}
static void af_sql_free(void *p) {
  if (p)
    free((int64_t *)p - 2);
}
static void *af_sql_realloc(void *p, int n) {
  if (!p)
    return af_sql_malloc(n);
  int64_t *q = realloc((int64_t *)p - 2, (size_t)n + 16);
  if (!q)
    return NULL;
  q[0] = n;
  return q + 2;
}
static int af_sql_size(void *p) { return p ? (int)((int64_t *)p)[-2] : 0; }
static int af_sql_roundup(int n) { return (n + 7) & ~7; }
static int af_sql_init(void *ud) {
  (void)ud;
  return SQLITE_OK;
}
static void af_sql_shutdown(void *ud) { (void)ud; }

/* Install the jansson and SQLite hooks. Call first thing in main. */
static int af_install(void) {
  static const sqlite3_mem_methods methods = {af_sql_malloc, af_sql_free,  af_sql_realloc,
                                              af_sql_size,   af_sql_roundup, af_sql_init,
                                              af_sql_shutdown, NULL};
  json_set_alloc_funcs(af_json_malloc, af_json_free);
  return sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
}

/* Fail the nth allocation from now on (n <= 0: count only). */
static void af_arm(long n) {
  atomic_store(&af_count, 0);
  atomic_store(&af_hits, 0);
  atomic_store(&af_balance, 0);
  atomic_store(&af_fail_at, n);
  atomic_store(&af_armed, true);
}

typedef struct af_result {
  long allocations; /* attempted while armed */
  bool failed;      /* the nth one was reached and failed */
  long balance;     /* blocks allocated minus blocks freed while armed */
} af_result;

static af_result af_disarm(void) {
  atomic_store(&af_armed, false);
  af_result r = {atomic_load(&af_count), atomic_load(&af_hits) > 0, atomic_load(&af_balance)};
  return r;
}

#endif
