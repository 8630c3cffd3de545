#!/usr/bin/python3
"""Benchmark 6, guest side: multipath connect + disconnect of one volume, ours (volume-host + the module) against
os-brick 6.1's ISCSIConnector, alternating, in the same guest, against the same target and portals.

Run by guest_bench.sh (after guest_stack.sh brought up udev, iscsid and multipathd). Reads /lab/lab.env (PORTAL1,
PORTAL2, IQN, ROUNDS, WARMUP) and /lab/ci-lun1.json (connection_info: it holds the CHAP password, which never
reaches the console: every line printed is redacted). Prints on the console:
  VMLAB BENCH setup {json}      versions, os-brick import + setup time (not part of any cycle)
  VMLAB BENCH cycle {json}      one per variant per round: connect_s, disconnect_s, cycle_s, dm, wwid, paths,
                                leftovers after disconnect; os-brick's time in time.sleep by call site; steps_ms:
                                each variant's time per step (STEPS below), same names for both
  VMLAB BENCH summary {json}    medians per variant, paired ratio (os-brick / ours) per round and its median
  VMLAB ERROR ...               anything that went wrong (redacted)

Timing: time.monotonic() around the connect call and around the disconnect call; the checks between them (paths,
WWID, leftovers) are outside, and each timed call starts after `udevadm settle` (untimed), so neither variant pays
for udev still digesting the other's events on the guest's one vCPU. Ours is a fresh volume-host process per call (process start, dlopen, create are in
the time); os-brick runs in this long-lived process with oslo.privsep's client mode off (privileged calls run
in-process, as os-brick's own unit tests do), so it pays neither interpreter start-up nor a privsep daemon.

Steps (steps_ms, milliseconds per cycle). Ours: from the driver's own "steps:" info line (volume-host's stderr, the
log level is info; the line holds step names, a volume key, portals and times, never a secret). os-brick: its
ISCSIConnector's and LinuxSCSI's methods on this one connector are wrapped (StepMeter: each call, arguments and result
unchanged, only timed; patched in this process only). Per-path steps are the slowest path's (both variants attach
the paths in parallel threads); steps overlap, so they do not add up to the total:
  connect     prepare  before the paths: ours resolve, probe (a login that reads the LU's identity), TPGT, journal;
                       os-brick lock and ips/iqns/luns
              login    slowest path: node record, CHAP settings, iscsiadm --login (ours: + the target lock;
                       os-brick: _connect_to_iscsi_portal, lock included)
              scan     slowest path: the LUN scan (os-brick: get_hctl + scan_iscsi)
              device   slowest path: waiting for sdX (os-brick: the rest of _connect_vol, device_name_by_hctl polls
                       and their time.sleep(1))
              wwid     ours: slowest path's WWID read; os-brick: get_sysfs_wwn on the calling thread
              mp_add   ours: slowest path's multipath -a wait + multipathd add path (retried until taken);
                       os-brick: multipath -a + multipathd add path on the calling thread
              paths    the per-path phase, first path start to last path done (wall)
              map      ours: wait for the dm after the paths; os-brick: last path done -> find_sysfs_multipath_dm
                       first answered the dm (0 when the dm came first)
              ready    ours: the dm reads a block + the result; os-brick: the dm found (or last path) -> return (its
                       loop's last time.sleep(1), thread joins)
              total    inside the call (ours: the driver's total; os-brick: connect_volume)
              call     as timed by this bench (ours: + volume-host's process start, dlopen, exit)
              sleep    os-brick only: time.sleep on the calling thread (sleep_all: every thread)
  disconnect  find     what to take down (ours: find; os-brick: _get_connection_devices)
              flush    multipath -f (os-brick: flush_multipath_device, flush_device_io)
              remove   ours: sdX delete + waits until multipathd lists them no more (remove, unlisted, mp_del);
                       os-brick: remove_connection minus its flush (multipathd del path, delete,
                       wait_for_volumes_removal: its 0.5 s polls, also apart as remove_wait)
              logout   iscsiadm --logout and node delete (ours: sessions, logout, node;
                       os-brick: _disconnect_connection)
              rest     the remainder of total (ours: journal; os-brick: locks, decorators)
              total, call, sleep as for connect
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import traceback

from guest_osbrick import OsBrick, metered_osbrick  # beside this file, in /lab
from guest_steps import ours_steps

LAB = '/lab'
RUN = '/run/vmlab'
LOGS = RUN + '/logs'
VH = [LAB + '/bin/volume-host', '--config', RUN + '/volume-host.conf', '--log-level', 'info']
CI_FILE = LAB + '/ci-lun1.json'

SECRET = ''


def redact(text):
    return text.replace(SECRET, '<REDACTED>') if SECRET else text


def say(kind, payload):
    text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, separators=(',', ':'))
    print(redact(f'VMLAB BENCH {kind} {text}'), flush=True)


def error(text):
    for line in redact(text).splitlines():
        print(f'VMLAB ERROR {line}', flush=True)


def lab_env():
    env = {}
    with open(LAB + '/lab.env') as f:
        for line in f:
            k, _, v = line.strip().partition('=')
            if k:
                env[k] = v
    return env


def read(path, default=''):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def run(argv, timeout=60):
    """A check outside the timed calls: (exit status, stdout)."""
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=timeout)
        return r.returncode, r.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


# --- the state of the host's stacks, read from sysfs (no process spawned) -------------------------------------------

def sd_path(dev):
    """sdX -> (portal, iqn, lun) through its iSCSI session and connection in sysfs."""
    real = os.path.realpath(f'/sys/block/{dev}/device')
    m = re.search(r'/session(\d+)/', real)
    if not m:
        return None
    sid = m.group(1)
    lun = int(os.path.basename(real).split(':')[-1])
    iqn = read(f'/sys/class/iscsi_session/session{sid}/targetname')
    portal = ''
    for conn in glob.glob(f'/sys/class/iscsi_connection/connection{sid}:*'):
        addr, port = read(conn + '/persistent_address'), read(conn + '/persistent_port')
        if addr:
            portal = f'{addr}:{port}'
    return [portal, iqn, lun]


def dm_state(path):
    """The dm device behind a returned path: name, WWID (from the dm UUID), and its paths."""
    dm = os.path.basename(os.path.realpath(path)) if path else ''
    if not dm.startswith('dm-') or not os.path.isdir(f'/sys/block/{dm}'):
        return {'dm': dm, 'ok': False}
    uuid = read(f'/sys/block/{dm}/dm/uuid')
    slaves = sorted(os.listdir(f'/sys/block/{dm}/slaves'))
    paths = sorted(p for p in (sd_path(s) for s in slaves) if p)
    return {'dm': dm, 'ok': uuid.startswith('mpath-'), 'map_name': read(f'/sys/block/{dm}/dm/name'),
            'wwid': uuid[len('mpath-'):] if uuid.startswith('mpath-') else uuid, 'slaves': slaves, 'paths': paths}


def leftovers():
    """Everything a clean disconnect must have removed: sessions, SCSI disks, dm maps, node records, by-id links."""
    left = {}
    sessions = sorted(os.listdir('/sys/class/iscsi_session')) if os.path.isdir('/sys/class/iscsi_session') else []
    if sessions:
        left['sessions'] = sessions
    blocks = os.listdir('/sys/block')
    if [b for b in blocks if b.startswith('sd')]:
        left['sd'] = sorted(b for b in blocks if b.startswith('sd'))
    if [b for b in blocks if b.startswith('dm-')]:
        left['dm'] = sorted(b for b in blocks if b.startswith('dm-'))
    nodes = []
    for root, _dirs, files in os.walk('/etc/iscsi/nodes'):
        nodes += [os.path.relpath(os.path.join(root, f), '/etc/iscsi/nodes') for f in files]
    if nodes:
        left['node_records'] = sorted(nodes)
    dangling = [p for p in glob.glob('/dev/disk/by-id/*') + glob.glob('/dev/disk/by-path/*') if not os.path.exists(p)]
    if dangling:
        left['dangling_links'] = sorted(dangling)
    return left


def leftovers_full():
    """leftovers() plus what multipathd and device-mapper still know (commands: only outside the timing)."""
    left = leftovers()
    rc, out = run(['dmsetup', 'ls', '--target', 'multipath'])
    if rc == 0 and out.strip() and 'No devices found' not in out:
        left['dmsetup_multipath'] = out.split()[::2]
    # multipathd answers "ok" when it has nothing to list.
    rc, out = run(['multipathd', 'show', 'paths', 'raw', 'format', '%d'])
    if rc == 0 and out.split() not in ([], ['ok']):
        left['multipathd_paths'] = out.split()
    rc, out = run(['multipathd', 'show', 'maps', 'raw', 'format', '%w'])
    if rc == 0 and out.split() not in ([], ['ok']):
        left['multipathd_maps'] = out.split()
    return left


def force_clean():
    """Undo whatever a variant left, so the next one starts from the same empty state (reported, never hidden)."""
    run(['multipath', '-F'])
    run(['iscsiadm', '-m', 'node', '--logoutall=all'])
    run(['iscsiadm', '-m', 'node', '-o', 'delete'])
    for s in [b for b in os.listdir('/sys/block') if b.startswith('sd')]:
        try:
            with open(f'/sys/block/{s}/device/delete', 'w') as f:
                f.write('1')
        except OSError:
            pass
    run(['udevadm', 'settle', '--timeout=10'])


# --- the two variants: (connect seconds, device path, handle), disconnect seconds ------------------------------------

class Ours:
    name = 'ours'

    def __init__(self, ci_file=CI_FILE, info_file=RUN + '/device_info.json'):
        self.ci_file, self.info_file = ci_file, info_file

    def run(self, phase, argv, stdout):
        """volume-host PHASE: (exit status, stdout, seconds); its stderr (the driver's log, info level) appended to
        logs/ours-PHASE.log and its "steps:" line kept as self.steps[PHASE]."""
        t = time.monotonic()
        r = subprocess.run(VH + argv, stdout=stdout, stderr=subprocess.PIPE)
        dt = time.monotonic() - t
        with open(f'{LOGS}/ours-{phase}.log', 'ab') as log:
            log.write(r.stderr)
        self.stderr = r.stderr.decode(errors='replace')
        self.steps[phase] = ours_steps(r.stderr.decode(errors='replace'), phase, dt)
        if r.returncode != 0:
            raise RuntimeError(f'volume-host {phase} exited {r.returncode} (see {LOGS}/ours-{phase}.log)')
        return r.stdout, dt

    def connect(self):
        self.steps = {}
        out, dt = self.run('connect', ['connect', self.ci_file, RUN + '/connector.json', '--disk-info',
                                       '{"dev":"vdb"}'], subprocess.PIPE)
        with open(self.info_file, 'wb') as f:
            f.write(out)
        info = json.loads(out)
        return dt, info.get('path', ''), info

    def disconnect(self, _info):
        return self.run('disconnect', ['disconnect', self.ci_file, self.info_file], subprocess.DEVNULL)[1]


def osbrick_variant(props):
    """os-brick's variant (guest_osbrick.py), its log and locks in this lab's run directory: (variant, setup s)."""
    return metered_osbrick(props, LOGS + '/osbrick.log', RUN + '/osbrick-locks')


def settle():
    # Each timed call starts on a quiet guest (one vCPU): udev done with the previous step's events.
    run(['udevadm', 'settle', '--timeout=30'])


def one_cycle(variant, rnd, expected_paths, warmup):
    rec = {'variant': variant.name, 'round': rnd, 'warmup': warmup}
    settle()
    connect_s, path, info = variant.connect()
    rec['connect_s'] = round(connect_s, 4)
    rec['path'] = path
    st = dm_state(path)
    rec['paths_at_return'] = len(st.get('paths', []))
    # The paths may come up after the call returned (os-brick returns once the dm exists): wait, untimed.
    end = time.monotonic() + 30
    while st.get('ok') and sorted(st['paths']) != expected_paths and time.monotonic() < end:
        time.sleep(0.2)
        st = dm_state(path)
    rec.update({k: st.get(k) for k in ('dm', 'map_name', 'wwid', 'paths')})
    rec['paths_ok'] = bool(st.get('ok')) and st['paths'] == expected_paths
    rc, out = run(['multipathd', 'show', 'paths', 'raw', 'format', '%d %t %T'])
    rec['multipathd_paths'] = out.strip().splitlines() if rc == 0 else []
    settle()
    disconnect_s = variant.disconnect(info)
    rec['disconnect_s'] = round(disconnect_s, 4)
    rec['cycle_s'] = round(connect_s + disconnect_s, 4)
    # Nothing may be left once disconnect returned; what is, is recorded, then given 10 s to go (lingering).
    left = leftovers_full()
    rec['left_at_return'] = left
    if left:
        run(['udevadm', 'settle', '--timeout=10'])
        end = time.monotonic() + 10
        while left and time.monotonic() < end:
            time.sleep(0.5)
            left = leftovers_full()
        rec['left_after_10s'] = left
        if left:
            force_clean()
    rec['steps_ms'] = getattr(variant, 'steps', {})
    if isinstance(variant, OsBrick):
        rec.update(variant.sleep_fields())
    say('cycle', rec)
    return rec


def diag_ours():
    """One untimed extra cycle of ours at debug level, each log line stamped with its arrival time: where the
    module's connect and disconnect spend their time in this guest (the driver's log holds no secret)."""
    out = {}
    for phase, argv in (('connect', ['connect', CI_FILE, RUN + '/connector.json', '--disk-info', '{"dev":"vdb"}']),
                        ('disconnect', ['disconnect', CI_FILE, RUN + '/device_info.json'])):
        cmd = [VH[0], '--config', VH[2], '--log-level', 'debug'] + argv
        settle()
        t = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout = []
        reader = threading.Thread(target=lambda: stdout.append(p.stdout.read()))
        reader.start()
        lines = [[round(time.monotonic() - t, 3), line.rstrip()[:160]] for line in p.stderr]
        p.wait()
        reader.join()
        lines.append([round(time.monotonic() - t, 3), f'exit {p.returncode}'])
        if phase == 'connect' and p.returncode == 0:
            with open(RUN + '/device_info.json', 'w') as f:
                f.write(stdout[0])
        out[phase] = lines
    if leftovers_full():
        force_clean()
    return out


def med(values):
    return round(statistics.median(values), 4) if values else None


def say_setup(import_s, rounds, warmup):
    """The setup line: versions, os-brick's import + setup time, and what was left before the first cycle."""
    import importlib.metadata as md
    pkgs = {}
    rc, out = run(['dpkg-query', '-W', '-f', '${Package} ${Version}\n', 'open-iscsi', 'multipath-tools', 'udev',
                   'python3-os-brick', 'python3-oslo.privsep'])
    for line in out.splitlines():
        k, _, v = line.partition(' ')
        pkgs[k] = v
    say('setup', {'os_brick': md.version('os-brick'), 'python': sys.version.split()[0], 'kernel': os.uname().release,
                  'packages': pkgs, 'osbrick_import_setup_s': round(import_s, 3), 'rounds': rounds, 'warmup': warmup,
                  'privsep': 'in-process (client mode off)', 'left_before': leftovers_full()})


