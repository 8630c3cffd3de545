"""Benchmark: attach + detach through Nova's real LibvirtDriver with the module, against the raw libvirt floor of
the same disk XML, interleaved in one run (nova, floor, nova, floor, ...), with and without CHAP; and the eventlet
hub stall of a module call waiting on a silent portal (adapter vs a direct ctypes call).

  nova_attach.py --module PATH [--iterations N]   -> JSON on stdout (medians, same-run ratios)

Nova's side is nova-compute's: eventlet monkey patching first, the privsep daemon for host-changing calls, Nova's
detach waiting for libvirt's device-removed event. The floor is what any host must do for the same disk: define
and set the CHAP secret, attachDeviceFlags(LIVE|CONFIG) of the module's XML, detachDeviceFlags and wait until the
disk has left the live domain, undefine the secret. Nova's database-only calls are stubbed (tests/nova_lab.py).
"""
import nova.monkey_patch  # noqa: F401  (first, as nova-compute does)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY_TESTS = os.path.join(HERE, "..", "..", "python", "tests")
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, PY_TESTS)

import labs  # noqa: E402
import nova_lab  # noqa: E402

INITIATOR = "iqn.1993-08.org.debian:01:ivd-bench-nova"
CHAP_USER, CHAP_PASSWORD = "bench-user", "Bench-pw-7c1e"
LIVE_CONFIG = 1 | 2  # VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, as Nova attaches to a running guest


def connection_info(tgtd, which, chap):
    data = {"target_portal": tgtd.portal, "target_iqn": tgtd.iqn(which), "target_lun": 1,
            "volume_id": "bench-%s-%d" % (which, os.getpid())}
    if chap:
        data.update(auth_method="CHAP", auth_username=CHAP_USER, auth_password=CHAP_PASSWORD)
    return {"driver_volume_type": "iscsi", "serial": data["volume_id"], "data": data}


def nova_cycle(drv, ctx, instance, ci, dev):
    ci = json.loads(json.dumps(ci))  # Nova works on its own copy (it keeps device_info in it)
    t0 = time.perf_counter()
    drv.attach_volume(ctx, ci, instance, "/dev/" + dev, disk_bus="scsi", device_type="disk")
    t1 = time.perf_counter()
    drv.detach_volume(ctx, ci, instance, "/dev/" + dev)
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def floor_cycle(lab, disk_xml, dev, secret_xml, chap):
    t0 = time.perf_counter()
    secret = None
    if chap:
        secret = lab.conn.secretDefineXML(secret_xml)
        secret.setValue(CHAP_PASSWORD.encode())
    lab.dom.attachDeviceFlags(disk_xml, LIVE_CONFIG)
    t1 = time.perf_counter()
    lab.dom.detachDeviceFlags(disk_xml, LIVE_CONFIG)
    deadline = time.monotonic() + 60
    while lab.disk(dev) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("the floor's detach of %s did not finish in 60 s" % dev)
        time.sleep(0.005)
    if secret is not None:
        secret.undefine()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def floor_xml(drv, ci, dev):
    """The module's disk for `dev`, as the floor attaches it (a connect outside the timed loop)."""
    runner = drv.volume_module_runners["iscsi"]
    device_info = runner.host("connect_volume", ci, runner.local("connector_properties"), None)
    xml = runner.local("disk_config", ci, device_info, {"dev": dev, "bus": "scsi"})
    runner.host("disconnect_volume", ci, device_info)
    return xml


def secret_xml_for(disk_xml):
    import xml.etree.ElementTree as ET
    secret = ET.fromstring(disk_xml).find("source/auth/secret")
    if secret is None:
        return None
    return ("<secret ephemeral='no' private='yes'><uuid>%s</uuid><usage type='iscsi'><target>%s</target></usage>"
            "</secret>" % (uuid.uuid4(), secret.get("usage")))


def summary(values):
    v = sorted(values)
    return {"median": statistics.median(v), "p90": v[int(0.9 * (len(v) - 1))], "min": v[0], "n": len(v)}


def run_mode(drv, ctx, lab, tgtd, which, chap, iterations):
    instance = nova_lab.instance_for(lab.uuid)
    ci = connection_info(tgtd, which, chap)
    xml = floor_xml(drv, ci, "sdb")
    secret_xml = secret_xml_for(xml) if chap else None
    if chap and secret_xml is None:
        raise RuntimeError("the module's CHAP disk has no <auth><secret usage=...>")
    nova_cycle(drv, ctx, instance, ci, "sdb")  # warm-up: privsep daemon, libvirt connection, QEMU's first hotplug
    floor_cycle(lab, xml, "sdb", secret_xml, chap)
    out = {k: [] for k in ("nova.attach_ms", "nova.detach_ms", "floor.attach_ms", "floor.detach_ms",
                           "pair_ratio_cycle")}
    for _ in range(iterations):
        na, nd = nova_cycle(drv, ctx, instance, ci, "sdb")
        fa, fd = floor_cycle(lab, xml, "sdb", secret_xml, chap)
        out["nova.attach_ms"].append(na)
        out["nova.detach_ms"].append(nd)
        out["floor.attach_ms"].append(fa)
        out["floor.detach_ms"].append(fd)
        out["pair_ratio_cycle"].append((na + nd) / (fa + fd))
    res = {k: summary(v) for k, v in out.items()}
    nova_cycle_ms = res["nova.attach_ms"]["median"] + res["nova.detach_ms"]["median"]
    floor_cycle_ms = res["floor.attach_ms"]["median"] + res["floor.detach_ms"]["median"]
    res["ratio_nova_to_floor_cycle"] = nova_cycle_ms / floor_cycle_ms
    res["secrets_left"] = len(lab.secrets_for(ci["data"]["volume_id"]))
    return res


def eventlet_stall(module_path):
    r = subprocess.run([sys.executable, os.path.join(PY_TESTS, "eventlet_stall.py"), module_path],
                       capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        return {"error": (r.stdout + r.stderr)[-500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--module", required=True)
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    scratch = tempfile.mkdtemp(prefix="ivd-bench-nova-")
    os.chmod(scratch, 0o700)
    conf = nova_lab.write_conf(scratch, os.path.abspath(a.module), INITIATOR, privsep=True)
    nova_lab.configure(conf)
    nova_lab.stub_db()
    tgtd = labs.TgtdLab()
    lab = labs.LibvirtLab()
    try:
        tid = tgtd.create_target("open")
        tgtd.add_lun(tid)
        tid = tgtd.create_target("chap")
        tgtd.add_lun(tid)
        tgtd.add_account(CHAP_USER, CHAP_PASSWORD)
        tgtd.bind_account(tid, CHAP_USER)
        from nova import context
        drv = nova_lab.load_driver()
        ctx = context.get_admin_context()
        result = {"iterations": a.iterations, "privsep": True,
                  "nochap": run_mode(drv, ctx, lab, tgtd, "open", False, a.iterations),
                  "chap": run_mode(drv, ctx, lab, tgtd, "chap", True, a.iterations)}
    finally:
        lab.stop()
        tgtd.stop()
    result["eventlet_stall"] = eventlet_stall(a.module)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
