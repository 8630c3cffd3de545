# Recovery by default (issue 17 item 4): the node records keep the CHAP password (root-only files), so after an
# iscsid restart a lost connection is logged in again by iscsid alone. Restart iscsid, drop portal 2 on the
# target (every connection is cut), restore it: both paths return to active with no call into the driver.
# vmlab-results: recovery_node_record_keeps_chap recovery_path_returns
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_EXTEND.json DI=/run/vmlab/recovery-di.json
vh_connect "$CI" "$DI" recovery-connect || { not_run "connect exited $?: $(last_log recovery-connect)" recovery_node_record_keeps_chap recovery_path_returns; return; }
DEV=$(json_str path "$DI")
if ! why=$(attached_map "$DI"); then
    not_run "$why" recovery_node_record_keeps_chap recovery_path_returns
    vh disconnect "$CI" "$DI" >/dev/null 2>&1
    return
fi
# Which node records hold the password (names only: grep -l never prints the text), and their modes.
records=$(find /etc/iscsi/nodes -type f 2>/dev/null | sort)
holding=$(grep -lF -f /lab/chap.secret $records 2>/dev/null | wc -l)
modes=$(for f in $records; do stat -c '%a %U' "$f"; done | sort -u | tr '\n' ',')
if [[ -n "$records" && $holding == $(wc -l <<<"$records") && "$modes" == "600 root," ]]; then
    pass recovery_node_record_keeps_chap "$holding node record(s) keep the CHAP password, mode 600, owner root"
else
    fail recovery_node_record_keeps_chap "$holding of $(wc -w <<<"$records") node records hold it; modes: $modes"
fi

# SIGKILL, as a crash would (SIGTERM makes iscsid signal its whole process group: here, this script's); the
# sessions stay in the kernel and the new iscsid takes them over.
pids=$(pidof iscsid)
kill -9 $pids 2>/dev/null
iscsid_gone() { ! pidof iscsid >/dev/null; }
wait_for 10 iscsid_gone
start_iscsid
say "INFO recovery: iscsid restarted (pid $pids -> $(pidof iscsid)), sessions $(session_count)"
why=""
request drop_portal2 >/dev/null || why+=" the host did not drop portal 2;"
wait_for 60 path_failed "$PORTAL2" || why+=" the $PORTAL2 path was never seen failed;"
request restore_portal2 >/dev/null || why+=" the host did not restore portal 2;"
start=$SECONDS
if [[ -z "$why" ]] && wait_for 90 all_paths_active 2 && check_bytes "$DEV" /lab/lun$LUN_EXTEND.head; then
    pass recovery_path_returns "after an iscsid restart the $PORTAL2 path came back to active in $((SECONDS - start)) s, no driver call"
else
    fail recovery_path_returns "${why:-not back within 90 s:} paths: $(mpd_paths | tr '\n' ';') sessions: $(session_count)"
fi
vh disconnect "$CI" "$DI" >/dev/null 2>$L/recovery-disconnect.log || say "INFO recovery: disconnect exited $?: $(last_log recovery-disconnect)"
