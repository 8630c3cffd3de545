#!/usr/bin/python3
"""Benchmark 6b (guestscale), guest side: the attach of the next volume with N volumes attached already, ours and
os-brick 6.1 alternating in the same guest, against the same target (issue #18 item 1, the real-kernel half).

Staged beside guest_bench.py (whose variants, checks and redaction it reuses; os-brick's come from guest_osbrick.py)
and run by guest_bench.sh instead of it. Reads /lab/lab.env: LEVELS (e.g. "0 10 30": volumes attached before the
measured cycles), ROUNDS; and /lab/ci-vol<i>.json (connection_info, CHAP on; they hold the password, which never
reaches the console): vol0 is the measured volume, vol1.. the volumes kept attached. Each is its own target behind
both portals, so every attached volume adds two sessions, two SCSI disks and a dm map: what an initiator that
re-reads the host's state on each attach pays for.

The attached volumes are attached with ours (volume-host, untimed for the comparison) and stay attached while
both variants connect and disconnect vol0 in turn; each level adds volumes to the previous one's. Prints:
  VMLAB BENCH setup {json}        versions, os-brick import time
  VMLAB BENCH level {json}        once a level's volumes are attached: how many, the time it took, sessions/sd/dm
  VMLAB BENCH cycle {json}        one per variant per round per level: connect_s, disconnect_s, paths_ok, and
                                  what differs from the level's state after the disconnect (left_*)
  VMLAB BENCH summary {json}      per level and variant the medians; per variant level-N / level-0
  VMLAB ERROR ...
Timing as in guest_bench.py: around the calls only, each after `udevadm settle` (untimed).
"""
import json
import os
import sys
import time
import traceback

import guest_bench as gb  # beside this file, in /lab

LAB = gb.LAB
RUN = gb.RUN


def ci_file(index):
    return f'{LAB}/ci-vol{index}.json'


def host_state():
    """Sessions, SCSI disks and dm devices, from sysfs: what the measured volume's cycle must leave as it found."""
    sessions = os.listdir('/sys/class/iscsi_session') if os.path.isdir('/sys/class/iscsi_session') else []
    blocks = os.listdir('/sys/block')
    return {'sessions': sorted(sessions), 'sd': sorted(b for b in blocks if b.startswith('sd')),
            'dm': sorted(b for b in blocks if b.startswith('dm-'))}


def state_counts(state):
    return {k: len(v) for k, v in state.items()}


def differences(before, after):
    """What a cycle added to or removed from the host's state: {left_sessions: [...], gone_dm: [...], ...}."""
    out = {}
    for key in before:
        added = sorted(set(after[key]) - set(before[key]))
        removed = sorted(set(before[key]) - set(after[key]))
        if added:
            out[f'left_{key}'] = added
        if removed:
            out[f'gone_{key}'] = removed
    return out


def settled_differences(before):
    """differences() after the disconnect, given 10 s for what lingers (recorded, never hidden)."""
    diff = differences(before, host_state())
    end = time.monotonic() + 10
    while diff and time.monotonic() < end:
        time.sleep(0.5)
        diff = differences(before, host_state())
    return diff


def clean_measured_volume(iqn):
    """Undo what a failed cycle left of vol0 only: the other volumes stay attached."""
    for dm in [b for b in os.listdir('/sys/block') if b.startswith('dm-')]:
        st = gb.dm_state('/dev/' + dm)
        if any(path[1] == iqn for path in st.get('paths', [])):
            gb.run(['multipath', '-f', st['map_name']])  # not -F: the other volumes' idle maps would go too
    gb.run(['iscsiadm', '-m', 'node', '-T', iqn, '--logout'])
    gb.run(['iscsiadm', '-m', 'node', '-T', iqn, '-o', 'delete'])
    gb.run(['udevadm', 'settle', '--timeout=10'])


def measured_cycle(variant, level, rnd, expected_paths):
    rec = {'variant': variant.name, 'level': level, 'round': rnd}
    gb.settle()
    before = host_state()
    connect_s, path, info = variant.connect()
    rec['connect_s'] = round(connect_s, 4)
    st = gb.dm_state(path)
    end = time.monotonic() + 30  # os-brick may return before every path is in the map: wait, untimed
    while st.get('ok') and sorted(st['paths']) != expected_paths and time.monotonic() < end:
        time.sleep(0.2)
        st = gb.dm_state(path)
    rec['paths_ok'] = bool(st.get('ok')) and st['paths'] == expected_paths
    rec['wwid'] = st.get('wwid')
    gb.settle()
    rec['disconnect_s'] = round(variant.disconnect(info), 4)
    rec['cycle_s'] = round(rec['connect_s'] + rec['disconnect_s'], 4)
    rec.update(settled_differences(before))
    rec['steps_ms'] = getattr(variant, 'steps', {})
    gb.say('cycle', rec)
    return rec


