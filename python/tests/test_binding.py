"""The volume_driver binding against the built module, on real tgtd + libvirtd + QEMU."""
import ctypes
import json
import logging
import os
import subprocess
import threading

import pytest

import volume_driver
from volume_driver import _abi
from conftest import CHAP_PASSWORD, INITIATOR, connection_info


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail("%s is not set (CTest sets it; see tests/python/CMakeLists.txt)" % name)
    return value


@pytest.fixture(scope="module")
def module(module_path):
    return volume_driver.load(module_path)


@pytest.fixture()
def driver(module, driver_config):
    with module.create(driver_config) as d:
        yield d


def test_negotiation_by_path_and_bare_name(module_path):
    by_path = volume_driver.load(module_path)
    assert by_path.abi_version == 2
    assert by_path.driver_name == "iscsi"
    assert "iscsi" in by_path.volume_types
    by_name = volume_driver.load(os.path.basename(module_path), driver_dir=os.path.dirname(module_path))
    assert by_name.path == by_path.path
    assert by_name.abi_version == by_path.abi_version


def test_bare_name_defaults_to_the_packaged_directory():
    assert volume_driver.resolve_path("x.so") == os.path.join(volume_driver.default_driver_dir(), "x.so")
    assert volume_driver.default_driver_dir().endswith("/volume-drivers")


def test_load_errors_name_the_module(tmp_path):
    with pytest.raises(volume_driver.LoadError) as e:
        volume_driver.load("no_such_driver.so", driver_dir=str(tmp_path))
    assert e.value.code == "driver_not_found" and "no_such_driver.so" in e.value.message
    with pytest.raises(volume_driver.LoadError) as e:
        volume_driver.load("/lib/x86_64-linux-gnu/libm.so.6")
    assert e.value.code == "not_a_driver" and "volume_driver_negotiate" in e.value.message
    bad = tmp_path / "garbage.so"
    bad.write_bytes(b"not an ELF")
    with pytest.raises(volume_driver.LoadError) as e:
        volume_driver.load(str(bad))
    assert e.value.code == "dlopen_failed"


def test_connector_properties(driver):
    c = driver.connector_properties()
    assert c["initiator"] == INITIATOR
    assert c["multipath"] is False  # no multipathd on this host


def test_errors_carry_status_code_argument_and_field(driver):
    ci = {"driver_volume_type": "iscsi", "data": {"target_portal": "127.0.0.1:notaport", "target_iqn": "iqn.2003-01.x:y",
                                                  "target_lun": 1}}
    with pytest.raises(volume_driver.VolumeDriverError) as e:
        driver.connect_volume(ci, {}, {"dev": "sdb"})
    err = e.value
    assert (err.status, err.code, err.argument, err.field) == (1, "invalid_argument", "connection_info",
                                                             "data.target_portal")
    assert "port" in err.message and err.call == "connect_volume"


def test_create_error_names_the_config_field(module):
    with pytest.raises(volume_driver.VolumeDriverError) as e:
        module.create({"path": "sideways"})
    assert e.value.status == 5 and e.value.argument == "config" and e.value.field == "path"


def test_ctypes_mirror_matches_the_header():
    layout = json.loads(subprocess.run([_env("IVD_ABI_LAYOUT")], check=True, capture_output=True,
                                       text=True).stdout)
    assert layout["versions"] == [_abi.VD_ABI_VERSION_1, _abi.VD_ABI_VERSION_2]
    for name, struct in (("vd_host_table", _abi.HostTable), ("vd_driver_table", _abi.DriverTableV2)):
        members = {m: [getattr(struct, m).offset, getattr(struct, m).size] for m, _ in struct._fields_}
        members["_size"] = [0, ctypes.sizeof(struct)]
        assert members == layout[name], name


def test_a_v1_module_negotiates_v1_and_refuses_v2_calls_without_emulation():
    v1 = volume_driver.load(_env("IVD_V1_MODULE_PATH"))
    assert v1.abi_version == 1 and not v1.has("cleanup") and not v1.has("disk_config")
    with v1.create({}) as d:
        assert d.connector_properties()["initiator"]
        with pytest.raises(volume_driver.NotSupportedByModule) as e:
            d.disk_config({"driver_volume_type": "iscsi", "data": {}}, {}, {"dev": "sdb"})
        assert e.value.status == 3 and "ABI v2" in e.value.message
        with pytest.raises(volume_driver.NotSupportedByModule):
            d.extend_volume({"driver_volume_type": "iscsi", "data": {}}, {})
        with pytest.raises(volume_driver.NotSupportedByModule):
            d.cleanup()
    returned, freed = v1.string_stats()
    assert returned == freed > 0


def test_closed_driver_refuses_calls(module, driver_config):
    d = module.create(driver_config)
    d.close()
    with pytest.raises(volume_driver.DriverClosed):
        d.connector_properties()
    d.close()  # idempotent


