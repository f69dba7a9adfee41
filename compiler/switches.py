"""The WB_* environment switches (docs/compiler.md lists them), read through one function on every path.

An eager call reads ~30 of them (the plan memo's key, each composite rebuild, launching ahead), most of
them unset, and `os.environ.get` of an unset name costs ~1.2 us: `Mapping.get` raises and catches a
KeyError. `switch` reads the same value from the dict that `os.environ` keeps its encoded names and values
in (and updates on every assignment, so monkeypatched and exported values alike are seen) at ~0.1 us.
"""

from __future__ import annotations

import os

# CPython's os.environ on POSIX: its `_data` dict maps encoded names to encoded values; elsewhere (or if a
# later Python drops it) the plain lookup
_DATA = getattr(os.environ, "_data", None) if os.name == "posix" else None
_KEYS: dict[str, bytes] = {}


def switch(name: str, default: str | None = None) -> str | None:
    """os.environ.get(name, default), at a tenth of its cost for an unset name."""
    if _DATA is None:
        return os.environ.get(name, default)
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = os.environ.encodekey(name)
    value = _DATA.get(key)
    return default if value is None else os.environ.decodevalue(value)
