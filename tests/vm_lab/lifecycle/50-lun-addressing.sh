# LUN addressing (issue 17 item 8): one LU with a LUN >= 256 attached for real. tgtd reports LUNs above 255 only
# in flat space addressing (REPORT LUNS gives 0x40|high byte, low byte: LUN 300 is 0x412c, which Linux numbers
# 16684) and answers only that form, so the volume says data.addressing_mode "SAM2" as Cinder sends it: the
# driver then scans and matches SCSI LUN 16384 + LUN. (Under "SAM" it would look for 300, which tgtd refuses.)
# vmlab-results: lun_high_attached lun_high_disconnected
# shellcheck shell=bash
CI=/lab/ci-lun$LUN_HIGH.json DI=/run/vmlab/lunhigh-di.json
WANT=$((16384 + LUN_HIGH))
vh_connect "$CI" "$DI" lunhigh-connect || { not_run "connect exited $?: $(last_log lunhigh-connect)" lun_high_attached lun_high_disconnected; return; }
DEV=$(json_str path "$DI")
DM=$(attached_map "$DI") || say "INFO lun-addressing: $DM"
SLAVES=$(map_slaves "$DM") addrs=""
for s in $SLAVES; do addrs+="$s=$(basename "$(readlink -f /sys/block/"$s"/device)") "; done
bad=$(tr ' ' '\n' <<<"$addrs" | sed '/^$/d' | grep -vc ":$WANT\$" || true)
if [[ "$DEV" =~ ^/dev/dm-[0-9]+$ && $(wc -w <<<"$SLAVES") == 2 && $bad == 0 ]] && check_bytes "$DEV" /lab/lun$LUN_HIGH.head; then
    pass lun_high_attached "LUN $LUN_HIGH (addressing_mode SAM2) on $DEV over $addrs(SCSI LUN $WANT, flat), bytes match"
else
    fail lun_high_attached "path=$DEV paths: ${addrs:-none} (want 2 at :$WANT)"
fi
if vh disconnect "$CI" "$DI" >/dev/null 2>$L/lunhigh-disconnect.log; then
    udevadm settle --timeout=10
    left=$(host_leftovers)
    [[ -z "$left" ]] && pass lun_high_disconnected "nothing of LUN $LUN_HIGH left" || fail lun_high_disconnected "left:$left"
else
    fail lun_high_disconnected "disconnect exited $?: $(last_log lunhigh-disconnect)"
fi
