#!/bin/bash
# The demo on a fresh Debian 12, as root: installs dependencies, builds the plugin, volume-host and the demo,
# then attaches a CHAP-protected iSCSI volume (tgtd on loopback) to a tiny TCG VM through volume-host and the
# plugin, prints the disk XML and the volume's first bytes as read through QEMU, detaches, and stops only what
# it started. Usage: sudo ./scripts/demo.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh must run as root (it installs packages and starts tgtd and libvirtd)" >&2
  exit 1
fi
echo "== installing dependencies"
"$root/scripts/install-deps.sh"
echo "== building"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target volume_demo volume-host iscsi_volume_driver >/dev/null
exec "$build/tests/demo/volume_demo"
