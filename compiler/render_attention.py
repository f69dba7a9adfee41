"""The fused attention kernel for CPU OpenCL devices (the kernels schedule_attention.py makes).

One work-group per batch entry (a (batch, head) pair): it packs K transposed and V into local memory, then
takes the query rows in blocks of 6. For a block it computes the 6 x keys scores with the GEMM template's
6 x 16 register tile (broadcast query values times float8 rows of K^T), keeps them in local memory, turns
each row into probabilities (max, exp2 of the scaled difference, sum, times the reciprocal: the ops and
order of the composite's softmax), and multiplies them by V with a 6 x 16 tile again. A causal block
visits only the keys its last row sees, unless V holds an inf or NaN: then every key, so that a masked
key's probability 0 times inf gives NaN as in numpy and the composite's own kernels (0 times a finite value
adds nothing, so the result is the same either way). The inputs are read through their views' index expressions,
rendered once each in the packing loops, so any unpadded view works and the inner loops read local memory.
"""

from __future__ import annotations

import math

from .cl_math import prelude
from .indexing import linear, view_index
from .kernel_ir import Kernel, KernelOpts, Program
from .render_opencl import c_literal
from .schedule_attention import ROWS, padded_keys
from .symbolic import Lin

_LOG2E = 1.4426950408889634  # the softmax's own constant (Tensor.softmax), rounded to float32 alike


def _read(k: Kernel, view, slot: dict, batch: list, row: tuple, col: tuple) -> str:
    """The C expression reading view at (batch vars, row var, col var), through its views to its buffer."""
    idx = (*batch, Lin.var(*row), Lin.var(*col))
    n = view
    while n.id not in slot:
        idx, bounds = view_index(n, idx)
        assert not bounds, "schedule_attention fuses unpadded views only"
        n = n.src[0]
    return f"data{slot[n.id]}[{linear(idx, n.shape).render()}]"


