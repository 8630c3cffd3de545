#!/bin/bash
# The real-kernel lab's lifecycle run (VmLab.HostPathLifecycle), staged as /lab/guest_lab.sh so the image's init
# stub runs it as PID 1. It runs every /lab/lifecycle/NN-name.sh in name order, each in a subshell (a scenario's
# variables, open descriptors and failures stay its own), and between two scenarios brings the host back to
# nothing attached, so one scenario's leftovers never fail the next. Each scenario file declares the results it
# reports on a "# vmlab-results: name ..." header line, which the host test reads: a new scenario is a new file.
# Inputs on /lab beyond guest_lab.sh's: lifecycle/*.sh, ci-lun<N>.json (CHAP), lun<N>.head, and lab.env's LUN
# numbers and cycle counts. Host actions (portal drop/restore, LU growth) are the host test's action table.
set -u
# shellcheck disable=SC1091
source /lab/guest_stack.sh
# shellcheck disable=SC1091
source /lab/guest_common.sh
start_sampler
# Waits raised for a TCG guest on a busy 2-core host (load 8-10 seen): at 10 s the map's wait ran out and a connect
# fell back to a single path; at 3 s a portal's probe timed out (HostPathOnRealKernel, same load) and the connect
# went on degraded. Neither is what these scenarios are about; both stay bounded.
write_host_config false "multipath_wait_timeout_ms = 60000" "probe_timeout_ms = 15000"

# Logs out and removes whatever a scenario left (reported, so a scenario's own checks stay the judge of it).
reset_host() {  # scenario name
    local left
    left=$(host_leftovers)
    [[ -z "$left" ]] && return 0
    say "INFO after $1 the host still held:$left; removing it"
    pidof iscsid >/dev/null || start_iscsid
    multipath -F >/dev/null 2>&1
    iscsiadm -m node -u >/dev/null 2>&1
    iscsiadm -m node -o delete >/dev/null 2>&1
    udevadm settle --timeout=10
    left=$(host_leftovers)
    [[ -z "$left" ]] || say "INFO after $1, still:$left"
}

for scenario in /lab/lifecycle/[0-9]*.sh; do
    name=$(basename "$scenario" .sh)
    start=$SECONDS
    say "SCENARIO $name"
    ( source "$scenario" )
    say "SCENARIO $name took $((SECONDS - start)) s"
    reset_host "$name"
done

secret_checks
[[ -e /run/vmlab/failed ]] && FAILED=1
if [[ $FAILED != 0 && -z "$SECRET_HITS" ]]; then
    # Logs are shown only after the secret check passed on them.
    grep -E 'sd[a-z]+|del path|del map|fail|error|orphan' $L/multipathd.log 2>/dev/null | tail -n 30 | sed 's/^/VMLAB LOG multipathd: /'
    tail -n 15 $L/iscsid.log 2>/dev/null | sed 's/^/VMLAB LOG iscsid: /'
fi
say "DONE failed=$FAILED after ${SECONDS}s"
poweroff_now