def attach_up_to(level, attached):
    """Attaches vol1..vol<level> that are not attached yet (ours, one after another); returns the seconds."""
    t = time.monotonic()
    while len(attached) < level:
        index = len(attached) + 1
        volume = gb.Ours(ci_file(index), f'{RUN}/device_info-vol{index}.json')
        _, path, _ = volume.connect()
        attached.append(volume)
        paths = gb.dm_state(path).get('paths', [])
        if len(paths) != 2:  # the driver's warnings say why (its log never holds a secret)
            warnings = [line for line in volume.stderr.splitlines() if ' warning ' in line.lower() or 'error' in line]
            gb.error(f'vol{index}: {len(paths)} path(s) in its map at return: {json.dumps(paths)}; '
                     f'driver said: {json.dumps(warnings[-5:])}')
    return time.monotonic() - t


def detach_all(attached):
    failures = 0
    for volume in reversed(attached):
        try:
            volume.disconnect(None)
        except Exception as e:  # noqa: BLE001 (reported)
            failures += 1
            gb.error(f'detaching {volume.ci_file}: {type(e).__name__}: {e}')
    attached.clear()
    return failures


def summarize(records, levels):
    out = {'levels': {}, 'growth': {}}
    for level in levels:
        row = {}
        for name in ('ours', 'osbrick'):
            ok = [r for r in records if r['level'] == level and r['variant'] == name and not r.get('failed')]
            row[name] = {'cycles': len(ok), 'connect_s_median': gb.med([r['connect_s'] for r in ok]),
                         'disconnect_s_median': gb.med([r['disconnect_s'] for r in ok]),
                         'paths_ok': sum(1 for r in ok if r['paths_ok']),
                         'left': sum(1 for r in ok if any(k.startswith(('left_', 'gone_')) for k in r))}
        if row['ours']['connect_s_median'] and row['osbrick']['connect_s_median']:
            row['connect_osbrick_to_ours'] = round(
                row['osbrick']['connect_s_median'] / row['ours']['connect_s_median'], 3)
        out['levels'][str(level)] = row
    first, last = str(levels[0]), str(levels[-1])
    for name in ('ours', 'osbrick'):
        a, b = out['levels'][first][name], out['levels'][last][name]
        for key in ('connect_s_median', 'disconnect_s_median'):
            if a[key] and b[key]:
                out['growth'][f'{name}_{key[:-len("_s_median")]}'] = round(b[key] / a[key], 3)
    return out


def main():
    env = gb.lab_env()
    with open(ci_file(0)) as f:
        props = json.load(f)['data']
    gb.SECRET = props.get('auth_password', '')
    levels = sorted(int(x) for x in env.get('LEVELS', '0 10').split())
    rounds = int(env.get('ROUNDS', '3'))
    expected = sorted([p, q, 1] for p, q in zip(props['target_portals'], props['target_iqns']))

    osbrick, import_s = gb.osbrick_variant(props)
    gb.say('setup', {'kernel': os.uname().release, 'levels': levels, 'rounds': rounds,
                     'osbrick_import_setup_s': round(import_s, 3), 'state_before': state_counts(host_state())})

    variants = [gb.Ours(ci_file(0), RUN + '/device_info-vol0.json'), osbrick]
    records, attached = [], []
    def cycle(v, level, rnd):
        try:
            return measured_cycle(v, level, rnd, expected)
        except Exception as e:  # noqa: BLE001 (reported; the run goes on)
            gb.error(f'{v.name} level {level} round {rnd}: {type(e).__name__}: {e}')
            gb.error(traceback.format_exc())
            clean_measured_volume(props['target_iqns'][0])
            return {'variant': v.name, 'level': level, 'round': rnd, 'failed': True}

    # One warm-up cycle each (not counted): page cache, udev rules, the WWID's first multipath -a.
    warmups = [cycle(v, -1, -1) for v in variants]
    try:
        for level in levels:
            took = attach_up_to(level, attached)
            gb.say('level', dict({'level': level, 'attached': len(attached), 'attach_s': round(took, 2)},
                                 **state_counts(host_state())))
            for rnd in range(rounds):
                records += [cycle(v, level, rnd) for v in (variants if rnd % 2 == 0 else variants[::-1])]
    finally:  # a failed attach of a kept volume ends the run, with the others detached
        detach_failures = detach_all(attached)
    summary = summarize(records, levels)
    summary['detach_failures'] = detach_failures
    gb.settle()
    summary['left_at_end'] = gb.leftovers_full()
    gb.say('summary', summary)
    failed = [r for r in warmups + records if r.get('failed')]
    return 0 if not failed and not summary['detach_failures'] else 1


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 (reported on the console, redacted)
        gb.error(f'{type(e).__name__}: {e}')
        gb.error(traceback.format_exc())
        sys.exit(2)
