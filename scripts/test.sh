#!/usr/bin/env bash
# Build the library and the CLI in every CMake build type (warnings are
# errors, and each optimisation level warns differently); build and run
# the whole suite three ways: plain, ASan+UBSan, TSan (each with a
# temporary PostgreSQL 15 server for tests/pg); then a fuzz smoke
# run and every CLI command under valgrind; interop: the plain build's
# proxy against real MCP software from npm (scripts/interop.sh);
# dashboard: `mcpr dashboard` in headless Chromium (scripts/dashboard-test.sh).
#   scripts/test.sh            all eight
#   scripts/test.sh plain      one of: builds plain interop dashboard asan tsan fuzz valgrind
# Exits non-zero if any build or test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
modes=("$@"); ((${#modes[@]})) || modes=(builds plain interop dashboard asan tsan fuzz valgrind)
extra=()
status=0
# Build, not run, everything (tests included: a user's `cmake -B build
# -DCMAKE_BUILD_TYPE=Debug` builds them too) in the build types the plain
# run (RelWithDebInfo) does not cover; one build dir per type, reused.
build_types() {
  local t
  for t in Debug Release MinSizeRel; do
    echo "=== builds: $t (build-type-$t) ==="
    if ! cmake -S . -B "build-type-$t" -DCMAKE_BUILD_TYPE="$t" >/dev/null ||
       ! cmake --build "build-type-$t" -j"$jobs"; then
      echo "=== builds: $t FAILED ===" >&2
      status=1
    fi
  done
}
for mode in "${modes[@]}"; do
  case "$mode" in
    builds) build_types; continue ;;
    plain) flags=(); label=() ;;
    asan)  flags=(-DMCPR_ASAN=ON); label=() ;;
    tsan)  flags=(-DMCPR_TSAN=ON); label=(-L tsan) ;;
    fuzz|valgrind) extra+=("$mode"); continue ;;
    interop) echo "=== interop (build-plain) ==="
      { cmake -S . -B build-plain -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build build-plain -j"$jobs" --target mcpr && scripts/interop.sh build-plain; } || status=1
      continue ;;
    dashboard) echo "=== dashboard (build-plain) ==="
      { cmake -S . -B build-plain -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build build-plain -j"$jobs" --target mcpr && scripts/dashboard-test.sh build-plain; } || status=1
      continue ;;
    *) echo "unknown mode $mode (builds|plain|interop|dashboard|asan|tsan|fuzz|valgrind)" >&2; exit 2 ;;
  esac
  dir="build-$mode"
  echo "=== $mode: build ($dir) ==="
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== $mode: test ==="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # what the dynamic loader keeps of a library loaded on first use (tests/lsan.supp)
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  # The PostgreSQL tests (tests/pg) run against a throwaway server that
  # scripts/pg-test-server.sh starts for this run and stops after it.
  if ! (cd "$dir" && ../scripts/pg-test-server.sh ctest --output-on-failure -j"$jobs" "${label[@]}"); then
    echo "=== $mode: FAILED ===" >&2
    status=1
  fi
done
# Fuzz smoke: each libFuzzer target 20 s (clang build in build-fuzz).
# Valgrind: every CLI command once (reuses build-plain when it ran).
for mode in "${extra[@]}"; do
  echo "=== $mode ==="
  case "$mode" in
    fuzz) MCPR_FUZZ_BUILD=build-fuzz scripts/fuzz.sh 20 || status=1 ;;
    valgrind)
      vdir=build-valgrind; [[ " ${modes[*]} " == *" plain "* ]] && vdir=build-plain
      scripts/valgrind.sh "$vdir" || status=1 ;;
  esac
done
exit $status
