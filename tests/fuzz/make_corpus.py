#!/usr/bin/env python3
"""Writes the seed corpus under tests/fuzz/corpus/<target>/ (run from anywhere; rewrites the seeds it owns).

Connect seeds are "connection_info\\0connector\\0disk_info"; disconnect seeds "connection_info\\0device_info\\0flags".
The passwords here are made up for the corpus and protect nothing.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
IQN = "iqn.2010-10.org.openstack:volume-7d1c2a5e"
VOL = "7d1c2a5e-1b2c-4d3e-8f90-0123456789ab"


def ci(**data):
    return {"driver_volume_type": "iscsi", "data": data}


CONNECTION_INFOS = {
    "single": ci(target_portal="192.0.2.1:3260", target_iqn=IQN, target_lun=1, volume_id=VOL,
                 access_mode="rw", encrypted=False, discard=False),
    "single_chap": ci(target_portal="192.0.2.1:3260", target_iqn=IQN, target_lun=0, volume_id=VOL,
                      auth_method="CHAP", auth_username="cinder-user", auth_password="corpus#pass!0001",
                      discovery_auth_method="CHAP", discovery_auth_username="disc-user",
                      discovery_auth_password="corpus#pass!0002"),
    "lists": ci(target_portals=["192.0.2.1:3260", "192.0.2.2:3260", "192.0.2.3"],
                target_iqns=[IQN + "-a", IQN + "-b", IQN + "-c"], target_luns=[1, 2, 3],
                target_portal="192.0.2.1:3260", target_iqn=IQN + "-a", target_lun=1, volume_id=VOL),
    "lists_one_iqn": ci(target_portals=["192.0.2.1:3260", "192.0.2.2:3261"], target_iqn=IQN, target_lun=5,
                        volume_id=VOL, auth_method="CHAP", auth_username="u", auth_password="corpus#pass!0003"),
    "ipv6": ci(target_portals=["[2001:db8::1]:3260", "[fe80::1]", "2001:db8::2"],
               target_iqns=[IQN, IQN, IQN], target_luns=[0, 0, 0], volume_id=VOL),
    "qos": ci(target_portal="storage.example.com:3260", target_iqn=IQN, target_lun=16383, volume_id=VOL,
              access_mode="ro", discard=True,
              qos_specs={"total_bytes_sec": "104857600", "read_iops_sec": 500, "write_iops_sec": "250",
                         "size_iops_sec": "4096", "consumer": "front-end"}),
    "eui_naa": ci(target_portals=["192.0.2.1", "192.0.2.2"],
                  target_iqns=["eui.0123456789ABCDEF", "naa.60014055f0a1b2c3d4e5f60718293a4b"],
                  target_luns=[0, 1]),
    "nulls": ci(target_portal="192.0.2.1:3260", target_iqn=IQN, target_lun=1, volume_id=None, auth_method=None,
                qos_specs=None, target_portals=None),
    "hostile_names": ci(target_portal="192.0.2.1:3260", target_iqn="iqn.2010-10.org.x:a'\"<b>&c", target_lun=1,
                        volume_id="v'1\"<x/>&"),
}

CONNECTORS = {
    "plain": {"initiator": "iqn.1993-08.org.debian:01:compute-1", "ip": "192.0.2.10", "host": "compute-1",
              "multipath": False, "platform": "x86_64", "os_type": "linux", "do_local_attach": False},
    "multipath": {"initiator": "iqn.1993-08.org.debian:01:compute-1", "ip": "2001:db8::10", "host": "compute-1",
                  "multipath": True, "wwpns": None, "nqn": "nqn.2014-08.org.nvmexpress:uuid:1"},
    "no_initiator": {"host": "compute-1", "multipath": False},
}

DISKS = {
    "scsi": {"bus": "scsi", "dev": "sdb", "type": "disk"},
    "virtio": {"bus": "virtio", "dev": "vdc"},
    "dev_only": {"dev": "hdz"},
    "empty": {},
}


def dump(v):
    return json.dumps(v, separators=(",", ":")).encode()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for cname, c in CONNECTION_INFOS.items():
        for kname, k in CONNECTORS.items():
            for dname, d in DISKS.items():
                if kname != "plain" and dname != "scsi":
                    continue  # enough combinations for the mutator to cross over
                write("fuzz_connect", f"{cname}-{kname}-{dname}", dump(c) + b"\0" + dump(k) + b"\0" + dump(d))
    write("fuzz_connect", "null_disk_info", dump(CONNECTION_INFOS["single"]) + b"\0" + dump(CONNECTORS["plain"]))

    network_info = {"type": "network", "protocol": "iscsi", "secret_usage": "iscsi-volume-driver:" + VOL,
                    "secret_uuid": "00000000-0000-4000-8000-000000000001", "auth_username": "cinder-user",
                    "portal": "192.0.2.1:3260", "target_iqn": IQN, "target_lun": 0, "dev": "sdb", "bus": "scsi",
                    "disk_xml": "<disk type='network' device='disk'/>", "driver": "iscsi", "volume_id": VOL}
    block_info = {"type": "block", "path": "/dev/dm-0", "dev": "sdb", "bus": "scsi",
                  "disk_xml": "<disk type='block' device='disk'/>", "multipath_id": "3600140550f0a1b2c3d4e5f6"}
    for cname in ("single", "single_chap", "lists", "ipv6"):
        c = dump(CONNECTION_INFOS[cname])
        write("fuzz_disconnect", f"{cname}-network", c + b"\0" + dump(network_info) + b"\0\0")
        write("fuzz_disconnect", f"{cname}-block", c + b"\0" + dump(block_info) + b"\0\1")
        write("fuzz_disconnect", f"{cname}-lost", c + b"\0" + b"{}" + b"\0\2")
    write("fuzz_disconnect", "foreign_usage",
          dump(CONNECTION_INFOS["single_chap"]) + b"\0" + dump(dict(network_info, secret_usage="other:x")))
    write("fuzz_disconnect", "null_device_info", dump(CONNECTION_INFOS["single"]))

    configs = {
        "ini_strings": {"path": "auto", "enforce_multipath": "false", "probe_portals": "true",
                        "probe_timeout_ms": "3000", "disk_cache": "none", "disk_io": "native",
                        "libvirt_uri": "qemu:///system"},
        "native": {"path": "network", "probe_portals": False, "probe_timeout_ms": 50, "disk_cache": "writeback",
                   "disk_io": "threads", "qemu_iscsi": True, "host_multipath": "auto"},
        "host_path": {"path": "host", "enforce_multipath": "yes", "iscsiadm_path": "/usr/sbin/iscsiadm",
                      "sysfs_root": "/sys", "device_wait_timeout_ms": "20000", "keep_chap_in_node_record": "off",
                      "host_iscsi": "auto", "initiator_name": "iqn.1993-08.org.debian:01:abc"},
        "unknown_keys": {"frobnicate": "1", "path": "auto"},
        "empty": {},
    }
    for name, c in configs.items():
        write("fuzz_create", name, dump(c))
    write("fuzz_create", "null_literal", b"null")

    inis = {
        "readme": b"""[DEFAULT]
# type=module[,type=module]; a bare file name is looked up in volume_driver_dir
volume_drivers = iscsi=iscsi_volume_driver.so
# volume_driver_dir = /usr/lib/x86_64-linux-gnu/volume-drivers

[libvirt]
connection_uri = qemu:///system

[iscsi]
path = auto
enforce_multipath = false
probe_portals = true        ; inline comment
probe_timeout_ms = 3000
disk_cache = none
disk_io = native
""",
        "two_drivers": b"[DEFAULT]\nvolume_drivers = iscsi=/opt/d/iscsi.so, rbd = rbd.so ,\nvolume_driver_dir=/opt/d\n",
        "duplicate_key": b"[iscsi]\npath = auto\npath = host\n",
        "bad_mapping": b"[DEFAULT]\nvolume_drivers = iscsi\n",
        "continuation": b"[iscsi]\nlibvirt_uri = qemu:///system\n  continued line\n",
        "crlf": b"[DEFAULT]\r\nvolume_drivers = iscsi=x.so\r\n",
        "no_section": b"volume_drivers = iscsi=x.so\n",
    }
    for name, text in inis.items():
        write("fuzz_ini", name, text)


if __name__ == "__main__":
    main()
