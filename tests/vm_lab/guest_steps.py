#!/usr/bin/python3
"""Benchmark 6, guest side: the step meters of guest_bench.py (which names the steps and what each covers).

SleepMeter counts os-brick's time.sleep by call site; StepMeter wraps os-brick's connector and LinuxSCSI methods
(each call timed, arguments and result unchanged); ours_steps reads ours from the driver's "steps:" info line.
"""
import functools
import re
import sys
import threading
import time

# --- os-brick: time spent in time.sleep, by call site (counted, the sleep itself unchanged) -------------------------

class SleepMeter:
    def __init__(self):
        self.real = time.sleep
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.sites = {}       # "file:line function" -> [calls, seconds, seconds on the calling thread]
        self.main_s = 0.0

    def snapshot(self):
        with self.lock:
            return {k: list(v) for k, v in self.sites.items()}, self.main_s

    def install(self):
        meter = self

        def counting_sleep(seconds):
            site = '?'
            f = sys._getframe(1)
            while f is not None:  # the innermost os_brick frame names the sleep
                if '/os_brick/' in f.f_code.co_filename:
                    site = f"{f.f_code.co_filename.split('/os_brick/')[1]}:{f.f_lineno} {f.f_code.co_name}"
                    break
                f = f.f_back
            t = time.monotonic()
            meter.real(seconds)
            dt = time.monotonic() - t
            main = threading.current_thread() is threading.main_thread()
            with meter.lock:
                s = meter.sites.setdefault(site, [0, 0.0, 0.0])
                s[0] += 1
                s[1] += dt
                if main:
                    s[2] += dt
                    meter.main_s += dt

        time.sleep = counting_sleep


# --- os-brick's steps: its methods on this connector wrapped, each call timed (behaviour unchanged) -------------------

