/* dynlib.c — shared libraries loaded on first use (see dynlib.h). */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t dynlib_lock = PTHREAD_MUTEX_INITIALIZER;
/* dlerror's text is per thread and overwritten: keep the first failure. */
static char dynlib_error[256];

void *mcpr__dynlib_sym(mcpr__dynlib *lib, const char *sym) {
  pthread_mutex_lock(&dynlib_lock);
  if (!lib->handle && !lib->failed) {
    lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
      const char *why = dlerror();
      lib->failed = 1;
      snprintf(dynlib_error, sizeof dynlib_error, "%s", why ? why : lib->soname);
    }
  }
  void *handle = lib->handle;
  pthread_mutex_unlock(&dynlib_lock);
  return handle ? dlsym(handle, sym) : NULL;
}

const char *mcpr__dynlib_error(const mcpr__dynlib *lib) {
  pthread_mutex_lock(&dynlib_lock);
  const char *e = lib->failed ? dynlib_error : "";
  pthread_mutex_unlock(&dynlib_lock);
  return e;
}
