"""Exceptions raised by the binding: each carries the driver's last_error() fields."""
from . import _abi


class VolumeDriverError(Exception):
    """A driver call failed. Attributes mirror last_error(): status, code, message, argument, field."""

    def __init__(self, status, code, message, argument="", field="", call=""):
        self.status = int(status)
        self.code = code or _abi.STATUS_CODES.get(self.status, "unknown")
        self.message = message or ""
        self.argument = argument or ""
        self.field = field or ""
        self.call = call
        where = ""
        if self.argument:
            where = " (%s%s)" % (self.argument, "." + self.field if self.field else "")
        elif self.field:
            where = " (%s)" % self.field
        prefix = "%s: " % call if call else ""
        super().__init__("%s%s: %s%s" % (prefix, self.code, self.message, where))

    def as_dict(self):
        return {"status": self.status, "code": self.code, "message": self.message,
                "argument": self.argument, "field": self.field}


class LoadError(VolumeDriverError):
    """The module could not be loaded or negotiated with (missing file, not a driver, version refused)."""

    def __init__(self, code, message, path="", status=_abi.VD_E_INVALID_ARGUMENT):
        self.path = path
        super().__init__(status, code, message, call="load")


class NotSupportedByModule(VolumeDriverError):
    """The call needs an ABI version or an optional slot this module does not offer. Raised by the binding
    without calling the driver; status is VD_E_NOT_IMPLEMENTED."""

    def __init__(self, call, message):
        super().__init__(_abi.VD_E_NOT_IMPLEMENTED, "not_implemented", message, call=call)


class DriverClosed(VolumeDriverError):
    """The Driver was closed (destroyed) before or during this call."""

    def __init__(self, call):
        super().__init__(_abi.VD_E_INVALID_ARGUMENT, "closed", "the driver handle is closed", call=call)