class StepMeter:
    """Seconds per step and per thread, and the calling thread's milestones, for one connect or disconnect."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.t0 = time.monotonic()
        self.threads = {}    # thread ident -> {step: seconds, '_start': first path start, '_end': last path end}
        self.dm_at = None    # when find_sysfs_multipath_dm first answered a dm on the calling thread

    def add(self, step, start, dt):
        with self.lock:
            th = self.threads.setdefault(threading.get_ident(), {})
            th[step] = th.get(step, 0.0) + dt
            if step == 'path':
                th['_start'] = min(th.get('_start', start), start)
                th['_end'] = max(th.get('_end', 0.0), start + dt)

    def wrap(self, obj, name, step, on_result=None):
        real = getattr(obj, name)  # the bound method (decorators included): the instance attribute shadows it
        meter = self

        @functools.wraps(real)
        def timed(*args, **kwargs):
            t = time.monotonic()
            try:
                result = real(*args, **kwargs)
            finally:
                meter.add(step, t, time.monotonic() - t)
            if on_result:
                on_result(result)
            return result

        setattr(obj, name, timed)

    def install(self, connector):
        def dm_found(result):
            if result and self.dm_at is None and threading.current_thread() is threading.main_thread():
                self.dm_at = time.monotonic()

        c, ls = connector, connector._linuxscsi
        for obj, name, step in ((c, '_connect_vol', 'path'), (c, '_connect_to_iscsi_portal', 'login'),
                                (ls, 'get_hctl', 'scan'), (ls, 'scan_iscsi', 'scan'),
                                (ls, 'device_name_by_hctl', 'device_poll'), (ls, 'get_sysfs_wwn', 'wwid'),
                                (ls, 'multipath_add_wwid', 'mp_add'), (ls, 'multipath_add_path', 'mp_add'),
                                (c, '_get_connection_devices', 'find'), (ls, 'remove_connection', 'remove_connection'),
                                (ls, 'flush_multipath_device', 'flush'), (ls, 'flush_device_io', 'flush'),
                                (ls, 'multipath_del_path', 'mp_del'), (ls, 'remove_scsi_device', 'remove_device'),
                                (ls, 'wait_for_volumes_removal', 'removal_wait'),
                                (c, '_disconnect_connection', 'logout')):
            self.wrap(obj, name, step)
        self.wrap(ls, 'find_sysfs_multipath_dm', 'map_check', dm_found)

    def main(self):
        return self.threads.get(threading.main_thread().ident, {})

    def connect_steps(self, end, sleeps):
        paths = [th for th in self.threads.values() if 'path' in th]
        main = self.main()
        out = {'total': end - self.t0}
        if paths:
            start, paths_end = min(th['_start'] for th in paths), max(th['_end'] for th in paths)
            out['prepare'] = start - self.t0
            out['login'] = max(th.get('login', 0.0) for th in paths)
            out['scan'] = max(th.get('scan', 0.0) for th in paths)
            out['device'] = max(th['path'] - th.get('login', 0.0) - th.get('scan', 0.0) for th in paths)
            out['paths'] = paths_end - start
            out['map'] = max(0.0, self.dm_at - paths_end) if self.dm_at else end - paths_end
            out['ready'] = end - max(self.dm_at or end, paths_end)
        out['wwid'] = main.get('wwid', 0.0)
        out['mp_add'] = main.get('mp_add', 0.0)
        return self.with_sleeps(out, sleeps)

    def disconnect_steps(self, end, sleeps):
        main = self.main()
        total = end - self.t0
        out = {'total': total, 'find': main.get('find', 0.0), 'flush': main.get('flush', 0.0),
               'remove': main.get('remove_connection', 0.0) - main.get('flush', 0.0), 'logout': main.get('logout', 0.0)}
        out['rest'] = total - main.get('find', 0.0) - main.get('remove_connection', 0.0) - main.get('logout', 0.0)
        out['remove_wait'] = main.get('removal_wait', 0.0)  # part of remove: os-brick's 0.5 s polls for sdX to go
        return self.with_sleeps(out, sleeps)

    @staticmethod
    def with_sleeps(out, sleeps):
        sites, main_s = sleeps
        out['sleep'] = main_s
        out['sleep_all'] = sum(v[1] for v in sites.values())
        return {k: round(v * 1000, 1) for k, v in out.items()}


# --- ours' steps: the driver's "steps:" info line ("steps: connect VOL total=NNms a=NNms PORTAL{b=NNms ...} ...") ----

STEPS_LINE = re.compile(r'\bsteps: (connect|disconnect) \S+ (?:failed )?(total=\d+ms.*)$')
STEP_GROUP = re.compile(r'(\S+)\{([^}]*)\}')
STEP_KV = re.compile(r'(\w+)=(\d+)ms')


def step_sums(text):
    out = {}
    for k, v in STEP_KV.findall(text):
        out[k] = out.get(k, 0) + int(v)  # a step logged more than once (logout per session) is summed
    return out


def parse_steps(stderr, phase):
    """The last "steps:" line of this phase: (top-level steps, {portal: its steps}), or None."""
    found = None
    for line in stderr.splitlines():
        m = STEPS_LINE.search(line)
        if m and m.group(1) == phase:
            found = m.group(2)
    if found is None:
        return None
    groups = {label: step_sums(inner) for label, inner in STEP_GROUP.findall(found)}
    return step_sums(STEP_GROUP.sub(' ', found)), groups


def ours_steps(stderr, phase, call_s):
    parsed = parse_steps(stderr, phase)
    if parsed is None:
        return None
    top, paths = parsed

    def slowest(*names):
        return max((sum(p.get(n, 0) for n in names) for p in paths.values()), default=0)

    def of(*names):
        return sum(top.get(n, 0) for n in names)

    out = {'total': top.get('total', 0), 'call': round(call_s * 1000, 1)}
    if phase == 'connect':
        out.update(prepare=of('prepare', 'discovery', 'find_attached', 'reconnect', 'probe', 'tpgt', 'journal'),
                   login=slowest('lock', 'login', 'session'), scan=slowest('scan'), device=slowest('device'),
                   wwid=slowest('wwid'), mp_add=slowest('whitelist', 'mp_add'), paths=of('paths'), map=of('map'),
                   ready=of('ready', 'result'))
    else:
        out.update(find=of('find'), flush=of('flush'), remove=of('remove', 'unlisted', 'mp_del'),
                   logout=of('sessions', 'logout', 'node'), rest=of('journal', 'journal_end', 'mp_del_map'))
    return out
