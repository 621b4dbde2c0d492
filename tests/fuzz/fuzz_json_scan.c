/*
 * fuzz_json_scan.c — libFuzzer target: core/json_scan (the proxy's fast
 * reading of JSON-RPC bodies) against jansson, the parser of record, on
 * any bytes: never a yes where jansson says no (or the reverse), never a
 * member, string or id read differently (tests/support/json_scan_oracle.c).
 */
#include <stdint.h>
#include <stdio.h>

#include "../support/json_scan_oracle.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *why = json_scan_disagreement((const char *)data, size);
  if (why) {
    fprintf(stderr, "json_scan disagrees with jansson: %s\n", why);
    __builtin_trap();
  }
  return 0;
}
