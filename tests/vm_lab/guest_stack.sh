#!/bin/bash
# Sourced first by the guest scripts (guest_lab.sh, guest_bench.sh) running as PID 1 in the lab's Debian guest:
# the console helpers, tmpfs mounts, udev, the network to the host (10.0.2.2), multipath.conf, iscsid and
# multipathd, as on a compute host. Reads /lab/lab.env (PORTAL1, PORTAL2, IQN, INITIATOR, ...).
# VMLAB_MULTIPATHD_V: multipathd's verbosity (default 3: the lab shows its log on failure).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C

exec 3>&1  # the console, also from inside $(...)
say() { echo "VMLAB $*" >&3; }
poweroff_now() {
    sync
    echo 1 >/proc/sys/kernel/sysrq
    echo o >/proc/sysrq-trigger
    sleep 60
}

mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock/iscsi /run/vmlab/logs /run/udev
L=/run/vmlab/logs
echo vmlab >/proc/sys/kernel/hostname
# shellcheck disable=SC1091
source /lab/lab.env
say "BOOTED kernel $(uname -r) after ${SECONDS}s of init"

# --- the host's iSCSI and multipath stacks, as on a compute host ------------------------------------------------
echo "InitiatorName=$INITIATOR" >/etc/iscsi/initiatorname.iscsi
modprobe -a iscsi_tcp sd_mod dm_multipath dm_round_robin dm_service_time scsi_dh_alua 2>>$L/modprobe.log
/lib/systemd/systemd-udevd --daemon >>$L/udevd.log 2>&1
udevadm trigger --action=add >/dev/null 2>&1
udevadm settle --timeout=30

# --- network: QEMU user networking; 10.0.2.2 is the host's loopback (after udev: it may rename the NIC) ----------
# NICs by the MACs vm_lab_runner.cpp gives them. NIC2 (the lifecycle run only) is on a slirp of its own with the
# same 10.0.2.0/24 and the same 10.0.2.2 (also the host's loopback). It gets 10.0.2.16 and its subnet route a
# higher metric, so every socket not bound to a device keeps leaving through NIC as before (one path per portal
# with iscsi_ifaces = default); a socket bound to NIC2 (SO_BINDTODEVICE: an open-iscsi iface with
# iface.net_ifacename) takes NIC2's route and its source address. Each NIC answers ARP only for its own address
# and speaks from it (arp_ignore/arp_announce), and replies arriving on NIC2 for 10.0.2.16 are not dropped
# because the best route back to 10.0.2.2 is NIC's (rp_filter off).
nic_by_mac() { local a; for a in /sys/class/net/*/address; do [[ $(<"$a") == "$1" ]] && { a=${a%/address}; echo "${a##*/}"; return; }; done; }
NIC=$(nic_by_mac 52:54:00:12:34:56)
[[ -n "$NIC" ]] || NIC=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
NIC2=$(nic_by_mac 52:54:00:12:34:57)
ip link set lo up
ip link set "$NIC" up
ip addr add 10.0.2.15/24 dev "$NIC"
ip route add default via 10.0.2.2
if [[ -n "$NIC2" ]]; then
    for k in all default "$NIC" "$NIC2"; do
        echo 0 >/proc/sys/net/ipv4/conf/"$k"/rp_filter
        echo 1 >/proc/sys/net/ipv4/conf/"$k"/arp_ignore
        echo 2 >/proc/sys/net/ipv4/conf/"$k"/arp_announce
    done
    ip link set "$NIC2" up
    ip addr add 10.0.2.16/24 dev "$NIC2" metric 100
fi
say "NET $NIC=10.0.2.15${NIC2:+ $NIC2=10.0.2.16 (metric 100)}"
cat >/etc/multipath.conf <<'EOF'
# The lab's multipath.conf: Debian's defaults, with path checks every 2 s so a lost or returning path shows
# quickly. fast_io_fail_tmo (also the iSCSI session's recovery timeout, set by multipathd) bounds how long I/O
# on a lost path waits before dm-multipath retries it on another path.
defaults {
    user_friendly_names no
    polling_interval 2
    fast_io_fail_tmo 5
}
EOF
iscsid -f >>$L/iscsid.log 2>&1 &
multipathd -d -s -v"${VMLAB_MULTIPATHD_V:-3}" >>$L/multipathd.log 2>&1 &
for _ in $(seq 1 100); do
    multipathd show daemon >/dev/null 2>&1 && iscsiadm -m session >/dev/null 2>&1; rc=$?
    # iscsiadm -m session: 0 (sessions) or 21 (none) once iscsid answers.
    [[ $rc == 0 || $rc == 21 ]] && multipathd show daemon >/dev/null 2>&1 && break
    sleep 0.2
done
say "STACK iscsid and multipathd up after ${SECONDS}s"

# The compute host's volume-host config and connector, as both guest scripts use them: the connector asks for
# multipath and iscsid + multipathd answer, so the driver chooses the host path. $1: enforce_multipath; $2...:
# more [iscsi] lines.
write_host_config() {
    cat >/run/vmlab/volume-host.conf <<CONF
[DEFAULT]
volume_drivers = iscsi=/lab/bin/iscsi_volume_driver.so
[libvirt]
connection_uri = qemu:///system
[iscsi]
path = auto
enforce_multipath = $1
CONF
    [[ $# -gt 1 ]] && printf '%s\n' "${@:2}" >>/run/vmlab/volume-host.conf
    printf '{"initiator":"%s","multipath":true,"host":"vmlab","ip":"10.0.2.15"}\n' "$INITIATOR" >/run/vmlab/connector.json
}
