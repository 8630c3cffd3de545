#!/bin/bash
# The whole test suite on a fresh Debian 12, as root: installs dependencies, builds with warnings as errors,
# runs every test (real tgtd, libvirtd and QEMU included), then the checks that need their own builds or the
# system: the deb/rpm packages (installed and removed again), the suite under ASan+UBSan, the concurrency test
# under ThreadSanitizer, and a bounded fuzzing run. Every stage runs even when an earlier one failed; the exit code is non-zero if any failed.
#   sudo ./scripts/test.sh [build-dir]
#   env: IVD_FUZZ_SECONDS (default 60 per target), IVD_SKIP="packages sanitize tsan fuzz" to skip stages locally
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
skip=" ${IVD_SKIP:-} "

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh must run as root (it installs packages and starts tgtd and libvirtd)" >&2
  exit 1
fi

failed_stages=()
passed_stages=0
# Each stage's output is kept, and its ctest results as JUnit, so the run can end with what failed and why.
logs=$build-logs
rm -rf "$logs" && mkdir -p "$logs"
junit=$logs/junit
mkdir -p "$junit"
stage() {
  local name=$1
  shift
  if [[ $skip == *" $name "* ]]; then
    echo "== $name: skipped (IVD_SKIP)"
    return
  fi
  echo "== $name"
  local start=$SECONDS
  # Not a pipe: a daemon a stage leaves running (tgtd, libvirtd) would hold it open and the run would wait for it.
  if "$@" > >(tee "$logs/$name.log") 2>&1; then
    passed_stages=$((passed_stages + 1))
    echo "== $name: passed in $((SECONDS - start)) s"
  else
    failed_stages+=("$name")
    echo "== $name: FAILED after $((SECONDS - start)) s"
  fi
}

build_and_test() {
  # The VM lab's guest image (on a fresh machine a debootstrap of 2-4 min, mostly download and unpacking) is built
  # beside the compile instead of inside the lab's first test; the lab's tests wait on its lock and use it.
  # A failure here is only logged: the lab's tests then build the image themselves and fail loudly if they cannot.
  mkdir -p "$build"
  "$root/tests/vm_lab/build_image.sh" >"$build/vm_lab_image.log" 2>&1 &
  local image=$!
  # Prefix /usr: the compiled-in config and driver paths then match the packages built from this tree.
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DIVD_WERROR=ON >/dev/null &&
    cmake --build "$build" -j"$(nproc)"
  local built=$?
  wait "$image" || echo "VM lab image: building it beside the compile failed (see $build/vm_lab_image.log)"
  [ $built -eq 0 ] && (cd "$build" && ctest --output-on-failure --timeout 600 -j"$(nproc)" --output-junit "$junit/tests.xml")
}

"$root/scripts/install-deps.sh" || { echo "installing dependencies failed" >&2; exit 1; }
stage tests build_and_test
stage packages env JOBS="$(nproc)" "$root/packaging/test-packages.sh" "$build"
stage sanitize env IVD_JOBS="$(nproc)" IVD_SANITIZE_BUILD_DIR="$build-asan" "$root/scripts/sanitize.sh" \
  --output-junit "$junit/sanitize.xml"
stage tsan env IVD_JOBS="$(nproc)" IVD_TSAN_BUILD_DIR="$build-tsan" "$root/scripts/tsan.sh" --output-junit "$junit/tsan.xml"
stage fuzz env IVD_JOBS="$(nproc)" IVD_FUZZ_BUILD_DIR="$build-fuzz" "$root/scripts/fuzz.sh" "${IVD_FUZZ_SECONDS:-60}"

# Last, where a log cut to its tail still shows it: the failed tests and the end of their output.
for name in "${failed_stages[@]}"; do
  echo
  if ! python3 "$root/scripts/failed_tests.py" "$name" "$junit/$name.xml"; then
    echo "== $name: last lines of its output ($logs/$name.log)"
    tail -n 30 "$logs/$name.log"
  fi
done
echo
echo "stages: $passed_stages passed, ${#failed_stages[@]} failed${failed_stages:+ (${failed_stages[*]})}"
[ ${#failed_stages[@]} -eq 0 ]
