"""Fixtures for the binding and Nova tests: the built module (IVD_MODULE_PATH, set by CTest), a private tgtd,
the shared libvirtd with a persistent TCG domain of our own."""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the source tree's packages (volume_driver, nova_volume_modules)
sys.path.insert(0, HERE)

import labs  # noqa: E402

INITIATOR = "iqn.1993-08.org.debian:01:ivd-py"
CHAP_USER = "py-user"
CHAP_PASSWORD = "Pw-py-4d2e8b"  # recognisable: the tests look for it in logs


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
