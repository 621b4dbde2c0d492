/*
 * dynlib.h — internal: shared libraries loaded on first use.
 *
 * Every mcpr command used to pay, at exec, for loading libcurl and libpq
 * and their ~30 dependencies (TLS stacks, Kerberos, LDAP…): about 10 ms
 * of CPU on the 2-core VM, a third of what `mcpr proxy logs` costs,
 * though only the cloud client and the PostgreSQL backend call them. The
 * library is no longer linked against them: core/lazy_curl.c and
 * core/lazy_pq.c define the functions this project calls, each resolving
 * the real one with dlopen/dlsym the first time it is called.
 *
 * When the library cannot be loaded, the stubs return their library's
 * own failure values (NULL handles, error codes; PQerrorMessage says
 * which library is missing), so callers report an error as they would
 * for a failed connection. Thread-safe: a resolved pointer is published
 * with an atomic store; dlopen/dlsym are themselves thread-safe.
 */
#ifndef MCPR__CORE_DYNLIB_H
#define MCPR__CORE_DYNLIB_H

typedef struct mcpr__dynlib {
  const char *soname; /* e.g. "libpq.so.5" */
  void *handle;       /* set once loaded */
  int failed;         /* dlopen failed: not retried */
} mcpr__dynlib;

/* The address of sym in lib, loading lib first; NULL when either fails. */
void *mcpr__dynlib_sym(mcpr__dynlib *lib, const char *sym);

/* Why lib could not be loaded (dlerror's text), or "" */
const char *mcpr__dynlib_error(const mcpr__dynlib *lib);

/* The real function sym of lib, looked up once and kept in *cache; NULL
 * when lib or sym is missing. */
static inline void *mcpr__dynlib_cached(mcpr__dynlib *lib, void **cache, const char *sym) {
  void *fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
  if (!fn) {
    fn = mcpr__dynlib_sym(lib, sym);
    if (fn)
      __atomic_store_n(cache, fn, __ATOMIC_RELEASE);
  }
  return fn;
}

/*
 * A stub: ret name params calls the real name with args; fallback is
 * returned when the library or the symbol is missing. Stubs are weak: a
 * program that defines the function itself wins (the cloud fuzz target
 * replaces curl's transport that way).
 */
#define MCPR__DYNLIB_WEAK __attribute__((weak))
#define MCPR__DYNLIB_STUB(lib, ret, name, params, args, fallback)                \
  MCPR__DYNLIB_WEAK ret name params {                                           \
    static void *real;                                                          \
    ret(*fn) params = (ret(*) params)mcpr__dynlib_cached(&(lib), &real, #name); \
    return fn ? fn args : fallback;                                             \
  }

#define MCPR__DYNLIB_VOID_STUB(lib, name, params, args)                          \
  MCPR__DYNLIB_WEAK void name params {                                          \
    static void *real;                                                          \
    void(*fn) params = (void(*) params)mcpr__dynlib_cached(&(lib), &real, #name); \
    if (fn)                                                                     \
      fn args;                                                                  \
  }

#endif
