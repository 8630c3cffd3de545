"""Loading a driver module and negotiating the ABI with it."""
import ctypes
import json
import logging
import os
import threading

from . import _abi, _config, _logbridge
from .errors import LoadError, VolumeDriverError


def resolve_path(name, driver_dir=None):
    """A name with a slash is a path; a bare file name is looked up in driver_dir (default: the packaged one)."""
    if os.sep in name:
        return os.path.abspath(name)
    return os.path.abspath(os.path.join(driver_dir or _config.default_driver_dir(), name))


def load(name, driver_dir=None, logger=None):
    """Loads the module `name` (a path, or a bare file name in driver_dir) and negotiates with it."""
    return Module(resolve_path(name, driver_dir), logger=logger)


class Module:
    """A loaded and negotiated driver module. Thread-safe; keep it alive while any of its Drivers is in use."""

    def __init__(self, path, logger=None):
        self.path = path
        if not os.path.exists(path):
            raise LoadError("driver_not_found", "no driver module at %s" % path, path, status=10)
        try:
            self._dll = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as e:
            raise LoadError("dlopen_failed", "dlopen(%s) failed: %s" % (path, e), path) from None
        try:
            entry = getattr(self._dll, _abi.ENTRY_NAME)
        except AttributeError:
            raise LoadError("not_a_driver", "%s does not export %s" % (path, _abi.ENTRY_NAME), path) from None
        self._negotiate_fn = _abi.NEGOTIATE_FN(ctypes.cast(entry, ctypes.c_void_p).value)
        self.logger = logger or logging.getLogger("volume_driver.module")
        self._log_key = _logbridge.register(self.logger)
        self._host = _logbridge.host_table(self._log_key)
        self._stats_lock = threading.Lock()
        self._returned = 0
        self._freed = 0
        self._negotiate()

    # ---- negotiation ------------------------------------------------------------------------------------------
    def _negotiate(self):
        version = ctypes.c_uint32(_abi.VD_ABI_VERSION_OFFERED)
        out = ctypes.c_void_p()
        rc = self._negotiate_fn(ctypes.byref(version), ctypes.byref(self._host), ctypes.byref(out))
        if rc == _abi.VD_E_VERSION_REFUSED:
            raise LoadError("version_refused", "%s refused ABI version %d (it speaks up to %d)"
                            % (self.path, _abi.VD_ABI_VERSION_OFFERED, version.value), self.path, status=rc)
        if rc != _abi.VD_OK or not out.value:
            raise LoadError("not_a_driver", "%s: negotiation returned %d with %s table"
                            % (self.path, rc, "a" if out.value else "no"), self.path)
        answer = version.value
        if answer not in (_abi.VD_ABI_VERSION_1, _abi.VD_ABI_VERSION_2):
            raise LoadError("not_a_driver", "%s answered ABI version %d; this binding speaks 1 and 2"
                            % (self.path, answer), self.path)
        size = ctypes.c_uint32.from_address(out.value).value
        table_type = _abi.DriverTableV2 if answer == _abi.VD_ABI_VERSION_2 else _abi.DriverTableV1
        needed = ctypes.sizeof(table_type) if answer == _abi.VD_ABI_VERSION_2 else _abi.V1_MIN_SIZE
        if size < needed:
            raise LoadError("not_a_driver", "%s: the driver table has %d bytes; ABI version %d needs at least %d"
                            % (self.path, size, answer, needed), self.path)
        table = table_type.from_address(out.value)
        if table.abi_version != answer:
            raise LoadError("not_a_driver", "%s: the driver table says version %d, negotiation answered %d"
                            % (self.path, table.abi_version, answer), self.path)
        self.abi_version = answer
        self._table = table
        self._table_size = size
        mandatory = _abi.MANDATORY_SLOTS + (_abi.V2_MANDATORY_SLOTS if answer >= 2 else ())
        for slot in mandatory:
            if not getattr(table, slot):
                raise LoadError("not_a_driver", "%s: the driver table's mandatory slot %s is NULL"
                                % (self.path, slot), self.path)
        self.driver_name = (table.driver_name or b"").decode()
        self.driver_version = (table.driver_version or b"").decode()
        self.volume_types = [t for t in (table.volume_types or b"").decode().split(",") if t]
        self.fn = {name: self.slot(name) for name, _ in table._fields_[5:]}

    def has(self, member):
        """VD_TABLE_HAS and non-NULL: the optional slot `member` can be called."""
        field = getattr(type(self._table), member, None)
        if field is None or self._table_size < field.offset + field.size:
            return False
        return bool(getattr(self._table, member))

    def slot(self, member):
        return getattr(self._table, member) if self.has(member) else None

    # ---- strings and errors -----------------------------------------------------------------------------------
    def take_string(self, ptr):
        """Copies a driver-returned string and releases it with free_string(); None for NULL."""
        if not ptr.value:
            return None
        with self._stats_lock:
            self._returned += 1
        try:
            return ctypes.string_at(ptr.value).decode("utf-8")
        finally:
            self.free_string(ptr.value)
            ptr.value = None

    def free_string(self, address):
        self.fn["free_string"](address)
        with self._stats_lock:
            self._freed += 1

    def string_stats(self):
        """(strings returned by the driver, strings released with free_string) so far."""
        with self._stats_lock:
            return self._returned, self._freed

    def last_error(self, call):
        """The calling thread's last_error() as a VolumeDriverError (call right after the failing call)."""
        raw = self.fn["last_error"]()
        text = ctypes.string_at(raw).decode("utf-8", "replace") if raw else "{}"
        try:
            err = json.loads(text)
        except ValueError:
            err = {"message": "last_error() is not JSON: %r" % text[:200]}
        if not isinstance(err, dict):
            err = {}
        return err

    def create(self, config=None, logger=None):
        """A new driver instance from `config` (a dict; values may be strings, as an INI section yields)."""
        from .driver import Driver
        return Driver(self, config or {}, logger=logger)

    def __repr__(self):
        return "<volume_driver.Module %s %s %s ABI v%d>" % (self.path, self.driver_name, self.driver_version,
                                                            self.abi_version)


def error_from(status, err, call):
    return VolumeDriverError(err.get("status", status), err.get("code", ""), err.get("message", ""),
                             err.get("argument", ""), err.get("field", ""), call=call)
