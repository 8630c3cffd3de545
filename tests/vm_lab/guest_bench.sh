#!/bin/bash
# Benchmark 6, guest side (tests/bench "osbrick"): staged as /lab/guest_lab.sh, so the image's init stub runs it as
# PID 1 in the bench image (build_bench_image.sh: the lab image plus python3-os-brick). guest_stack.sh brings up
# udev, the network, iscsid and multipathd as for the lab; guest_bench.py then alternates ours and os-brick and
# prints "VMLAB BENCH ..." lines. The CHAP password stays in /lab/ci-lun1.json and the Python process's memory.
set -u
# shellcheck disable=SC2034  # read by guest_stack.sh (sourced below)
VMLAB_MULTIPATHD_V=2  # multipathd's normal verbosity: its log is not shown, and -v3 would cost both variants
# shellcheck disable=SC1091
source /lab/guest_stack.sh

# os-brick is run with multipath enforced: so is the driver, for the same dm device over every path.
write_host_config true

# Benchmark 6b stages guest_scale.py (the next volume's attach with N attached) beside guest_bench.py.
script=/lab/guest_bench.py
[ -f /lab/guest_scale.py ] && script=/lab/guest_scale.py
/usr/bin/python3 -u "$script" 2>>"$L/guest_bench.err"
rc=$?
say "DONE rc=$rc after ${SECONDS}s"
poweroff_now
