# A crash journal (issue 17 item 6): volume-host killed with SIGKILL in the middle of a connect (once a session is
# logged in), then `volume-host cleanup` must leave nothing: no session (iscsiadm -m session), no map
# (multipath -ll), no node record (/etc/iscsi/nodes).
# vmlab-results: crash_killed_mid_connect crash_cleanup_exit0 crash_nothing_left
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_CYCLE.json
vh connect "$CI" /run/vmlab/connector.json >/run/vmlab/crash-di.json 2>$L/crash-connect.log &
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
if vh cleanup >/run/vmlab/cleanup.out 2>$L/crash-cleanup.log; then
    pass crash_cleanup_exit0 "volume-host cleanup: $(head -c 300 /run/vmlab/cleanup.out)"
else
    fail crash_cleanup_exit0 "volume-host cleanup exited $?: $(head -c 200 /run/vmlab/cleanup.out) $(last_log crash-cleanup)"
fi
udevadm settle --timeout=10
iscsiadm -m session >/dev/null 2>&1; rc=$?
left=""
[[ $rc == 21 ]] || left+=" iscsiadm -m session exited $rc ($(session_count) sessions);"
[[ -z "$(multipath -ll 2>/dev/null)" ]] || left+=" multipath -ll: $(multipath -ll 2>/dev/null | head -n1);"
[[ -z "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]] || left+=" node records: $(ls /etc/iscsi/nodes | tr '\n' ' ');"
[[ -z "$left" ]] && pass crash_nothing_left "no session, no map, no node record after cleanup" || fail crash_nothing_left "$left"
