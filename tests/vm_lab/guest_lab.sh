#!/bin/bash
# The real-kernel lab's scenarios, run as PID 1 inside the Debian guest (see build_image.sh's init stub).
# It reads everything from the read-only 9p share mounted on /lab (written per run by vm_lab_test.cpp):
#   bin/volume-host, bin/iscsi_volume_driver.so   the freshly built binaries
#   lab.env                                        portals, IQN, LUNs, CHAP user (no secret)
#   ci-lun1.json, ci-lun2.json                     connection_info (they hold the CHAP password)
#   chap.secret                                    the password alone, used only as a grep -f pattern file
#   lun1.head, lun2.head                           the bytes tgtd's LUs start with
# and reports on the serial console (ttyS0), one line per result, parsed by the host:
#   VMLAB RESULT <name> PASS|FAIL <detail>     VMLAB REQUEST <action>     VMLAB DONE
# Host actions (drop/restore a portal) are requested on the console and acknowledged on the control serial
# port (ttyS1) as "ACK <action> ok|fail ...". The password never reaches an argv, the console or a log here.
set -u
# The console helpers, mounts, udev, network, iscsid and multipathd (shared with guest_bench.sh).
# shellcheck disable=SC1091
source /lab/guest_stack.sh

# Result lines, the password sampler, volume-host and the path views (shared with guest_lifecycle.sh).
# shellcheck disable=SC1091
source /lab/guest_common.sh
start_sampler
# No libvirtd in the guest: only the host path is exercised; a lost path must degrade, not fail.
write_host_config false

# === 1. connect LUN 1 through volume-host, auto path, multipath ======================================================
if vh connect /lab/ci-lun1.json /run/vmlab/connector.json --disk-info '{"dev":"sdb"}' >/run/vmlab/di1.json 2>$L/connect1.log; then
    DEV1=$(json_str path /run/vmlab/di1.json)
    DM1=$(basename "$(readlink -f "$DEV1")")
    TYPE1=$(json_str type /run/vmlab/di1.json)
    MP1=$(json_bool multipath /run/vmlab/di1.json)
    if [[ "$TYPE1" == block && "$MP1" == true && "$DEV1" =~ ^/dev/dm-[0-9]+$ && -b "$DEV1" ]]; then
        pass connect_lun1 "auto chose the host path: path=$DEV1 multipath_id=$(json_str multipath_id /run/vmlab/di1.json) in ${SECONDS}s"
    else
        fail connect_lun1 "device_info type=$TYPE1 multipath=$MP1 path=$DEV1 (want block, true, /dev/dm-N)"
    fi
else
    fail connect_lun1 "volume-host connect exited $?: $(tail -n 3 $L/connect1.log | tr '\n' ' ')"
    DEV1="" DM1=""
fi
grep -hE "host_facts|host path \(" $L/connect1.log | head -n 3 | sed 's/^/VMLAB LOG /'

if [[ -n "$DEV1" ]] && check_bytes "$DEV1" /lab/lun1.head; then
    pass bytes_lun1 "$DEV1 starts with LUN 1's known bytes (O_DIRECT read)"
else
    fail bytes_lun1 "$DEV1 does not read back LUN 1's bytes"
fi

multipath -ll 2>/dev/null | sed 's/^/VMLAB MPLL /'
if [[ "${MP1:-}" != true ]]; then  # diagnostics: what udev knows about the paths
    for d in $(ls /sys/block | grep '^sd'); do
        udevadm info --query=property --name="$d" 2>&1 | grep -E 'ID_SERIAL|ID_BUS|DM_MULTIPATH|SYSTEMD_READY|ID_WWN|MPATH' | sed "s/^/VMLAB UDEV $d /"
    done
    tail -n 20 $L/udevd.log | sed 's/^/VMLAB UDEVD /'
    pgrep -a udevd | sed 's/^/VMLAB UDEVD /'
fi
GOT=$( [[ -n "$DM1" ]] && dm_portals "$DM1")
PATHS1=$(ls /sys/block/"$DM1"/slaves 2>/dev/null | wc -l)
LLPATHS=$(multipath -ll "$(json_str multipath_id /run/vmlab/di1.json)" 2>/dev/null | grep -cE '[0-9]+:[0-9]+:[0-9]+:[0-9]+ +sd[a-z]+ .*active ready' || true)
if [[ -n "$DM1" && "$GOT" == "$EXPECTED_PORTALS" && "$PATHS1" == 2 && "$LLPATHS" == 2 ]]; then
    pass multipath_paths "$DM1 has one active path per portal: $GOT"
