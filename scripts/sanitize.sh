#!/usr/bin/env bash
# Builds the whole tree with gcc, AddressSanitizer and UndefinedBehaviorSanitizer in its own build folder and
# runs ctest with every sanitizer report fatal (halt_on_error, leak detection on). Real-component tests
# (tgtd, libvirtd, QEMU) run too, so run it as root like scripts/test.sh. Prints ctest's summary last.
#
#   scripts/sanitize.sh [ctest args...]   env: IVD_SANITIZE_BUILD_DIR (default build-asan), IVD_JOBS (default 2),
#                                              IVD_TEST_GROUPS / IVD_FIXTURE_GROUPS (default: all)
#
# dlopen: gcc links the shared libasan/libubsan into every sanitized executable and into the driver module, so
# the module a test or volume-host dlopens shares the runtime of the executable that loads it (already first in
# the link map); no LD_PRELOAD needed. A host that is NOT sanitized cannot load this build of the module.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${IVD_SANITIZE_BUILD_DIR:-$root/build-asan}
jobs=${IVD_JOBS:-2}
suppressions=$root/scripts/sanitize-lsan.supp

# -O1 with line tables only (ASan's own advice; reports still name file:line): at -O2 -g, ASan+UBSan made the
# build ~3x slower than the plain one and dominated CI time. tests/ compiles its own code at -O0 on top.
opt_flags="-O1 -g1 -DNDEBUG"

mkdir -p "$build"
CC=${CC:-gcc} CXX=${CXX:-g++} cmake -S "$root" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt_flags" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt_flags" \
  -DIVD_SANITIZE=address,undefined \
  "-DIVD_TEST_GROUPS=${IVD_TEST_GROUPS:-}" "-DIVD_FIXTURE_GROUPS=${IVD_FIXTURE_GROUPS:-}" \
  >"$build/ivd-configure.log" 2>&1 ||
  { cat "$build/ivd-configure.log" >&2; echo "sanitize.sh: configure failed" >&2; exit 1; }
cmake --build "$build" -j "$jobs" || { echo "sanitize.sh: build failed" >&2; exit 1; }

# Any report ends the process with a failure, so ctest sees it; stack traces are symbolized.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:detect_odr_violation=2
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=report_objects=1${IVD_LSAN_EXTRA:+:$IVD_LSAN_EXTRA}
if [[ -s $suppressions ]]; then
  LSAN_OPTIONS+=":suppressions=$suppressions"
fi

log=$build/ctest.log
(cd "$build" && ctest --output-on-failure --timeout 900 -j "$jobs" "$@") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
reports='^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|.*runtime error: )'
# A sanitizer report inside a test that still exited 0 (e.g. in a child it ignored) fails the run too.
if grep -qE "$reports" "$log"; then
  echo "sanitize.sh: sanitizer report(s) in $log" >&2
  rc=1
fi
echo "== summary"
grep -E '^[0-9]+% tests passed|^Total Test time' "$log" || echo "no ctest summary (see $log)"
exit "$rc"
