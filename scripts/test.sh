#!/bin/bash
# The whole test suite on a fresh Debian 12, as root: installs dependencies, builds with warnings as errors,
# runs every test (real tgtd, libvirtd and QEMU included). Usage: sudo ./scripts/test.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh must run as root (it installs packages and starts tgtd and libvirtd)" >&2
  exit 1
fi

echo "== installing dependencies"
"$root/scripts/install-deps.sh"

echo "== building ($build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIVD_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

echo "== running tests"
cd "$build"
ctest --output-on-failure --timeout 600 -j"$(nproc)"
