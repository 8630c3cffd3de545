"""The oslo.privsep daemon that runs the module calls which change the host (JSON in, JSON out).

The unprivileged side names only a driver_volume_type and a call: which module is loaded as root, and with which
config, the daemon reads from nova.conf itself (privsep-helper is started with nova-compute's --config-file), so
a compromised nova-compute cannot make root dlopen a file of its choosing. Each daemon keeps one loaded module
and driver handle per type; errors come back as {"error": {...last_error fields...}} and are raised again as
VolumeDriverError on the unprivileged side.
"""
import json
import logging
import os
import threading

from oslo_privsep import capabilities
from oslo_privsep import priv_context

import volume_driver

vm_pctxt = priv_context.PrivContext(
    "nova_volume_modules",
    cfg_section="volume_modules_privileged",
    pypath=__name__ + ".vm_pctxt",
    capabilities=[capabilities.CAP_CHOWN, capabilities.CAP_DAC_OVERRIDE, capabilities.CAP_DAC_READ_SEARCH,
                  capabilities.CAP_FOWNER, capabilities.CAP_NET_ADMIN, capabilities.CAP_SYS_ADMIN],
)

CALLS = ("connect_volume", "disconnect_volume", "extend_volume", "cleanup", "connector_properties")
_lock = threading.Lock()
_drivers = {}


def _driver(vtype):
    """The driver serving `vtype` as this daemon's own nova.conf configures it."""
    with _lock:
        if vtype not in _drivers:
            import nova.conf  # noqa: F401  Nova's options ([libvirt] connection_uri), as nova-compute has them
            from . import conf
            conf.register()
            modules = conf.parse_volume_drivers(conf.CONF.libvirt.volume_drivers)
            if vtype not in modules:
                raise volume_driver.VolumeDriverError(
                    1, "invalid_argument", "driver_volume_type %r is not served by [libvirt] volume_drivers in "
                    "the privileged daemon's config" % vtype, "vtype", "", call="privsep")
            module = volume_driver.load(modules[vtype], conf.CONF.libvirt.volume_driver_dir,
                                        logger=logging.getLogger("nova_volume_modules.privileged"))
            _drivers[vtype] = module.create(conf.module_section(vtype))
        return _drivers[vtype]


@vm_pctxt.entrypoint
def module_call(vtype, call, args_json):
    """Runs driver.<call>(*args, **kwargs) as root for the module nova.conf names for `vtype`. Only the calls in
    CALLS; returns JSON text."""
    if call not in CALLS:
        return json.dumps({"error": {"status": 1, "code": "invalid_argument", "message": "call %r is not "
                                     "allowed through privsep" % call, "argument": "call", "field": ""}})
    try:
        args, kwargs = json.loads(args_json)
        result = getattr(_driver(vtype), call)(*args, **kwargs)
    except volume_driver.VolumeDriverError as e:
        return json.dumps({"error": e.as_dict()})
    return json.dumps({"result": result, "pid": os.getpid(), "uid": os.getuid()})
