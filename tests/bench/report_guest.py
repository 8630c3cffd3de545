#!/usr/bin/python3
"""report.py's rows for the benchmarks that run in the real-kernel lab's guest: 6 (osbrick: one volume, ours vs
os-brick; its per-step table 6a) and 6b (guestscale: the next volume's attach with N volumes attached)."""
import os

from report_common import f, load, verdict

STEP_WHAT = {
    'prepare': 'before the paths (ours: resolve, identity probe, TPGT, journal)',
    'login': 'slowest path: node record, CHAP, iscsiadm --login',
    'scan': 'slowest path: LUN scan',
    'device': 'slowest path: waiting for sdX',
    'wwid': 'WWID read (ours: slowest path; os-brick: calling thread)',
    'mp_add': 'multipath -a + multipathd add path',
    'paths': 'per-path phase, wall',
    'map': 'after the paths until the dm is there',
    'ready': 'dm there -> returned (ours: a block read through the dm)',
    'total': 'inside the call',
    'call': 'as timed (ours: + volume-host process)',
    'sleep': 'time.sleep, calling thread',
    'sleep_all': 'time.sleep, every thread',
    'find': 'what to take down',
    'flush': 'multipath -f',
    'remove': 'sdX delete + wait until gone',
    'remove_wait': 'of which: waiting for sdX to go',
    'logout': 'iscsiadm --logout, node delete',
    'rest': 'remainder of total',
}


def osbrick_step_lines(ob):
    """Table 6a: where the real-kernel connect and disconnect spend their time, per step, ours beside os-brick."""
    steps = ob.get('steps_ms') or []
    if not steps:
        return []
    lines = ['', f"### 6a real-kernel connect and disconnect per step, ours vs os-brick "
             f"{(ob.get('setup') or {}).get('os_brick', '?')} (medians over the same {ob['rounds']} rounds, "
             f"{ob['accel']} guest)", '',
             'Step names and what each covers for both: tests/vm_lab/guest_bench.py. Per-path steps are the slowest '
             "path's; steps overlap (os-brick's main loop runs beside its path threads), so they do not add up.", '',
             '| phase | step | what | ours ms | os-brick ms | os-brick / ours |', '|---|---|---|---|---|---|']
    for r in steps:
        lines.append(f"| {r['phase']} | {r['step']} | {STEP_WHAT.get(r['step'], '')} | {f(r.get('ours_ms'), 0)} | "
                     f"{f(r.get('osbrick_ms'), 0)} | {f(r.get('ratio'))} |")
    return lines


def osbrick_row(raw, res, rows):
    """Row 6: the connect + disconnect cycle, ours vs os-brick, from raw/osbrick.json."""
    ob = load(os.path.join(raw, 'osbrick.json'))
    if ob and ob.get('complete'):
        ob = dict(ob)
        # Keep results.json small: per-cycle sleep sites and multipathd listings stay in raw/osbrick.json.
        ob['cycles'] = [{k: v for k, v in c.items() if not k.startswith('osbrick_sleep') and k != 'multipathd_paths'}
                        for c in ob.get('cycles', [])]
        res['osbrick'] = ob
        o, b = ob['ours'], ob['osbrick']
        r = ob['ratio_osbrick_to_ours']['median']
        def left(v):
            return ', '.join(f'{k} x{n}' for k, n in sorted(v['left_after_10s'].items())) or 'nothing'
        sleep = (ob.get('guest_summary') or {}).get('osbrick_sleep_calling_thread_s_median')
        ok = ob['same_device_and_paths'] and ob['clean']
        counted = [c for c in ob['cycles'] if c.get('variant') == 'osbrick' and not c.get('warmup') and not c.get('failed')]
        early = sum(1 for c in counted if c.get('paths_at_return', 0) < len(c.get('paths') or []))
        rows.append((f"6 real-kernel multipath attach, 2 portals, CHAP: ours vs os-brick {(ob.get('setup') or {}).get('os_brick', '?')} "
                     f"({ob['rounds']} alternating rounds, {ob['accel']} guest)",
                     'connect + disconnect cycle, median ours / os-brick; paired os-brick / ours',
                     f"{f(o['cycle_ms']['median'] / 1000)} / {f(b['cycle_ms']['median'] / 1000)} s = {f(r)}x "
                     f"(connect {f(o['connect_ms']['median'] / 1000)} / {f(b['connect_ms']['median'] / 1000)} s, "
                     f"disconnect {f(o['disconnect_ms']['median'] / 1000)} / {f(b['disconnect_ms']['median'] / 1000)} s; "
                     f"os-brick in time.sleep {f(sleep)} s/cycle); same dm + paths: "
                     f"{'yes' if ob['same_device_and_paths'] else 'NO'} (os-brick returned before its last path in "
                     f"{early}/{len(counted)} cycles); left: ours {left(o)}, os-brick {left(b)}",
                     '>= 3x, same dm, nothing left', verdict(r, 3, False) if ok else 'MISSED'))
    else:
        rows.append(('6 real-kernel multipath vs os-brick', '-',
                     'not run (stage osbrick: tests/vm_lab guest)' if not ob else 'incomplete (see raw/osbrick.log)',
                     '>= 3x', 'not run'))


def guestscale_row(raw, res, rows):
    """Row 6b: the next volume's connect with N volumes attached, each variant against itself at the first level,
    and os-brick against ours at each level, from raw/guestscale.json (tests/vm_lab/guest_scale.py)."""
    gs = load(os.path.join(raw, 'guestscale.json'))
    if not gs or not gs.get('complete'):
        rows.append(('6b real-kernel attach with N volumes attached', '-',
                     'not run (stage guestscale: tests/vm_lab guest)' if not gs else 'incomplete (see raw/guestscale.log)',
                     '<= 1.2x', 'not run'))
        return
    gs = dict(gs)  # results.json stays small: the per-step times stay in raw/guestscale.json
    gs['cycles'] = [{k: v for k, v in c.items() if k != 'steps_ms'} for c in gs.get('cycles', [])]
    res['guestscale'] = gs
    levels = gs['per_level_ms']
    first, last = levels[0]['level'], levels[-1]['level']

    def cell(row, key):
        return f(row[key]['median'] / 1000)
    per_level = '; '.join(
        f"{row['level']} attached: connect ours {cell(row, 'ours_connect_s')} s, os-brick {cell(row, 'osbrick_connect_s')} s, "
        f"disconnect {cell(row, 'ours_disconnect_s')} / {cell(row, 'osbrick_disconnect_s')} s" for row in levels)
    left = sum(1 for c in gs['cycles'] if any(k.startswith(('left_', 'gone_')) for k in c))
    growth = gs.get('connect_growth', {})
    rows.append((f"6b real-kernel attach of the next volume with N volumes attached (2 portals each, CHAP), ours and "
                 f"os-brick alternating ({gs['rounds']} rounds per level, {gs['accel']} guest)",
                 f'connect median with {last} attached / with {first} (each variant against itself); per level both',
                 f"ours {f(growth.get('ours'))}x, os-brick {f(growth.get('osbrick'))}x; {per_level}; "
                 f"cycles that changed the other volumes' state or left theirs: {left}",
                 '<= 1.2x (ours)', verdict(growth.get('ours'), 1.2) if left == 0 else 'MISSED'))


def guest_rows(raw, res, rows):
    osbrick_row(raw, res, rows)
    guestscale_row(raw, res, rows)