def run_rounds(variants, rounds, warmup, expected):
    """Every cycle's record, warm-up ones included; a failed cycle is recorded as failed and cleaned up after."""
    records = []
    # Warm-up (not counted): page cache, udev rules, both variants' first multipath -a of the WWID.
    for i in range(rounds + warmup):
        order = variants if i % 2 == 0 else variants[::-1]  # alternate which goes first
        for v in order:
            try:
                records.append(one_cycle(v, i - warmup, expected, i < warmup))
            except Exception as e:
                error(f'{v.name} round {i - warmup}: {type(e).__name__}: {e}')
                error(traceback.format_exc())
                records.append({'variant': v.name, 'round': i - warmup, 'warmup': i < warmup, 'failed': True})
                force_clean()
    return records


def variant_summary(rs):
    ok = [r for r in rs if not r.get('failed')]
    return {'cycles': len(rs), 'failed': len(rs) - len(ok),
            'connect_s_median': med([r['connect_s'] for r in ok]),
            'disconnect_s_median': med([r['disconnect_s'] for r in ok]),
            'cycle_s_median': med([r['cycle_s'] for r in ok]),
            'cycle_s': [r['cycle_s'] for r in ok],
            'paths_ok': sum(1 for r in ok if r['paths_ok']),
            'paths_at_return_min': min((r['paths_at_return'] for r in ok), default=None),
            'left_at_return': sum(1 for r in ok if r['left_at_return']),
            'left_after_10s': sum(1 for r in ok if r.get('left_after_10s'))}


