/*
 * fuzz_event.c — libFuzzer target for the proxy-event decoder (event.h).
 *
 * Any input may be refused, but nothing may crash, leak or trip a
 * sanitizer. An input that decodes must survive the round trip the header
 * promises: e1 = encode(decode(input)) must decode again, and encoding that
 * second event must give e1 byte for byte. The decoded event is also
 * copied and mapped to a store event (the store sink's mapping), the two
 * other consumers of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/event.h"
#include "mcpr/sink.h" /* mcpr_event_to_store */

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mcpr_event ev, ev2, copy;
  mcpr_error err = {0};
  if (mcpr_event_decode((const char *)data, size, &ev, &err) != MCPR_OK) {
    CHECK(err.message[0] != '\0'); /* a refusal always says why */
    return 0;
  }
  size_t len1 = 0, len2 = 0;
  char *e1 = mcpr_event_encode(&ev, &len1, &err);
  CHECK(e1 != NULL);
  CHECK(strlen(e1) == len1);
  CHECK(mcpr_event_decode(e1, len1, &ev2, &err) == MCPR_OK);
  CHECK(ev2.type == ev.type);
  char *e2 = mcpr_event_encode(&ev2, &len2, &err);
  CHECK(e2 != NULL);
  CHECK(len1 == len2 && memcmp(e1, e2, len1) == 0);

  CHECK(mcpr_event_copy(&copy, &ev, &err) == MCPR_OK);
  char *e3 = mcpr_event_encode(&copy, NULL, &err);
  CHECK(e3 != NULL && strcmp(e1, e3) == 0);
  mcpr_store_event se;
  (void)mcpr_event_to_store(&copy, &se);

  free(e1);
  free(e2);
  free(e3);
  mcpr_event_release(&copy);
  mcpr_event_release(&ev2);
  mcpr_event_release(&ev);
  return 0;
}
