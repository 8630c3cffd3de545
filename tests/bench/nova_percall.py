#!/usr/bin/python3
"""The per-call work of the network-disk connect done with nova's own Python objects (python3-nova), for the
same input as ivd_bench percall: json.loads, then LibvirtConfigGuestDisk and LibvirtConfigSecret filled as nova's
volume drivers fill them (nova/virt/libvirt/volume/{volume,net}.py, host.py create_secret), then to_xml().
Per-call times in one Python process; prints one JSON document like ivd_bench.

  nova_percall.py --input FILE [--seconds N]
"""
import argparse
import json
import statistics
import sys
import time

from nova.virt.libvirt import config as vconfig


def one_call(text):
    connection_info = json.loads(text)
    data = connection_info['data']
    disk_info = {'bus': 'scsi', 'dev': 'sdb', 'type': 'disk'}
    # LibvirtBaseVolumeDriver.get_config
    conf = vconfig.LibvirtConfigGuestDisk()
    conf.source_device = disk_info['type']
    conf.driver_format = 'raw'
    conf.driver_cache = 'none'
    conf.target_dev = disk_info['dev']
    conf.target_bus = disk_info['bus']
    conf.serial = data.get('volume_id')
    conf.driver_name = 'qemu'
    if data.get('qos_specs'):
        pass
    if data.get('access_mode'):
        conf.readonly = data['access_mode'] == 'ro'
    if data.get('discard', False) is True:
        conf.driver_discard = 'unmap'
    conf.driver_io = 'native'
    # LibvirtNetVolumeDriver._get_net_config for protocol iscsi (first portal; no probing)
    conf.source_type = 'network'
    conf.source_protocol = connection_info['driver_volume_type']
    portal = data['target_portals'][0] if data.get('target_portals') else data['target_portal']
    host, _, port = portal.rpartition(':')
    iqn = data['target_iqns'][0] if data.get('target_iqns') else data['target_iqn']
    lun = data['target_luns'][0] if data.get('target_luns') else data.get('target_lun', 0)
    conf.source_name = '%s/%s' % (iqn, lun)
    conf.source_hosts = [host]
    conf.source_ports = [port]
    secret_xml = None
    if data.get('auth_method') == 'CHAP':
        # Host.create_secret('iscsi', usage_id, password)
        secret_conf = vconfig.LibvirtConfigSecret()
        secret_conf.ephemeral = False
        secret_conf.private = False
        secret_conf.usage_id = 'iscsi-volume-driver:' + data['volume_id']
        secret_conf.uuid = None
        secret_conf.usage_type = 'iscsi'
        secret_xml = secret_conf.to_xml()
        conf.auth_username = data['auth_username']
        conf.auth_secret_type = 'iscsi'
        conf.auth_secret_uuid = '00000000-0000-4000-8000-000000000001'
    return conf.to_xml(), secret_xml


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--input', required=True)
    p.add_argument('--seconds', type=float, default=2.0)
    p.add_argument('--min-calls', type=int, default=5000)
    a = p.parse_args()
    text = open(a.input).read().strip()
    for _ in range(2000):
        disk_xml, secret_xml = one_call(text)
    samples = []
    clock = time.perf_counter_ns
    end = clock() + int(a.seconds * 1e9)
    while clock() < end or len(samples) < a.min_calls:
        t0 = clock()
        one_call(text)
        samples.append((clock() - t0) / 1000.0)
    samples.sort()
    n = len(samples)

    def q(x):
        return samples[min(n - 1, int(round(x * (n - 1))))]
    out = {
        'bench': 'percall_nova', 'unit': 'us', 'calls': n, 'python': sys.version.split()[0],
        'connect_us': {'n': n, 'median': statistics.median(samples), 'p99': q(0.99), 'p01': q(0.01),
                       'min': samples[0], 'max': samples[-1], 'mean': sum(samples) / n},
        'disk_xml_bytes': len(disk_xml), 'secret_xml_bytes': len(secret_xml or ''),
    }
    print(json.dumps(out))


if __name__ == '__main__':
    main()
