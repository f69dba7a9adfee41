"""The kernel IR: what the scheduler hands to a backend (`Kernel`), how to map it (`KernelOpts`, `LoopNest`),
and what a backend makes of it (`Program`).

A Kernel is plain data: it knows nothing of program selection, rendering or devices' runtimes, so the
scheduler never depends on a backend (see `backend.py` for how a backend turns Kernels into Programs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .lazy import Node

# the trailing argument of a kernel whose work-groups take output tiles one at a time from a counter
# (render_gemm): an OpenCL device passes its own two-int counter there (runtime_opencl.CLDevice.launch)
TILE_COUNTER = "wb_tiles"


def arg_key(arg):
    """A node's argument as a cache key: a float constant by its bits' spelling, so -0.0 and 0.0 differ
    (they compare equal, but x * -0.0 is not x * 0.0) and NaN matches NaN (it equals nothing)."""
    if isinstance(arg, float):
        return ("f", "nan" if math.isnan(arg) else arg.hex())
    return arg


@dataclass(eq=False)
class Kernel:
    """One kernel of a schedule: computes `out` from the `inputs` buffers, with at most one reduce.

    `fused` describes a kernel that computes a whole composite instead of a region of primitive ops
    (schedule_attention.py): (kind, parameters, the composite's input nodes, each a view chain down to one
    of `inputs`); its program comes from that kind's template (render_attention.py)."""

    out: Node
    inputs: list[Node]
    reduce: Node | None
    name: str = ""
    flops: int = 0
    bytes: int = 0
    device: str = ""
    fused: tuple | None = None

    @property
    def full_shape(self) -> tuple:
        """The iteration space: the reduce input's shape for a reduce kernel, else the output shape."""
        return self.reduce.src[0].shape if self.reduce is not None else self.out.shape

    @property
    def reduce_axes(self) -> tuple:
        """The axes of full_shape that the reduce sums or maxes over (empty without a reduce)."""
        return self.reduce.arg if self.reduce is not None else ()

    @property
    def buffers(self) -> list[Node]:
        """The kernel's arguments in order: the output, then each distinct input once."""
        return [self.out] + list({i.id: i for i in self.inputs}.values())

    def structure_key(self) -> tuple:
        """Everything a program for this kernel depends on: ops, args, shapes, dtypes, sharing, input
        slots and device (not the node ids, so rebuilding the same graph gives the same key)."""
        slots = {n.id: i for i, n in enumerate(self.buffers[1:])}
        if self.fused is not None:
            kind, params, views = self.fused
            chains = []
            for v in views:  # each input as its chain of views down to its buffer's slot
                chain = []
                while v.id not in slots:
                    chain.append((v.op.value, arg_key(v.arg), v.shape))
                    v = v.src[0]
                chains.append((tuple(chain), slots[v.id], v.shape, v.dtype.name))
            return (self.device, (kind, params, self.out.shape, self.out.dtype.name, tuple(chains)))
        ids: dict[int, int] = {}
        rows: list = []
        # iterative post-order walk (a recursive closure would be a reference cycle holding the buffers)
        stack = [(self.out, False)]
        while stack:
            n, ready = stack.pop()
            if n.id in ids:
                continue
            leaf = n is not self.out and n.id in slots
            if not leaf and not ready:
                stack.append((n, True))
                stack.extend((s, False) for s in n.src if s.id not in ids)
                continue
            if leaf:
                row = ("in", slots[n.id], n.shape, n.dtype.name)
            else:
                srcs = tuple(ids[s.id] for s in n.src)
                row = (n.op.value, arg_key(n.arg), n.shape, n.dtype.name, srcs, n is self.reduce)
            rows.append(row)
            ids[n.id] = len(rows) - 1
        return (self.device, tuple(rows))

    def __repr__(self):
        return f"<Kernel {self.name} flops={self.flops} bytes={self.bytes}>"


