/* fx_store.c — see fx_store.h. */
#include <stdlib.h>

#include "../lib/query/query_fixture.h"
#include "fx_store.h"

char *fx_dir, *fx_path;
int64_t fx_now;

int fx_setup(void **state) {
  (void)state;
  fx_dir = tu_tmpdir();
  fx_path = tu_path(fx_dir, "store.db");
  fx_now = fx_build(fx_path);
  return 0;
}

int fx_teardown(void **state) {
  (void)state;
  free(fx_path);
  tu_rmdir(fx_dir);
  fx_path = NULL;
  fx_dir = NULL;
  return 0;
}
