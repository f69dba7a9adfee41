"""Schedule replay for `OnnxModel.run`: repeated calls with inputs of the same shapes and dtypes run the
recorded kernels again instead of rebuilding, scheduling and looking up the graph node by node.

Each (device, input shapes, dtypes) key goes through `compiler.jit`: the first call runs normally, the next
two are recorded, and from the fourth call on the kernels are replayed with the new inputs' buffers bound
(a new shape starts a key of its own, and after MANY_KEYS keys the oldest captures are forgotten). What a
replay cannot see is refused per key, and such a key simply runs normally every call:
- a node that reads a device value on the host (a Reshape shape or Slice bounds fed as a graph input, an
  `If` condition given at run time): the graph itself depends on those values;
- a call whose recorded kernels differ from the one before (the jit's JitError).
Outputs that are host arrays (shape arithmetic: a `Shape` output) depend on the input shapes alone, so a
replay returns the arrays of the recorded calls. `run()` with an initializer overridden by a feed, SIM
devices (which report per run) and `WB_JIT=0` never replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from compiler import jit_trace
from compiler.device import canonicalize
from compiler.jit import MANY_KEYS, JitError, jit
from compiler.tensor import Tensor


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Work done while building the graph (shape arithmetic evaluated on the host) is kept out of a capture."""
    saved, jit_trace.ACTIVE = jit_trace.ACTIVE, None
    try:
        yield
    finally:
        jit_trace.ACTIVE = saved


def replayable(feeds: dict[str, Any], initializers: dict, device: str | None) -> bool:
    """Whether a run with these feeds on device may replay: no initializer overridden, not a SIM device."""
    if any(name in initializers for name in feeds):
        return False
    return not canonicalize(device).startswith("SIM")


@dataclass
class _Key:
    """What the replayer knows of one input signature."""

    refused: str = ""  # why this key runs normally every call ("" while it may replay)
    layout: list = field(default_factory=list)  # per graph output: ("t", index among Tensors) or ("h", array)
    traced: bool = False  # whether the current call ran the graph (False: the jit replayed it)


class Replayer:
    """Replays one model's kernels for repeated input signatures; run_inputs(inputs, device, feeds, read_back)
    is the model's plain run."""

    def __init__(self, run_inputs: Callable[..., list]):
        self._run_inputs = run_inputs
        self._jit = jit(self._traced)
        self._keys: dict[tuple, _Key] = {}
        self._current: _Key | None = None
        self.replays = 0  # calls answered by replaying recorded kernels (for tests and benchmarks)

    def refused(self) -> dict[tuple, str]:
        """{input signature: why it is not replayed} for the signatures seen so far."""
        return {k: v.refused for k, v in self._keys.items() if v.refused}

    def run(self, inputs: list[Tensor], device: str | None) -> list:
        """The graph's outputs for inputs (Tensors in graph order), replayed where the signature allows."""
        key = (device, tuple((t.shape, t.dtype.name, t.device) for t in inputs))
        st = self._keys.get(key)
        if st is None:
            if len(self._keys) >= MANY_KEYS - 1:  # a new shape every call: forget the old captures
                self._keys.clear()
                self._jit.reset()
            st = self._keys[key] = _Key()
        if st.refused:
            return self._run_inputs(inputs, device)
        self._current, st.traced = st, False
        try:
            tensors = self._jit(*inputs, device=device)
        except JitError as e:
            st.refused = str(e)
            return self._run_inputs(inputs, device)
        finally:
            self._current = None
        self.replays += not st.traced
        return [tensors[v] if kind == "t" else v for kind, v in st.layout]

    def _traced(self, *inputs: Tensor, device: str | None) -> tuple:
        """The plain run as the jit sees it: the Tensor outputs only, noting host reads and host outputs."""
        read_back: list[str] = []
        outs = self._run_inputs(list(inputs), device, None, read_back)
        st = self._current
        if st is not None:
            st.traced = True
        if read_back and st is not None and not st.refused:
            st.refused = f"node {read_back[0]} reads a device value on the host"
        layout, tensors = [], []
        for o in outs:
            if isinstance(o, Tensor):
                layout.append(("t", len(tensors)))
                tensors.append(o)
            else:
                layout.append(("h", o))
        if st is not None:
            st.layout = layout
        return tuple(tensors)
