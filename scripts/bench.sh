#!/bin/bash
# Benchmarks of the driver (not tests): per-call work vs nova's Python objects, memory across 10,000 cycles,
# multipath connect latency on the simulated host, portal probing at scale, end-to-end attach/detach against
# plain libvirt calls, the 1,000-attachment scale run, real-kernel multipath attach against os-brick in the VM
# lab's guest (osbrick) and the next volume's attach there with N attached (guestscale), and the host path's
# lifecycle on that real kernel (lifecycle: extend and the connect/disconnect churn).
# Writes bench-results/results.json and results.md.
# On a fresh Debian 12, as root:
#   sudo ./scripts/bench.sh            # full set (about 15-25 min on 2 cores)
#   sudo ./scripts/bench.sh --quick    # smaller scale (a few minutes)
#   env: IVD_BENCH_BUILD (default build-bench), IVD_BENCH_SKIP_DEPS=1 (packages already there),
#        IVD_BENCH_ONLY="percall memory multipath hostscale probe e2e nova scale scale_ephemeral scale_noprobe osbrick guestscale lifecycle"
#        (re-runs only these stages; the other stages' last outputs stay in the report, each with its date),
#        IVD_BENCH_CHURN_CYCLES (lifecycle's connect/disconnect cycles: 50, --quick 10; e.g. 3 to check a change)
# Compared variants always run interleaved in the same run; results are medians and same-run ratios.
# libvirtd is left running afterwards (IVD_LAB_KEEP_LIBVIRTD=1) so that each stage does not pay a cold start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IVD_BENCH_BUILD:-$root/build-bench}
out=$root/bench-results
mode=full
for a in "$@"; do
  case $a in
    --quick) mode=quick ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done
only=" ${IVD_BENCH_ONLY:-percall memory multipath hostscale probe e2e nova scale scale_ephemeral scale_noprobe osbrick guestscale lifecycle} "
if [ "$(id -u)" != 0 ]; then
  echo "scripts/bench.sh must run as root (it installs packages and starts tgtd, libvirtd and QEMU)" >&2
  exit 1
fi
start_all=$SECONDS
if [ "${IVD_BENCH_SKIP_DEPS:-0}" != 1 ]; then
  "$root/scripts/install-deps.sh"
  # Only the benchmarks need these: nova's objects for the per-call comparison, profilers for the analysis.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-nova linux-perf valgrind >/dev/null
fi
# vm_lab: the lifecycle stage runs its test binary (the guest and its scenarios live there, not here).
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIVD_TEST_GROUPS="bench;vm_lab" \
  -DIVD_FIXTURE_GROUPS="tgtd;libvirt;simulated_host" >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench vm_lab_tests >/dev/null
bench=$build/tests/bench/ivd_bench
raw=$out/raw
if [ -n "${IVD_BENCH_ONLY:-}" ]; then
  # A subset re-runs those stages only: the other stages' outputs stay, and the report names each stage's date.
  # Only percall has numbered outputs (percall_ours_N, ...): "scale" must not take scale_ephemeral's with it.
  for s in $only; do rm -f "$raw/$s".* "$raw/${s}_"[a-z]*_[0-9]* "$raw/${s}_input".*; done
  sed -i '/^total /d' "$raw/durations.txt" 2>/dev/null || true
  for s in $only; do sed -i -E "/^${s}( |_[a-z]+_[0-9]+ )/d" "$raw/durations.txt" 2>/dev/null || true; done
else
  rm -rf "$raw"
fi
mkdir -p "$raw"
export IVD_LAB_KEEP_LIBVIRTD=1
ulimit -n "$(ulimit -Hn)" || true

if [ $mode = quick ]; then
  rounds=3 seconds=1 mp_reps=4 probe_targets=25 probe_rounds=2 e2e_iter=6 domains=4 volumes=5 osb_rounds=3
  gs_levels=0,5 hs_volumes=40 hs_window=10 churn=10
else
  rounds=5 seconds=2 mp_reps=10 probe_targets=250 probe_rounds=3 e2e_iter=20 domains=50 volumes=20 osb_rounds=5
  gs_levels=0,10,30 hs_volumes=1000 hs_window=100 churn=50
fi
churn=${IVD_BENCH_CHURN_CYCLES:-$churn}

