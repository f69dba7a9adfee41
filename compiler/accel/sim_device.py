"""SIM device strings: 'SIM' (the default design) or 'SIM:<design name or TOML path>', and the design each names."""

from __future__ import annotations

import functools
import hashlib

from isa.design import DEFAULT_DESIGN, Design, DesignError, load_design

from ..errors import DeviceError

__all__ = ["sim_device_name", "design_of", "device_for_design"]

# Designs that exist only in memory (a sweep's design points), by the name their device string carries.
_IN_MEMORY: dict[str, Design] = {}


def device_for_design(design: Design) -> str:
    """A SIM device string for a design object that has no file: 'SIM:<name>@<hash of its content>'.

    The same content gives the same string (so compiled programs are shared); different content, another."""
    name = f"{design.name}@{hashlib.sha256(repr(design).encode()).hexdigest()[:16]}"
    _IN_MEMORY.setdefault(name, design)
    return f"SIM:{name}"


def sim_device_name(spec: str) -> str:
    """The canonical SIM device string for 'SIM' or 'SIM:<design name or TOML path>' (DeviceError if invalid)."""
    name = spec.strip()[4:].strip() if ":" in spec else ""
    if name in ("", DEFAULT_DESIGN):
        return "SIM"
    design_of(f"SIM:{name}")
    return f"SIM:{name}"


@functools.lru_cache(maxsize=32)
def design_of(device: str) -> Design:
    """The design a SIM device string names."""
    name = device[4:] if device.startswith("SIM:") else DEFAULT_DESIGN
    if name in _IN_MEMORY:
        return _IN_MEMORY[name]
    try:
        return load_design(name)
    except DesignError as exc:
        raise DeviceError(f"device {device!r}: {exc}") from None