else
    fail multipath_paths "$DM1: slaves=$PATHS1 active-in-multipath-ll=$LLPATHS portals='$GOT' want '$EXPECTED_PORTALS'"
fi

# The logins took their settings from the records the driver wrote itself (no iscsiadm update): only LUN 1 was
# scanned though the target has LUN 2 too (node.session.scan = manual), and no record logs in at boot.
lun_devices() { ls /sys/class/scsi_device 2>/dev/null | awk -F: -v l="$1" '$4 == l' | wc -l; }
REC_MANUAL=$(grep -rhE '^node\.(startup|session\.scan) = manual$' /etc/iscsi/nodes 2>/dev/null | wc -l)
REC_OTHER=$(grep -rhE '^node\.(startup|session\.scan) = ' /etc/iscsi/nodes 2>/dev/null | grep -vc ' = manual$')
if [[ -n "$DEV1" && "$(lun_devices 1)" == 2 && "$(lun_devices 2)" == 0 && "$REC_MANUAL" == 4 && "$REC_OTHER" == 0 ]]; then
    pass record_settings "2 paths of LUN 1 and none of LUN 2 scanned; startup and scan manual in both records"
else
    fail record_settings "LUN 1 devices $(lun_devices 1) (want 2), LUN 2 $(lun_devices 2) (want 0); manual settings $REC_MANUAL (want 4), others $REC_OTHER"
fi

# === 2. one portal dropped on the host side while attached =========================================================
if [[ -n "$DEV1" ]] && why=$(request drop_portal2); then
    start=$SECONDS
    if spread_read "$DEV1" && check_bytes "$DEV1" /lab/lun1.head; then
        pass io_after_portal_drop "reads of $DEV1 went on after $PORTAL2 was dropped ($((SECONDS - start)) s)"
    else
        fail io_after_portal_drop "reading $DEV1 failed after $PORTAL2 was dropped"
    fi
    # The lost path must be seen as failed while the other one serves.
    p2_failed() {
        local d
        d=$(disk_portals | awk -v p="$PORTAL2" '$2 == p { print $1 }' | head -n1)
        [[ -n "$d" ]] && multipathd show paths format '%d %t' 2>/dev/null | grep -qE "^$d +(failed|faulty)"
    }
    if wait_for 60 p2_failed && multipathd show paths format '%d %t' 2>/dev/null | grep -q ' active'; then
        pass path_failed_seen "multipathd marks the $PORTAL2 path failed and keeps an active one"
    else
        fail path_failed_seen "multipathd did not show the $PORTAL2 path failed: $(multipathd show paths format '%d %t %o' 2>&1 | tr '\n' ';')"
    fi
    multipath -ll 2>/dev/null | sed 's/^/VMLAB MPLL /'
    if why=$(request restore_portal2); then
        both_active() { [[ $(multipathd show paths format '%d %t' 2>/dev/null | grep -cE ' active') -ge 2 ]]; }
        if wait_for 90 both_active && check_bytes "$DEV1" /lab/lun1.head; then
            pass path_restored "the $PORTAL2 path came back (iscsid re-login, multipathd reinstated it)"
        else
            fail path_restored "$(multipathd show paths format '%d %t %o' 2>&1 | tr '\n' ';')"
        fi
    else
        fail path_restored "the host did not restore the portal: $why"
    fi
else
    fail io_after_portal_drop "not run: ${why:-LUN 1 not attached}"
    fail path_failed_seen "not run"
    fail path_restored "not run"
fi

# === 3. a second LUN of the same target; then LUN 1 detached while LUN 2 stays ======================================
SESS_BEFORE=$(session_count)
if vh connect /lab/ci-lun2.json /run/vmlab/connector.json --disk-info '{"dev":"sdc"}' >/run/vmlab/di2.json 2>$L/connect2.log; then
    DEV2=$(json_str path /run/vmlab/di2.json)
    DM2=$(basename "$(readlink -f "$DEV2")")
    if [[ "$DEV2" =~ ^/dev/dm-[0-9]+$ && "$DM2" != "$DM1" ]] && check_bytes "$DEV2" /lab/lun2.head \
        && [[ "$(session_count)" == "$SESS_BEFORE" && "$(dm_portals "$DM2")" == "$EXPECTED_PORTALS" ]]; then
        pass connect_lun2 "LUN 2 on $DEV2 over the same $SESS_BEFORE sessions, its bytes match"
    else
        fail connect_lun2 "path=$DEV2 sessions $SESS_BEFORE -> $(session_count) portals '$(dm_portals "$DM2")'"
    fi
