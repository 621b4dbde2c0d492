#!/usr/bin/env bash
# Build and run the whole suite three ways: plain, ASan+UBSan, TSan.
#   scripts/test.sh            all three
#   scripts/test.sh plain      one of: plain asan tsan
# Exits non-zero if any build or test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
modes=("$@"); ((${#modes[@]})) || modes=(plain asan tsan)
status=0
for mode in "${modes[@]}"; do
  case "$mode" in
    plain) flags=(); label=() ;;
    asan)  flags=(-DMCPR_ASAN=ON); label=() ;;
    tsan)  flags=(-DMCPR_TSAN=ON); label=(-L tsan) ;;
    *) echo "unknown mode $mode (plain|asan|tsan)" >&2; exit 2 ;;
  esac
  dir="build-$mode"
  echo "=== $mode: build ($dir) ==="
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== $mode: test ==="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  if ! (cd "$dir" && ctest --output-on-failure -j"$jobs" "${label[@]}"); then
    echo "=== $mode: FAILED ===" >&2
    status=1
  fi
done
exit $status