def test_cleanup_dry_run(driver):
    report = driver.cleanup(dry_run=True)
    assert report["dry_run"] is True and "items" in report


def _attach_and_read(driver, libvirt_lab, ci, dev, head, while_attached=None):
    connector = driver.connector_properties()
    device_info = driver.connect_volume(ci, connector)  # no guest
    disk_xml = driver.disk_config(ci, device_info, {"dev": dev, "bus": "scsi"})
    libvirt_lab.dom.attachDeviceFlags(disk_xml, 1)  # VIR_DOMAIN_AFFECT_LIVE
    try:
        assert libvirt_lab.read_bytes(dev, 0, len(head)) == head
        if while_attached:
            while_attached()
    finally:
        libvirt_lab.dom.detachDeviceFlags(disk_xml, 1)
        driver.disconnect_volume(ci, device_info)


def test_connect_attach_read_disconnect(driver, tgtd, libvirt_lab):
    _attach_and_read(driver, libvirt_lab, connection_info(tgtd, "open", "bind-open"), "sdb", tgtd.open_head)


def test_chap_volume_leaves_no_secret(driver, tgtd, libvirt_lab, caplog):
    caplog.set_level(logging.DEBUG)
    ci = connection_info(tgtd, "chap", "bind-chap", chap=True)
    volume_id = ci["data"]["volume_id"]
    seen = []
    _attach_and_read(driver, libvirt_lab, ci, "sdc", tgtd.chap_head,
                     while_attached=lambda: seen.extend(libvirt_lab.secrets_for(volume_id)))
    assert seen, "no secret named after the volume while attached: the check below would prove nothing"
    assert libvirt_lab.secrets_for(volume_id) == []
    assert CHAP_PASSWORD not in caplog.text


def test_every_returned_string_is_freed(module, driver_config, tgtd, libvirt_lab):
    real_free = module.fn["free_string"]
    seen = []
    module.fn["free_string"] = lambda address: (seen.append(address), real_free(address))
    try:
        returned0, freed0 = module.string_stats()
        with module.create(driver_config) as d:
            d.connector_properties()
            with pytest.raises(volume_driver.VolumeDriverError):
                d.connect_volume({"driver_volume_type": "iscsi", "data": {}}, {}, {"dev": "sdb"})
            _attach_and_read(d, libvirt_lab, connection_info(tgtd, "open", "bind-free"), "sdd", tgtd.open_head)
            d.cleanup(dry_run=True)
        returned, freed = module.string_stats()
    finally:
        module.fn["free_string"] = real_free
    assert returned - returned0 == freed - freed0 == len(seen) >= 3
    assert all(seen)


def test_many_threads_each_see_their_own_error(driver):
    # Different bad fields per thread: last_error() must be read on the failing thread, right after the call.
    cases = [("target_portal", "127.0.0.1:notaport", "data.target_portal"),
             ("target_lun", -1, "data.target_lun"),
             ("target_iqn", "not-an-iqn", "data.target_iqn")]
    failures = []

    def worker(i):
        key, value, field = cases[i % len(cases)]
        data = {"target_portal": "127.0.0.1:3260", "target_iqn": "iqn.2003-01.org.x:y", "target_lun": 1, key: value}
        for _ in range(50):
            try:
                driver.connector_properties()
                driver.connect_volume({"driver_volume_type": "iscsi", "data": data}, {}, {"dev": "sdb"})
                failures.append("no error")
            except volume_driver.VolumeDriverError as e:
                if e.field != field:
                    failures.append("%s != %s" % (e.field, field))
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_log_lines_reach_python_logging_and_a_raising_handler_is_contained(module_path, driver_config):
    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(record)
            raise RuntimeError("a broken handler")

    logger = logging.getLogger("test.volume_driver.bridge")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Capture()
    handler.handleError = lambda record: (_ for _ in ()).throw(RuntimeError("still raising"))
    logger.addHandler(handler)
    try:
        mod = volume_driver.load(module_path, logger=logger)
        with mod.create(driver_config) as d:
            d.connector_properties()
    finally:
        logger.removeHandler(handler)
    assert records, "no driver log line reached Python logging"
    assert any("[host_facts]" in r.getMessage() or "[libvirt]" in r.getMessage() for r in records)


def test_the_acl_target_refuses_another_initiator(module, driver_config, tgtd):
    """The fixture's ACL is real: the Nova test's ACL volume proves the initiator survived into QEMU."""
    other = dict(driver_config, initiator_name="iqn.1993-08.org.debian:01:someone-else")
    with module.create(other) as d:
        with pytest.raises(volume_driver.VolumeDriverError) as e:
            d.connect_volume(connection_info(tgtd, "acl", "bind-acl"), d.connector_properties())
    assert e.value.code in ("not_found", "unreachable", "auth")
