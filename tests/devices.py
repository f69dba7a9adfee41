"""The devices the compiler's value tests run on: REF (the oracle), then every compute device found here.

On a CPU machine that is CL (PoCL); on a GPU machine CUDA joins, so the same numerics and differential
tests check the CUDA renderer's values where a GPU is lent."""

from __future__ import annotations

from compiler import Device

_FOUND = Device.available()
COMPUTE_DEVICES = [d for d in ("CL", "CUDA") if d in _FOUND]
DEVICES = ["REF", *COMPUTE_DEVICES]
HAS_CUDA = "CUDA" in _FOUND
