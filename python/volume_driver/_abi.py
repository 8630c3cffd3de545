"""ctypes mirror of abi/include/volume_driver/volume_driver.h (versions 1 and 2).

tests/python/abi_layout.c prints the header's offsets and sizes; test_binding.py compares them with these
structures, so a header change that this mirror misses fails a test, never a call through the wrong slot.
"""
import ctypes
from ctypes import POINTER, c_char_p, c_int32, c_uint32, c_void_p

VD_ABI_VERSION_1 = 1
VD_ABI_VERSION_2 = 2
# The newest version this binding speaks (offered at negotiation).
VD_ABI_VERSION_OFFERED = VD_ABI_VERSION_2

ENTRY_NAME = "volume_driver_negotiate"

VD_OK = 0
STATUS_CODES = {
    0: "ok",
    1: "invalid_argument",
    2: "version_refused",
    3: "not_implemented",
    4: "unsupported",
    5: "config",
    6: "auth",
    7: "unreachable",
    8: "timeout",
    9: "backend",
    10: "not_found",
    11: "no_memory",
    12: "internal",
    13: "inconsistent",
}
VD_E_INVALID_ARGUMENT = 1
VD_E_VERSION_REFUSED = 2
VD_E_NOT_IMPLEMENTED = 3

VD_LOG_ERROR = 1
VD_LOG_WARNING = 2
VD_LOG_INFO = 3
VD_LOG_DEBUG = 4

VD_DISCONNECT_FORCE = 0x1
VD_DISCONNECT_IGNORE_ERRORS = 0x2
VD_CLEANUP_DRY_RUN = 0x1

# vd_driver is opaque: handles travel as void pointers.
vd_driver_p = c_void_p
# `char **out` parameters: a void pointer, so ctypes does not turn the string into bytes and lose the pointer
# that free_string() must receive.
out_string_p = POINTER(c_void_p)

LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p)


class HostTable(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("user_data", c_void_p),
        ("log", LOG_FN),
        # ABI version 1 ends here.
    ]


CREATE_FN = ctypes.CFUNCTYPE(c_int32, c_char_p, POINTER(vd_driver_p))
DESTROY_FN = ctypes.CFUNCTYPE(None, vd_driver_p)
CONNECTOR_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_uint32, out_string_p)
CONNECT_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_char_p, c_char_p, c_char_p, c_uint32, out_string_p)
DISCONNECT_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_char_p, c_char_p, c_uint32)
EXTEND_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_char_p, c_char_p, c_uint32, out_string_p)
FREE_STRING_FN = ctypes.CFUNCTYPE(None, c_void_p)
LAST_ERROR_FN = ctypes.CFUNCTYPE(c_void_p)  # borrowed const char *: read with string_at, never freed
CLEANUP_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_uint32, out_string_p)

# disk_config(driver, connection_info, device_info, disk_info, flags, &disk_xml)
DISK_CONFIG_FN = ctypes.CFUNCTYPE(c_int32, vd_driver_p, c_char_p, c_char_p, c_char_p, c_uint32, out_string_p)
# create_for_host(host, config_json, &out): each handle logs through its own host table. A v2 table
# refuses the old create().
CREATE_FOR_HOST_FN = ctypes.CFUNCTYPE(c_int32, POINTER(HostTable), c_char_p, POINTER(vd_driver_p))

V1_FIELDS = [
    ("struct_size", c_uint32),
    ("abi_version", c_uint32),
    ("driver_name", c_char_p),
    ("driver_version", c_char_p),
    ("volume_types", c_char_p),
    ("create", CREATE_FN),
    ("destroy", DESTROY_FN),
    ("connector_properties", CONNECTOR_FN),
    ("connect_volume", CONNECT_FN),
    ("disconnect_volume", DISCONNECT_FN),
    ("extend_volume", EXTEND_FN),
    ("free_string", FREE_STRING_FN),
    ("last_error", LAST_ERROR_FN),
    ("cleanup", CLEANUP_FN),  # appended within v1: present only when struct_size covers it
]

# Version 2 appends these after v1's `cleanup`.
V2_APPENDED_FIELDS = [
    ("create_for_host", CREATE_FOR_HOST_FN),
    ("disk_config", DISK_CONFIG_FN),
]


class DriverTableV1(ctypes.Structure):
    _fields_ = V1_FIELDS


class DriverTableV2(ctypes.Structure):
    _fields_ = V1_FIELDS + V2_APPENDED_FIELDS


# Mandatory slots: a table with one of these NULL is not a driver.
MANDATORY_SLOTS = ("create", "destroy", "connector_properties", "connect_volume", "disconnect_volume",
                   "free_string", "last_error")
V2_MANDATORY_SLOTS = ("create_for_host", "disk_config")

NEGOTIATE_FN = ctypes.CFUNCTYPE(c_int32, POINTER(c_uint32), POINTER(HostTable), POINTER(c_void_p))


def slot_end(table_type, member):
    """Bytes a table must have to contain `member` (the header's VD_TABLE_HAS)."""
    field = getattr(table_type, member)
    return field.offset + field.size


V1_MIN_SIZE = slot_end(DriverTableV1, "last_error")  # a v1 table without the appended `cleanup`
