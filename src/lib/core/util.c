#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "mcpr/util.h"

static bool contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = hay; *p; p++)
    if (strncasecmp(p, needle, n) == 0)
      return true;
  return false;
}

const char *mcpr_client_platform(const char *client_name) {
  static const struct {
    const char *needle, *platform;
  } rules[] = {
      {"claude", "claude"},   {"cursor", "cursor"},   {"chatgpt", "chatgpt"},
      {"openai", "chatgpt"},  {"copilot", "vscode"},  {"vscode", "vscode"},
      {"vs-code", "vscode"},  {"windsurf", "windsurf"},
  };
  if (!client_name)
    return NULL;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (contains_ci(client_name, rules[i].needle))
      return rules[i].platform;
  return "unknown";
}

int64_t mcpr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * UUIDv7 with the 12-bit rand_a field used as a counter within one
 * millisecond (RFC 9562 §6.2 method 1), so ids made by this process sort in
 * creation order. The (ms, counter) pair is one 64-bit atomic word.
 */
static _Atomic uint64_t uuid_last; /* ms << 12 | counter */

/* Per-thread xoshiro256** seeded once from the OS: one getrandom() per
 * thread instead of one system call per id on the proxy's hot path. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(void) {
  if (!rng_seeded) {
    if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
                   (uint64_t)(uintptr_t)&rng_state;
      for (int i = 0; i < 4; i++) {
        x += 0x9E3779B97F4A7C15ull;
        rng_state[i] = x ^ (x >> 31);
      }
    }
    if (!(rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]))
      rng_state[0] = 1;
    rng_seeded = true;
  }
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
  return result;
}

void mcpr_uuid_v7(int64_t ts_ms, char out[MCPR_UUID_STRLEN + 1]) {
  uint8_t b[16];
  uint64_t r0 = rng_next(), r1 = rng_next();
  memcpy(b, &r0, 8);
  memcpy(b + 8, &r1, 8);
  uint64_t ms = (uint64_t)ts_ms & 0xFFFFFFFFFFFFull;
  uint64_t prev = atomic_load_explicit(&uuid_last, memory_order_relaxed), next;
  do {
    uint64_t prev_ms = prev >> 12;
    if (ms > prev_ms)
      next = ms << 12 | (b[6] & 0x03); /* small random start keeps room */
    else if ((prev & 0xFFF) < 0xFFF)
      next = prev + 1; /* same (or earlier) ms: keep increasing */
    else
      next = (prev_ms + 1) << 12; /* counter exhausted: borrow the next ms */
  } while (!atomic_compare_exchange_weak_explicit(&uuid_last, &prev, next,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed));
  uint64_t use_ms = next >> 12;
  uint16_t counter = (uint16_t)(next & 0xFFF);
  for (int i = 0; i < 6; i++)
    b[i] = (uint8_t)(use_ms >> (40 - 8 * i));
  b[6] = (uint8_t)(0x70 | (counter >> 8));
  b[7] = (uint8_t)(counter & 0xFF);
  b[8] = (uint8_t)(0x80 | (b[8] & 0x3F));
  static const char hex[] = "0123456789abcdef";
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    *p++ = hex[b[i] >> 4];
    *p++ = hex[b[i] & 0xF];
  }
  *p = '\0';
}
