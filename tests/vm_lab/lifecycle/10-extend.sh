# Extend (issue 17 item 1). The LU really grows on the target: the host test deletes tgtd's LU and adds it again
# over the same backing file made bigger, with the same tid and LUN, so its VPD 0x83 identity (the WWID) stays.
# Then `volume-host extend` (ABI extend_volume) must answer the map's new size and the dm device must have it; with
# a path down, extend must refuse and name that path.
# vmlab-results: extend_same_wwid extend_size extend_dm_size extend_refused_path_down
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_EXTEND.json DI=/run/vmlab/extend-di.json
ALL="extend_same_wwid extend_size extend_dm_size extend_refused_path_down"
vh_connect "$CI" "$DI" extend-connect || { not_run "connect exited $?: $(last_log extend-connect)" $ALL; return; }
DEV=$(json_str path "$DI") WWID=$(json_str multipath_id "$DI")
DM=$(attached_map "$DI") || { not_run "$DM" $ALL; vh disconnect "$CI" "$DI" >/dev/null 2>&1; return; }
OLD=$(blockdev --getsize64 "$DEV")
why=$(request grow_lun$LUN_EXTEND) || { not_run "the host did not grow the LU: $why" $ALL; return; }
# Re-creating the LU fails I/O for a moment: wait until the checker sees every path active again.
wait_for 60 all_paths_active 2 || say "INFO extend: paths not all active after the LU came back: $(mpd_paths | tr '\n' ';')"

ids="" other=0
for s in $(map_slaves "$DM"); do
    id=$(/lib/udev/scsi_id -g -u -d /dev/"$s" 2>/dev/null)
    ids+="$s=$id "
    [[ "$id" == "$WWID" ]] || other=$((other + 1))
done
if [[ -n "$WWID" && -n "$ids" && $other == 0 ]]; then
    pass extend_same_wwid "every path of $DM reports WWID $WWID after the LU was re-created bigger: $ids"
else
    fail extend_same_wwid "device_info multipath_id=$WWID, paths: $ids"
fi

start=$EPOCHREALTIME took=n/a GOT=n/a
if vh extend "$CI" "$DI" >/run/vmlab/extend.out 2>$L/extend.log; then
    took=$(since "$start")
    GOT=$(json_num size_bytes /run/vmlab/extend.out)
    if [[ "$GOT" == "$LUN_EXTEND_NEW_BYTES" ]]; then
        pass extend_size "volume-host extend answered size_bytes=$GOT (was $OLD) in ${took}s"
    else
        fail extend_size "volume-host extend answered '$(head -c 200 /run/vmlab/extend.out)', want size_bytes=$LUN_EXTEND_NEW_BYTES"
    fi
else
    fail extend_size "volume-host extend exited $?: $(last_log extend)"
fi
NOW=$(blockdev --getsize64 "$DEV") sizes=""
for s in $(map_slaves "$DM"); do sizes+="$s=$(blockdev --getsize64 /dev/"$s") "; done
if [[ "$NOW" == "$LUN_EXTEND_NEW_BYTES" ]] && check_bytes "$DEV" /lab/lun$LUN_EXTEND.head; then
    pass extend_dm_size "$DEV (blockdev --getsize64) $OLD -> $NOW; paths $sizes; its first bytes unchanged"
else
    fail extend_dm_size "$DEV reports $NOW bytes (want $LUN_EXTEND_NEW_BYTES, was $OLD); paths $sizes"
fi
# For the benchmark table (scripts/bench.sh's lifecycle stage): the extend call and the sizes, key=value.
say "BENCH extend s=$took size_before=$OLD size_answered=$GOT dm_size_after=$NOW want=$LUN_EXTEND_NEW_BYTES"

# A path down: extend must refuse, naming it, and change nothing.
if why=$(request drop_portal2); then
    wait_for 60 path_failed "$PORTAL2"
    if vh extend "$CI" "$DI" >/run/vmlab/extend2.out 2>$L/extend-refused.log; then
        fail extend_refused_path_down "extend succeeded with the $PORTAL2 path down: $(head -c 200 /run/vmlab/extend2.out)"
    elif grep -q "$PORTAL2" $L/extend-refused.log && [[ $(blockdev --getsize64 "$DEV") == "$NOW" ]]; then
        pass extend_refused_path_down "refused with the $PORTAL2 path down, naming it: $(grep -o 'extend refused.*' $L/extend-refused.log | head -c 300)"
    else
        fail extend_refused_path_down "refused without naming $PORTAL2: $(last_log extend-refused)"
    fi
    why=$(request restore_portal2) || say "INFO extend: the host did not restore portal 2: $why"
    wait_for 90 all_paths_active 2
else
    fail extend_refused_path_down "not run: the host did not drop portal 2: $why"
fi
vh disconnect "$CI" "$DI" >/dev/null 2>$L/extend-disconnect.log || say "INFO extend: disconnect exited $?: $(last_log extend-disconnect)"
