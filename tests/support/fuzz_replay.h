/*
 * fuzz_replay.h — replay a fuzz target's seed corpus and regression inputs
 * (tests/fuzz/corpus/<target>/, tests/fuzz/regress/<target>/) in the normal
 * builds, so every input that ever crashed stays fixed under ASan/UBSan.
 */
#ifndef MCPR_TEST_FUZZ_REPLAY_H
#define MCPR_TEST_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* A target's LLVMFuzzerTestOneInput, renamed. */
typedef int (*fr_target_fn)(const uint8_t *data, size_t size);

/* Run fn on every file of dir in name order, each in an exact-size heap
 * copy (so ASan sees a read past its end); a missing dir is none.
 * Returns how many files ran. */
size_t fr_replay_dir(const char *dir, fr_target_fn fn);

/* Replay target's corpus (which must not be empty) and its regression
 * inputs; *regress_out (may be NULL) gets how many regression inputs ran. */
void fr_replay_target(const char *target, fr_target_fn fn, size_t *regress_out);

#endif
