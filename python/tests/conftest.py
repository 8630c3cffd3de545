"""Fixtures for the binding and Nova tests: the built module (IVD_MODULE_PATH, set by CTest), a private tgtd,
the shared libvirtd with a persistent TCG domain of our own."""
import faulthandler
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the source tree's packages (volume_driver, nova_volume_modules)
sys.path.insert(0, HERE)

import labs  # noqa: E402

INITIATOR = "iqn.1993-08.org.debian:01:ivd-py"
CHAP_USER = "py-user"
CHAP_PASSWORD = "Pw-py-4d2e8b"  # recognisable: the tests look for it in logs
# Per test, well below CTest's 600 s for the whole file: a hang prints every stack and fails the run.
HANG_DEADLINE_S = float(os.environ.get("IVD_PY_HANG_DEADLINE_S", "120"))


def _real_stderr(config):
    """The stderr pytest's fd capture saved: what is written to the captured one is lost at os._exit."""
    capman = config.pluginmanager.getplugin("capturemanager")
    err = getattr(getattr(capman, "_global_capturing", None), "err", None)
    fd = getattr(err, "targetfd_save", None)
    return fd if isinstance(fd, int) else 2


def _dump_green_threads(fd):
    """eventlet's green threads: faulthandler shows only OS threads (a blocked hub, not who waits on what)."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return
    out = os.fdopen(os.dup(fd), "w")
    with out:
        for gr in gc.get_objects():
            if isinstance(gr, greenlet.greenlet) and gr.gr_frame is not None:
                out.write("\nGreen thread %r (most recent call last):\n" % gr)
                traceback.print_stack(gr.gr_frame, limit=30, file=out)  # the innermost 30


@pytest.fixture(autouse=True)
def hang_watchdog(request):
    """Green stacks 5 s before the deadline (from a real OS thread: threading may be eventlet's), then
    faulthandler prints every OS thread's stack and exits the process. A hang at exit: pytest_unconfigure."""
    fd = _real_stderr(request.config)
    native = sys.modules["eventlet.patcher"].original("threading") if "eventlet.patcher" in sys.modules \
        else threading
    done = native.Event()

    def watch():
        if not done.wait(max(HANG_DEADLINE_S - 5, 1)):
            os.write(fd, ("\n%s: no end after %.0f s; green threads:\n" % (request.node.nodeid,
                                                                          HANG_DEADLINE_S - 5)).encode())
            _dump_green_threads(fd)

    watcher = native.Thread(target=watch, name="hang-watchdog", daemon=True)
    watcher.start()
    faulthandler.dump_traceback_later(HANG_DEADLINE_S, exit=True, file=fd)
    yield
    done.set()
    watcher.join()
    # Armed again until the next test's setup: the teardown and setup of module and session fixtures.
    faulthandler.dump_traceback_later(HANG_DEADLINE_S, exit=True, file=fd)


def pytest_unconfigure(config):
    """A hang at interpreter exit (C++ static destructors, libvirt loop threads) is past faulthandler, which
    Python's finalisation stops: SIGALRM's default action ends the process instead (killed by signal 14)."""
    faulthandler.cancel_dump_traceback_later()  # it writes to the fd pytest's capture closes next
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(HANG_DEADLINE_S))


@pytest.fixture(scope="session")
def module_path():
    path = os.environ.get("IVD_MODULE_PATH")
    if not path:
        pytest.fail("IVD_MODULE_PATH is not set (CTest passes $<TARGET_FILE:iscsi_volume_driver>)")
    return path


@pytest.fixture(scope="session")
def private_dirs():
    base = tempfile.mkdtemp(prefix="ivd-py-state-")
    os.chmod(base, 0o700)
    yield {"state_dir": base + "/state", "lock_dir": base + "/locks"}
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def driver_config(private_dirs):
    return dict(private_dirs, path="network", initiator_name=INITIATOR, libvirt_uri=labs.URI,
                probe_timeout_ms="1000")


@pytest.fixture(scope="session")
def tgtd():
    lab = labs.TgtdLab()
    lab.open_tid = lab.create_target("open")
    lab.open_path, lab.open_head = lab.add_lun(lab.open_tid)
    lab.chap_tid = lab.create_target("chap")
    lab.chap_path, lab.chap_head = lab.add_lun(lab.chap_tid)
    lab.add_account(CHAP_USER, CHAP_PASSWORD)
    lab.bind_account(lab.chap_tid, CHAP_USER)
    lab.acl_tid = lab.create_target("acl", initiator_name=INITIATOR)
    lab.acl_path, lab.acl_head = lab.add_lun(lab.acl_tid)
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def libvirt_lab():
    lab = labs.LibvirtLab()
    yield lab
    lab.stop()


def connection_info(tgtd, which, volume_id, chap=False):
    data = {"target_portal": tgtd.portal, "target_iqn": tgtd.iqn(which), "target_lun": 1,
            "volume_id": "%s-%d" % (volume_id, os.getpid())}
    if chap:
        data.update(auth_method="CHAP", auth_username=CHAP_USER, auth_password=CHAP_PASSWORD)
    return {"driver_volume_type": "iscsi", "data": data}
