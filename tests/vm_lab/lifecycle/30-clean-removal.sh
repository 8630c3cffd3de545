# Ready for I/O (issue 17 item 2) and clean removal (item 3), in one loop: $CHURN_CYCLES connect/disconnect cycles
# of the same LUN while another LUN of the target stays attached (the sessions stay, so each cycle is a fresh scan,
# fresh sdX paths and a fresh map: the cheap connect, where returning on dm-N alone races most, and the part of a
# disconnect that leaves stale paths). Each connect is followed at once (no settle, no retry) by an O_DIRECT read of
# the first block, which must succeed and match the LU's bytes; after each disconnect returns, multipathd must list
# none of the paths just removed. The per-cycle times go to the benchmark table ("VMLAB BENCH" key=value lines,
# scripts/bench.sh's lifecycle stage). Then a map held open: a plain disconnect fails and leaves everything attached
# and readable; `disconnect --force --ignore-errors` exits 0 and leaves no session or path device of the volume, and
# no map once its holder lets go (the driver gives the open map deferred removal and an error table, `dmsetup
# wipe_table`, checked while the holder still has it: the kernel removes it at the last close).
# vmlab-results: ready_for_io churn_no_stale_paths churn_nothing_left held_open_refused held_open_intact
# vmlab-results: force_disconnect_exit0 force_disconnect_no_paths force_disconnect_error_table force_disconnect_no_map
# shellcheck shell=bash
ANCHOR_CI=/lab/ci-lun$LUN_HOLD.json ANCHOR_DI=/run/vmlab/churn-anchor-di.json
CI=/lab/ci-lun$LUN_CYCLE.json DI=/run/vmlab/churn-di.json
vh_connect "$ANCHOR_CI" "$ANCHOR_DI" churn-anchor || say "INFO churn: anchor connect exited $?: $(last_log churn-anchor)"
ok=0 reads=0 bad="" badread="" times=() vh_times=()
: >$L/churn-steps.log
for i in $(seq 1 "$CHURN_CYCLES"); do
    start=$EPOCHREALTIME
    if ! vh_connect "$CI" "$DI" churn-connect; then
        bad+=" #$i connect exited $?: $(last_log churn-connect);"
        continue
    fi
    connect_s=$(since "$start")
    grep -h 'steps: ' $L/churn-connect.log >>$L/churn-steps.log
    dev=$(json_str path "$DI")
    if read_now "$dev" /lab/lun$LUN_CYCLE.head; then
        reads=$((reads + 1))
    else
        badread+=" #$i read of $dev right after connect failed ($(tail -n 1 $L/dd.log 2>/dev/null));"
    fi
    dm=$(attached_map "$DI") || bad+=" #$i $dm;"
    slaves=$(map_slaves "$dm")
    disconnect_start=$EPOCHREALTIME
    if ! vh disconnect "$CI" "$DI" >/dev/null 2>$L/churn-disconnect.log; then
        bad+=" #$i disconnect exited $?: $(last_log churn-disconnect);"
        continue
    fi
    times+=("$(since "$start")")
    vh_times+=("$connect_s $(since "$disconnect_start")")
    grep -h 'steps: ' $L/churn-disconnect.log >>$L/churn-steps.log
    listed=$(mpd_paths | awk -v s=" $slaves " 'index(s, " " $1 " ") { printf "%s(%s) ", $1, $2 }')
    if [[ -n "$listed" || -z "$slaves" ]]; then
        bad+=" #$i multipathd still lists ${listed:-?} (removed: ${slaves:-none seen});"
    else
        ok=$((ok + 1))
    fi
done
med=$(printf '%s\n' "${times[@]}" | median)
say "BENCH churn_cycle_median_s $med cycles=${#times[@]}"
# Every completed cycle's seconds, comma-separated (scripts/bench.sh's lifecycle stage takes p90 and max from them).
say "BENCH churn_cycles of=$CHURN_CYCLES completed=${#times[@]} clean=$ok reads_ok=$reads" \
    "cycle_s=$(IFS=,; echo "${times[*]}")" \
    "connect_s=$(printf '%s\n' "${vh_times[@]}" | awk '{ print $1 }' | paste -sd,)" \
    "disconnect_s=$(printf '%s\n' "${vh_times[@]}" | awk '{ print $2 }' | paste -sd,)"
