"""Vector-unit lowering: a VecPlan over a (R, Q, W) operand layout as one double-buffered isa program.

Layout: every value of the kernel is a (Q, W) grid of output elements (the reduce's R rows in front before
the reduce). W is split into column tiles of `dim` lanes and Q into chunks of g rows; one chunk is one
group of the double-buffering protocol of `gemm_lowering.emit_groups`: its loads fill one accumulator
half, its vec ops run there, its store drains the output slot, while the next chunk loads into the other
half. A slot holds R*g rows (before the reduce; row r*g + j is element row j of reduce step r) or g rows.
The reduce combines rows as a tree of `vec.add`/`vec.max` over halves of the slot.

DRAM image: per chunk, each loaded operand's rows back to back (one DMA per operand per chunk); an operand
that is the same on every row (a bias or a per-channel scale) is one row per column tile, loaded with
stride 0 so the DMA repeats it. The output is (Q, W) row-major, narrowed to the input dtype when asked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from isa.design import DTYPE_BYTES, Design, ceil_div
from isa.encoding import Instr
from isa.functional import from_dram_bytes, to_dram_bytes
from isa.instructions import INSTRUCTIONS
from sim.simulator import SimResult

from .gemm_lowering import Group, emit_groups
from .graph_program import GraphCollector, execute
from .vector_plan import VecPlan

__all__ = ["VecProgram", "vector_program", "run_vector", "VectorDoesNotFit"]

MAX_VEC_ROWS = INSTRUCTIONS["vec"].field("rows").max


class VectorDoesNotFit(ValueError):
    """The plan's slots do not fit half the accumulator even one row per chunk."""


@dataclass
class VecProgram:
    """A generated vector program, its DRAM image and where the output lives."""

    design: Design
    program: list[Instr]
    image: np.ndarray
    out_addr: int
    out_dtype: str  # isa dtype name of the stored elements
    q: int
    w: int


def _align(x: int) -> int:
    return ceil_div(x, 64) * 64


def _row_broadcast(a: np.ndarray) -> bool:
    """True when every (r, q) row of a (R, Q, W) operand is the same (a per-column vector)."""
    return a.shape[0] * a.shape[1] > 1 and bool((a == a[:1, :1, :]).all())


