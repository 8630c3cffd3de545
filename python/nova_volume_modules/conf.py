"""Options of the Nova integration, and each module's create() config.

[libvirt]
  volume_drivers       TYPE=MODULE[,TYPE=MODULE...]; a bare MODULE is looked up in volume_driver_dir
  volume_driver_dir    default: the packaged driver directory (<libdir>/volume-drivers)
  volume_module_privsep  true (default): calls that change the host run in an oslo.privsep daemon
[volume_module_TYPE]   every key/value is handed to that module's create() as a JSON object of strings, as
                       volume-host hands its [TYPE] section; libvirt_uri defaults to [libvirt] connection_uri.
[volume_modules_privileged]  oslo.privsep's options for that daemon (helper_command, ...).
"""
import os

from oslo_config import cfg

import volume_driver

CONF = cfg.CONF

opts = [
    cfg.StrOpt("volume_drivers", default="",
               help="TYPE=MODULE[,TYPE=MODULE...]: the driver_volume_types served by volume driver modules "
                    "(libvirt_volume_modules.LibvirtDriver); every other type stays Nova's own."),
    cfg.StrOpt("volume_driver_dir", default=volume_driver.default_driver_dir(),
               help="Where a bare module name of volume_drivers is looked up."),
    cfg.BoolOpt("volume_module_privsep", default=True,
                help="Run the module calls that change the host (connect, disconnect, extend, cleanup) in an "
                     "oslo.privsep daemon, so nova-compute stays unprivileged."),
]
_registered = False


def register():
    global _registered
    if not _registered:
        CONF.register_opts(opts, group="libvirt")
        _registered = True


class VolumeModuleConfigError(Exception):
    """A volume_drivers entry that cannot be served; the message names the option."""


def parse_volume_drivers(text):
    """{type: module} from "TYPE=MODULE[,TYPE=MODULE...]"; errors name [libvirt] volume_drivers."""
    out = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        vtype, sep, module = (s.strip() for s in item.partition("="))
        if not sep or not vtype or not module:
            raise VolumeModuleConfigError("[libvirt] volume_drivers: %r is not TYPE=MODULE" % item)
        if vtype in out:
            raise VolumeModuleConfigError("[libvirt] volume_drivers: type %r is named twice" % vtype)
        out[vtype] = module
    return out


def _config_files():
    files = list(CONF.config_file or [])
    for d in CONF.config_dir or []:
        files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".conf"))
    return files


def module_section(vtype):
    """[volume_module_TYPE] as {key: value} (strings), read from Nova's own config files (later files win).
    The keys are the module's own (free-form), so they are read raw rather than registered as options."""
    section = "volume_module_%s" % vtype
    values = {}
    for path in _config_files():
        sections = {}
        cfg.ConfigParser(path, sections).parse()
        for key, vals in sections.get(section, {}).items():
            values[key] = vals[-1]
    values.setdefault("libvirt_uri", CONF.libvirt.connection_uri or "qemu:///system")
    return values
