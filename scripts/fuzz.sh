#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer, libFuzzer's leak
# detection) in their own build folder and runs each for SECONDS (default 60), IVD_JOBS targets at once. Fails
# on any crash, leak, sanitizer report or timeout; the reproducer is left in <build>/fuzz-artifacts/.
#
#   scripts/fuzz.sh [SECONDS]     env: IVD_FUZZ_BUILD_DIR (default build-fuzz), IVD_JOBS (default 2),
#                                      IVD_FUZZ_TARGETS (default: all four), CC/CXX (default clang-14)
set -uo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IVD_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${IVD_JOBS:-2}
targets=${IVD_FUZZ_TARGETS:-fuzz_create fuzz_connect fuzz_disconnect fuzz_ini}
cc=${CC:-$(command -v clang-14 || command -v clang)}
cxx=${CXX:-$(command -v clang++-14 || command -v clang++)}

if [[ ! $seconds =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi
if [[ -z $cxx ]]; then
  echo "fuzz.sh: clang is required (apt-get install clang-14 libfuzzer-14-dev libclang-rt-14-dev)" >&2
  exit 2
fi

mkdir -p "$build"
# fuzzer-no-link instruments the driver's own libraries for coverage; only the fuzz group is configured, so
# half-written test folders elsewhere cannot break this build.
CC=$cc CXX=$cxx cmake -S "$root" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS=-Wno-unknown-warning-option -DCMAKE_C_FLAGS=-Wno-unknown-warning-option \
  -DIVD_SANITIZE=address,undefined,fuzzer-no-link -DIVD_FUZZ=ON \
  -DIVD_TEST_GROUPS=fuzz -DIVD_FIXTURE_GROUPS=none >"$build/ivd-configure.log" 2>&1 ||
  { cat "$build/ivd-configure.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets || { echo "fuzz.sh: build failed" >&2; exit 1; }

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
# One target's run; its verdict goes to $artifacts/$t.verdict ("passed: ..." or "FAILED ...").
fuzz_one() {
  local t=$1
  # New inputs go to the first folder (a working corpus kept between runs); the seeds are only read.
  local work=$build/fuzz-corpus/$t seeds=$root/tests/fuzz/corpus/$t regressions=$root/tests/fuzz/regressions/$t
  mkdir -p "$work"
  local dirs=("$work" "$seeds")
  [[ -d $regressions ]] && dirs+=("$regressions")
  local log=$artifacts/$t.log verdict=$artifacts/$t.verdict
  rm -f "$artifacts/$t"-crash-* "$artifacts/$t"-leak-* "$artifacts/$t"-timeout-* "$artifacts/$t"-oom-* "$verdict"
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${dirs[@]}" >"$log" 2>&1
  local rc=$? found
  found=$(find "$artifacts" -maxdepth 1 -name "$t-*" ! -name '*.log' ! -name '*.verdict' | head -1)
  if (( rc == 0 )) && [[ -z $found ]] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    echo "   passed: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)" >"$verdict"
  else
    {
      echo "   FAILED (exit $rc)${found:+, reproducer $found}; log $log"
      grep -E 'INVARIANT|ERROR:|runtime error:|SUMMARY' "$log" | head -5 | sed 's/^/   /'
    } >"$verdict"
  fi
}

# Each target is single-threaded: run up to IVD_JOBS at once, so every target still gets a whole CPU for SECONDS.
running=0
for t in $targets; do
  if (( running >= jobs )); then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait
passed=0
failed=0
for t in $targets; do
  echo "== $t: ${seconds}s"
  cat "$artifacts/$t.verdict" 2>/dev/null || echo "   FAILED: no verdict (the run did not finish)"
  if grep -q '^   passed' "$artifacts/$t.verdict" 2>/dev/null; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
(( failed == 0 ))