def vector_program(design: Design, plan: VecPlan, arrays: dict[int, np.ndarray], r: int, q: int, w: int) -> VecProgram:
    """The isa program computing plan over operands `arrays` (slot -> (R or 1, Q, W) in the accumulator dtype)."""
    dim, acc = design.dim, design.matrix.acc_dtype
    acc_b = design.acc_bytes
    aliased = {plan.reduce_out} if plan.reduce_out is not None else set()
    n_pre = sum(1 for s, p in plan.slot_phase.items() if p == "pre" and s not in aliased)
    n_post = sum(1 for s, p in plan.slot_phase.items() if p == "post" and s not in aliased)
    half = design.accumulator_rows // 2
    per_row = n_pre * r + n_post
    g = min(q, half // per_row if per_row else q, MAX_VEC_ROWS // r)
    if g < 1:
        raise VectorDoesNotFit(f"{n_pre} slots of {r} rows and {n_post} of 1 row need {per_row} accumulator rows "
                               f"per element row; half the accumulator holds {half}")
    tiles = ceil_div(w, dim)
    # DRAM image: operands per chunk, then the output
    segments: list[np.ndarray] = []
    addr = 0
    leaf_addr: dict[tuple[int, int, int], tuple[int, int]] = {}  # (slot, tile, q0) -> (address, stride)
    bcast = {s: _row_broadcast(a) for s, a in arrays.items()}
    for s, a in arrays.items():
        if bcast[s]:
            rows = np.zeros((tiles, dim), dtype=a.dtype)
            for t in range(tiles):
                cols = min(dim, w - t * dim)
                rows[t, :cols] = a[0, 0, t * dim:t * dim + cols]
            raw = to_dram_bytes(rows, acc)
            for t in range(tiles):
                for q0 in range(0, q, g):
                    leaf_addr[(s, t, q0)] = (addr + t * dim * acc_b, 0)
            segments.append(raw)
            addr = _align(addr + raw.size)
            continue
        padded = np.zeros((a.shape[0], q, tiles * dim), dtype=a.dtype)
        padded[:, :, :w] = a
        for t in range(tiles):
            for q0 in range(0, q, g):
                block = padded[:, q0:q0 + g, t * dim:(t + 1) * dim]
                raw = to_dram_bytes(np.ascontiguousarray(block), acc)
                leaf_addr[(s, t, q0)] = (addr, dim * acc_b)
                segments.append(raw)
                addr = _align(addr + raw.size)
    out_dtype = design.matrix.input_dtype if plan.narrow else acc
    out_b = design.input_bytes if plan.narrow else acc_b
    out_addr = addr
    total = _align(out_addr + q * w * out_b)
    image = np.zeros(total, dtype=np.uint8)
    pos = 0
    for seg in segments:
        image[pos:pos + seg.size] = seg
        pos = _align(pos + seg.size)
    if total > design.memory.dram_bytes:
        design = design.replace(memory=dataclasses.replace(design.memory, dram_bytes=total))

    groups = []
    for t in range(tiles):
        cols = min(dim, w - t * dim)
        for q0 in range(0, q, g):
            gl = min(g, q - q0)
            base = (len(groups) % 2) * half
            offset, rows_of = {}, {}
            for s in sorted(plan.slot_phase):
                if s in aliased:
                    continue
                rows_of[s] = r * gl if plan.slot_phase[s] == "pre" else gl
                offset[s] = base
                base += r * g if plan.slot_phase[s] == "pre" else g
            if plan.reduce_out is not None:
                offset[plan.reduce_out], rows_of[plan.reduce_out] = offset[plan.reduce_slot], gl
            loads = []
            for s, _, _ in plan.leaves:
                a_addr, stride = leaf_addr[(s, t, q0)]
                lr = arrays[s].shape[0] * gl
                loads.append(dict(op="load.acc", sram=offset[s], dram=a_addr, stride=stride, rows=lr, cols=cols))
            vecs = [_vec(design, st, offset, rows_of[st.dst]) for st in plan.steps if st.phase == "pre"]
            if plan.reduce is not None:
                vecs += _tree(plan, offset, r, gl)
            vecs += [_vec(design, st, offset, rows_of[st.dst]) for st in plan.steps if st.phase == "post"]
            if not vecs:  # the store still needs a compute step to carry its tokens
                vecs = [dict(op="vec.add", dst=offset[plan.out_slot], src=offset[plan.out_slot],
                             rows=rows_of[plan.out_slot], use_imm=1, imm=0)]
            stores = [dict(op="store.acc", narrow=int(plan.narrow), sram=offset[plan.out_slot],
                           dram=out_addr + (q0 * w + t * dim) * out_b, stride=w * out_b, rows=gl, cols=cols)]
            groups.append(Group(loads, vecs, len(groups), True, stores=stores))
    program = emit_groups(groups, design.control.queue_depth)
    return VecProgram(design, program, image, out_addr, out_dtype, q, w)


def _tree(plan: VecPlan, offset: dict[int, int], r: int, gl: int) -> list[dict]:
    """vec ops folding the R row blocks of the reduce slot into its first block, halving each step."""
    out, n, base = [], r, offset[plan.reduce_slot]
    op = "vec.add" if plan.reduce == "add" else "vec.max"
    while n > 1:
        h = n // 2  # the top h blocks fold onto the first h: disjoint ranges, src2 above dst
        out.append(dict(op=op, dst=base, src=base, src2=base + (n - h) * gl, rows=h * gl))
        n -= h
    return out


def _vec(design: Design, st, offset: dict[int, int], rows: int) -> dict:
    x = dict(op=f"vec.{st.op}", dst=offset[st.dst], src=offset[st.src], rows=rows)
    if st.src2 is not None:
        x["src2"] = offset[st.src2]
    elif st.imm is not None:
        x["use_imm"] = 1
        x["imm"] = int(np.array(st.imm, dtype=np.float32).view(np.int32)) if design.is_float else int(st.imm)
    return x


def run_vector(vp: VecProgram, trace: bool = False, sink: list | None = None, collector: GraphCollector | None = None,
               owner: object = None) -> tuple[np.ndarray, SimResult | None]:
    """Simulate the program with values; returns the (Q, W) output and the simulator's result.

    `sink`: append (design, program, DRAM image) for replay (e.g. on the RTL). `collector`: keep the program as
    a segment of the run's single program (values from the functional model, result None); every load of a
    vector program goes to the accumulator, so all of them wait for the kernels before it."""
    eb = DTYPE_BYTES[vp.out_dtype]
    dram, result = execute(vp.design, vp.program, vp.image, trace=trace, sink=sink, collector=collector, owner=owner,
                           output=(vp.out_addr, vp.out_addr + vp.q * vp.w * eb))
    raw = dram[vp.out_addr:vp.out_addr + vp.q * vp.w * eb]
    return from_dram_bytes(raw, vp.out_dtype).reshape(vp.q, vp.w), result