# Where a cycle goes: the two volume-host runs (process included), and the driver's own steps (median ms each).
say "BENCH churn_volume_host_s connect=$(printf '%s\n' "${vh_times[@]}" | awk '{ print $1 }' | median)" \
    "disconnect=$(printf '%s\n' "${vh_times[@]}" | awk '{ print $2 }' | median)"
step_medians $L/churn-steps.log | while read -r line; do say "BENCH churn_steps $line"; done
# What emulation costs outside our steps: starting volume-host (no driver call) and one multipathd client.
spawn_vh=() spawn_mpd=()
for _ in 1 2 3; do
    t=$EPOCHREALTIME; vh --help >/dev/null 2>&1; spawn_vh+=("$(since "$t")")
    t=$EPOCHREALTIME; multipathd show daemon >/dev/null 2>&1; spawn_mpd+=("$(since "$t")")
done
say "BENCH churn_spawn_s volume_host_help=$(printf '%s\n' "${spawn_vh[@]}" | median)" \
    "multipathd_client=$(printf '%s\n' "${spawn_mpd[@]}" | median)"
if [[ $reads == "$CHURN_CYCLES" ]]; then
    pass ready_for_io "$reads/$CHURN_CYCLES connects each read at once with O_DIRECT, bytes matched"
else
    fail ready_for_io "$reads/$CHURN_CYCLES reads ok;$(head -c 600 <<<"$badread")"
fi
if [[ $ok == "$CHURN_CYCLES" ]]; then
    pass churn_no_stale_paths "$ok/$CHURN_CYCLES cycles, multipathd listed no removed path after any disconnect; cycle median ${med}s"
else
    fail churn_no_stale_paths "$ok/$CHURN_CYCLES clean cycles;$(head -c 600 <<<"$bad")"
fi
vh disconnect "$ANCHOR_CI" "$ANCHOR_DI" >/dev/null 2>$L/churn-anchor-disconnect.log \
    || say "INFO churn: anchor disconnect exited $?: $(last_log churn-anchor-disconnect)"
udevadm settle --timeout=10
left=$(host_leftovers)
mpd=$(mpd_paths | tr '\n' ',')
say "BENCH churn_nothing_left ok=$([[ -z "$left" && -z "$mpd" ]] && echo yes || echo no)" \
    "sessions=$(session_count) disks=$(compgen -G '/sys/block/sd*' | wc -l) maps=$(compgen -G '/sys/block/dm-*' | wc -l)" \
    "node_records=$(ls -A /etc/iscsi/nodes 2>/dev/null | wc -l) multipathd_paths=$(mpd_paths | wc -l)"
if [[ -z "$left" && -z "$mpd" ]]; then
    pass churn_nothing_left "after $CHURN_CYCLES cycles and the anchor's disconnect: no session, sdX, map, node record; multipathd lists no path"
else
    fail churn_nothing_left "left:$left multipathd paths: $mpd"
fi

# --- a map held open ------------------------------------------------------------------------------------------
CI=/lab/ci-lun$LUN_HOLD.json DI=/run/vmlab/held-di.json
HELD="held_open_refused held_open_intact force_disconnect_exit0 force_disconnect_no_paths force_disconnect_error_table"
HELD+=" force_disconnect_no_map"
vh_connect "$CI" "$DI" held-connect || { not_run "connect exited $?: $(last_log held-connect)" $HELD; return; }
DEV=$(json_str path "$DI")
DM=$(attached_map "$DI") || { not_run "$DM" $HELD; vh disconnect "$CI" "$DI" >/dev/null 2>&1; return; }
SLAVES=$(map_slaves "$DM") SESS=$(session_count)
exec 7<"$DEV"  # the holder (as QEMU would be)
if vh disconnect "$CI" "$DI" >/dev/null 2>$L/held-disconnect.log; then
    fail held_open_refused "a plain disconnect of the open $DEV succeeded"
