"""Seeded random valid programs for the RTL-vs-simulator agreement checks.

A program is a chain of blocks; block b uses scratchpad and accumulator half b % 2 (so consecutive
blocks overlap in time) and fresh DRAM output rows. In each block: one to three loads (into the
scratchpad, sometimes the accumulator, sometimes pad-only), a GEMM with random k / repeat / strides /
accumulate, zero to three vector ops, and one or two stores (accumulator, narrowed, or scratchpad).
Tokens order load -> gemm -> store and hand each half back before it is reused, so the programs are
race free by construction; `workbench.rtl_agreement.valid_random_program` also runs each candidate
through the simulator's checks and redraws a program it rejects.

Patterns outside the agreement (docs/timing.md, "Known contract gaps") are never drawn: GEMMs in flight
together whose accumulator rows partially overlap (0 < |c2 - c1| < ROWS; here every block has one GEMM
and the blocks alternate halves), and VEC whose source rows (src or src2) start below dst but reach it
(dst - rows < src < dst); the simulator rejects the first as a race and the functional model the second.
"""
from __future__ import annotations

import numpy as np

from isa.design import Design
from isa.encoding import Instr, make
from isa.functional import dram_elem_bytes
from isa.instructions import VECTOR_OPS, VECTOR_SHIFT_IMM, VECTOR_SPECIAL

# The vector ops of an integer design (special functions need a float design), in opcode order.
INT_VEC_OPS = tuple(op for op in VECTOR_OPS if op not in VECTOR_SPECIAL)


def random_program(design: Design, seed: int, blocks: int | None = None,
                   dense: bool = False) -> tuple[list[Instr], np.ndarray]:
    """A random valid program for `design` and a DRAM image for it (inputs in the first bytes).

    dense: most loads and stores get rows contiguous in DRAM (stride = row bytes), often narrower than a
    beat, to exercise `dram_burst_merge`; drawn after the rest, so a seed's program is otherwise the same.
    """
    rng = np.random.default_rng(seed)
    R, C, dim = design.matrix.rows, design.matrix.cols, design.dim
    sp_half = design.scratchpad_rows // 2
    acc_half = design.accumulator_rows // 2
    in_bytes = 4096
    image = rng.integers(0, 256, in_bytes, dtype=np.uint8)
    out_base = 8192
    out_ptr = out_base
    prog: list[Instr] = []
    nblocks = blocks if blocks is not None else int(rng.integers(2, 5))
    for b in range(nblocks):
        sp0 = (b % 2) * sp_half
        ac0 = (b % 2) * acc_half
        reuse = b >= 2  # this half was used two blocks ago: wait for its gemm / store
        # ---- loads
        k = int(rng.integers(1, 2 * R + 1))
        repeat = int(rng.integers(0, 3))
        sa = int(rng.integers(0, k + 1))
        sb = int(rng.integers(0, k + 1))
        a_rows = k + repeat * sa
        ws = design.matrix.dataflow == "ws"
        preload = ws and bool(rng.random() < 0.8)
        b_rows = max(k, R) + repeat * sb
        a0, b0 = sp0, sp0 + a_rows
        need = a_rows + b_rows
        assert need <= sp_half
        loads = []
        n_a = a_rows
        pad_a = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
        pad_a = min(pad_a, n_a)
        loads.append(make("load.sp", sram=a0, dram=int(rng.integers(0, 512)), stride=int(rng.integers(dim, 3 * dim)),
                          rows=n_a - pad_a, cols=int(rng.integers(1, dim + 1)) if rng.random() < 0.3 else dim,
                          pad=pad_a))
        loads.append(make("load.sp", sram=b0, dram=int(rng.integers(0, 512)), stride=int(rng.integers(dim, 3 * dim)),
                          rows=b_rows, cols=dim))
        out_rows = k if ws else R
        sc = int(rng.choice([0, out_rows, out_rows + int(rng.integers(0, 3))]))
        c_rows = out_rows + repeat * sc
        c0 = ac0 + int(rng.integers(0, max(1, acc_half - c_rows - 8)))
        accumulate = bool(rng.random() < 0.5)
        if accumulate and b < 2 and rng.random() < 0.5:  # seed the accumulator from DRAM
            loads.append(make("load.acc", sram=c0, dram=4 * int(rng.integers(0, 256)), stride=4 * dim,
                              rows=min(c_rows, 8), cols=dim))
        if rng.random() < 0.2:
            loads.append(make("load.sp", sram=b0 + b_rows, rows=0, pad=int(rng.integers(1, 4))))
        for i, ld in enumerate(loads):
            args = dict(ld.args)
            if i == 0 and reuse:
                args["pop_next"] = 1
            if i == len(loads) - 1:
                args["push_next"] = 1
            loads[i] = Instr(ld.spec, args)
        prog += loads
        # ---- compute
        gemm = make("gemm", a=a0, b=b0, c=c0, k=k, repeat=repeat, sa=sa, sb=sb, sc=sc,
                    accumulate=int(accumulate), preload=int(preload), pop_prev=1, pop_next=int(reuse))
        comp = [gemm]
        for _ in range(int(rng.integers(0, 4))):
            op = str(rng.choice(INT_VEC_OPS))
            rows = int(rng.integers(1, c_rows + 1))
            src = c0 + int(rng.integers(0, c_rows - rows + 1))
            use_imm = bool(rng.random() < 0.5)
            imm = int(rng.integers(0, 32)) if op in VECTOR_SHIFT_IMM else int(rng.integers(-1000, 1000))
            src2 = c0 + int(rng.integers(0, c_rows - rows + 1))
            dst = src if rng.random() < 0.7 else max(c0, src - int(rng.integers(0, 3)))
            if dst - rows < src2 < dst:  # src2 would read rows this op already rewrote
                src2 = dst
            comp.append(make(f"vec.{op}", dst=dst, src=src, src2=src2, rows=rows, use_imm=int(use_imm), imm=imm))
        last = comp[-1]
        comp[-1] = Instr(last.spec, {**last.args, "push_next": 1, "push_prev": 1})
        prog += comp
        # ---- stores
        narrow = bool(rng.random() < 0.4)
        eb = 1 if narrow else 4
        cols = int(rng.integers(1, C + 1)) if rng.random() < 0.3 else C
        st = make("store.acc", sram=c0, dram=out_ptr, stride=eb * dim, rows=c_rows, cols=cols, narrow=int(narrow))
        out_ptr += c_rows * eb * dim
        stores = [st]
        if rng.random() < 0.2:
            stores.append(make("store.acc", rows=0))
        stores[0] = Instr(stores[0].spec, {**stores[0].args, "pop_prev": 1})
        stores[-1] = Instr(stores[-1].spec, {**stores[-1].args, "push_prev": 1})
        prog += stores
    if dense:
        prog = [_densify(design, i, rng) for i in prog]
    prog.append(make("finish"))
    return prog, image


def _densify(design: Design, instr: Instr, rng: np.random.Generator) -> Instr:
    """`instr` with, most of the time, fewer columns and its rows back to back in DRAM (a DMA with rows > 0)."""
    if instr.mnemonic not in ("load", "store") or not instr.args["rows"] or rng.random() < 0.2:
        return instr
    args = dict(instr.args)
    if rng.random() < 0.5:
        args["cols"] = int(rng.integers(1, args["cols"] + 1))
    args["stride"] = args["cols"] * dram_elem_bytes(design, Instr(instr.spec, args))
    return Instr(instr.spec, args)

