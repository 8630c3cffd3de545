"""The guest disk as the module wrote it, in a config object Nova cannot strip.

Nova rebuilds disks through LibvirtConfigGuestDisk, whose parse_dom drops <auth> inside <source>, secrets by
usage and <initiator>. ModuleDiskConfig parses the module's XML only so Nova's readers see the attributes
(target_dev, source_type, serial, driver_cache, ...), and emits the module's element verbatim. The one thing
Nova may change is the cache mode ([libvirt] disk_cachemodes, through _set_cache_mode): a changed driver_cache
or driver_io is written into <driver>, nothing else.
"""
import copy

from lxml import etree

from nova.virt.libvirt import config as vconfig


class ModuleDiskConfig(vconfig.LibvirtConfigGuestDisk):
    def __init__(self, disk_xml):
        super().__init__()
        self._verbatim = etree.fromstring(disk_xml)
        self.parse_dom(copy.deepcopy(self._verbatim))
        self._parsed_cache = self.driver_cache
        self._parsed_io = self.driver_io

    def format_dom(self):
        dom = copy.deepcopy(self._verbatim)
        changes = {}
        if self.driver_cache != self._parsed_cache and self.driver_cache:
            changes["cache"] = self.driver_cache
        if self.driver_io != self._parsed_io and self.driver_io:
            changes["io"] = self.driver_io
        if changes:
            drv = dom.find("driver")
            if drv is None:
                drv = etree.SubElement(dom, "driver")
            for k, v in changes.items():
                drv.set(k, v)
        return dom
