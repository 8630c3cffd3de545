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


# ---- V1-COMPAT begins: only while modules speak ABI v1 (no disk_config). ------------------------------------
# A v1 connect needs a guest device, and Nova connects before it knows one: connect with this placeholder, then
# give the disk Nova's guest side here. Removed when every module speaks v2 (disk_config).
V1_PLACEHOLDER_DISK_INFO = {"dev": "sda", "bus": "scsi"}


def v1_retarget(disk_xml, disk_info):
    """The v1 disk_xml with Nova's target dev/bus and, on SCSI, the drive address unit (as Nova's own
    get_config sets it); <source> (auth, initiator, hosts) stays as the module wrote it."""
    dom = etree.fromstring(disk_xml)
    target = dom.find("target")
    if target is None:
        target = etree.SubElement(dom, "target")
    target.attrib.clear()
    target.set("dev", disk_info["dev"])
    target.set("bus", disk_info["bus"])
    for address in dom.findall("address"):
        dom.remove(address)
    if disk_info["bus"] == "scsi" and "unit" in disk_info:
        etree.SubElement(dom, "address", type="drive", controller="0", bus="0", target="0",
                         unit=str(disk_info["unit"]))
    return etree.tostring(dom, encoding="unicode")
# ---- V1-COMPAT ends. ------------------------------------------------------------------------------------------
