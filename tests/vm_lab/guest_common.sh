#!/bin/bash
# Sourced by the lab's scenario scripts (guest_lab.sh, guest_lifecycle.sh and the lifecycle/*.sh files they run),
# after guest_stack.sh: result lines, the CHAP password watch, volume-host, JSON fields, O_DIRECT reads, the
# path/portal views, bounded waits, host requests over the control port, and the closing secret checks.
#   VMLAB RESULT <name> PASS|FAIL <detail>     VMLAB REQUEST <action>  (answered "ACK <action> ok|fail ...")
# The password never reaches an argv, the console or a log here: it is read once, by the sampler, into bash memory.

result() { say "RESULT $1 $2 ${*:3}"; }
pass() { result "$1" PASS "${*:2}"; }
# The marker file carries a failure out of a scenario's subshell.
fail() { result "$1" FAIL "${*:2}"; FAILED=1; : >/run/vmlab/failed; }
FAILED=0

# --- CHAP password watch: /proc/*/cmdline sampled in the background, in pure bash (no process is forked, and the
# password only ever sits in this shell's memory; hits record pid and program name, never the text) ----------------
sampler() {
    local secret samples=0 f a
    local -a args
    IFS= read -r secret </lab/chap.secret
    while [[ ! -e /run/vmlab/stop-sampler ]]; do
        for f in /proc/[0-9]*/cmdline; do
            mapfile -d '' args 2>/dev/null <"$f" || continue
            for a in "${args[@]}"; do
                if [[ "$a" == *"$secret"* ]]; then
                    f=${f#/proc/}
                    echo "pid ${f%/cmdline} ($(cat /proc/${f%/cmdline}/comm 2>/dev/null))" >>/run/vmlab/cmdline-hits
                fi
            done
        done
        samples=$((samples + 1))
        echo "$samples" >/run/vmlab/cmdline-samples
    done
}
start_sampler() { sampler & SAMPLER=$!; }

vh() { /lab/bin/volume-host --config /run/vmlab/volume-host.conf --log-level debug "$@"; }
json_str() { grep -o "\"$1\" *: *\"[^\"]*\"" "$2" | head -n1 | sed 's/.*: *"\(.*\)"/\1/'; }
json_bool() { grep -o "\"$1\" *: *\(true\|false\)" "$2" | head -n1 | sed 's/.*: *//'; }
json_num() { grep -o "\"$1\" *: *[0-9]*" "$2" | head -n1 | sed 's/.*: *//'; }

# Reads the first bytes of a block device with O_DIRECT (never the page cache) and compares them with a head file.
check_bytes() {  # device head-file -> 0 when equal
    local n
    n=$(stat -c %s "$2")
    timeout 120 dd if="$1" of=/run/vmlab/read.bin bs=4096 count=1 iflag=direct status=none 2>>$L/dd.log || return 1
    cmp -s -n "$n" /run/vmlab/read.bin "$2"
}
# Reads 64 blocks spread over the first 16 MiB with O_DIRECT (several I/Os, so round-robin uses every path).
spread_read() {
    timeout 120 dd if="$1" of=/dev/null bs=4096 count=64 skip=0 iflag=direct status=none 2>>$L/dd.log || return 1
    local i
    for i in 1 2 3 4 5 6 7 8; do
        timeout 120 dd if="$1" of=/dev/null bs=4096 count=1 skip=$((i * 500)) iflag=direct status=none 2>>$L/dd.log || return 1
    done
}
# "sda 10.0.2.2:3260" for every SCSI disk of every iSCSI session (from iscsiadm -m session -P 3).
disk_portals() {
    iscsiadm -m session -P 3 2>/dev/null | awk '
        /Current Portal:/ { split($3, a, ","); portal = a[1] }
        /Attached scsi disk/ { print $4, portal }'
}
# The portals behind a dm device's paths, sorted, space separated.
dm_portals() {  # dm-N
    local s out=""
    for s in $(ls /sys/block/"$1"/slaves 2>/dev/null); do
        out+="$(disk_portals | awk -v d="$s" '$1 == d { print $2 }') "
    done
    echo "$out" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}
session_count() { iscsiadm -m session 2>/dev/null | grep -c '^tcp:' || true; }
# multipathd's view of the paths, "sda active" per line (state from the checker: active|failed|faulty|...).
# With no path it answers just "ok".
mpd_paths() { multipathd show paths format '%d %t' 2>/dev/null | awk '$1 != "dev" && NF >= 2 { print $1, $2 }'; }
active_paths() { mpd_paths | grep -c ' active$' || true; }
wait_for() {  # seconds command... -> 0 when the command succeeded within the time
    local t=$1 end
    shift
    end=$((SECONDS + t))
    while ((SECONDS < end)); do "$@" && return 0; sleep 1; done
    "$@"
}
request() {  # action -> 0 when the host acknowledged it
    local line
    say "REQUEST $1"
    if ! read -r -t 120 -u 5 line; then echo "no answer to $1"; return 1; fi
    line=${line%$'\r'}
    [[ "$line" == "ACK $1 ok"* ]] || { echo "$line"; return 1; }
}
# What the host holds of the iSCSI/multipath stack: "" when nothing (sessions, sdX, dm maps, node records).
host_leftovers() {
    local left=""
    [[ $(session_count) != 0 ]] && left+=" sessions:$(session_count)"
    ls /sys/block | grep -q '^sd' && left+=" disks:$(ls /sys/block | grep '^sd' | tr '\n' ',')"
    ls /sys/block | grep -q '^dm-' && left+=" maps:$(ls /sys/block | grep '^dm-' | tr '\n' ',')"
    [[ -n "$(ls -A /etc/iscsi/nodes 2>/dev/null)" ]] && left+=" node-records:$(ls /etc/iscsi/nodes | tr '\n' ',')"
    echo "$left"
}
stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 5<>/dev/ttyS1
EXPECTED_PORTALS=$(printf '%s\n' "$PORTAL1" "$PORTAL2" | sort | tr '\n' ' ' | sed 's/ $//')

# The closing checks: no sampled /proc/*/cmdline and no file in the guest holds the password. Sets SECRET_HITS
# (files that hold it) so the caller shows logs only when they are clean.
secret_checks() {
    local samples
    touch /run/vmlab/stop-sampler
    wait "$SAMPLER" 2>/dev/null
    samples=$(cat /run/vmlab/cmdline-samples 2>/dev/null || echo 0)
    if [[ ! -s /run/vmlab/cmdline-hits && "$samples" -gt 0 ]]; then
        pass secret_not_in_cmdline "$samples samples of every /proc/*/cmdline, no hit"
    else
        fail secret_not_in_cmdline "samples=$samples hits: $(tr '\n' ';' </run/vmlab/cmdline-hits 2>/dev/null)"
    fi
    dmesg >$L/dmesg.txt 2>&1
    SECRET_HITS=$(grep -rlF -f /lab/chap.secret /run /tmp /etc /var/log /var/lib/iscsi /var/lib/multipath /root 2>/dev/null | tr '\n' ' ')
    if [[ -z "$SECRET_HITS" ]]; then
        pass secret_not_in_logs "not in dmesg, iscsid/multipathd/udevd logs, volume-host logs (debug), /etc, /var/log, /run, /tmp"
    else
        fail secret_not_in_logs "found in: $SECRET_HITS"
    fi
}

# --- for the lifecycle scenarios --------------------------------------------------------------------------------
# Reports FAIL "not run: <why>" for each name (a scenario that cannot go on still reports every result it owns).
not_run() {  # why name...
    local why=$1 n
    shift
    for n in "$@"; do fail "$n" "not run: $why"; done
}
# connect for the host alone (no guest disk); device_info to $2, volume-host's log to $L/$3.log.
vh_connect() {  # ci-file device-info-file log-name
    vh connect "$1" /run/vmlab/connector.json >"$2" 2>"$L/$3.log"
}
last_log() { tail -n 3 "$L/$1.log" 2>/dev/null | tr '\n' ' '; }
# An O_DIRECT read of the first block, at once and without retries; bounded so an unready (queueing) map fails.
read_now() {  # device head-file
    local n
    n=$(stat -c %s "$2")
    timeout 15 dd if="$1" of=/run/vmlab/read-now.bin bs=4096 count=1 iflag=direct status=none 2>>$L/dd.log || return 1
    cmp -s -n "$n" /run/vmlab/read-now.bin "$2"
}
# The path devices (sdX) of a map, space separated.
map_slaves() { ls /sys/block/"$1"/slaves 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
# The sdX through portal $1 (from the iSCSI sessions).
portal_disk() { disk_portals | awk -v p="$1" '$2 == p { print $1 }' | head -n1; }
path_failed() {  # portal -> 0 when multipathd shows its path failed or faulty
    local d
    d=$(portal_disk "$1")
    [[ -n "$d" ]] && mpd_paths | grep -qE "^$d (failed|faulty)"
}
all_paths_active() { [[ $(active_paths) -ge ${1:-2} ]] && ! mpd_paths | grep -qvE ' active$'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The driver's "steps:" log lines (one per connect/disconnect) in a file -> one line per operation with each step's
# median in ms over the lines ("connect: total=2100 probe=120 10.0.2.2:3260.login=40 ..."); path groups are
# "label{...}", their steps reported as label.step.
step_medians() {  # file
    local op key
    awk '{
        i = index($0, "steps: "); if (!i) next
        n = split(substr($0, i + 7), w, " "); label = ""
        for (k = 3; k <= n; k++) {
            t = w[k]; shut = 0
            if ((j = index(t, "{")) > 0) { label = substr(t, 1, j - 1) "."; t = substr(t, j + 1) }
            if (t ~ /}$/) { t = substr(t, 1, length(t) - 1); shut = 1 }
            if ((e = index(t, "=")) > 0) { v = substr(t, e + 1); sub(/ms$/, "", v); print w[1], label substr(t, 1, e - 1), v }
            if (shut) label = ""
        }
    }' "$1" >/run/vmlab/steps.tsv
    for op in $(awk '!s[$1]++ { print $1 }' /run/vmlab/steps.tsv); do
        printf '%s:' "$op"
        for key in $(awk -v o="$op" '$1 == o && !s[$2]++ { print $2 }' /run/vmlab/steps.tsv); do
            printf ' %s=%s' "$key" "$(awk -v o="$op" -v k="$key" '$1 == o && $2 == k { print $3 }' /run/vmlab/steps.tsv | median)"
        done
        echo
    done
}
# Elapsed seconds since an $EPOCHREALTIME value, 3 decimals.
since() { local now=$EPOCHREALTIME; awk -v a="$1" -v b="$now" 'BEGIN { printf "%.3f\n", b - a }'; }
# The map of a connect's device_info: "dm-N", or a reason on stdout and status 1 (e.g. the single-path fallback).
attached_map() {  # device-info-file
    local dev
    dev=$(json_str path "$1")
    if [[ "$(json_bool multipath "$1")" != true || ! "$dev" =~ ^/dev/dm-[0-9]+$ ]]; then
        echo "no multipath map: path=$dev multipath=$(json_bool multipath "$1") $(json_str multipath_error "$1" | head -c 200)"
        return 1
    fi
    basename "$dev"
}
# (Re)starts iscsid in its own session: on SIGTERM iscsid signals its whole process group, which must not be ours.
start_iscsid() {
    setsid iscsid -f </dev/null >>$L/iscsid.log 2>&1 &
    wait_for 20 iscsiadm_answers
}
iscsiadm_answers() {  # exit 0 (sessions) or 21 (none): iscsid answers
    local rc
    iscsiadm -m session >/dev/null 2>&1
    rc=$?
    [[ $rc == 0 || $rc == 21 ]]
}
