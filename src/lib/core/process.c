/*
 * process.c — mcpr_process_init(): the few process-wide settings a program
 * may opt into (see util.h). jansson's allocator hook is process-wide, so
 * the count of failed allocations is kept per thread: a decoder compares
 * it before and after its own parse.
 */
#include <jansson.h>
#include <stdlib.h>

#include "core/process.h"
#include "mcpr/util.h"
#include "backend/sqlite/db.h"

static _Thread_local unsigned long json_alloc_failures;

static void *json_malloc(size_t n) {
  void *p = malloc(n);
  if (!p)
    json_alloc_failures++;
  return p;
}

static void json_free(void *p) { free(p); }

unsigned long mcpr__json_alloc_failures(void) { return json_alloc_failures; }

mcpr_status mcpr_process_init(void) {
  json_set_alloc_funcs(json_malloc, json_free);
  return mcpr__db_process_init();
}
