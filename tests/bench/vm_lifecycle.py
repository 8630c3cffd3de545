#!/usr/bin/python3
"""scripts/bench.sh's lifecycle stage: the real-kernel lab's lifecycle guest (tests/vm_lab, VmLab.HostPathLifecycle)
run once with N churn cycles, its "VMLAB BENCH name key=value ..." and "VMLAB RESULT" lines turned into one JSON
document on stdout (extend, the churn's per-cycle figures, what is left after it, the forced disconnect of a map held
open). The guest logic stays in tests/vm_lab: this only sets the test's environment (IVD_VM_LAB_CHURN_CYCLES,
IVD_VM_LAB_SCENARIOS) and reads its console echo. The machine's load average is sampled during the run.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time

# The test's echo ("[vm-lab  12.3s] VMLAB ...") or its saved console log (no time).
LINE = re.compile(r'^(?:\[vm-lab +([0-9.]+)s\] )?VMLAB (BENCH|RESULT|DONE|SCENARIO) ?(.*)$')


def kv(text):
    """'op: a=1 b=x' or 'a=1 b=x' -> {'a': '1', 'b': 'x'} (a leading 'op:' word is returned apart)."""
    words = text.split()
    op = words.pop(0)[:-1] if words and words[0].endswith(':') else None
    return op, dict(w.split('=', 1) for w in words if '=' in w)


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def integer(v):
    return int(v) if v is not None and v.isdigit() else None


def floats(csv):
    return [x for x in (num(v) for v in (csv or '').split(',')) if x is not None]


def summary_s(values):
    if not values:
        return None
    v = sorted(values)
    return {'n': len(v), 'median': statistics.median(v), 'p90': v[max(0, math.ceil(0.9 * len(v)) - 1)],
            'min': v[0], 'max': v[-1]}


def parse(lines):
    out = {'bench': {}, 'results': {}, 'scenario_s': {}, 'done': False}
    for raw in lines:
        m = LINE.match(raw.rstrip('\n'))
        if not m:
            continue
        t, kind, rest = num(m.group(1)), m.group(2), m.group(3)
        if kind == 'DONE':
            out['done'] = True
            out['done_at_s'] = t
        elif kind == 'RESULT':
            name, status, *detail = rest.split(' ', 2) + ['']
            out['results'][name] = {'status': status, 'detail': ' '.join(detail).strip()}
        elif kind == 'SCENARIO':
            sm = re.match(r'(\S+) took (\d+) s', rest)
            if sm:
                out['scenario_s'][sm.group(1)] = int(sm.group(2))
        else:
            name, _, body = rest.partition(' ')
            op, fields = kv(body)
            out['bench'][f'{name}.{op}' if op else name] = fields
    return out


def figures(p, cycles):
    b, r = p['bench'], p['results']
    ext = b.get('extend', {})
    churn = b.get('churn_cycles', {})
    left = b.get('churn_nothing_left', {})
    steps = {k.split('.', 1)[1]: {s: num(v) for s, v in f.items()} for k, f in b.items() if k.startswith('churn_steps.')}
    doc = {
        'extend': {'s': num(ext.get('s')), **{k: integer(ext.get(k)) for k in
                                              ('size_before', 'size_answered', 'dm_size_after', 'want')}}
                  if ext else None,
        'churn': {'cycles_requested': cycles, 'completed': int(churn.get('completed', 0)),
                  'clean': int(churn.get('clean', 0)), 'reads_ok': int(churn.get('reads_ok', 0)),
                  'cycle_s': summary_s(floats(churn.get('cycle_s'))),
                  'volume_host_connect_s': summary_s(floats(churn.get('connect_s'))),
                  'volume_host_disconnect_s': summary_s(floats(churn.get('disconnect_s'))),
                  'driver_steps_median_ms': steps} if churn else None,
        'nothing_left': {k: (v if k == 'ok' else int(v)) for k, v in left.items()} if left else None,
        'force_disconnect': {k: (int(v) if v.isdigit() else v) for k, v in b['force_disconnect'].items()}
                            if 'force_disconnect' in b else None,
        'spawn_s': {k: num(v) for k, v in b.get('churn_spawn_s', {}).items()},
        'results': r,
        'scenario_s': p['scenario_s'],
    }
    if doc['extend']:
        e = doc['extend']
        e['grew'] = bool(e['size_before'] and e['size_answered'] and e['size_answered'] > e['size_before']
                         and e['dm_size_after'] == e['size_answered'])
    return doc


class LoadSampler(threading.Thread):
    def __init__(self, every_s):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.stop = every_s, [], threading.Event()

    def run(self):
        while True:
            with open('/proc/loadavg') as f:
                self.samples.append(float(f.read().split()[0]))
            if self.stop.wait(self.every_s):
                return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tests', required=True, help='vm_lab_tests binary')
    ap.add_argument('--cycles', type=int, default=50)
    ap.add_argument('--scenarios', default='10,30', help='IVD_VM_LAB_SCENARIOS (NN prefixes)')
    ap.add_argument('--deadline-s', type=int, default=3600)
    ap.add_argument('--console', required=True, help='where the test output (password redacted) is kept')
    ap.add_argument('--parse-only', action='store_true', help='parse an existing --console file, run nothing')
    a = ap.parse_args()
    load = LoadSampler(10)
    rc, wall = None, None
    if not a.parse_only:
        env = dict(os.environ, IVD_VM_LAB_CHURN_CYCLES=str(a.cycles), IVD_VM_LAB_SCENARIOS=a.scenarios,
                   IVD_VM_LAB_DEADLINE_S=str(a.deadline_s))
        load.start()
        t0 = time.monotonic()
        with open(a.console, 'w') as out:
            rc = subprocess.run([a.tests, '--gtest_color=no', '--gtest_filter=VmLab.HostPathLifecycle'], env=env,
                                stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.monotonic() - t0
        load.stop.set()
        load.join()
    with open(a.console, errors='replace') as f:
        p = parse(f)
    doc = figures(p, a.cycles)
    failed = sorted(k for k, v in doc['results'].items() if v['status'] != 'PASS')
    doc.update({'bench': 'lifecycle', 'scenarios': a.scenarios, 'test_exit': rc, 'wall_s': wall,
                'guest_done': p['done'], 'guest_done_at_s': p.get('done_at_s'), 'failed_results': failed,
                'complete': p['done'] and doc['churn'] is not None and doc['extend'] is not None,
                'loadavg_1m': summary_s(load.samples) if load.samples else None})
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    print()
    if not doc['complete']:
        print(f"lifecycle: incomplete (exit {rc}, guest done {p['done']}); see {a.console}", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
