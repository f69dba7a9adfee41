"""Where the lower layers report what a call does while `compiler.jit` captures it.

`ACTIVE` is None except while a jitted function runs under capture; then realize.py reports every kernel
and REF evaluation, device.py every host-to-device copy, and tensor.py every `assign` and random draw.
The recorder itself lives in jit.py; this module only holds the slot, so nothing here imports upward.
"""

from __future__ import annotations

ACTIVE = None  # the jit's recorder while a call is being captured, else None
