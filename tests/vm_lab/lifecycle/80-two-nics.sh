# iface binding (issue 17 item 7) on a real kernel: the guest has two NICs ($NIC 10.0.2.15, $NIC2 10.0.2.16, each
# on a slirp of its own whose 10.0.2.2 is the host's loopback; guest_stack.sh). First the default config
# (iscsi_ifaces = default) still gives one path per portal, all from $NIC. Then iscsi_ifaces = lab0:$NIC,lab1:$NIC2
# (the driver creates both ifaces, bound by iface.net_ifacename, so iscsid binds each session's socket to its NIC):
# a connect with 2 portals gives 4 paths (2 ifaces x 2 portals) in one map, all active in multipath -ll, an
# O_DIRECT read through the map matches the LU; every session runs through its iface's NIC (iscsiadm -P 3: iface
# name and local address; ss: the socket's bound device and local address) and a read through each path device
# moves its bytes over that NIC's counters only. Disconnect leaves no session, device, map or node record; the
# iface records stay (the driver creates missing ifaces and never removes them: host configuration, like an
# operator's), and the scenario removes them itself.
# vmlab-results: two_nics_default_one_path_each two_nics_four_paths two_nics_read two_nics_sessions_bound
# vmlab-results: two_nics_traffic_per_nic two_nics_disconnected
# shellcheck shell=bash
ALL="two_nics_default_one_path_each two_nics_four_paths two_nics_read two_nics_sessions_bound"
ALL+=" two_nics_traffic_per_nic two_nics_disconnected"
[[ -n "${NIC2:-}" ]] || { not_run "the guest has no second NIC" $ALL; return; }
CI=/lab/ci-lun$LUN_CYCLE.json DI=/run/vmlab/twonic-di.json
P1=${PORTAL1##*:} P2=${PORTAL2##*:}

# "sdX PORTAL IFACE LOCAL_IP" per path device (iscsiadm -m session -P 3).
session_rows() {
    iscsiadm -m session -P 3 2>/dev/null | awk '
        /Current Portal:/ { split($3, a, ","); portal = a[1] }
        /Iface Name:/ { iface = $3 }
        /Iface IPaddress:/ { ip = $3 }
        /Attached scsi disk/ { print $4, portal, iface, ip }'
}
# "LOCAL%DEV->PEER" of each established TCP connection to the portals (the kernel's iSCSI sockets).
portal_sockets() {
    ss -tnH state established 2>/dev/null | awk -v a="10.0.2.2:$P1" -v b="10.0.2.2:$P2" '
        { for (i = 2; i <= NF; i++) if ($i == a || $i == b) print $(i - 1) "->" $i }' | sort
}
rx_bytes() { cat /sys/class/net/"$1"/statistics/rx_bytes; }

# --- the default iface: as before the second NIC ------------------------------------------------------------------
if vh_connect "$CI" "$DI" twonic-default; then
    DM=$(attached_map "$DI") || say "INFO two-nics: $DM"
    rows=$(session_rows | tr '\n' ';') socks=$(portal_sockets | tr '\n' ' ')
    n=$(wc -w <<<"$(map_slaves "$DM")")
    others=$(session_rows | awk '$3 != "default" || $4 != "10.0.2.15"' | wc -l)
    if [[ $n == 2 && $(session_count) == 2 && $others == 0 && "$socks" != *10.0.2.16* ]]; then
        pass two_nics_default_one_path_each "iscsi_ifaces = default: $DM over 2 paths, sessions $rows sockets $socks"
    else
        fail two_nics_default_one_path_each "$DM over $n path(s), $(session_count) sessions: $rows sockets: $socks"
    fi
    vh disconnect "$CI" "$DI" >/dev/null 2>$L/twonic-default-disconnect.log \
        || say "INFO two-nics: default disconnect exited $?: $(last_log twonic-default-disconnect)"
    udevadm settle --timeout=10
else
    fail two_nics_default_one_path_each "connect exited $?: $(last_log twonic-default)"
fi
left=$(host_leftovers)
[[ -z "$left" ]] || say "INFO two-nics: after the default connect the host still held:$left"

# --- two ifaces, one per NIC --------------------------------------------------------------------------------------
cp /run/vmlab/volume-host.conf /run/vmlab/twonic.conf
echo "iscsi_ifaces = lab0:$NIC,lab1:$NIC2" >>/run/vmlab/twonic.conf
vh() { /lab/bin/volume-host --config /run/vmlab/twonic.conf --log-level debug "$@"; }
REST="two_nics_four_paths two_nics_read two_nics_sessions_bound two_nics_traffic_per_nic two_nics_disconnected"
vh_connect "$CI" "$DI" twonic-connect || { not_run "connect exited $?: $(last_log twonic-connect)" $REST; return; }
DEV=$(json_str path "$DI")
DM=$(attached_map "$DI") || say "INFO two-nics: $DM"
SLAVES=$(map_slaves "$DM")
wait_for 30 all_paths_active 4
ll=$(multipath -ll 2>/dev/null)
ll_active=$(grep -c 'active ready running' <<<"$ll" || true)
ll_maps=$(grep -c '^3' <<<"$ll" || true)
if [[ $(wc -w <<<"$SLAVES") == 4 && $ll_active == 4 && $ll_maps == 1 && $(session_count) == 4 ]]; then
    pass two_nics_four_paths "$DM over $SLAVES (2 ifaces x 2 portals), multipath -ll: 1 map, $ll_active paths active ready running"
else
    fail two_nics_four_paths "path=$DEV paths '$SLAVES', $(session_count) sessions, multipath -ll: $ll_maps map(s), $ll_active active: $(tr '\n' ' ' <<<"$ll" | head -c 600)"
fi
if check_bytes "$DEV" /lab/lun$LUN_CYCLE.head && spread_read "$DEV"; then
    pass two_nics_read "O_DIRECT reads through $DEV: first block matches the LU, 72 blocks over 16 MiB read"
else
    fail two_nics_read "O_DIRECT read of $DEV failed or differs: $(tail -n 1 $L/dd.log 2>/dev/null)"
fi

# Each (portal, iface) pair once, each iface's sessions from its NIC's address, each socket bound to that NIC.
rows=$(session_rows)
want=$(for p in "$PORTAL1" "$PORTAL2"; do echo "$p lab0 10.0.2.15"; echo "$p lab1 10.0.2.16"; done | sort)
got=$(awk '{ print $2, $3, $4 }' <<<"$rows" | sort)
socks=$(portal_sockets)
bound0=$(grep -c "^10.0.2.15%$NIC:" <<<"$socks" || true) bound1=$(grep -c "^10.0.2.16%$NIC2:" <<<"$socks" || true)
in_map=$(awk -v s=" $SLAVES " 'index(s, " " $1 " ")' <<<"$rows" | wc -l)
if [[ "$got" == "$want" && $bound0 == 2 && $bound1 == 2 && $(wc -l <<<"$socks") == 4 && $in_map == 4 ]]; then
    pass two_nics_sessions_bound "sessions (disk portal iface local-ip): $(tr '\n' ';' <<<"$rows") sockets: $(tr '\n' ' ' <<<"$socks")"
else
    fail two_nics_sessions_bound "sessions: $(tr '\n' ';' <<<"$rows") (want $(tr '\n' ';' <<<"$want")) sockets: $(tr '\n' ' ' <<<"$socks")"
fi
say "INFO two-nics: ifaces $(iscsiadm -m iface 2>/dev/null | grep -E '^lab' | tr '\n' ';') device_info ifaces: $(grep -o '"iface" *: *"[^"]*"' "$DI" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"

# 1 MiB read straight from each path device with O_DIRECT: its NIC must carry it, the other NIC must not.
traffic="" badtraffic=""
while read -r disk portal iface _; do
    [[ -n "$disk" ]] || continue
    want_nic=$NIC other=$NIC2
    [[ $iface == lab1 ]] && want_nic=$NIC2 other=$NIC
    a0=$(rx_bytes "$want_nic") b0=$(rx_bytes "$other")
    timeout 120 dd if=/dev/"$disk" of=/dev/null bs=64k count=16 iflag=direct status=none 2>>$L/dd.log \
        || badtraffic+=" $disk read failed;"
    da=$(($(rx_bytes "$want_nic") - a0)) db=$(($(rx_bytes "$other") - b0))
    traffic+=" $disk($portal,$iface): $want_nic +${da}B $other +${db}B;"
    ((da >= 1048576 && db < 262144)) || badtraffic+=" $disk($iface) $want_nic +${da}B $other +${db}B;"
done <<<"$rows"
if [[ -n "$traffic" && -z "$badtraffic" ]]; then
    pass two_nics_traffic_per_nic "1 MiB O_DIRECT from each path:$traffic"
else
    fail two_nics_traffic_per_nic "${badtraffic:- no path read} all:$traffic"
fi

if vh disconnect "$CI" "$DI" >/dev/null 2>$L/twonic-disconnect.log; then
    udevadm settle --timeout=10
    left=$(host_leftovers)
    ifaces=$(iscsiadm -m iface 2>/dev/null | awk '$1 ~ /^lab[01]$/ { print $1 }' | sort | tr '\n' ' ')
    mpd=$(mpd_paths | tr '\n' ',')
    if [[ -z "$left" && -z "$mpd" ]]; then
        pass two_nics_disconnected "no session, sdX, map, node record; multipathd lists no path; iface records kept (driver's contract): ${ifaces:-none}"
    else
        fail two_nics_disconnected "left:$left multipathd paths: $mpd"
    fi
else
    fail two_nics_disconnected "disconnect exited $?: $(last_log twonic-disconnect)"
fi
# The ifaces are this scenario's own configuration: removed, so later scenarios find the host as it was.
iscsiadm -m iface -I lab0 -o delete >/dev/null 2>&1
iscsiadm -m iface -I lab1 -o delete >/dev/null 2>&1