def osbrick_sleeps(summary, rs):
    """os-brick's sleeps on the calling thread, median per cycle and by site over the counted cycles."""
    sleep_sites = {}
    for r in rs:
        for phase in ('connect', 'disconnect'):
            for site, v in r.get(f'osbrick_sleep_{phase}', {}).get('sites', {}).items():
                s = sleep_sites.setdefault(f'{phase} {site}', {'calls': 0, 's': 0.0, 'calling_thread_s': 0.0})
                s['calls'] += v['calls']
                s['s'] = round(s['s'] + v['s'], 3)
                s['calling_thread_s'] = round(s['calling_thread_s'] + v['calling_thread_s'], 3)
    summary['osbrick_sleep_calling_thread_s_median'] = med(
        [r['osbrick_sleep_connect']['calling_thread_s'] + r['osbrick_sleep_disconnect']['calling_thread_s']
         for r in rs if 'osbrick_sleep_connect' in r])
    summary['osbrick_sleep_sites_total'] = sleep_sites


def summarize(records, rounds):
    counted = [r for r in records if not r['warmup']]
    by = {n: [r for r in counted if r['variant'] == n] for n in ('ours', 'osbrick')}
    summary = {'rounds': rounds}
    for n, rs in by.items():
        summary[n] = variant_summary(rs)
    pairs = []
    for rnd in range(rounds):
        o = [r for r in by['ours'] if r['round'] == rnd and not r.get('failed')]
        b = [r for r in by['osbrick'] if r['round'] == rnd and not r.get('failed')]
        if o and b:
            pairs.append(b[0]['cycle_s'] / o[0]['cycle_s'])
    summary['ratio_osbrick_to_ours_per_round'] = [round(x, 3) for x in pairs]
    summary['ratio_osbrick_to_ours'] = med(pairs)
    if summary['ours']['cycle_s_median'] and summary['osbrick']['cycle_s_median']:
        summary['ratio_of_medians'] = round(summary['osbrick']['cycle_s_median'] / summary['ours']['cycle_s_median'], 3)
    # Same dm device (WWID, map name) and the same paths from both, in every counted cycle.
    ident = {(r['wwid'], r['map_name'], json.dumps(r['paths'])) for r in counted if not r.get('failed')}
    summary['same_device_and_paths'] = len(ident) == 1 and all(r.get('paths_ok') for r in counted)
    summary['wwid'] = next(iter(ident))[0] if len(ident) == 1 else sorted(i[0] for i in ident)
    osbrick_sleeps(summary, by['osbrick'])
    return summary


def main():
    global SECRET
    env = lab_env()
    with open(CI_FILE) as f:
        props = json.load(f)['data']
    SECRET = props.get('auth_password', '')
    rounds, warmup = int(env.get('ROUNDS', '5')), int(env.get('WARMUP', '1'))
    expected = sorted([[env['PORTAL1'], env['IQN'], 1], [env['PORTAL2'], env['IQN'], 1]])

    osbrick, import_s = osbrick_variant(props)
    say_setup(import_s, rounds, warmup)
    records = run_rounds([Ours(), osbrick], rounds, warmup, expected)
    summary = summarize(records, rounds)
    summary['left_at_end'] = leftovers_full()
    say('summary', summary)
    if env.get('DIAG', '1') == '1':
        say('diag', diag_ours())
    return 0 if all(not r.get('failed') for r in records) else 1

if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 (reported on the console, redacted)
        error(f'{type(e).__name__}: {e}')
        error(traceback.format_exc())
        sys.exit(2)
