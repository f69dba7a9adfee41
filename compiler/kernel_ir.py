"""The kernel IR: a kernel's loop nest (global, upcast, reduce and unroll axes) and the launch it needs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class KernelOpts:
    """How to map a kernel onto the device.

    upcast: output axis -> factor; each work-item computes that many neighbouring outputs in registers.
    unroll: factor for the innermost reduce axis (several accumulation steps per loop trip).
    local: work-group size per global dim (None lets the driver choose).
    split_acc: independent partial accumulators per output, so reductions pipeline instead of chaining.
    gemm: tile sizes of the packed GEMM template, for matmul-like kernels on CPU devices.
    vec: vector width for reduces over a contiguous innermost axis (falls back to 1 when an op or a load
    cannot be vectorized).
    """

    upcast: tuple = ()  # ((axis, factor), ...)
    unroll: int = 1
    local: tuple | None = None
    split_acc: int = 1
    gemm: tuple | None = None  # (MB, NB, KB, MR, NV): use the packed GEMM template (render_gemm.py)
    vec: int = 1  # float8 loads and accumulators along a contiguous innermost reduce axis

    def key(self) -> str:
        return f"u{self.upcast}r{self.unroll}l{self.local}s{self.split_acc}g{self.gemm}v{self.vec}"


@dataclass
class Program:
    """A rendered kernel: source, entry name, launch sizes and the buffers in argument order."""

    src: str
    name: str
    global_size: tuple
    local_size: tuple | None
    buffers: list = field(default_factory=list)  # Nodes: output first, then inputs
    opts: KernelOpts = field(default_factory=KernelOpts)


@dataclass
class LoopNest:
    """The axes of a kernel after applying opts: which dims are global, upcast, reduced or unrolled."""

    full_shape: tuple
    reduce_axes: tuple
    upcast: dict
    global_dims: list  # lists of output axes flattened into gid0, gid1, gid2
    global_size: tuple

    @staticmethod
    def build(full_shape: tuple, reduce_axes: tuple, opts: KernelOpts) -> LoopNest:
        """Map output axes (after upcasting) to at most 3 global dims: last -> gid0, then gid1, rest gid2."""
        up = dict(opts.upcast)
        outs = [a for a, s in enumerate(full_shape) if a not in reduce_axes and s // up.get(a, 1) > 1]
        groups = [[outs[-1]], [outs[-2]], outs[:-2]] if len(outs) >= 2 else [outs]
        groups = [g for g in groups if g]
        sizes = tuple(math.prod(full_shape[a] // up.get(a, 1) for a in g) for g in groups) or (1,)
        return LoopNest(full_shape, reduce_axes, up, groups, sizes)
