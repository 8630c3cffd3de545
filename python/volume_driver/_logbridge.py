"""The host table's log callback, bridged to Python logging.

One C function pointer for the whole process: it is created once and never released, so a driver thread can never
call a freed trampoline (ctypes frees a CFUNCTYPE's code when the Python object dies). user_data carries a small
integer naming the logger of the module that negotiated (with ABI v1 the driver keeps the latest negotiation's
user_data process-wide, so an unknown key falls back to the generic logger). ctypes takes the GIL for calls
from the driver's own native threads; the callback never raises (an exception there would be printed and dropped
by ctypes, from a thread the driver owns).
"""
import itertools
import logging
import threading

from . import _abi

_LEVELS = {
    _abi.VD_LOG_ERROR: logging.ERROR,
    _abi.VD_LOG_WARNING: logging.WARNING,
    _abi.VD_LOG_INFO: logging.INFO,
    _abi.VD_LOG_DEBUG: logging.DEBUG,
}

_lock = threading.Lock()
_loggers = {}
_keys = itertools.count(1)
_fallback = logging.getLogger("volume_driver.module")
_shutting_down = False


def register(logger):
    """Returns the user_data key under which the callback logs to `logger`."""
    with _lock:
        key = next(_keys)
        _loggers[key] = logger
    return key


def shutting_down():
    """Called at interpreter exit: from then on log lines are dropped (logging itself is being torn down)."""
    global _shutting_down
    _shutting_down = True


def _log(user_data, level, component, message):
    try:
        if _shutting_down:
            return
        logger = _loggers.get(user_data or 0, _fallback)
        py_level = _LEVELS.get(level, logging.DEBUG)
        if not logger.isEnabledFor(py_level):
            return
        comp = component.decode("utf-8", "replace") if component else ""
        text = message.decode("utf-8", "replace") if message else ""
        logger.log(py_level, "[%s] %s", comp, text) if comp else logger.log(py_level, "%s", text)
    except BaseException:  # noqa: B902 - nothing may propagate into the driver's thread
        pass


CALLBACK = _abi.LOG_FN(_log)


def host_table(key):
    table = _abi.HostTable()
    table.struct_size = _abi.ctypes.sizeof(_abi.HostTable)
    table.user_data = key
    table.log = CALLBACK
    return table
