"""nova.virt.libvirt_volume_modules.LibvirtDriver: Nova's LibvirtDriver, with the driver_volume_types named in
[libvirt] volume_drivers served by volume driver modules."""
from oslo_log import log as logging

from nova import exception
from nova.virt.libvirt import driver as libvirt_driver

import volume_driver

from . import conf
from .runner import ModuleRunner
from .volume import LibvirtModuleVolumeDriver

LOG = logging.getLogger(__name__)
CONF = conf.CONF


def load_runners():
    """{type: ModuleRunner} for [libvirt] volume_drivers; a missing or broken module fails here (service
    start), with an error naming the option."""
    conf.register()
    runners = {}
    for vtype, module_name in conf.parse_volume_drivers(CONF.libvirt.volume_drivers).items():
        try:
            runners[vtype] = ModuleRunner(vtype, module_name, CONF.libvirt.volume_driver_dir,
                                          conf.module_section(vtype), CONF.libvirt.volume_module_privsep)
        except volume_driver.VolumeDriverError as e:
            raise exception.InvalidConfiguration(
                "[libvirt] volume_drivers: %s=%s (config [volume_module_%s]): %s" % (vtype, module_name, vtype, e))
    return runners


class LibvirtDriver(libvirt_driver.LibvirtDriver):
    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        try:
            runners = load_runners()
        except conf.VolumeModuleConfigError as e:
            raise exception.InvalidConfiguration(str(e))
        self.volume_module_runners = runners
        self.module_volume_drivers = {t: LibvirtModuleVolumeDriver(self._host, r) for t, r in runners.items()}
        for vtype, r in runners.items():
            LOG.info("driver_volume_type %s served by %s (%s %s, ABI v%d%s)", vtype, r.module.path,
                     r.module.driver_name, r.module.driver_version, r.abi_version,
                     ", privsep" if r.privileged else "")

    def _get_volume_driver(self, connection_info):
        drv = self.module_volume_drivers.get(connection_info.get("driver_volume_type"))
        return drv if drv is not None else super()._get_volume_driver(connection_info)

    def get_volume_connector(self, instance):
        """Nova's (os-brick's) connector, with the module's initiator and multipath: the module says
        multipath=True only when its host path can really multipath, which is what Cinder must see."""
        props = super().get_volume_connector(instance)
        for vtype, runner in self.volume_module_runners.items():
            mine = runner.local("connector_properties")
            for key in ("initiator", "multipath"):
                if key in mine:
                    props[key] = mine[key]
        return props

    def init_host(self, host):
        super().init_host(host)
        for vtype, runner in self.volume_module_runners.items():
            if not runner.module.has("cleanup"):
                LOG.info("volume module %s has no cleanup", runner.module.path)
                continue
            try:
                report = runner.host("cleanup")
            except volume_driver.VolumeDriverError as e:
                LOG.warning("cleanup of volume module %s (type %s) failed: %s", runner.module.path, vtype, e)
                continue
            LOG.info("cleanup of volume module %s (type %s): found %s, removed %s, kept %s, failed %s",
                     runner.module.path, vtype, report.get("found"), report.get("removed"), report.get("kept"),
                     report.get("failed"))
            for part in report.get("not_scanned") or []:
                # A partial cleanup: that part was not looked at (e.g. libvirt unreachable); nothing of it touched.
                LOG.warning("cleanup of volume module %s (type %s) did not scan the %s path: %s",
                            runner.module.path, vtype, part.get("path"), part.get("reason"))
