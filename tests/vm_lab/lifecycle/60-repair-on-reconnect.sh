# Repair on reconnect (issue 17 item 5): attach while portal 2 is unreachable (degraded: one path, reported),
# make it reachable, connect the same volume again: the missing path is logged in and added, all paths active,
# same dm device, same WWID.
# vmlab-results: repair_degraded_attach repair_all_paths_after_reconnect
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_CYCLE.json DI=/run/vmlab/repair-di.json DI2=/run/vmlab/repair-di2.json
why=$(request drop_portal2) || { not_run "the host did not drop portal 2: $why" repair_degraded_attach repair_all_paths_after_reconnect; return; }
if vh_connect "$CI" "$DI" repair-connect; then
    DEV=$(json_str path "$DI") WWID=$(json_str multipath_id "$DI")
    DM=$(attached_map "$DI") || say "INFO repair: $DM"
    n=$(wc -w <<<"$(map_slaves "$DM")")
    reported=$(grep -ciE "degraded|unreachable|$PORTAL2" $L/repair-connect.log "$DI" | awk -F: '{ s += $NF } END { print s + 0 }')
    if [[ $n == 1 && $reported -gt 0 ]] && check_bytes "$DEV" /lab/lun$LUN_CYCLE.head; then
        pass repair_degraded_attach "connected degraded on $DEV over 1 path, $PORTAL2 reported"
    else
        fail repair_degraded_attach "$DEV has $n path(s); portal 2 reported in $reported line(s)"
    fi
else
    fail repair_degraded_attach "connect with $PORTAL2 down exited $?: $(last_log repair-connect)"
    DEV=""
fi
why=$(request restore_portal2) || say "INFO repair: the host did not restore portal 2: $why"
if [[ -z "$DEV" ]]; then
    not_run "no degraded attachment" repair_all_paths_after_reconnect
elif vh_connect "$CI" "$DI2" repair-reconnect; then
    DEV2=$(json_str path "$DI2") WWID2=$(json_str multipath_id "$DI2")
    wait_for 30 all_paths_active 2
    if [[ "$DEV2" == "$DEV" && "$WWID2" == "$WWID" && "$(dm_portals "$DM")" == "$EXPECTED_PORTALS" ]] && all_paths_active 2; then
        pass repair_all_paths_after_reconnect "connect again: $DEV, WWID $WWID, paths through $EXPECTED_PORTALS all active"
    else
        fail repair_all_paths_after_reconnect "path $DEV -> $DEV2, WWID $WWID -> $WWID2, portals '$(dm_portals "$DM")', paths: $(mpd_paths | tr '\n' ';')"
    fi
    cp "$DI2" "$DI"
else
    fail repair_all_paths_after_reconnect "connect again exited $?: $(last_log repair-reconnect)"
fi
[[ -n "$DEV" ]] && { vh disconnect "$CI" "$DI" >/dev/null 2>$L/repair-disconnect.log || say "INFO repair: disconnect exited $?: $(last_log repair-disconnect)"; }