@dataclass(frozen=True)
class KernelOpts:
    """How to map a kernel onto the device.

    upcast: output axis -> factor; each work-item computes that many neighbouring outputs in registers.
    unroll: factor for the innermost reduce axis (several accumulation steps per loop trip).
    local: work-group size per global dim (None lets the driver choose).
    split_acc: independent partial accumulators per output, so reductions pipeline instead of chaining.
    gemm: tile sizes of the packed GEMM template, for matmul-like kernels on CPU devices.
    gemv: columns per work-item and unroll of the matrix-vector template (x @ W with few rows of x).
    depthwise: outputs per work-item of the strip template for small sliding-window sums (depthwise convs).
    pointwise: run the gemm tiles with the factors' roles swapped (1x1 convs of NCHW data, render_pointwise.py).
    winograd: tile rows per work-group of the F(2x2, 3x3) template for 3x3 stride-1 convs (render_winograd.py).
    group: work-items per output of a reduce (GPUs): they stride through the reduce together and combine
    their partial results in shared memory, so a few long rows (layernorm, softmax) fill the GPU.
    vec: vector width for reduces over a contiguous innermost axis (falls back to 1 when an op or a load
    cannot be vectorized).
    """

    upcast: tuple = ()  # ((axis, factor), ...)
    unroll: int = 1
    local: tuple | None = None
    split_acc: int = 1
    gemm: tuple | None = None  # (MB, NB, KB, MR, NV): use the packed GEMM template (render_gemm.py)
    vec: int = 1  # float8 loads and accumulators along a contiguous innermost reduce axis
    gpu_gemm: tuple | None = None  # (BM, BN, BK, TM, TN): shared-memory tiled float32 GEMM (render_gemm_gpu.py)
    mma_gemm: tuple | None = None  # (BM, BN, BK, WM, WN): tensor-core GEMM for 16-bit factors (CUDA)
    gemv: tuple | None = None  # (NB, U): the matrix-vector template for x @ W on CPUs (render_gemv.py)
    depthwise: tuple | None = None  # (V,): strips of V outputs, taps unrolled (render_depthwise.py)
    pointwise: bool = False  # with gemm: the weights as A, the pixels as B's float8 columns
    winograd: tuple | None = None  # (TY,): 3x3 convs by F(2x2, 3x3), TY tile rows a work-group (render_winograd.py)
    group: int = 0  # work-items (a power of two) sharing each output's reduce in one work-group

    def key(self) -> str:
        return (
            f"u{self.upcast}r{self.unroll}l{self.local}s{self.split_acc}g{self.gemm}v{self.vec}"
            + (f"G{self.gpu_gemm}" if self.gpu_gemm else "")
            + (f"T{self.mma_gemm}" if self.mma_gemm else "")
            + (f"V{self.gemv}" if self.gemv else "")
            + (f"D{self.depthwise}" if self.depthwise else "")
            + ("P" if self.pointwise else "")
            + (f"W{self.winograd}" if self.winograd else "")
            + (f"R{self.group}" if self.group else "")
        )


@dataclass
class Program:
    """A rendered kernel: source, entry name and launch sizes; its arguments are its Kernel's `buffers`.

    It holds no graph nodes, so one Program serves every kernel with the same structure key."""

    src: str
    name: str
    global_size: tuple
    local_size: tuple | None
    opts: KernelOpts = field(default_factory=KernelOpts)
    shared_bytes: int = 0  # dynamic shared memory per work-group (CUDA/HIP launch parameter)


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


def launch_geometry(global_size: tuple, local_size: tuple, buffers: list) -> tuple[list[int], tuple, object, list]:
    """A CUDA/HIP launch of a program: (grid in blocks, block size, the kernel-argument array, what keeps the
    argument pointers alive until the launch has read them). Sizes are padded to three dimensions."""
    import numpy as np

    gsize = tuple(global_size) + (1,) * (3 - len(global_size))
    lsize = tuple(local_size) + (1,) * (3 - len(local_size))
    grid = [-(-g // b) for g, b in zip(gsize, lsize, strict=True)]
    ptrs = [np.array([int(b.ptr)], dtype=np.uint64) for b in buffers]
    return grid, lsize, np.array([p.ctypes.data for p in ptrs], dtype=np.uint64), ptrs
