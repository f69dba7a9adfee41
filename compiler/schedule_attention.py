"""Attention as one kernel: the scheduler's pass that replaces the kernels of a scaled dot-product attention
composite (scores, their row max, the sum of exponentials, the probabilities, probabilities @ V: five
kernels, four launches' gaps and four round trips of a (T, S) matrix through memory) by one kernel that
keeps the scores in local memory a chunk of keys at a time (render_attention.py, an online softmax as in
flash attention). With a causal mask it also skips the masked half of both products.

It applies where the composite said it may (graph_template's `fused`: no mask tensor), on CPU OpenCL
devices, to float32 attention whose inputs are views of computed buffers (not padded) with equal batch
shapes, a value width that is a multiple of 8 and head widths small enough for a work-group's local
memory (`render_attention.tiles`: up to ~580 for q and v alike at 256 KiB), any number of keys; and
only where no gradient is tracked (backward reads the probabilities). Elsewhere, and with
WB_FUSED_ATTENTION=0, the composite's own kernels run. The fused kernel computes the same products; the
softmax's sum and its normalization come in another order (running sums rescaled as the max grows, the
output divided at the end), so the two agree to float32 rounding, NaN and inf included.
"""

from __future__ import annotations

import math

from .kernel_ir import Kernel
from .lazy import Node
from .ops import MOVEMENT, Ops
from .switches import switch


def enabled() -> bool:
    """WB_FUSED_ATTENTION=0 keeps the composite's own kernels (comparisons); it changes plans, so the plan
    memo keys by it."""
    return switch("WB_FUSED_ATTENTION", "1") != "0"


def _base(view: Node, outs: set) -> Node | None:
    """The buffer a composite input reads through views only (a realized node or a kernel's output), or None
    when it is computed inside the composite's kernels or padded."""
    n = view
    while not (n.realized or n.id in outs):
        if n.op not in MOVEMENT or n.op == Ops.PAD:
            return None
        n = n.src[0]
    return n


def _fusable(k: Kernel, outs: set) -> tuple | None:
    """(causal, views, their buffers) when kernel k ends an attention composite that one kernel can compute
    on its device, else None."""
    u = k.out.unit
    if u is None or len(u) < 4 or u[1] is None or u[3] is None or u[3][0] != "attention":
        return None
    _, causal, views = u[3]
    q, key, v = views
    if k.out.requires_grad or any(x.dtype.name != "float32" for x in (q, key, v, k.out)):
        return None
    if len(q.shape) < 2 or not (q.shape[:-2] == key.shape[:-2] == v.shape[:-2]) or key.shape[-2] != v.shape[-2]:
        return None
    if q.shape[-1] != key.shape[-1] or k.out.shape != q.shape[:-1] + v.shape[-1:] or v.shape[-1] % 8:
        return None
    if min(q.shape) == 0 or key.shape[-2] == 0:
        return None
    bases = [_base(x, outs) for x in views]
    if None in bases or not k.device.startswith("CL"):
        return None
    # the device's facts as the optimizer reads them for every template (asked only once a composite could fuse)
    from .optimizer import _is_cpu, _local_mem_bytes
    from .render_attention import tiles

    if not _is_cpu(k.device) or tiles(q.shape[-2], q.shape[-1], v.shape[-1], _local_mem_bytes(k.device)) is None:
        return None
    return causal, views, bases


def fuse_attention(kernels: list[Kernel]) -> list[Kernel]:
    """kernels, with each attention composite's kernels replaced by one fused kernel where it applies."""
    if not enabled():
        return kernels
    outs = {k.out.id for k in kernels}
    for k in [k for k in kernels if k.out.unit is not None]:
        found = _fusable(k, outs)
        if found is None:
            continue
        causal, views, bases = found
        inner = {m.id for m in k.out.unit[1]}
        chain = [c for c in kernels if c.out.id in inner]
        # what the composite's kernels read: each other's outputs, the inputs' buffers, and buffers from
        # before the call (the causal mask); anything else (an input computed inside them) stays unfused
        allowed = inner | {b.id for b in bases} | {n.id for n in k.out.unit[2] if n.realized}
        if any(i.id not in allowed for c in (*chain, k) for i in c.inputs):
            continue
        if any(i.id in inner for c in kernels if c is not k and c.out.id not in inner for i in c.inputs):
            continue
        fused = Kernel(k.out, bases, None, device=k.device, fused=("attention", causal, views))
        _describe(fused, causal)
        drop = {id(c) for c in chain}
        kernels = [fused if c is k else c for c in kernels if id(c) not in drop]
        outs -= inner
    return kernels


def _describe(k: Kernel, causal: bool) -> None:
    """Name, FLOPs (the products' multiply-adds over the pairs the mask keeps, and the softmax's ~4 ops a
    score) and bytes moved."""
    q, key, v = k.fused[2]
    t, d, s, dv = q.shape[-2], q.shape[-1], key.shape[-2], v.shape[-1]
    batch = math.prod(q.shape[:-2])
    pairs = sum(min(i + 1, s) for i in range(t)) if causal else t * s
    k.flops = batch * pairs * (2 * d + 2 * dv + 4)
    k.bytes = sum(b.size * b.dtype.itemsize for b in {b.id: b for b in k.inputs}.values()) + k.out.size * 4
    k.name = "attn_" + "_".join(map(str, (*q.shape[:-1], s, d)))
