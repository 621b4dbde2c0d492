/*
 * clock.h — internal: the one clock, sleep and retry helper of the library.
 *
 * Every wait in mcpr is measured on CLOCK_MONOTONIC (a wall-clock jump
 * never shortens or stretches a retry window), and every retry loop backs
 * off exponentially with jitter, so that several processes that met the
 * same busy database or the same outage do not retry in lockstep.
 */
#ifndef MCPR__CORE_CLOCK_H
#define MCPR__CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (arbitrary origin). */
int64_t mcpr__mono_ms(void);
/* Sleep ms milliseconds (ms <= 0: return at once); an interrupting signal
 * ends the sleep early, which every caller tolerates. */
void mcpr__sleep_ms(int64_t ms);
/* The CLOCK_MONOTONIC time ms milliseconds from now, for
 * pthread_cond_timedwait on a condition made with that clock. */
struct timespec mcpr__mono_deadline(int64_t ms);
/* The timespec of monotonic millisecond at_ms (as mcpr__mono_ms counts). */
struct timespec mcpr__mono_timespec(int64_t at_ms);

/*
 * Exponential backoff with jitter: base_ms · 2^attempt, capped at max_ms,
 * then drawn uniformly from [d/2, d]. seed is the caller's (rand_r state),
 * so the helper keeps no global state and is safe on any thread.
 */
int64_t mcpr__backoff_ms(int64_t base_ms, int64_t max_ms, unsigned attempt, unsigned *seed);
/* A seed that differs between processes, threads and calls. */
unsigned mcpr__backoff_seed(const void *salt);

#endif
