"""Measures how long nova-compute's eventlet hub stalls while a module call waits on a silent portal.

  eventlet_stall.py MODULE_PATH   -> prints {"adapter_stall_s": ..., "privsep_stall_s": ..., "direct_stall_s": ...,
                                              "direct_call_s": ...}

adapter: in-process through eventlet.tpool; privsep: through the oslo.privsep daemon (started here as root, from
a nova.conf like the tests'); direct: the ctypes call made on the hub.
"""
import nova.monkey_patch  # noqa: F401  (first, as nova-compute does)

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import eventlet  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nova_lab  # noqa: E402
import volume_driver  # noqa: E402
from nova_volume_modules.runner import ModuleRunner  # noqa: E402


def black_hole():
    # The kernel completes the handshake into the backlog; nothing ever answers.
    s = eventlet.patcher.original("socket").socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def measure(fn):
    gaps = []
    stop = []

    def ticker():
        last = time.monotonic()
        while not stop:
            eventlet.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    t = eventlet.spawn(ticker)
    eventlet.sleep(0.05)
    start = time.monotonic()
    try:
        fn()
    except volume_driver.VolumeDriverError:
        pass
    took = time.monotonic() - start
    eventlet.sleep(0.05)
    stop.append(1)
    t.wait()
    return max(gaps), took


def main():
    hole = black_hole()
    portal = "127.0.0.1:%d" % hole.getsockname()[1]
    d = tempfile.mkdtemp(prefix="ivd-py-stall-")
    os.chmod(d, 0o700)
    nova_lab.configure(nova_lab.write_conf(d, os.path.abspath(sys.argv[1]), "iqn.1993-08.org.debian:01:ivd-stall"))
    from nova_volume_modules import conf
    conf.register()
    config = conf.module_section("iscsi")  # probe_timeout_ms 1000, as the privsep daemon reads it
    runner = ModuleRunner("iscsi", sys.argv[1], None, config, privileged=False)
    privileged = ModuleRunner("iscsi", sys.argv[1], None, config, privileged=True)
    privileged.host("connector_properties")  # starts the daemon outside the measurement
    ci = {"driver_volume_type": "iscsi", "data": {"target_portal": portal, "target_iqn": "iqn.2003-01.org.x:stall",
                                                  "target_lun": 1, "volume_id": "stall"}}
    disk = {"dev": "sdb", "bus": "scsi"}
    adapter_stall, adapter_took = measure(lambda: runner.host("connect_volume", ci, {}, disk))
    privsep_stall, privsep_took = measure(lambda: privileged.host("connect_volume", ci, {}, disk))
    direct_stall, direct_took = measure(lambda: runner.driver.connect_volume(ci, {}, disk))
    shutil.rmtree(d, ignore_errors=True)
    print(json.dumps({"adapter_stall_s": round(adapter_stall, 3), "adapter_call_s": round(adapter_took, 3),
                      "privsep_stall_s": round(privsep_stall, 3), "privsep_call_s": round(privsep_took, 3),
                      "direct_stall_s": round(direct_stall, 3), "direct_call_s": round(direct_took, 3)}))


main()
