/* clock.c — see clock.h. */
#include "core/clock.h"

#include <stdlib.h>
#include <unistd.h>

int64_t mcpr__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mcpr__sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct timespec mcpr__mono_timespec(int64_t at_ms) {
  struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
  return ts;
}

struct timespec mcpr__mono_deadline(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (ms < 0)
    ms = 0;
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

int64_t mcpr__backoff_ms(int64_t base_ms, int64_t max_ms, unsigned attempt, unsigned *seed) {
  if (base_ms < 1)
    base_ms = 1;
  if (max_ms < base_ms)
    max_ms = base_ms;
  int64_t d = base_ms;
  for (unsigned i = 0; i < attempt && d < max_ms; i++)
    d *= 2;
  if (d > max_ms)
    d = max_ms;
  int64_t half = d / 2;
  return half + (half ? (int64_t)((unsigned)rand_r(seed) % (unsigned)(half + 1)) : 0);
}

unsigned mcpr__backoff_seed(const void *salt) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned)ts.tv_nsec ^ (unsigned)getpid() * 2654435761u ^ (unsigned)(uintptr_t)salt;
}
