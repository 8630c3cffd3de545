# A crash journal (issue 17 item 6): volume-host killed with SIGKILL in the middle of a connect (once a session is
# logged in), then `volume-host cleanup` must leave nothing: no session (iscsiadm -m session), no map
# (multipath -ll), no node record (/etc/iscsi/nodes). This guest has no libvirtd (a host-path-only compute host), so
# the network path cannot scan: cleanup is partial (exit 7) and its report must say exactly that — the network path
# not scanned, the host path scanned, nothing failed — while the half-done host attachment is still undone.
# vmlab-results: crash_killed_mid_connect crash_cleanup_ok crash_nothing_left
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_CYCLE.json
# volume-host itself in the background, not the vh function: $! must be the process SIGKILL is meant for (a
# function runs in a subshell, whose kill would leave volume-host running on).
/lab/bin/volume-host --config /run/vmlab/volume-host.conf --log-level debug connect "$CI" /run/vmlab/connector.json \
    >/run/vmlab/crash-di.json 2>$L/crash-connect.log &
VH=$!
logged_in() { [[ $(session_count) -gt 0 ]] || ! kill -0 "$VH" 2>/dev/null; }
wait_for 60 logged_in
if kill -0 "$VH" 2>/dev/null && kill -9 "$VH"; then
    wait "$VH" 2>/dev/null
    pass crash_killed_mid_connect "volume-host killed (SIGKILL) with $(session_count) session(s) logged in"
else
    wait "$VH" 2>/dev/null
    fail crash_killed_mid_connect "volume-host was not running any more when a session appeared (exit $?)"
fi
OUT=/run/vmlab/cleanup.out
vh cleanup >$OUT 2>$L/crash-cleanup.log; rc=$?
flat=$(tr -d ' \n' <$OUT)
scanned_not=$(grep -o '"not_scanned":\[[^]]*\]' <<<"$flat")
why=""
[[ $(json_num failed $OUT) == 0 ]] || why+=" failed=$(json_num failed $OUT);"
grep -q '"host":"scanned"' <<<"$flat" || why+=" host path not scanned;"
grep -q '"action":"removed"' <<<"$flat" || why+=" nothing removed;"
if [[ $rc == 7 ]]; then
    # Partial: exactly one path not scanned, the network one (libvirt is not there), and stderr says cleanup_partial.
    [[ $(json_bool partial $OUT) == true ]] || why+=" exit 7 but partial=$(json_bool partial $OUT);"
    [[ $(grep -o '"path":"' <<<"$scanned_not" | wc -l) == 1 && $scanned_not == *'"path":"network"'* ]] \
        || why+=" not_scanned is not exactly the network path: ${scanned_not:0:200};"
    grep -q cleanup_partial $L/crash-cleanup.log || why+=" no cleanup_partial on stderr;"
elif [[ $rc == 0 ]]; then
    [[ $(json_bool partial $OUT) == false ]] || why+=" exit 0 but partial=$(json_bool partial $OUT);"
else
    why+=" exit $rc: $(last_log crash-cleanup);"
fi
if [[ -z "$why" ]]; then
    pass crash_cleanup_ok "volume-host cleanup exited $rc (7: partial, network path not scanned: ${scanned_not:0:160}); report: $(head -c 300 $OUT)"
else
    fail crash_cleanup_ok "$why items: $(grep -o '"items":.*' <<<"$flat" | head -c 700) journal: $(ls /var/lib/iscsi-volume-driver/host-attachments 2>&1 | tr '\n' ' ')"
fi
udevadm settle --timeout=10
iscsiadm -m session >/dev/null 2>&1; rc=$?
left=""
[[ $rc == 21 ]] || left+=" iscsiadm -m session exited $rc ($(session_count) sessions);"
[[ -z "$(multipath -ll 2>/dev/null)" ]] || left+=" multipath -ll: $(multipath -ll 2>/dev/null | head -n1);"
[[ -z "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]] || left+=" node records: $(ls /etc/iscsi/nodes | tr '\n' ' ');"
[[ -z "$left" ]] && pass crash_nothing_left "no session, no map, no node record after cleanup" || fail crash_nothing_left "$left"
