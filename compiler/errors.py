"""User-facing errors of the compiler: one base class so callers (the CLI) can treat them as user errors."""
from isa.errors import UserError


class CompilerError(UserError):
    """Base class for every mistake a user of the compiler can make (shapes, devices, dtypes)."""


class ShapeError(CompilerError):
    """Operands whose shapes do not fit the op; the message names the op and the shapes."""


class DTypeError(CompilerError):
    """An unsupported dtype or a dtype an op does not accept."""


class DeviceError(CompilerError):
    """An unknown or unavailable device; the message lists the available ones."""


class KernelBuildError(CompilerError):
    """The device compiler rejected a generated kernel; the message holds the source and the build log."""


class IndexOutOfRangeError(CompilerError, IndexError):
    """An index outside the axis it selects from (an embedding row, say); also an IndexError, like PyTorch."""
