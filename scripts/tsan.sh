#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency tests (at a smaller scale) and the unit tests (VolumeLocks and the other
# pure logic), in their own build folder. Every report is fatal (halt_on_error): a race fails its test. Real
# components run (tgtd, libvirtd, the simulated host), so run it as root like scripts/test.sh. Ends with
# "N passed, N failed".
#
#   scripts/tsan.sh [ctest args...]   env: IVD_TSAN_BUILD_DIR (default build-tsan), IVD_JOBS (default 2),
#                                          IVD_CONC_* (scale, see tests/concurrency/concurrency_support.hpp)
#
# Only our code is instrumented; libvirt, libiscsi, glib, jsoncpp and fmt are not, so TSan cannot see their
# synchronisation (atomics, futexes) and misreports some of their intercepted calls: scripts/tsan.supp names each
# such case with its reason.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${IVD_TSAN_BUILD_DIR:-$root/build-tsan}
jobs=${IVD_JOBS:-2}
suppressions=$root/scripts/tsan.supp

mkdir -p "$build"
CC=${CC:-gcc} CXX=${CXX:-g++} cmake -S "$root" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIVD_SANITIZE=thread \
  "-DIVD_TEST_GROUPS=concurrency;unit" "-DIVD_FIXTURE_GROUPS=tgtd;libvirt;simulated_host" \
  >"$build/ivd-configure.log" 2>&1 ||
  { cat "$build/ivd-configure.log" >&2; echo "tsan.sh: configure failed" >&2; echo "0 passed, 1 failed"; exit 1; }
# Only what the two groups need (the module and the simulated host's tools come in as dependencies).
cmake --build "$build" -j "$jobs" --target concurrency_tests unit_tests ||
  { echo "tsan.sh: build failed" >&2; echo "0 passed, 1 failed"; exit 1; }

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66:history_size=4"
if grep -qvE '^[[:space:]]*(#|$)' "$suppressions" 2>/dev/null; then
  TSAN_OPTIONS+=":suppressions=$suppressions"
fi
# TSan costs 5-15x: a smaller run that still has many threads on shared volumes, targets and portals.
export IVD_CONC_VOLUMES=${IVD_CONC_VOLUMES:-200} IVD_CONC_THREADS=${IVD_CONC_THREADS:-16} \
  IVD_CONC_LUNS=${IVD_CONC_LUNS:-8} IVD_CONC_HOST_VOLUMES=${IVD_CONC_HOST_VOLUMES:-24} \
  IVD_CONC_HOST_THREADS=${IVD_CONC_HOST_THREADS:-8}

log=$build/ctest.log
(cd "$build" && ctest --output-on-failure --timeout 900 -j "$jobs" -L 'concurrency|unit' "$@") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# A report in a child the test did not judge (a simulated tool) still fails the run.
if grep -q 'WARNING: ThreadSanitizer' "$log"; then
  echo "tsan.sh: ThreadSanitizer report(s) in $log" >&2
  rc=1
fi
total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$log" | tail -1)
failed=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -1)
if [[ -z $total ]]; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$((total - failed)) passed, $failed failed"
[[ $rc -eq 0 ]] || exit "$rc"
