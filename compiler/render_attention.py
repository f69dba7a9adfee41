"""The fused attention kernel for CPU OpenCL devices (the kernels schedule_attention.py makes), in the manner
of flash attention: the (T, S) scores never leave local memory, whatever S.

A work-group takes one batch entry (a (batch, head) pair) and a group of query rows (all of them up to 192,
else 96: `tiles`). It walks the keys in chunks of 128, packing a chunk of K transposed
and of V into local memory as 16-wide tiles, and for each block of 6 of its rows computes the 6 x chunk
scores with the GEMM template's 6 x 16 register tile (broadcast query values times float8 rows of K^T).
The softmax is online: each row keeps its running max and sum of exp2((score - max) log2 e), and what it
summed into its output row before is rescaled by exp2((old max - new max) log2 e) when the max grows; the
probabilities times the chunk of V go into the output rows (local memory) with a 6 x 16 tile again, and
each row is finally multiplied by the reciprocal of its sum. A causal block visits only the keys its last
row sees, unless V holds an inf or NaN: then every key, so that a masked key's probability 0 times inf
gives NaN as in numpy and the composite's own kernels (0 times a finite value adds nothing, so the result
is the same either way). The inputs are read through their views' index expressions, rendered once each in
the packing loops, so any unpadded view works and the inner loops read local memory.
"""

from __future__ import annotations

import math

from .cl_math import prelude
from .indexing import linear, view_index
from .kernel_ir import Kernel, KernelOpts, Program
from .render_opencl import c_literal
from .symbolic import Lin

_LOG2E = math.log2(math.e)  # the softmax's constant (Tensor.softmax multiplies by it rounded to float32 alike)
ROWS = 6  # query rows a block: 6 x 16 scores in 12 float8 accumulators, as the GEMM template's tile
LOCAL_BYTES = 256 << 10  # a work-group's local memory at most: kept within a core's L2


