/* health_log.c — see health_log.h. */
#include "health_log.h"
#include "testutil.h"

void hl_on_health(void *ctx, const mcpr_store_health *h) {
  health_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->n < HEALTH_LOG_MAX) {
    l->seen[l->n] = *h;
    l->at_mono_ms[l->n] = tu_mono_ms();
    l->n++;
  }
  pthread_mutex_unlock(&l->mu);
}

int hl_count(health_log *l) {
  pthread_mutex_lock(&l->mu);
  int n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

void hl_wait(health_log *l, int n) {
  for (int i = 0; i < 2000 && hl_count(l) < n; i++)
    tu_sleep_ms(10);
  assert_true(hl_count(l) >= n);
}
