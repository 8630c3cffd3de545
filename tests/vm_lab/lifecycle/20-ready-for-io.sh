# Ready for I/O (issue 17 item 2): connect returns only when the map is usable. $READY_CYCLES connects of one
# LUN, each followed at once (no settle, no retry) by an O_DIRECT read of its first block, which must succeed and
# match the LU's bytes. Another LUN of the target stays attached meanwhile, so every cycle is a fresh scan, fresh
# sdX paths and a fresh map over sessions that stay (the cheap connect, where returning on dm-N alone races most).
# vmlab-results: ready_for_io
# shellcheck shell=bash
ANCHOR_CI=/lab/ci-lun$LUN_HOLD.json ANCHOR_DI=/run/vmlab/ready-anchor-di.json
CI=/lab/ci-lun$LUN_CYCLE.json DI=/run/vmlab/ready-di.json
vh_connect "$ANCHOR_CI" "$ANCHOR_DI" ready-anchor || { not_run "anchor connect exited $?: $(last_log ready-anchor)" ready_for_io; return; }
ok=0 bad="" times=()
for i in $(seq 1 "$READY_CYCLES"); do
    start=$EPOCHREALTIME
    if ! vh_connect "$CI" "$DI" ready-connect; then
        bad+=" #$i connect exited $?: $(last_log ready-connect);"
        continue
    fi
    times+=("$(since "$start")")
    dev=$(json_str path "$DI")
    if ! why=$(attached_map "$DI"); then
        bad+=" #$i $why;"
    elif read_now "$dev" /lab/lun$LUN_CYCLE.head; then
        ok=$((ok + 1))
    else
        bad+=" #$i read of $dev right after connect failed ($(tail -n 1 $L/dd.log));"
    fi
    vh disconnect "$CI" "$DI" >/dev/null 2>$L/ready-disconnect.log || bad+=" #$i disconnect exited $?: $(last_log ready-disconnect);"
done
med=$(printf '%s\n' "${times[@]}" | median)
say "BENCH ready_connect_median_s $med"
if [[ $ok == "$READY_CYCLES" && -z "$bad" ]]; then
    pass ready_for_io "$ok/$READY_CYCLES connects each read at once with O_DIRECT, bytes matched; connect median ${med}s"
else
    fail ready_for_io "$ok/$READY_CYCLES reads ok;$bad"
fi
vh disconnect "$ANCHOR_CI" "$ANCHOR_DI" >/dev/null 2>$L/ready-anchor-disconnect.log \
    || say "INFO ready: anchor disconnect exited $?: $(last_log ready-anchor-disconnect)"
