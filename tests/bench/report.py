#!/usr/bin/python3
"""Merges ivd_bench / nova_percall.py outputs (bench-results/raw/*.json) into results.json and results.md."""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess

from report_common import f, load, verdict
from report_guest import guest_rows, osbrick_step_lines


def machine():
    cpu = ''
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open('/proc/meminfo'):
        if line.startswith('MemTotal:'):
            mem = int(line.split()[1]) // 1024
    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except Exception:
            return 'unknown'
    return {
        'host': platform.node(), 'kernel': platform.release(), 'cpu': cpu, 'cpus': os.cpu_count(),
        'mem_total_mib': mem, 'loadavg_at_end': open('/proc/loadavg').read().split()[:3],
        'libvirt': ver(['virsh', '--version']), 'qemu': ver(['qemu-system-x86_64', '--version']),
        'tgtd': ver(['tgtadm', '--version']),
    }


def hostscale_split(hs):
    """Per attach, first -> last window medians: each stand-in tool's runs, read() calls and wall ms (its main to
    exit), the reads outside the tools, and the driver's slowest steps (map wait, a path's login and mp_add)."""
    first, last = hs['attach_first'], hs['attach_last']
    if 'tools' not in first or 'tools' not in last:
        return ''
    def med(w, *keys):
        v = w
        for k in keys:
            v = v.get(k, {})
        return v.get('median', 0.0) if isinstance(v, dict) else 0.0
    kinds = sorted(set(first['tools']) | set(last['tools']),
                   key=lambda k: -(med(last, 'tools', k, 'reads') - med(first, 'tools', k, 'reads')))
    parts = [f"{k} x{f(med(last, 'tools', k, 'runs'), 0)}: reads {f(med(first, 'tools', k, 'reads'), 0)} -> "
             f"{f(med(last, 'tools', k, 'reads'), 0)}, {f(med(first, 'tools', k, 'ms'), 1)} -> "
             f"{f(med(last, 'tools', k, 'ms'), 1)} ms" for k in kinds]
    parts.append(f"reads outside the tools {f(med(first, 'read_calls_outside_tools'), 0)} -> "
                 f"{f(med(last, 'read_calls_outside_tools'), 0)}")
    steps = [f"{name} {f(med(first, 'steps_ms', step), 0)} -> {f(med(last, 'steps_ms', step), 0)} ms"
             for name, step in (('login (slowest path)', 'path.login'), ('multipathd add (slowest path)', 'path.mp_add'),
                                ('map wait', 'map'), ('map ready', 'ready'))
             if step in first.get('steps_ms', {})]
    return ('; per tool per attach (median, first -> last; ms = the runs\' own wall time): ' + ', '.join(parts)
            + ('; driver steps: ' + ', '.join(steps) if steps else ''))


def load_text(lc):
    ld = lc.get('loadavg_1m')
    return f"load avg (1 min) during the run {f(ld['min'], 1)}-{f(ld['max'], 1)}, median {f(ld['median'], 1)}" if ld else 'load not sampled'


