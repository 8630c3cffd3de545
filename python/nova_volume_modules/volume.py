"""One LibvirtBaseVolumeDriver for every driver_volume_type served by a module."""
from oslo_log import log as logging

from nova.virt.libvirt.volume import volume as libvirt_volume

import volume_driver

from . import disk_config

LOG = logging.getLogger(__name__)

# Where device_info lives: Nova saves connection_info (data included) with the block device mapping, so a
# detach after a nova-compute restart still has it.
DEVICE_INFO_KEY = "volume_module_device_info"


def module_connection_info(connection_info):
    """connection_info as the module should see it: without our own saved device_info."""
    data = {k: v for k, v in connection_info.get("data", {}).items() if k != DEVICE_INFO_KEY}
    return dict(connection_info, data=data)


def guest_disk_info(disk_info):
    """The guest side Nova chose, in the keys disk_config takes (issue 15 item 4)."""
    keys = ("dev", "bus", "type", "unit", "boot_index")
    return {k: disk_info[k] for k in keys if k in disk_info and disk_info[k] is not None}


class LibvirtModuleVolumeDriver(libvirt_volume.LibvirtBaseVolumeDriver):
    def __init__(self, host, runner):
        super().__init__(host, is_block_dev=False)
        self.runner = runner

    def connect_volume(self, connection_info, instance):
        ci = module_connection_info(connection_info)
        connector = self.runner.local("connector_properties")
        device_info = self.runner.host("connect_volume", ci, connector, None)  # no guest yet
        connection_info.setdefault("data", {})[DEVICE_INFO_KEY] = device_info
        LOG.debug("volume connected through module %s", self.runner.module.path, instance=instance)

    def get_config(self, connection_info, disk_info):
        device_info = connection_info.get("data", {}).get(DEVICE_INFO_KEY)
        if device_info is None:
            raise volume_driver.VolumeDriverError(1, "invalid_argument", "connection_info has no %s: the volume "
                                                  "was not connected through this module" % DEVICE_INFO_KEY,
                                                  "connection_info", "data." + DEVICE_INFO_KEY, call="get_config")
        xml = self.runner.local("disk_config", module_connection_info(connection_info), device_info,
                                guest_disk_info(disk_info))
        return disk_config.ModuleDiskConfig(xml)

    def disconnect_volume(self, connection_info, instance, force=False):
        device_info = connection_info.get("data", {}).get(DEVICE_INFO_KEY)
        self.runner.host("disconnect_volume", module_connection_info(connection_info), device_info, force=force)

    def extend_volume(self, connection_info, instance, requested_size):
        device_info = connection_info.get("data", {}).get(DEVICE_INFO_KEY)
        try:
            return self.runner.host("extend_volume", module_connection_info(connection_info), device_info)
        except volume_driver.NotSupportedByModule:
            raise NotImplementedError()
        except volume_driver.VolumeDriverError as e:
            if e.status == 3:  # VD_E_NOT_IMPLEMENTED from the module (or privsep side)
                raise NotImplementedError()
            raise
