#!/bin/bash
# Installs every Debian 12 package the build, the tests, the demo and the packaging checks need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  # build
  cmake g++ pkg-config make
  libvirt-dev libiscsi-dev libjsoncpp-dev rapidjson-dev libpugixml-dev libfmt-dev libinih-dev libcli11-dev
  libgtest-dev libgmock-dev googletest
  # real components the tests start: iSCSI target, libvirtd + QEMU (TCG) with its iSCSI block module
  tgt libiscsi-bin libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-block-extra qemu-utils
  # host path tools (their formats are read; this kernel cannot run them for real)
  open-iscsi multipath-tools
  # packaging checks and os-brick for comparing target expansion
  rpm lintian dpkg-dev file python3-os-brick
  # the Python binding and the Nova integration (tests/python): pytest, and the real Nova 26 and libvirt-python
  python3-pytest python3-nova python3-libvirt python3-oslo.rootwrap
  # real-kernel lab (tests/vm_lab): builds its Debian guest image
  debootstrap
  # fuzzing (clang + libFuzzer) and sanitizers
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
