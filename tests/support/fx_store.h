/*
 * fx_store.h — the query fixture store (tests/lib/query/query_fixture.h)
 * shared by a whole test program: built once in a new temporary directory
 * by the cmocka group setup fx_setup, removed by fx_teardown. The query
 * and CLI tests read it through fx_path.
 */
#ifndef MCPR_TEST_FX_STORE_H
#define MCPR_TEST_FX_STORE_H

#include <stdint.h>

/* Set by fx_setup: the directory, the store file in it, and the time the
 * fixture was built (its "now"). */
extern char *fx_dir, *fx_path;
extern int64_t fx_now;

/* cmocka group setup and teardown. */
int fx_setup(void **state);
int fx_teardown(void **state);

#endif
