"""nova-compute's process exit while libvirtd sends it events.

  nova_exit.py MODULE_PATH DOMAIN_UUID   -> prints "exiting" and exits 0

Nova's libvirt Hosts (native event threads, as after nova-compute restarts of the tests' drivers) and a module
driver (whose own loop thread runs the same default loop: Nova registers its loop only in init_host) in one
process; a native thread suspends and resumes the domain until the interpreter exits, so Nova's threads are
dispatching events when Python ends them. The exit hung (the driver joined its loop thread without a bound)
when one of them ended while it held libvirt's loop.
"""
import nova.monkey_patch  # noqa: F401  (first, as nova-compute does)

import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import eventlet  # noqa: E402
from eventlet import patcher  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import volume_driver  # noqa: E402

URI = "qemu:///system"


def flood(domain_uuid):
    import libvirt
    dom = libvirt.open(URI).lookupByUUIDString(domain_uuid)
    while True:
        dom.suspend()
        dom.resume()


def main():
    from nova.virt.libvirt import host
    d = tempfile.mkdtemp(prefix="ivd-py-exit-")
    module = volume_driver.load(sys.argv[1])
    module.create({"state_dir": d + "/state", "lock_dir": d + "/locks", "path": "network", "libvirt_uri": URI,
                   "initiator_name": "iqn.1993-08.org.debian:01:ivd-exit"})
    hosts = [host.Host(URI) for _ in range(4)]
    for h in hosts:
        h.initialize()
        h.get_connection()
    patcher.original("threading").Thread(target=flood, args=(sys.argv[2],), daemon=True).start()
    eventlet.sleep(1.5)
    shutil.rmtree(d, ignore_errors=True)  # the driver made no call: nothing of it is there
    print("exiting", flush=True)


main()