def lifecycle_rows(lc, res, rows):
    """Rows 8: extend and the churn from raw/lifecycle.json (tests/bench/vm_lifecycle.py). No target: recorded."""
    if not lc or not lc.get('complete'):
        rows.append(('8 host-path lifecycle on a real kernel (extend, connect/disconnect churn)', '-',
                     'not run (stage lifecycle: tests/vm_lab guest)' if not lc else 'incomplete (see raw/lifecycle.log)',
                     '-', 'not run'))
        return
    lc = dict(lc)
    # Keep results.json small: each result's status, the details of the ones these rows stand on.
    keep = ('extend_size', 'extend_dm_size', 'churn_no_stale_paths', 'churn_nothing_left', 'ready_for_io',
            'force_disconnect_error_table', 'force_disconnect_no_map')
    lc['results'] = {k: (v if k in keep or v['status'] != 'PASS' else {'status': v['status']})
                     for k, v in lc.get('results', {}).items()}
    res['lifecycle'] = lc
    status = {k: v['status'] for k, v in lc['results'].items()}
    failed = ', '.join(lc.get('failed_results') or []) or 'none'
    guest = f"TCG guest, 2 portals, CHAP; {load_text(lc)}; failed results: {failed}"
    e = lc['extend']
    rows.append(('8 extend on a real kernel: LU grown 2x on the target, then `volume-host extend` '
                 f"({guest})",
                 'the extend call (path rescans, `multipathd resize map`); size answered; dm size after',
                 f"{f(e['s'])} s; {f(e['size_before'], 0)} -> {f(e['size_answered'], 0)} bytes answered, dm "
                 f"{f(e['dm_size_after'], 0)}: {'grew' if e['grew'] else 'DID NOT GROW'} "
                 f"(extend_size {status.get('extend_size', '?')}, extend_dm_size {status.get('extend_dm_size', '?')})",
                 '-', 'recorded'))
    c, n = lc['churn'], lc.get('nothing_left') or {}
    cy, vc, vd = c['cycle_s'] or {}, c['volume_host_connect_s'] or {}, c['volume_host_disconnect_s'] or {}
    st = c.get('driver_steps_median_ms') or {}
    def total(op): return (st.get(op) or {}).get('total')
    rows.append((f"8 churn: {c['cycles_requested']} connect/disconnect cycles of one LUN, another attached; each "
                 f"connect read at once (O_DIRECT) ({guest})",
                 'per-cycle median / p90 / max; volume-host connect / disconnect medians; the driver\'s own connect / '
                 'disconnect medians; nothing left after the cycles (sessions, sdX, maps, node records, multipathd paths)',
                 f"{f(cy.get('median'))} / {f(cy.get('p90'))} / {f(cy.get('max'))} s over {c['completed']} cycles "
                 f"({c['reads_ok']} reads ok, {c['clean']} with no removed path listed); volume-host "
                 f"{f(vc.get('median'))} / {f(vd.get('median'))} s; driver {f(total('connect'), 0)} / "
                 f"{f(total('disconnect'), 0)} ms; nothing left: {n.get('ok', '?')} (sessions {n.get('sessions', '?')}, "
                 f"sdX {n.get('disks', '?')}, maps {n.get('maps', '?')}, node records {n.get('node_records', '?')}, "
                 f"multipathd paths {n.get('multipathd_paths', '?')})",
                 '-', 'recorded'))
    fd = lc.get('force_disconnect')
    if fd:
        rows.append(('8 forced disconnect of a map held open (`--force --ignore-errors`)',
                     'the open map while held; `dmsetup wipe_table` runs logged; the map after the holder closed',
                     f"map {fd.get('map_while_held')}, table target `{fd.get('table_while_held')}`, wipe_table runs "
                     f"{fd.get('wipe_table_runs')} (failed {fd.get('wipe_table_failed')}); after close: "
                     f"{'gone' if status.get('force_disconnect_no_map') == 'PASS' else 'STILL THERE'}",
                     '-', 'recorded'))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--raw', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--mode', default='full')
    a = p.parse_args()
    raw = a.raw
    res = {'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'), 'mode': a.mode,
           'machine': machine(), 'durations_s': {}}
    for line in open(os.path.join(raw, 'durations.txt')) if os.path.exists(os.path.join(raw, 'durations.txt')) else []:
        k, v = line.split()
        res['durations_s'][k] = int(v)
    rows = []  # (benchmark, measurement, value, target, verdict)

    # 1. per call
    ours = [load(x) for x in sorted(glob.glob(os.path.join(raw, 'percall_ours_*.json')))]
    nova = [load(x) for x in sorted(glob.glob(os.path.join(raw, 'percall_nova_*.json')))]
    ours = [x for x in ours if x]
    nova = [x for x in nova if x]
    if ours:
        om = [x['connect_us']['median'] for x in ours]
        op99 = [x['connect_us']['p99'] for x in ours]
        pc = {'rounds': len(ours), 'ours_median_us_per_round': om, 'ours_p99_us_per_round': op99,
              'ours_median_us': statistics.median(om), 'ours_p99_us': statistics.median(op99),
              'ours_calls_per_round': [x['calls'] for x in ours]}
        if nova:
            nm = [x['connect_us']['median'] for x in nova]
            pc['nova_median_us_per_round'] = nm
            pc['nova_median_us'] = statistics.median(nm)
            pc['nova_p99_us'] = statistics.median([x['connect_us']['p99'] for x in nova])
            pairs = [n / o for n, o in zip(nm, om)]
            pc['speedup_vs_nova_per_round'] = pairs
            pc['speedup_vs_nova'] = statistics.median(pairs)
        res['percall'] = pc
        rows.append(('1 per-call connect (network path, in-memory libvirt)', 'median / p99 per call',
                     f"{f(pc['ours_median_us'])} / {f(pc['ours_p99_us'])} us", '<= 5 us median',
                     verdict(pc['ours_median_us'], 5)))
        if nova:
            rows.append(('1 same input through nova objects (python3-nova)', 'median / p99 per call',
                         f"{f(pc['nova_median_us'])} / {f(pc['nova_p99_us'])} us", '', ''))
            rows.append(('1 speed-up vs nova (paired rounds, median)', 'nova median / ours median',
                         f"{f(pc['speedup_vs_nova'])}x", '>= 4x', verdict(pc['speedup_vs_nova'], 4, False)))
        # ABI v2's two halves, timed on their own in the same rounds.
        for key, label in (('connect_noguest_us', '1 per-call connect without a guest (ABI v2, no XML)'),
                           ('disk_config_us', '1 per-call disk_config (ABI v2, from that device_info)')):
            runs = [x[key] for x in ours if key in x]
            if not runs:
                continue
            med = statistics.median([r['median'] for r in runs])
            p99 = statistics.median([r['p99'] for r in runs])
            pc[key.replace('_us', '_median_us')] = med
            pc[key.replace('_us', '_p99_us')] = p99
            pc[key.replace('_us', '_median_us_per_round')] = [r['median'] for r in runs]
            rows.append((label, 'median / p99 per call', f"{f(med)} / {f(p99)} us", '<= 5 us median', verdict(med, 5)))

    # 5b. host path cost against the number of attached volumes
    hs = load(os.path.join(raw, 'hostscale.json'))
    if hs:
        res['hostscale'] = hs
        w = hs['window']
        def ms(k, stat='median'): return hs[k]['ms'][stat]
        def per(k, what): return hs[k].get(what, {}).get('median', float('nan'))
        rows.append((f"5b host path, {hs['volumes']} volumes x {hs['paths']} paths kept attached (simulated host)",
                     f'p50 / p99 of the last {w} attaches against the first {w}; detach with all attached against with few; '
                     'per attach (first -> last): tool runs, sysfs files read, sysfs directory entries listed, driver CPU; '
                     'driver RSS before / all attached',
                     f"attach p50 {f(ms('attach_first'), 1)} -> {f(ms('attach_last'), 1)} ms = {f(hs['ratio_attach_last_to_first'])}x, "
                     f"p99 {f(ms('attach_first', 'p99'), 1)} -> {f(ms('attach_last', 'p99'), 1)} ms = {f(hs.get('ratio_attach_p99_last_to_first', float('nan')))}x; "
                     f"detach p50 {f(ms('detach_last'), 1)} -> {f(ms('detach_first'), 1)} ms = {f(hs['ratio_detach_loaded_to_unloaded'])}x, "
                     f"p99 {f(ms('detach_last', 'p99'), 1)} -> {f(ms('detach_first', 'p99'), 1)} ms; "
                     f"tool runs {int(per('attach_first', 'tool_runs'))} -> {int(per('attach_last', 'tool_runs'))}; "
                     f"sysfs files {f(per('attach_first', 'sysfs_files_read'), 0)} -> {f(per('attach_last', 'sysfs_files_read'), 0)}, "
                     f"entries {f(per('attach_first', 'sysfs_dir_entries_listed'), 0)} -> {f(per('attach_last', 'sysfs_dir_entries_listed'), 0)}; "
                     f"driver CPU {f(per('attach_first', 'driver_cpu_ms'), 1)} -> {f(per('attach_last', 'driver_cpu_ms'), 1)} ms = "
                     f"{f(hs.get('ratio_attach_cpu_last_to_first', float('nan')))}x; "
                     f"RSS {hs['rss_kib_before'] // 1024} / {hs['rss_kib_all_attached'] // 1024} MiB"
                     + (f"; the target's own cost, a bare probe (login, inquiries, logout) of the next volume's target "
                        f"from outside the driver before each attach of the window: {f(hs['target_probe_first']['median'], 1)} -> "
                        f"{f(hs['target_probe_last']['median'], 1)} ms = {f(hs['ratio_target_probe_last_to_first'])}x"
                        if 'target_probe_first' in hs else '')
                     + hostscale_split(hs),
                     '<= 1.2x', verdict(hs['ratio_attach_last_to_first'], 1.2)))

    # 2. end to end
    e2e = load(os.path.join(raw, 'e2e.json'))
    if e2e:
        res['e2e'] = e2e
        for mode, target in (('nochap', 1.2), ('chap', 1.5)):
            m = e2e[mode]
            for phase in ('attach', 'detach'):
                r = m[f'ratio_plugin_to_floor_{phase}']
                rows.append((f'2 e2e {phase} {"without" if mode == "nochap" else "with"} CHAP',
                             'plugin / floor median (volume-host DomainSession)',
                             f"{f(m[f'plugin.{phase}_ms']['median'], 1)} / {f(m[f'floor.{phase}_ms']['median'], 1)} ms = "
                             f"{f(r)}x (paired {f(m[f'ratio_plugin_to_floor_{phase}_paired']['median'])}x; "
                             f"volume-host {f(m[f'ratio_volume_host_to_floor_{phase}'])}x)",
                             f'<= {target}x', verdict(r, target)))

    # 2b. through Nova's real LibvirtDriver
    nv = load(os.path.join(raw, 'nova.json'))
    if nv:
        res['nova'] = nv
        for mode in ('nochap', 'chap'):
            m = nv[mode]
            r = m['ratio_nova_to_floor_cycle']
            rows.append((f'2b Nova attach+detach {"without" if mode == "nochap" else "with"} CHAP (privsep)',
                         'Nova LibvirtDriver / raw libvirt floor, attach+detach medians',
                         f"{f(m['nova.attach_ms']['median'], 1)}+{f(m['nova.detach_ms']['median'], 1)} / "
                         f"{f(m['floor.attach_ms']['median'], 1)}+{f(m['floor.detach_ms']['median'], 1)} ms = {f(r)}x "
                         f"(paired {f(m['pair_ratio_cycle']['median'])}x; secrets left {m['secrets_left']})",
                         '<= 1.3x', verdict(r, 1.3)))
        st = nv.get('eventlet_stall') or {}
        if 'adapter_stall_s' in st:
            rows.append(('2b eventlet hub stall during a 1 s portal wait',
                         'longest hub gap: tpool adapter / privsep daemon / direct ctypes call',
                         f"{f(st['adapter_stall_s'], 3)} / {f(st.get('privsep_stall_s'), 3)} / "
                         f"{f(st['direct_stall_s'], 3)} s", '-', 'measured'))

    # 3. scale
    for stage, label in (('scale', ''), ('scale_ephemeral', ', ephemeral secrets'),
                         ('scale_noprobe', ', ephemeral secrets, no portal probe')):
        sc = load(os.path.join(raw, f'{stage}.json'))
        if not sc:
            continue
        res[stage] = sc
        for t, per in sc['threads'].items():
            pl, fl = per['plugin'], per['floor']
            rows.append((f"3 scale {sc['domains']}x{sc['volumes_per_domain']}={sc['attachments']}, {t} thread(s){label}",
                         'cycle plugin / floor; attach p50/p99, detach p50/p99 (plugin); att/s; peak RSS; left',
                         f"{f(pl['cycle_wall_s'], 1)} / {f(fl['cycle_wall_s'], 1)} s = {f(per['ratio_cycle_plugin_to_floor'])}x; "
                         f"att {f(pl['attach_ms']['median'], 1)}/{f(pl['attach_ms']['p99'], 1)} ms "
                         f"(floor {f(fl['attach_ms']['median'], 1)}/{f(fl['attach_ms']['p99'], 1)}), "
                         f"det {f(pl['detach_ms']['median'], 1)}/{f(pl['detach_ms']['p99'], 1)} ms "
                         f"(floor {f(fl['detach_ms']['median'], 1)}/{f(fl['detach_ms']['p99'], 1)}); "
                         f"{f(pl['attach_per_s'], 1)} att/s; {pl['peak_rss_kib'] // 1024} MiB; "
                         f"secrets {pl['secrets_left']}, sessions {pl['sessions_left']}",
                         '<= 1.1x', verdict(per['ratio_cycle_plugin_to_floor'], 1.1)))
        if 'async_detach' in sc:
            ad = sc['async_detach']
            rows.append(('3 stretch: async detach-all by alias + device-removed events',
                         'detach-all wall plugin / floor',
                         f"{f(ad['plugin']['detach_wall_s'], 2)} / {f(ad['floor']['detach_wall_s'], 2)} s = "
                         f"{f(ad['ratio_detach_plugin_to_floor'])}x ({f(ad['plugin']['detach_per_s'], 0)} det/s; "
                         f"secrets {ad['plugin']['secrets_left']}, sessions {ad['plugin']['sessions_left']})", '', ''))

    # 4. probing
    pr = load(os.path.join(raw, 'probe.json'))
    if pr:
        res['probe'] = pr
        r = pr['ratio_concurrent_to_slowest_single']['median']
        # tgtd is one single-threaded process doing every login: its CPU time is the floor of the concurrent wall.
        floor = ''
        if 'tgtd_cpu_concurrent_ms' in pr:
            floor = (f"; floor: tgtd CPU {f(pr['tgtd_cpu_concurrent_ms']['median'], 1)} ms + its wait for a CPU "
                     f"{f(pr['tgtd_runqueue_wait_concurrent_ms']['median'], 1)} ms, prober CPU "
                     f"{f(pr['bench_cpu_concurrent_ms']['median'], 1)} ms; {pr.get('max_in_flight', '?')} in flight")
        rows.append((f"4 probe {pr['portals']} portals ({pr['dead_portals']} refused), async vs one at a time",
                     'concurrent wall / slowest single probe',
                     f"{f(pr['concurrent_ms']['median'], 1)} ms / {f(pr['slowest_single_ms']['median'], 2)} ms = {f(r, 1)}x "
                     f"(one at a time: {f(pr['sequential_total_ms']['median'], 1)} ms total, single p50 "
                     f"{f(pr['single_ms']['median'], 3)} ms{floor})", '<= 1.5x', verdict(r, 1.5)))
        bh = pr.get('black_hole')
        if bh:
            rb = bh['ratio_concurrent_to_slowest_single']['median']
            rows.append((f"4 probe {pr['portals']} portals ({bh['black_holes']} black holes, {bh['timeout_ms']} ms timeout)",
                         'concurrent wall / slowest single probe (a timeout)',
                         f"{f(bh['concurrent_ms']['median'], 1)} ms / {f(bh['slowest_single_ms']['median'], 1)} ms = "
                         f"{f(rb)}x (one at a time: {f(bh['sequential_total_ms_extrapolated']['median'] / 1000, 1)} s, "
                         f"extrapolated from {bh['black_hole_single_ms']['n']} black holes; outcomes "
                         f"{', '.join(f'{k} {v}' for k, v in sorted(bh['outcomes'].items()))})",
                         '<= 1.5x', verdict(rb, 1.5)))

    # 5. multipath
    mp = load(os.path.join(raw, 'multipath.json'))
    if mp:
        res['multipath'] = mp
        r = mp['ratio_4_to_1']['median']
        rows.append((f"5 multipath connect, 4 portals, {mp['login_latency_ms']} ms injected login latency",
                     '4-portal connect / 1-portal connect (paired median)',
                     f"{f(mp['connect_4_portals_ms']['median'], 1)} / {f(mp['connect_1_portal_ms']['median'], 1)} ms = {f(r)}x "
                     f"({f(mp['ratio_4_to_injected_login'])}x the bare {mp['login_latency_ms']} ms login"
                     + (f"; {mp['tool_runs_per_connect_4_portals']} / {mp['tool_runs_per_connect_1_portal']} tool runs"
                        if 'tool_runs_per_connect_1_portal' in mp else '')
                     + ('; simulated sysfs on tmpfs' if mp.get('sim_base_tmpfs') else '') + ')',
                     '<= 1.3x', verdict(r, 1.3)))

    # 6. the real-kernel guest: ours vs os-brick (osbrick), the next volume with N attached (guestscale)
    guest_rows(raw, res, rows)

    # 7. memory
    mem = load(os.path.join(raw, 'memory.json'))
    if mem:
        mem = dict(mem)
        mem['samples'] = mem.get('samples', [])[::4]
        res['memory'] = mem
        spread = mem['rss_spread_kib']
        rows.append((f"7 RSS over {mem['cycles']} connect/disconnect cycles", 'max - min after warm-up',
                     f"{spread} KiB (RSS {mem['rss_after_warmup_kib'] // 1024} MiB; secrets left {mem['secrets_left']})",
                     '<= 1024 KiB', verdict(spread, 1024)))

    # 8. the host path's lifecycle on a real kernel (tests/vm_lab lifecycle guest: extend, connect/disconnect churn)
    lifecycle_rows(load(os.path.join(raw, 'lifecycle.json')), res, rows)

    res['table'] = [dict(zip(('benchmark', 'measure', 'result', 'target', 'verdict'), r)) for r in rows]
    os.makedirs(a.out, exist_ok=True)
    # Keep results.json small: no XML samples.
    if 'e2e' in res:
        for mode in ('nochap', 'chap'):
            res['e2e'][mode] = {k: v for k, v in res['e2e'][mode].items() if not k.endswith('_xml')}
    with open(os.path.join(a.out, 'results.json'), 'w') as fh:
        json.dump(res, fh, indent=1, sort_keys=True)
    m = res['machine']
    lines = [f"# Benchmark results ({a.mode})", '',
             f"Date: {res['date']}. Machine: {m['cpus']} CPUs ({m['cpu']}), {m['mem_total_mib']} MiB, kernel "
             f"{m['kernel']}; libvirt {m['libvirt']}, {m['qemu']}; load average at end {' '.join(m['loadavg_at_end'])} "
             f"(shared machine: numbers are noisy; medians and same-run ratios of interleaved variants).", '',
             '| benchmark | measure | result | target | verdict |', '|---|---|---|---|---|']
    for r in rows:
        lines.append('| ' + ' | '.join(str(x).replace('|', '/') for x in r) + ' |')
    if 'osbrick' in res:
        lines += osbrick_step_lines(res['osbrick'])
    dates = {}
    for path in sorted(glob.glob(os.path.join(raw, '*.json'))):
        stage = os.path.basename(path)[:-5].split('_')[0]
        day = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc).strftime('%Y-%m-%d')
        dates.setdefault(day, set()).add(stage)
    if len(dates) > 1:
        lines += ['', 'Stages of different runs (outputs dated): ' +
                  '; '.join(f"{d}: {', '.join(sorted(s))}" for d, s in sorted(dates.items()))]
    lines += ['', 'Run time per stage (s): ' + ', '.join(f'{k} {v}' for k, v in res['durations_s'].items()), '',
              'Produced by `scripts/bench.sh' + (' --quick' if a.mode == 'quick' else '') + '`; raw outputs in bench-results/raw/.']
    with open(os.path.join(a.out, 'results.md'), 'w') as fh:
        fh.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
