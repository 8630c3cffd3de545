#!/bin/bash
# Builds (once) the real-kernel lab's Debian 12 guest and prints the directory holding it:
#   rootfs.img (raw ext4, never written to: the lab boots it with -snapshot), vmlinuz, initrd.img, KEY.
#
# Cache: ${IVD_VM_LAB_CACHE:-/var/cache/iscsi-volume-driver/vm-lab}/<key>, where <key> is a hash of this script
# (which holds the package list and the guest's init stub), the mirror and the architecture. A changed key means
# a new directory (old ones are pruned). The image is built in a temporary directory next to it and renamed into
# place only when complete, so a half-built image is never used; a lock file serialises concurrent builders.
#
# Usage: build_image.sh            prints the image directory on stdout (progress on stderr)
#        build_image.sh --key      prints the key only
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

# Everything the guest needs: the kernel and initrd, open-iscsi, multipath-tools, udev, and the runtime libraries
# of iscsi_volume_driver.so and volume-host (`ldd` of both: libvirt0, libiscsi7, libjsoncpp25, libfmt9,
# libpugixml1v5, libinih1, libstdc++6). Keep this list in step with CMakeLists.txt's dependencies.
packages=(
  linux-image-amd64 kmod udev systemd-sysv iproute2 procps
  open-iscsi multipath-tools
  libvirt0 libiscsi7 libjsoncpp25 libfmt9 libpugixml1v5 libinih1 libstdc++6
)

# The guest's init (PID 1): mounts the lab's read-only 9p share and runs the scenario script found there, so the
# scenarios and the freshly built binaries change per run while the cached image stays the same.
read -r -d '' init_stub <<'EOF' || true
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /lab
if modprobe -q 9pnet_virtio && modprobe -q 9p && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 lab /lab \
    && [ -x /lab/guest_lab.sh ]; then
    exec /bin/bash /lab/guest_lab.sh
fi
echo "VMLAB FATAL cannot mount the lab share (9p tag 'lab') or /lab/guest_lab.sh is missing"
echo 1 > /proc/sys/kernel/sysrq
echo o > /proc/sysrq-trigger
sleep 30
EOF

mirror="${IVD_VM_LAB_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  # The first Debian (not -security) URI of the configured apt sources.
  mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
             | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
arch=$(dpkg --print-architecture)
key=$( { cat "${BASH_SOURCE[0]}"; echo "$mirror $arch"; } | sha256sum | cut -c1-16)
if [[ "${1:-}" == "--key" ]]; then echo "$key"; exit 0; fi

cache="${IVD_VM_LAB_CACHE:-/var/cache/iscsi-volume-driver/vm-lab}"
final="$cache/$key"
mkdir -p "$cache"
if [[ -f "$final/COMPLETE" ]]; then echo "$final"; exit 0; fi

exec 9>"$cache/.lock"
flock 9
if [[ -f "$final/COMPLETE" ]]; then echo "$final"; exit 0; fi  # another builder finished while we waited

for tool in debootstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "vm-lab: '$tool' is missing (scripts/install-deps.sh installs it)" >&2; exit 3; }
done

tmp=$(mktemp -d "$cache/.build-$key.XXXXXX")
cleanup() { [[ -n "${tmp:-}" ]] && rm -rf --one-file-system "$tmp"; }
trap cleanup EXIT
root="$tmp/root"
start=$SECONDS
echo "vm-lab: building the guest image $key from $mirror (debootstrap, about 2 minutes)" >&2
include=$(IFS=,; echo "${packages[*]}")
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" bookworm "$root" "$mirror" \
       >"$tmp/debootstrap.log" 2>&1; then
  echo "vm-lab: debootstrap failed; the end of its log:" >&2
  tail -n 30 "$tmp/debootstrap.log" >&2
  tail -n 30 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  exit 1
fi
echo "vm-lab: debootstrap took $((SECONDS - start)) s" >&2

printf '%s\n' "$init_stub" >"$root/sbin/vmlab-init"
chmod 0755 "$root/sbin/vmlab-init"
echo vmlab >"$root/etc/hostname"
: >"$root/etc/iscsi/initiatorname.iscsi"  # written per run by the scenario script
# Space: docs, man pages, locales and apt's lists are never used in the guest.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* \
       "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

mkdir -p "$tmp/out"
cp "$root"/boot/vmlinuz-* "$tmp/out/vmlinuz"
cp "$root"/boot/initrd.img-* "$tmp/out/initrd.img"
chmod 0644 "$tmp/out/vmlinuz" "$tmp/out/initrd.img"
mkfs.ext4 -q -F -L vmlab-root -d "$root" "$tmp/out/rootfs.img" 2G
echo "$key" >"$tmp/out/KEY"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version}\n' >"$tmp/out/packages.txt"
touch "$tmp/out/COMPLETE"

rm -rf --one-file-system "$final"
mv "$tmp/out" "$final"
# Older keys are stale: drop them (never the one being built by someone else: those start with '.').
for old in "$cache"/*; do
  [[ -d "$old" && "$old" != "$final" ]] && rm -rf --one-file-system "$old"
done
echo "vm-lab: guest image ready in $((SECONDS - start)) s: $final" >&2
echo "$final"
