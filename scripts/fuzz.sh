#!/usr/bin/env bash
# Run every libFuzzer target in tests/fuzz for a fixed time each.
#   scripts/fuzz.sh                 10 s per target (a smoke run)
#   scripts/fuzz.sh 600             10 minutes per target
#   scripts/fuzz.sh 60 event toml   only these targets
# Builds (clang, -DMCPR_FUZZ=ON) into $MCPR_FUZZ_BUILD (default build-fuzz).
# Seeds: tests/fuzz/corpus/<t>/ (read only); inputs found are kept in
# <build>/fuzz-corpus/<t>/ across runs; crashes go to <build>/fuzz-artifacts/<t>/.
# Prints the executions per target; exits 1 if any target crashed.
# A crash found becomes a regression input: copy it to tests/fuzz/regress/<t>/
# (tests/inject/test_fuzz_regress.c replays those in every normal build;
# the proxy_* targets' are replayed by tests/proxy/test_proxy_*_regress.c).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds] [target...]" >&2; exit 2; }
build=${MCPR_FUZZ_BUILD:-build-fuzz}
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets+=("${t%.c}"); done
fi
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCPR_FUZZ=ON \
  -DMCPR_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp  # see that file
status=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  work="$build/fuzz-corpus/$t" art="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$art"
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  log="$build/fuzz-$t.log"
  echo "=== fuzz $t: ${secs}s ==="
  rc=0
  "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  runs=${runs:-$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)}
  if ((rc != 0)); then
    status=1
    grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -20 >&2 || true
    summary+=("$(printf '%-16s %12s executions  CRASH (see %s, %s)' "$t" "${runs:-?}" "$log" "$art")")
  else
    summary+=("$(printf '%-16s %12s executions  ok' "$t" "${runs:-?}")")
  fi
done
echo "=== fuzz summary (${secs}s per target) ==="
printf '%s\n' "${summary[@]}"
exit $status