stage() {  # stage NAME command... ; stdout -> raw/NAME.json, duration recorded
  local name=$1
  shift
  local s=$SECONDS
  echo "== $name" >&2
  "$@" >"$raw/$name.json" 2>"$raw/$name.log" || { echo "== $name FAILED (see $raw/$name.log)" >&2; rm -f "$raw/$name.json"; }
  echo "$name $((SECONDS - s))" >>"$raw/durations.txt"
}

if [[ $only == *" percall "* ]]; then
  "$bench" percall-input >"$raw/percall_input.json"
  # Interleaved rounds: ours, nova, ours, nova, ... (process start-up is outside the timed loops).
  for r in $(seq 1 $rounds); do
    stage "percall_ours_$r" "$bench" percall --seconds "$seconds"
    stage "percall_nova_$r" /usr/bin/python3 "$root/tests/bench/nova_percall.py" --input "$raw/percall_input.json" --seconds "$seconds"
  done
fi
[[ $only == *" memory "* ]] && stage memory "$bench" memory --cycles 10000
[[ $only == *" multipath "* ]] && stage multipath "$bench" multipath --reps "$mp_reps" --latency-ms 50
# Host path with many volumes attached (simulated host, real tgtd logins, 4 paths each): first vs last attaches.
[[ $only == *" hostscale "* ]] && stage hostscale "$bench" host-scale --volumes "$hs_volumes" --paths 4 --window "$hs_window"
[[ $only == *" probe "* ]] && stage probe "$bench" probe --targets "$probe_targets" --portals-per-target 4 --dead-every 10 --rounds "$probe_rounds"
[[ $only == *" e2e "* ]] && stage e2e "$bench" e2e --iterations "$e2e_iter"
# Nova's real LibvirtDriver with the module (privsep daemon included) vs the raw libvirt floor, interleaved.
[[ $only == *" nova "* ]] && stage nova /usr/bin/python3 "$root/tests/bench/nova_attach.py" \
  --module "$build/plugin/iscsi_volume_driver.so" --iterations "$e2e_iter"
[[ $only == *" scale "* ]] && stage scale "$bench" scale --domains "$domains" --volumes "$volumes" --threads 1,2,4 --async
# The same with libvirt_ephemeral_secrets = true (CHAP secrets in libvirtd's memory only), against its own floor.
[[ $only == *" scale_ephemeral "* ]] && stage scale_ephemeral "$bench" scale --domains "$domains" --volumes "$volumes" \
  --threads 1,2,4 --ephemeral-secrets
# Ephemeral secrets and probe_portals = false: what is left of the driver's own cost once libvirt's secret files
# and the login probe (a real iSCSI login to the one tgtd that serves all 1,000 sessions) are off.
[[ $only == *" scale_noprobe "* ]] && stage scale_noprobe "$bench" scale --domains "$domains" --volumes "$volumes" \
  --threads 1,2,4 --ephemeral-secrets --no-probe
# One guest (tests/vm_lab's bench image, built once: debootstrap + python3-os-brick); ours and os-brick alternate.
[[ $only == *" osbrick "* ]] && stage osbrick "$bench" osbrick --rounds "$osb_rounds" --console "$raw/osbrick_console.log"
# The same guest with volumes kept attached level by level (ours); at each level both variants attach the next.
[[ $only == *" guestscale "* ]] && stage guestscale "$bench" guest-scale --levels "$gs_levels" --rounds 3 \
  --console "$raw/guestscale_console.log"
# The lab's lifecycle guest (VmLab.HostPathLifecycle), scenarios 10 (extend) and 30 (churn, held-open map) only,
# with $churn cycles; its "VMLAB BENCH" key=value lines become raw/lifecycle.json.
[[ $only == *" lifecycle "* ]] && stage lifecycle /usr/bin/python3 "$root/tests/bench/vm_lifecycle.py" \
  --tests "$build/tests/vm_lab/vm_lab_tests" --cycles "$churn" --scenarios 10,30 --console "$raw/lifecycle_console.log"

echo "total $((SECONDS - start_all))" >>"$raw/durations.txt"
/usr/bin/python3 "$root/tests/bench/report.py" --raw "$raw" --mode "$mode" --out "$out"
echo "wrote $out/results.json and $out/results.md ($((SECONDS - start_all)) s)" >&2
