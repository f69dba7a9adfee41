"""Reading the user's input files: every failure (missing, a directory, unreadable, not UTF-8) is a UserError."""
from __future__ import annotations

from pathlib import Path

from isa.errors import UserError


def read_bytes(path: str | Path, what: str = "file", error: type[UserError] = UserError) -> bytes:
    """The bytes of `path`; a one-line UserError naming the file if it cannot be read."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a directory; give a {what}")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except OSError as exc:
        raise error(f"{p}: cannot read {what}: {exc.strerror or exc}") from None


def read_text(path: str | Path, what: str = "file", error: type[UserError] = UserError) -> str:
    """The UTF-8 text of `path`; a one-line UserError if it cannot be read or is not UTF-8 text."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
                        "is it the right file?") from None