else
    fail connect_lun2 "volume-host connect exited $?: $(tail -n 3 $L/connect2.log | tr '\n' ' ')"
    DEV2=""
fi
multipath -ll 2>/dev/null | sed 's/^/VMLAB MPLL /'

SLAVES1=$(ls /sys/block/"$DM1"/slaves 2>/dev/null | tr '\n' ' ')
if vh disconnect /lab/ci-lun1.json /run/vmlab/di1.json >$L/disconnect1.out 2>$L/disconnect1.log; then
    left=""
    [[ -e /sys/block/$DM1 ]] && left+=" map $DM1"
    for s in $SLAVES1; do [[ -e /sys/block/$s ]] && left+=" $s"; done
    if [[ -z "$left" && "$(session_count)" == "$SESS_BEFORE" ]] && [[ -n "$DEV2" ]] && check_bytes "$DEV2" /lab/lun2.head; then
        pass detach_lun1_keeps_lun2 "LUN 1's map and paths ($SLAVES1) are gone; $SESS_BEFORE sessions stay; LUN 2 still reads"
    else
        fail detach_lun1_keeps_lun2 "left:${left:- none} sessions $(session_count) (want $SESS_BEFORE); LUN 2 readable: $([[ -n "$DEV2" ]] && check_bytes "$DEV2" /lab/lun2.head && echo yes || echo no)"
    fi
else
    fail detach_lun1_keeps_lun2 "volume-host disconnect exited $?: $(tail -n 3 $L/disconnect1.log | tr '\n' ' ')"
fi

# === 4. the last disconnect leaves nothing behind ===================================================================
if vh disconnect /lab/ci-lun2.json /run/vmlab/di2.json >$L/disconnect2.out 2>$L/disconnect2.log; then
    udevadm settle --timeout=10
    left=""
    [[ $(session_count) != 0 ]] && left+=" sessions:$(session_count)"
    ls /sys/block | grep -q '^sd' && left+=" disks:$(ls /sys/block | grep '^sd' | tr '\n' ',')"
    ls /sys/block | grep -q '^dm-' && left+=" maps:$(ls /sys/block | grep '^dm-' | tr '\n' ',')"
    [[ -n "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]] && left+=" node-records:$(ls /etc/iscsi/nodes | tr '\n' ',')"
    if [[ -z "$left" ]]; then
        pass disconnect_clean "no session, no sdX, no dm map, no node record"
    else
        fail disconnect_clean "left behind:$left"
    fi
else
    fail disconnect_clean "volume-host disconnect exited $?: $(tail -n 3 $L/disconnect2.log | tr '\n' ' ')"
fi
iscsiadm -m session >/dev/null 2>&1; rc=$?
[[ $rc == 21 ]] && pass no_session_left "iscsiadm -m session: no active sessions (exit 21)" \
                || fail no_session_left "iscsiadm -m session exited $rc"

# === 5. the CHAP password: not in any cmdline sampled, not in any log or file ======================================
secret_checks
hits=$SECRET_HITS
lines=$(cat $L/*.log | wc -l)
say "INFO multipathd add path calls during the first connect: $(grep -c 'run /usr/sbin/multipathd add path' $L/connect1.log)"
say "INFO $lines log lines checked; volume-host debug log of the first connect: $(wc -l <$L/connect1.log) lines"
[[ $FAILED == 0 ]] || for f in connect1 connect2 disconnect1 disconnect2 multipathd iscsid; do
    # Logs are shown only after the secret check passed on them.
    LOG_FILTER=.
    [[ $f == multipathd ]] && LOG_FILTER='sd[a-h]|add path|fail|error|orphan'
    [[ -z "$hits" ]] && grep -E "$LOG_FILTER" $L/$f.log 2>/dev/null | tail -n 30 | sed "s/^/VMLAB LOG $f: /"
done
say "DONE failed=$FAILED after ${SECONDS}s"
poweroff_now
