"""Pointwise (1x1) convolutions, and convolutions with few output channels, on CPU OpenCL devices: the GEMM
template with the factors' roles swapped.

A 1x1 conv of NCHW data is out[n, co, p] = sum_ci w[co, ci] * x[n, ci, p] over the pixels p. `gemm_plan`
takes the data as A (rows M = pixels) and the weights as B (float8 columns N = output channels), so the
micro-kernel reads a scalar of x per step at the stride of a channel plane, and the epilogue stores each
output a whole plane away from the one before. Both x and the output are contiguous along the pixels:
with the weights as A and the data as B the float8 columns run along the pixels, and the B slab and the
epilogue's stores are unit-stride runs. A conv with at most 8 output channels (a network's stem: 3 -> 8
channels) gains most: as B its channels would fill half a tile of float8 columns or less. The template
(render_gemm.py) is unchanged; only the plan and the tile sizes differ.
"""

from __future__ import annotations

import math

from .indexing import linear, reads
from .kernel_ir import Kernel, KernelOpts
from .render_gemm import VEC, GemmPlan, gemm_plan
from .symbolic import Lin


def _unit_along(k: Kernel, node, axis: int) -> bool:
    """Whether node's single load moves by exactly one element per step of full-shape axis `axis`."""
    idx = tuple(Lin.var(f"a{a}", s) for a, s in enumerate(k.full_shape))
    r = reads(k, node, idx)
    if len(r.loads) != 1:
        return False
    pos = r.loads[0][1]
    return pos.coefficient(f"a{axis}") == 1


# at most this many output channels: swapped whatever the reduce (one float8 column or less of a tile; wider
# outputs up to 16 would gain too, but dense convs are the conv template's to tune: docs/onnx.md)
NARROW = VEC
MAX_NB = 384  # columns (pixels) per tile at most: the B slab of a 256-deep reduce then fits a 512 KiB L2


def pointwise_plan(k: Kernel) -> GemmPlan | None:
    """The swapped GEMM view of k, or None when k is not a float32 GEMM whose output is contiguous along the
    innermost M axis (the pixels) but not along the N axis, and which either reduces over one axis reading
    the pixels at unit stride (a 1x1 conv) or has at most NARROW columns (output channels)."""
    plan = gemm_plan(k)
    if plan is None or not plan.m_axes or not plan.n_axes:
        return None
    shape = k.full_shape
    narrow = plan.sizes(shape)[2] <= NARROW
    if len(plan.k_axes) != 1 and not narrow:
        return None
    m_last, n_last = plan.m_axes[-1], plan.n_axes[-1]
    out = linear(tuple(Lin() if a in k.reduce_axes else Lin.var(f"a{a}", s) for a, s in enumerate(shape)),
                 k.reduce.shape)
    if out.coefficient(f"a{m_last}") != 1 or out.coefficient(f"a{n_last}") == 1:
        return None
    if shape[m_last] < VEC or not (narrow or _unit_along(k, plan.a, m_last)):
        return None
    return GemmPlan(plan.b, plan.a, plan.batch, plan.n_axes, plan.m_axes, plan.k_axes)


def default_pointwise(plan: GemmPlan, shape: tuple) -> tuple:
    """(MB, NB, KB, MR, NV) for the swapped plan. NB: whole pixel rows, as many as divide the image height
    (up to MAX_NB columns), so a tile never straddles two images and packing needs no division by the row
    length or the height; else 64. MB: the output channels in equal tiles of at most 64 (no tile mostly
    empty). KB: the whole reduce up to 256."""
    _, m, n, kk = plan.sizes(shape)
    row = shape[plan.n_axes[-1]]
    height = shape[plan.n_axes[-2]] if len(plan.n_axes) > 1 else 1
    whole = [r * row for r in range(1, height + 1)
             if height % r == 0 and r * row <= MAX_NB and (r * row) % (2 * VEC) == 0]
    nb = whole[-1] if whole and whole[-1] >= 64 else 64 if n >= 64 else 2 * VEC
    per_tile = -(-m // -(-m // 64))  # m split into equal tiles of at most 64
    mb = max(4, -(-per_tile // 4) * 4)
    kb = kk if kk <= 256 else next((d for d in (256, 128, 192) if kk % d == 0), 256)
    return (mb, nb, kb, 4, 2)


def pointwise_candidates(plan: GemmPlan, shape: tuple) -> list[KernelOpts]:
    """Tile sizes WB_SEARCH times for the swapped plan."""
    mb, nb, kb, _, _ = default_pointwise(plan, shape)
    m = math.prod(shape[a] for a in plan.m_axes)
    out = []
    for mb2 in sorted({mb, 16, 32, 64}):
        for nb2 in sorted({nb, 64, 128}):
            if mb2 <= max(4, m) * 2:
                out.append(KernelOpts(gemm=(mb2, nb2, kb, 4, 2), pointwise=True))
    return out
