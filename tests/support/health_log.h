/*
 * health_log.h — what a store's on_health callback said, in order, for a
 * test to read: set .on_health = hl_on_health and .on_health_ctx = a
 * health_log initialised with HEALTH_LOG_INIT. The callback runs on the
 * store's writer thread; read the log under its mutex (or with hl_count).
 */
#ifndef MCPR_TEST_HEALTH_LOG_H
#define MCPR_TEST_HEALTH_LOG_H

#include <pthread.h>
#include <stdint.h>

#include "mcpr/mcpr.h"

#define HEALTH_LOG_MAX 16

typedef struct health_log {
  pthread_mutex_t mu;
  mcpr_store_health seen[HEALTH_LOG_MAX];
  int64_t at_mono_ms[HEALTH_LOG_MAX]; /* tu_mono_ms() when each was said */
  int n;                              /* entries kept (at most HEALTH_LOG_MAX) */
} health_log;

#define HEALTH_LOG_INIT {.mu = PTHREAD_MUTEX_INITIALIZER}

/* The on_health callback; ctx is the health_log. */
void hl_on_health(void *ctx, const mcpr_store_health *h);
/* Entries so far. */
int hl_count(health_log *l);
/* Wait (up to 20 s: it ends at all) until the log holds n entries; fails
 * the test when it does not. */
void hl_wait(health_log *l, int n);

#endif
