"""Python binding of the volume driver C ABI (abi/include/volume_driver/volume_driver.h).

    import volume_driver
    module = volume_driver.load("iscsi_volume_driver.so")      # bare name: the packaged driver directory
    with module.create({"path": "network"}) as driver:
        connector = driver.connector_properties()
        device_info = driver.connect_volume(connection_info, connector, {"dev": "sdb", "bus": "scsi"})
        driver.disconnect_volume(connection_info, device_info)

JSON travels as dicts; every string the driver returns is released with its free_string(); a failed call raises
VolumeDriverError with the driver's last_error() fields; driver log lines go to the `logging` logger given to
load() (default "volume_driver.module").
"""
from ._abi import (VD_ABI_VERSION_1, VD_ABI_VERSION_2, VD_CLEANUP_DRY_RUN, VD_DISCONNECT_FORCE,  # noqa: F401
                   VD_DISCONNECT_IGNORE_ERRORS, STATUS_CODES)
from ._config import default_driver_dir  # noqa: F401
from .driver import Driver  # noqa: F401
from .errors import DriverClosed, LoadError, NotSupportedByModule, VolumeDriverError  # noqa: F401
from .module import Module, load, resolve_path  # noqa: F401
__all__ = ["VD_ABI_VERSION_1", "VD_ABI_VERSION_2", "VD_CLEANUP_DRY_RUN", "VD_DISCONNECT_FORCE",
           "VD_DISCONNECT_IGNORE_ERRORS", "STATUS_CODES", "default_driver_dir", "Driver", "DriverClosed",
           "LoadError", "NotSupportedByModule", "VolumeDriverError", "Module", "load", "resolve_path"]

import atexit as _atexit  # noqa: E402
from . import _logbridge as _lb

# Registered after `logging` (imported above): runs before logging.shutdown(), so late driver log lines are
# dropped instead of reaching closed handlers.
_atexit.register(_lb.shutting_down)
