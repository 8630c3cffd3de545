#!/bin/bash
# Builds (once) the benchmark variant of the real-kernel lab's guest: the plain image of build_image.sh plus
# python3-os-brick (for tests/bench's "osbrick" comparison), and prints the directory holding it.
#
# build_image.sh stays byte-for-byte as CI uses it (its cache key is a hash of its own text, so any edit there
# would rebuild CI's image). This wrapper runs a copy of it with the extra package added to its package list: the
# copy's text differs, so it gets its own key, and it runs against its own cache directory
# (${IVD_VM_LAB_CACHE:-/var/cache/iscsi-volume-driver/vm-lab}-osbrick), so neither variant's pruning of stale
# keys removes the other. The variant follows every change of the plain image (package list, init stub) for free.
#
# Usage: build_bench_image.sh          prints the image directory on stdout (progress on stderr)
#        build_bench_image.sh --key    prints the key only
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# python3-ply: debootstrap does not resolve virtual packages (python3-pycparser needs python3-ply-lex-3.10).
extra=(python3-os-brick python3-ply)

plain_cache="${IVD_VM_LAB_CACHE:-/var/cache/iscsi-volume-driver/vm-lab}"
export IVD_VM_LAB_CACHE="${plain_cache%/}-osbrick"
mkdir -p "$IVD_VM_LAB_CACHE"

# The derived script lives in the cache directory (its dot name keeps it out of build_image.sh's pruning).
derived="$IVD_VM_LAB_CACHE/.build_image.osbrick.sh"
tmp=$(mktemp "$derived.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Inserts the extra packages as the first line of the `packages=(` array; fails if that line is not there.
awk -v extra="  ${extra[*]}" '{ print } /^packages=\($/ { print extra; found = 1 } END { exit found ? 0 : 1 }' \
  "$here/build_image.sh" >"$tmp" \
  || { echo "vm-lab: build_image.sh has no 'packages=(' line to extend" >&2; exit 3; }
chmod 0755 "$tmp"
mv -f "$tmp" "$derived"
exec /bin/bash "$derived" "$@"