def render_attention(k: Kernel) -> Program:
    """The fused attention program for kernel k (k.fused from schedule_attention.fuse_attention)."""
    _, causal, (q, key, v) = k.fused
    *batch, t, d = q.shape
    s, dv = key.shape[-2], v.shape[-1]
    sp, nv = padded_keys(s), 2 if dv % 16 == 0 else 1
    w = 8 * nv  # V's columns a tile: V is packed [column tile][key][w], K^T [key tile][d][16]: each tile's
    # rows are contiguous, not a row of the whole matrix apart (which puts a tile's rows in a few L1 sets)
    slot = {b.id: i for i, b in enumerate(k.buffers) if i}
    bvars = [Lin.var(f"b{i}", n) for i, n in enumerate(batch)]
    f32 = q.dtype
    scale = c_literal(1.0 / math.sqrt(d), f32)
    log2e = c_literal(_LOG2E, f32)
    rows = range(ROWS)
    name = k.name
    params = ["__global float* restrict data0"] + [
        f"const __global float* restrict data{i}" for i in range(1, len(k.buffers))
    ]
    body = [
        f"  __local float Kt[{d * sp}] __attribute__((aligned(64)));",
        f"  __local float Vs[{s * dv}] __attribute__((aligned(64)));",
        f"  __local float Qs[{ROWS * d}];",
        f"  __local float Ps[{ROWS * sp}] __attribute__((aligned(64)));",
        "  const int g = get_group_id(0);",
    ]
    stride = 1
    for i in reversed(range(len(batch))):
        body.append(f"  const int b{i} = (g / {stride}) % {batch[i]};")
        stride *= batch[i]
    kread = _read(k, key, slot, bvars, ("j", s), ("d", d))
    vread = _read(k, v, slot, bvars, ("j", s), ("e", dv))
    qread = _read(k, q, slot, bvars, ("t", t), ("d", d))
    body += [
        f"  for (int j = 0; j < {s}; j++) for (int d = 0; d < {d}; d++) Kt[(j/16)*{16 * d}+d*16+j%16] = {kread};",
        f"  for (int j = {s}; j < {sp}; j++) for (int d = 0; d < {d}; d++) Kt[(j/16)*{16 * d}+d*16+j%16] = 0.0f;",
        "  int finite = 1;",
        f"  for (int j = 0; j < {s}; j++) for (int e = 0; e < {dv}; e++) {{ const float x = {vread};"
        f" finite &= x >= -FLT_MAX && x <= FLT_MAX; Vs[(e/{w})*{s * w}+j*{w}+e%{w}] = x; }}",
        f"  for (int t0 = 0; t0 < {t}; t0 += {ROWS}) {{",
        f"    for (int r = 0; r < {ROWS}; r++) {{ const int t = min(t0 + r, {t - 1});"
        f" for (int d = 0; d < {d}; d++) Qs[r*{d}+d] = {qread}; }}",
        f"    const int jn = {f'finite ? min({s}, t0 + {ROWS}) : {s}' if causal else s};",
        "    const int jp = (jn + 15) & ~15;",
        "    for (int j0 = 0; j0 < jp; j0 += 16) {",
        "      " + " ".join(f"float8 c{r}_{h} = 0.0f;" for r in rows for h in (0, 1)),
        f"      __local const float* kp = Kt + j0*{d};",
        f"      for (int d = 0; d < {d}; d++) {{",
        "        const float8 k0 = *(__local const float8*)(kp + d*16);",
        "        const float8 k1 = *(__local const float8*)(kp + d*16 + 8);",
    ]
    for r in rows:
        body.append(f"        {{ const float a = Qs[{r * d}+d]; c{r}_0 += a * k0; c{r}_1 += a * k1; }}")
    body.append("      }")
    for r in rows:
        for h in (0, 1):
            body.append(f"      *(__local float8*)(Ps + {r * sp} + j0 + {8 * h}) = c{r}_{h} * {scale};")
    body += [
        "    }",
        f"    for (int r = 0; r < {ROWS} && t0 + r < {t}; r++) {{",
        f"      const int lim = {f'min(t0 + r + 1, {s})' if causal else s};",
        f"      __local float* p = Ps + r*{sp};",
        "      const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);",
        "      float8 m8 = (float8)(-INFINITY);",
        "      for (int j = 0; j < jp; j += 8) {",
        "        const float8 x = *(__local float8*)(p + j);",
        "        m8 = wb_fmax(m8, (lane + j < lim) ? x : (float8)(-INFINITY));",
        "      }",
        "      const float m = wb_fmax(wb_fmax(wb_fmax(m8.s0, m8.s1), wb_fmax(m8.s2, m8.s3)),"
        " wb_fmax(wb_fmax(m8.s4, m8.s5), wb_fmax(m8.s6, m8.s7)));",
        "      float8 s8 = 0.0f;",
        "      for (int j = 0; j < jp; j += 8) {",
        f"        const float8 ex = wb_exp2v((*(__local float8*)(p + j) - m) * {log2e});",
        "        const float8 pe = (lane + j < lim) ? ex : (float8)0.0f;",
        "        *(__local float8*)(p + j) = pe;",
        "        s8 += pe;",
        "      }",
        "      const float inv = (1.0f/(((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7))));",
        "      for (int j = 0; j < jp; j += 8) *(__local float8*)(p + j) *= inv;",
        "    }",
        f"    for (int e0 = 0; e0 < {dv}; e0 += {8 * nv}) {{",
        "      " + " ".join(f"float8 o{r}_{h} = 0.0f;" for r in rows for h in range(nv)),
        f"      __local const float* vp = Vs + e0*{s};",
        "      for (int j = 0; j < jn; j++) {",
    ]
    for h in range(nv):
        body.append(f"        const float8 v{h} = *(__local const float8*)(vp + j*{w} + {8 * h});")
    for r in rows:
        acc = " ".join(f"o{r}_{h} += a * v{h};" for h in range(nv))
        body.append(f"        {{ const float a = Ps[{r * sp}+j]; {acc} }}")
    body.append("      }")
    for r in rows:
        stores = " ".join(
            f"vstore8(o{r}_{h}, 0, data0 + (g*{t} + t0 + {r})*{dv} + e0 + {8 * h});" for h in range(nv)
        )
        body.append(f"      if (t0 + {r} < {t}) {{ {stores} }}")
    body += ["    }", "  }"]
    src_body = f"__kernel void {name}({', '.join(params)}) {{\n" + "\n".join(body) + "\n}\n"
    src = prelude(src_body) + src_body
    return Program(src, name, (math.prod(batch),), (1,), KernelOpts())