else
    pass held_open_refused "plain disconnect of the open $DEV exited $?: $(grep -o '"message":"[^"]*' $L/held-disconnect.log | head -n1 | cut -c12- | head -c 250)"
fi
still=""
[[ -e /sys/block/$DM ]] || still+=" map $DM gone;"
[[ "$(map_slaves "$DM")" == "$SLAVES" ]] || still+=" paths '$(map_slaves "$DM")' (were '$SLAVES');"
[[ $(session_count) == "$SESS" ]] || still+=" sessions $(session_count) (were $SESS);"
[[ -n "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]] || still+=" node records gone;"
check_bytes "$DEV" /lab/lun$LUN_HOLD.head || still+=" $DEV no longer reads its bytes;"
if [[ -z "$still" ]]; then
    pass held_open_intact "$DM over $SLAVES, $SESS sessions, node records: all still there and $DEV reads its bytes"
else
    fail held_open_intact "$still"
fi
if vh disconnect --force --ignore-errors "$CI" "$DI" >/dev/null 2>$L/force-disconnect.log; then
    pass force_disconnect_exit0 "disconnect --force --ignore-errors exited 0 with $DEV still open"
else
    fail force_disconnect_exit0 "disconnect --force --ignore-errors exited $?: $(last_log force-disconnect)"
fi
udevadm settle --timeout=10
left=""
for s in $SLAVES; do [[ -e /sys/block/$s ]] && left+=" $s"; done
[[ $(session_count) != 0 ]] && left+=" sessions:$(session_count)"
listed=$(mpd_paths | awk -v s=" $SLAVES " 'index(s, " " $1 " ") { printf "%s ", $1 }')
[[ -n "$listed" ]] && left+=" multipathd lists:$listed"
if [[ -z "$left" ]]; then
    pass force_disconnect_no_paths "no session, none of $SLAVES, multipathd lists none of them (holder still open)"
else
    fail force_disconnect_no_paths "left:$left"
fi
held_map=$([[ -e /sys/block/$DM ]] && echo present || echo gone)
# The driver's own word on it: the map held open gets an error table and deferred removal (dmsetup).
deferred=$(grep -E 'removal deferred until closed' $L/force-disconnect.log | head -n1 | sed 's/^volume-host: //' | cut -c1-300)
held_map+="${deferred:+; driver: $deferred}"
# The error table (`dmsetup wipe_table`) is only seen while the holder keeps the map: its target type now.
HELD_WWID=$(json_str multipath_id "$DI")
held_table=$(dmsetup table "$HELD_WWID" 2>/dev/null | awk 'NR == 1 { print $3 }')
wipe_runs=$(grep -c 'dmsetup wipe_table' $L/force-disconnect.log)
wipe_failed=$(grep -c 'was not replaced with an error target' $L/force-disconnect.log)
say "BENCH force_disconnect map_while_held=${held_map%%;*} table_while_held=${held_table:-none}" \
    "wipe_table_runs=$wipe_runs wipe_table_failed=$wipe_failed deferred_logged=$([[ -n "$deferred" ]] && echo yes || echo no)"
if [[ "${held_map%%;*}" != present ]]; then
    fail force_disconnect_error_table "not reached: the map was already gone while held (no deferred removal needed)"
elif [[ "$held_table" == error && $wipe_runs -ge 1 && $wipe_failed == 0 ]]; then
    pass force_disconnect_error_table "the open $DM's table is an error target after \`dmsetup wipe_table\` ($wipe_runs run(s) logged)"
else
    fail force_disconnect_error_table "open $DM: table target '${held_table:-none}', wipe_table runs logged $wipe_runs, failures $wipe_failed:" \
        "$(grep -E 'dmsetup|deferred|error target' $L/force-disconnect.log | tail -n 3 | cut -c1-200 | tr '\n' ' ')"
fi
exec 7<&-
map_gone() { [[ ! -e /sys/block/$DM ]] && ! multipathd show maps format '%w' 2>/dev/null | grep -q "$(json_str multipath_id "$DI")"; }
if wait_for 15 map_gone; then
    pass force_disconnect_no_map "no map left once the holder closed $DEV (while held: $held_map)"
else
    fail force_disconnect_no_map "$DM still there 15 s after the holder closed it (while held: $held_map): $(multipath -ll 2>/dev/null | head -n 3 | tr '\n' ' ') dmsetup: $(dmsetup info -c --noheadings -o name,attr,open "$(json_str multipath_id "$DI")" 2>&1 | head -n1) table: $(dmsetup table "$(json_str multipath_id "$DI")" 2>&1 | head -c 80) driver: $(grep -E 'del map|dmsetup|deferred|multipathd_del_map' $L/force-disconnect.log | tail -n 4 | cut -c1-200 | tr '\n' ' ')"
fi
