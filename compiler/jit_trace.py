"""Where the lower layers report what a call does while `compiler.jit` captures it.

`ACTIVE` is None except while a jitted function runs under capture; then realize.py reports every kernel
and REF evaluation, device.py every host-to-device copy, and tensor.py every `assign` and random draw.
The recorder itself lives in jit.py; this module only holds the slots, so nothing here imports upward.
"""

from __future__ import annotations

import weakref

ACTIVE = None  # the jit's recorder while a call is being captured, else None

# id(buffer) -> replay plans that read it as a constant (they hold the buffer, so the id stays its own)
WATCHED: dict[int, weakref.WeakSet] = {}


def watch(buf, plan) -> None:
    """plan replays buf as a constant until a tensor holding it is assigned a new value."""
    if len(WATCHED) > 4096:  # forget the entries of plans that are gone
        for k in [k for k, plans in WATCHED.items() if not plans]:
            del WATCHED[k]
    WATCHED.setdefault(id(buf), weakref.WeakSet()).add(plan)


def replaced(buf, tensor) -> None:
    """tensor, which held buf, is being assigned a new value: plans read the tensor from now on."""
    plans = WATCHED.pop(id(buf), None)
    for plan in list(plans or ()):
        plan.rebind(buf, tensor)
