"""One loaded module for nova-compute: where and how each of its calls runs.

No call blocks the eventlet hub: an in-process ctypes call runs in eventlet.tpool (it would otherwise stall every
green thread for its whole duration); a privsep call waits on the daemon's socket, which is green under Nova's
monkey patching, so it is made from the green thread itself (privsep's client is green: calling it from a tpool
thread deadlocks). Calls that change the host go through the privsep daemon when volume_module_privsep is on;
pure calls (connector_properties, disk_config) run in nova-compute's own process.
"""
import json
import logging

from eventlet import tpool

import volume_driver

from . import privsep

LOG = logging.getLogger(__name__)


class ModuleRunner:
    def __init__(self, vtype, module_name, driver_dir, config, privileged):
        self.vtype = vtype
        self.module = volume_driver.load(module_name, driver_dir,
                                         logger=logging.getLogger("nova_volume_modules.module.%s" % vtype))
        if vtype not in self.module.volume_types:
            raise volume_driver.LoadError("wrong_type", "%s serves %s, not %r" % (
                self.module.path, ",".join(self.module.volume_types) or "nothing", vtype), self.module.path)
        if self.module.abi_version < 2:
            # Nova connects before it knows the guest device and asks for the disk afterwards (disk_config).
            raise volume_driver.LoadError("version_refused", "%s speaks ABI v%d; Nova needs ABI v2 (connect "
                                          "without a guest, disk_config)" % (self.module.path,
                                                                             self.module.abi_version),
                                          self.module.path, status=2)
        self.config = config
        self.driver = self.module.create(config)  # a bad config fails here, at service start
        self.privileged = privileged
        self.last_privsep_pid = None

    @property
    def abi_version(self):
        return self.module.abi_version

    def local(self, call, *args, **kwargs):
        return tpool.execute(getattr(self.driver, call), *args, **kwargs)

    def host(self, call, *args, **kwargs):
        """A call that changes the host: through privsep (JSON in, JSON out) or in-process."""
        if not self.privileged:
            return self.local(call, *args, **kwargs)
        text = privsep.module_call(self.vtype, call, json.dumps([args, kwargs]))
        reply = json.loads(text)
        if "error" in reply:
            e = reply["error"]
            raise volume_driver.VolumeDriverError(e.get("status", 12), e.get("code"), e.get("message"),
                                                  e.get("argument"), e.get("field"), call=call)
        self.last_privsep_pid = reply.get("pid")
        return reply["result"]