def tiles(t: int, d: int, dv: int, device_local_bytes: int) -> tuple[int, int] | None:
    """(query rows a work-group, keys a chunk) whose local memory fits LOCAL_BYTES and the device's own
    (PoCL gives 512 KiB, other CPU OpenCL drivers as little as 32), or None: a work-group keeps its rows'
    queries, running max and sum and output, and one chunk of K^T and V at a time."""
    budget = min(LOCAL_BYTES, device_local_bytes)
    # up to 192 rows a work-group takes them all: K and V packed once a head (the GPT-2 block's 128 rows);
    # longer sequences split into groups of 96, more work-groups for more cores
    whole = -(-t // ROWS) * ROWS
    for rows, chunk in ((whole if whole <= 192 else 96, 128), (96, 128), (48, 64), (24, 32)):
        rows = min(rows, whole)
        if 4 * (d * chunk + chunk * dv + rows * (d + dv + 2) + ROWS * (chunk + 1)) <= budget:
            return rows, chunk
    return None


def _read(k: Kernel, view, slot: dict, batch: list, row: tuple, col: tuple) -> str:
    """The C expression reading view at (batch vars, row var, col var), through its views to its buffer."""
    idx = (*batch, Lin.var(*row), Lin.var(*col))
    n = view
    while n.id not in slot:
        idx, bounds = view_index(n, idx)
        assert not bounds, "schedule_attention fuses unpadded views only"
        n = n.src[0]
    return f"data{slot[n.id]}[{linear(idx, n.shape).render()}]"


def render_attention(k: Kernel, device_local_bytes: int) -> Program:
    """The fused attention program for kernel k (k.fused from schedule_attention.fuse_attention), its tiles
    fitting device_local_bytes of local memory."""
    _, causal, (q, key, v) = k.fused
    *batch, t, d = q.shape
    s, dv = key.shape[-2], v.shape[-1]
    rg, ch = tiles(t, d, dv, device_local_bytes)
    groups = -(-t // rg)
    nv = 2 if dv % 16 == 0 else 1
    w = 8 * nv  # V's columns a tile: V is packed [column tile][key][w], K^T [key tile][d][16]: each tile's
    # rows are contiguous, not a row of the whole matrix apart (which puts a tile's rows in a few L1 sets)
    slot = {b.id: i for i, b in enumerate(k.buffers) if i}
    bvars = [Lin.var(f"b{i}", n) for i, n in enumerate(batch)]
    f32 = q.dtype
    scale = c_literal(1.0 / math.sqrt(d), f32)
    log2e = c_literal(_LOG2E, f32)
    rows = range(ROWS)
    params = ["__global float* restrict data0"] + [
        f"const __global float* restrict data{i}" for i in range(1, len(k.buffers))
    ]
    kread = _read(k, key, slot, bvars, ("j", s), ("d", d))
    vread = _read(k, v, slot, bvars, ("j", s), ("e", dv))
    qread = _read(k, q, slot, bvars, ("t", t), ("d", d))
    body = [
        f"  __local float Kt[{d * ch}] __attribute__((aligned(64)));",
        f"  __local float Vs[{ch * dv}] __attribute__((aligned(64)));",
        f"  __local float Qs[{rg * d}];",
        f"  __local float Os[{rg * dv}] __attribute__((aligned(64)));",
        f"  __local float Ms[{rg}], Ls[{rg}], As[{ROWS}];",
        f"  __local float Ps[{ROWS * ch}] __attribute__((aligned(64)));",
        f"  const int g = get_group_id(0) / {groups}, tlo = (get_group_id(0) % {groups}) * {rg};",
        f"  const int thi = min(tlo + {rg}, {t});",
    ]
    stride = 1
    for i in reversed(range(len(batch))):
        body.append(f"  const int b{i} = (g / {stride}) % {batch[i]};")
        stride *= batch[i]
    if causal:  # keys past the last row's are skipped, unless V holds an inf or NaN: then 0 * inf must give
        # NaN as in numpy and the composite's own kernels, so every key is visited (without a mask: always)
        body += [
            "  int finite = 1;",
            f"  for (int j = 0; j < {s}; j++) for (int e = 0; e < {dv}; e++) {{ const float x = {vread};"
            " finite &= x >= -FLT_MAX && x <= FLT_MAX; }",
        ]
    body += [
        f"  const int kend = {f'finite ? min({s}, thi) : {s}' if causal else s};",
        f"  for (int r = 0; r < {rg}; r++) {{ const int t = min(tlo + r, {t - 1});"
        f" for (int d = 0; d < {d}; d++) Qs[r*{d}+d] = {qread};"
        f" for (int e = 0; e < {dv}; e++) Os[r*{dv}+e] = 0.0f; Ms[r] = -INFINITY; Ls[r] = 0.0f; }}",
        f"  for (int c0 = 0; c0 < kend; c0 += {ch}) {{",
        f"    const int cn = min({ch}, kend - c0);",
        f"    for (int jj = 0; jj < {ch}; jj++) {{ const int j = min(c0 + jj, {s - 1});"
        f" for (int d = 0; d < {d}; d++) Kt[(jj/16)*{16 * d}+d*16+jj%16] = {kread}; }}",
        f"    for (int jj = 0; jj < cn; jj++) {{ const int j = c0 + jj;"
        f" for (int e = 0; e < {dv}; e++) Vs[(e/{w})*{ch * w}+jj*{w}+e%{w}] = {vread}; }}",
        f"    for (int t0 = tlo; t0 < thi; t0 += {ROWS}) {{",
        f"      if ({'finite && c0 > t0 + ' + str(ROWS - 1) if causal else '0'}) continue;  // no key here for these rows",
        f"      const int jn = {f'finite ? min(cn, t0 + {ROWS} - c0) : cn' if causal else 'cn'};",
        "      const int jp = (jn + 15) & ~15;",
        f"      __local const float* qb = Qs + (t0 - tlo)*{d};",
        "      for (int j0 = 0; j0 < jp; j0 += 16) {",
        "        " + " ".join(f"float8 c{r}_{h} = 0.0f;" for r in rows for h in (0, 1)),
        f"        __local const float* kp = Kt + j0*{d};",
        f"        for (int d = 0; d < {d}; d++) {{",
        "          const float8 k0 = *(__local const float8*)(kp + d*16);",
        "          const float8 k1 = *(__local const float8*)(kp + d*16 + 8);",
    ]
    for r in rows:
        body.append(f"          {{ const float a = qb[{r * d}+d]; c{r}_0 += a * k0; c{r}_1 += a * k1; }}")
    body.append("        }")
    for r in rows:
        for h in (0, 1):
            body.append(f"        *(__local float8*)(Ps + {r * ch} + j0 + {8 * h}) = c{r}_{h} * {scale};")
    body += [
        "      }",
        # the online softmax: each row's running max and sum; what was summed before is rescaled by
        # exp2((old max - new max) log2 e) when the max grows (0 for the first keys: the old max is -inf)
        f"      for (int r = 0; r < {ROWS}; r++) {{",
        "        const int tr = t0 + r, row = tr - tlo;",
        "        if (tr >= thi) { As[r] = 0.0f; continue; }",
        f"        const int lim = {'min(tr + 1 - c0, cn)' if causal else 'cn'};",
        f"        __local float* p = Ps + r*{ch};",
        "        const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);",
        "        float8 m8 = (float8)(-INFINITY);",
        "        for (int j = 0; j < jp; j += 8) {",
        "          const float8 x = *(__local float8*)(p + j);",
        "          m8 = wb_fmax(m8, (lane + j < lim) ? x : (float8)(-INFINITY));",
        "        }",
        "        const float mc = wb_fmax(wb_fmax(wb_fmax(m8.s0, m8.s1), wb_fmax(m8.s2, m8.s3)),"
        " wb_fmax(wb_fmax(m8.s4, m8.s5), wb_fmax(m8.s6, m8.s7)));",
        "        const float mo = Ms[row], m = wb_fmax(mo, mc);",
        f"        const float alpha = mo == m ? 1.0f : wb_exp2((mo - m) * {log2e});",
        "        float8 s8 = 0.0f;",
        "        for (int j = 0; j < jp; j += 8) {",
        f"          const float8 ex = wb_exp2v((*(__local float8*)(p + j) - m) * {log2e});",
        "          const float8 pe = (lane + j < lim) ? ex : (float8)0.0f;",
        "          *(__local float8*)(p + j) = pe;",
        "          s8 += pe;",
        "        }",
        "        Ms[row] = m;",
        "        Ls[row] = Ls[row] * alpha + (((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7)));",
        "        As[r] = alpha;",
        "      }",
        f"      for (int e0 = 0; e0 < {dv}; e0 += {w}) {{",
        f"        __local float* ob = Os + (t0 - tlo)*{dv} + e0;",
    ]
    for r in rows:
        body.append(
            "        " + " ".join(f"float8 o{r}_{h} = *(__local float8*)(ob + {r * dv + 8 * h}) * As[{r}];" for h in range(nv))
        )
    body += [
        f"        __local const float* vp = Vs + e0*{ch};",
        "        for (int j = 0; j < jn; j++) {",
    ]
    for h in range(nv):
        body.append(f"          const float8 v{h} = *(__local const float8*)(vp + j*{w} + {8 * h});")
    for r in rows:
        acc = " ".join(f"o{r}_{h} += a * v{h};" for h in range(nv))
        body.append(f"          {{ const float a = Ps[{r * ch}+j]; {acc} }}")
    body.append("        }")
    for r in rows:
        stores = " ".join(f"*(__local float8*)(ob + {r * dv + 8 * h}) = o{r}_{h};" for h in range(nv))
        body.append(f"        if (t0 + {r} < thi) {{ {stores} }}")
    body += [
        "      }",
        "    }",
        "  }",
        f"  for (int tr = tlo; tr < thi; tr++) {{ const float inv = (1.0f/Ls[tr - tlo]);"
        f" for (int e = 0; e < {dv}; e++) data0[(g*{t} + tr)*{dv} + e] = Os[(tr - tlo)*{dv} + e] * inv; }}",
        "}",
    ]
    src_body = f"__kernel void {k.name}({', '.join(params)}) {{\n" + "\n".join(body) + "\n"
    src = prelude(src_body) + src_body
    return Program(src, k.name, (math.prod(batch) * groups,), (1,), KernelOpts())
