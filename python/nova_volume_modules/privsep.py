"""The oslo.privsep daemon that runs the module calls which change the host (JSON in, JSON out).

Each daemon keeps one loaded module and driver handle per (module path, config); errors come back as
{"error": {...last_error fields...}} and are raised again as VolumeDriverError on the unprivileged side.
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


def _driver(module_path, config_json):
    with _lock:
        key = (module_path, config_json)
        if key not in _drivers:
            module = volume_driver.load(module_path, logger=logging.getLogger("nova_volume_modules.privileged"))
            _drivers[key] = module.create(json.loads(config_json))
        return _drivers[key]


@vm_pctxt.entrypoint
def module_call(module_path, config_json, call, args_json):
    """Runs driver.<call>(*args, **kwargs) as root. Only the calls in CALLS; returns JSON text."""
    if call not in CALLS:
        return json.dumps({"error": {"status": 1, "code": "invalid_argument", "message": "call %r is not "
                                     "allowed through privsep" % call, "argument": "call", "field": ""}})
    args, kwargs = json.loads(args_json)
    try:
        result = getattr(_driver(module_path, config_json), call)(*args, **kwargs)
    except volume_driver.VolumeDriverError as e:
        return json.dumps({"error": e.as_dict()})
    return json.dumps({"result": result, "pid": os.getpid(), "uid": os.getuid()})
