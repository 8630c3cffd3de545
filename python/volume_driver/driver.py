"""A driver instance: the calls of the driver table, with JSON as dicts and errors as exceptions."""
import ctypes
import json
import threading
import weakref

from . import _abi, _logbridge
from .errors import DriverClosed, NotSupportedByModule
from .module import error_from


def _json_arg(value):
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        return value.encode("utf-8") if isinstance(value, str) else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _destroy(destroy_fn, handle):
    destroy_fn(handle)


class Driver:
    """One driver handle (create() ... destroy()). Usable from many threads at once: the driver serialises calls
    for the same volume itself. close() waits for calls in flight, then destroys the handle; a Driver still open
    at interpreter exit is destroyed then (so no driver thread calls into a finalising interpreter)."""

    def __init__(self, module, config, logger=None):
        self.module = module
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closed = False
        handle = _abi.vd_driver_p()
        cfg = _json_arg(config)
        # A v2 module logs each handle through the host table create_for_host hands it.
        create_for_host = module.fn.get("create_for_host") if module.abi_version >= 2 else None
        if create_for_host:
            self._host = _logbridge.host_table(_logbridge.register(logger) if logger else module._log_key)
            rc = create_for_host(ctypes.byref(self._host), cfg, ctypes.byref(handle))
        else:
            rc = module.fn["create"](cfg, ctypes.byref(handle))
        if rc != _abi.VD_OK:
            raise error_from(rc, module.last_error("create"), "create")
        self._handle = handle
        self._finalizer = weakref.finalize(self, _destroy, module.fn["destroy"], handle)

    # ---- plumbing ---------------------------------------------------------------------------------------------
    def _enter(self, call):
        with self._cond:
            if self._closed:
                raise DriverClosed(call)
            self._in_flight += 1

    def _leave(self):
        with self._cond:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._cond.notify_all()

    def _call(self, call, *args, returns=True):
        """Calls slot `call`; on failure reads last_error() on this thread at once and raises."""
        fn = self.module.fn.get(call)
        if fn is None:
            raise NotSupportedByModule(call, "%s (ABI v%d) does not implement %s"
                                       % (self.module.path, self.module.abi_version, call))
        self._enter(call)
        try:
            out = ctypes.c_void_p()
            rc = fn(self._handle, *args, ctypes.byref(out)) if returns else fn(self._handle, *args)
            if rc != _abi.VD_OK:
                err = self.module.last_error(call)  # before anything else can call into the driver here
                self.module.take_string(out)  # a driver should leave it NULL; never leak it if not
                raise error_from(rc, err, call)
            return self.module.take_string(out) if returns else None
        finally:
            self._leave()

    def close(self):
        with self._cond:
            self._closed = True
            while self._in_flight:
                self._cond.wait()
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def abi_version(self):
        return self.module.abi_version

    @property
    def has_disk_config(self):
        return self.module.abi_version >= 2 and self.module.has("disk_config")

    # ---- the driver table -------------------------------------------------------------------------------------
    def connector_properties(self, flags=0):
        return json.loads(self._call("connector_properties", flags))

    def connect_volume(self, connection_info, connector=None, disk_info=None, flags=0):
        """Returns device_info (a dict). On ABI v1 disk_info with "dev" is required and device_info carries
        "disk_xml"; on v2 disk_info may be None (connect without a guest)."""
        return json.loads(self._call("connect_volume", _json_arg(connection_info), _json_arg(connector or {}),
                                     _json_arg(disk_info), flags))

    def disk_config(self, connection_info, device_info, disk_info, flags=0):
        """The libvirt <disk> XML for one guest device (ABI v2: pure, no I/O). A v1 module raises
        NotSupportedByModule: the binding never emulates it with a connect for a guest device."""
        if not self.has_disk_config:
            raise NotSupportedByModule("disk_config", "%s negotiated ABI v%d; disk_config needs ABI v2"
                                       % (self.module.path, self.module.abi_version))
        return self._call("disk_config", _json_arg(connection_info), _json_arg(device_info),
                          _json_arg(disk_info), flags)

    def disconnect_volume(self, connection_info, device_info=None, force=False, ignore_errors=False, flags=0):
        flags |= (_abi.VD_DISCONNECT_FORCE if force else 0) | (_abi.VD_DISCONNECT_IGNORE_ERRORS if ignore_errors else 0)
        self._call("disconnect_volume", _json_arg(connection_info), _json_arg(device_info), flags, returns=False)

    def extend_volume(self, connection_info, device_info=None, flags=0):
        """Returns the new size in bytes ({"size_bytes": N} from the driver)."""
        return json.loads(self._call("extend_volume", _json_arg(connection_info), _json_arg(device_info),
                                     flags))["size_bytes"]

    def cleanup(self, dry_run=False, flags=0):
        flags |= _abi.VD_CLEANUP_DRY_RUN if dry_run else 0
        return json.loads(self._call("cleanup", flags))
