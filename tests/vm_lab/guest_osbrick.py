#!/usr/bin/python3
"""Benchmark 6, guest side: the os-brick variant of guest_bench.py and guest_scale.py.

os-brick 6.1's ISCSIConnector(use_multipath=True), set up once in this long-lived process with oslo.privsep's client
mode off, its calls timed by the meters of guest_steps.py (which only time them: arguments and results unchanged).
"""
import logging
import os
import time

from guest_steps import SleepMeter, StepMeter  # beside this file, in /lab


def setup_osbrick(log_file, lock_dir):
    """The connector and the seconds its imports and setup took (outside every timed call)."""
    t = time.monotonic()
    logging.basicConfig(filename=log_file, level=logging.INFO)  # nova's default level, never the console
    from oslo_config import cfg
    from oslo_concurrency import lockutils  # noqa: F401 (registers [oslo_concurrency] lock_path)
    cfg.CONF([], project='ivd-osbrick-bench', default_config_files=[])
    os.makedirs(lock_dir, exist_ok=True)
    cfg.CONF.set_override('lock_path', lock_dir, group='oslo_concurrency')
    import os_brick
    os_brick.setup(cfg.CONF)
    from os_brick import privileged
    # No privsep daemon: privileged entrypoints run in this (root) process, as in os-brick's own unit tests.
    privileged.default.set_client_mode(False)
    from os_brick.initiator.connectors import iscsi
    # root_helper is ignored once privsep handles root calls; nova passes "sudo nova-rootwrap ...".
    connector = iscsi.ISCSIConnector(root_helper='sudo', use_multipath=True)
    return connector, time.monotonic() - t


def metered_osbrick(props, log_file, lock_dir):
    """(OsBrick variant with both meters installed, import + setup seconds)."""
    meter, step_meter = SleepMeter(), StepMeter()
    connector, import_s = setup_osbrick(log_file, lock_dir)
    meter.install()
    step_meter.install(connector)
    return OsBrick(connector, props, meter, step_meter), import_s


def sleeps_json(sleeps):
    sites, main_s = sleeps
    return {'calling_thread_s': round(main_s, 3),
            'sites': {k: {'calls': v[0], 's': round(v[1], 3), 'calling_thread_s': round(v[2], 3)}
                      for k, v in sorted(sites.items(), key=lambda kv: -kv[1][1])}}


class OsBrick:
    """A variant as guest_bench.py's cycles use it: connect() -> (seconds, device path, handle), disconnect()."""
    name = 'osbrick'

    def __init__(self, connector, props, meter, steps):
        self.c, self.props, self.meter, self.step_meter = connector, props, meter, steps

    def connect(self):
        self.steps = {}
        self.meter.reset()
        self.step_meter.reset()
        t = self.step_meter.t0
        info = self.c.connect_volume(dict(self.props))
        end = time.monotonic()
        self.connect_sleeps = self.meter.snapshot()
        self.steps['connect'] = dict(self.step_meter.connect_steps(end, self.connect_sleeps),
                                     call=round((end - t) * 1000, 1))
        return end - t, (info or {}).get('path', ''), info

    def disconnect(self, info):
        self.meter.reset()
        self.step_meter.reset()
        t = self.step_meter.t0
        self.c.disconnect_volume(dict(self.props), info)
        end = time.monotonic()
        self.disconnect_sleeps = self.meter.snapshot()
        self.steps['disconnect'] = dict(self.step_meter.disconnect_steps(end, self.disconnect_sleeps),
                                        call=round((end - t) * 1000, 1))
        return end - t

    def sleep_fields(self):
        """The last cycle's time.sleep by call site, as the cycle record's osbrick_sleep_* keys."""
        return {'osbrick_sleep_connect': sleeps_json(self.connect_sleeps),
                'osbrick_sleep_disconnect': sleeps_json(self.disconnect_sleeps)}
