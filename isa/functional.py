"""Functional (golden) model: executes a program in program order on numpy state, exact values, no timing.

The cycle-level simulator calls the same `check_instr` and `apply` so both compute identical memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isa.design import Design, ceil_div
from isa.encoding import EncodingError, Instr, from_bytes
from isa.errors import UserError
from isa.instructions import VECTOR_INT_ONLY, VECTOR_OPS, VECTOR_SHIFT_IMM, VECTOR_SPECIAL, VECTOR_UNARY

__all__ = ["ExecutionError", "State", "new_state", "run", "check_instr", "check_program", "apply",
           "footprint", "dram_elem_bytes", "to_dram_bytes", "from_dram_bytes", "round_to_input"]


class ExecutionError(UserError, RuntimeError):
    """An instruction that cannot execute on this design; the message names the pc and the instruction."""


@dataclass
class State:
    """Architectural state: DRAM bytes, scratchpad rows, accumulator rows, weights held in a WS array."""

    dram: np.ndarray  # uint8, design.memory.dram_bytes
    sp: np.ndarray  # (scratchpad_rows, dim): int8, or float32 holding input-dtype values
    acc: np.ndarray  # (accumulator_rows, dim): int32 or float32
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (rows, cols) for WS


def new_state(design: Design, dram: np.ndarray | bytes | None = None) -> State:
    """Zeroed state; `dram` (bytes or uint8 array, at most dram_bytes) is copied to address 0."""
    image = np.zeros(design.memory.dram_bytes, dtype=np.uint8)
    if dram is not None:
        src = np.frombuffer(bytes(dram), dtype=np.uint8) if isinstance(dram, (bytes, bytearray)) \
            else np.asarray(dram).reshape(-1).view(np.uint8)
        if src.size > image.size:
            raise ExecutionError(f"DRAM image of {src.size} bytes exceeds the design's "
                                 f"{design.memory.dram_bytes} bytes (memory.dram_bytes)")
        image[:src.size] = src
    sp_dtype = np.float32 if design.is_float else np.int8
    acc_dtype = np.float32 if design.is_float else np.int32
    return State(dram=image, sp=np.zeros((design.scratchpad_rows, design.dim), dtype=sp_dtype),
                 acc=np.zeros((design.accumulator_rows, design.dim), dtype=acc_dtype),
                 weights=np.zeros((design.matrix.rows, design.matrix.cols), dtype=acc_dtype))


def round_to_input(values: np.ndarray, dtype: str) -> np.ndarray:
    """fp32 values rounded to bf16/fp16/fp32 (nearest even), returned as float32."""
    v = np.asarray(values, dtype=np.float32)
    if dtype == "fp32":
        return v.copy()
    if dtype == "fp16":
        return v.astype(np.float16).astype(np.float32)
    bits = v.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    # a NaN is truncated, not rounded (rounding could carry its payload into the sign), and made quiet; its
    # sign survives, as in a hardware bf16 narrowing (0xFFC00000 -> 0xFFC0, not 0x7FC0)
    nan_bits = (bits & 0xFFFF0000) | 0x00400000
    out = (np.where(np.isnan(v), nan_bits, rounded) & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return out


def to_dram_bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values as the little-endian bytes of `dtype` (int8 and int32 wrap; floats round to nearest even)."""
    v = np.asarray(values)
    if dtype == "int8":
        out = v.astype(np.int8)
    elif dtype == "int32":
        out = v.astype(np.int64).astype(np.int32)
    elif dtype == "fp32":
        out = v.astype(np.float32)
    elif dtype == "fp16":
        out = v.astype(np.float32).astype(np.float16)
    else:  # bf16: the upper half of the rounded fp32 bits
        out = (round_to_input(v, "bf16").view(np.uint32) >> 16).astype(np.uint16)
    return np.ascontiguousarray(out).reshape(-1).view(np.uint8)


def from_dram_bytes(raw: np.ndarray, dtype: str) -> np.ndarray:
    """Little-endian bytes of `dtype` as values (int8, int32, or float32 for the float types)."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if dtype == "int8":
        return raw.view(np.int8)
    if dtype == "int32":
        return raw.view("<i4")
    if dtype == "fp32":
        return raw.view("<f4")
    if dtype == "fp16":
        return raw.view("<f2").astype(np.float32)
    return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)


def _sram_dtype(design: Design, mem: int) -> str:
    return design.matrix.input_dtype if mem == 0 else design.matrix.acc_dtype


def dram_elem_bytes(design: Design, instr: Instr) -> int:
    """Bytes per element on the DRAM side of a LOAD or STORE."""
    if instr.args["narrow"]:
        return design.input_bytes
    return design.input_bytes if instr.args["mem"] == 0 else design.acc_bytes


def check_instr(design: Design, instr: Instr) -> str | None:
    """Why `instr` cannot run on `design` (address range, alignment, unsupported op), or None if it can."""
    a = instr.args
    name = instr.mnemonic
    dim = design.dim
    missing = {"load": ("pop_prev", "push_prev"), "store": ("pop_next", "push_next"),
               "finish": ("pop_prev", "pop_next", "push_prev", "push_next")}.get(name, ())
    for flag in missing:
        if a[flag]:
            return f"{name} has no {flag.split('_')[1]} unit to exchange tokens with ({flag})"
    if name in ("load", "store"):
        nrows = design.scratchpad_rows if a["mem"] == 0 else design.accumulator_rows
        mem = "scratchpad" if a["mem"] == 0 else "accumulator"
        if name == "store" and a["pad"]:
            return "store takes no pad"
        if a["narrow"] and (name == "load" or a["mem"] == 0):
            return "narrow is only for store.acc"
        if a["rows"] and not 1 <= a["cols"] <= dim:
            return f"cols = {a['cols']} must be 1..{dim} (dim)"
        if a["sram"] + a["rows"] + a["pad"] > nrows:
            return f"rows {a['sram']}..{a['sram'] + a['rows'] + a['pad'] - 1} exceed the {mem}'s {nrows} rows"
        eb = dram_elem_bytes(design, instr)
        if a["rows"]:
            if a["dram"] % eb or (a["rows"] > 1 and a["stride"] % eb):
                return f"DRAM address {a['dram']} and stride {a['stride']} must be multiples of {eb} bytes"
            end = a["dram"] + (a["rows"] - 1) * a["stride"] + a["cols"] * eb
            if end > design.memory.dram_bytes:
                return f"DRAM bytes up to {end} exceed memory.dram_bytes = {design.memory.dram_bytes}"
            if name == "store" and a["rows"] > 1 and a["stride"] < a["cols"] * eb:
                return f"store stride {a['stride']} is smaller than a row of {a['cols'] * eb} bytes"
        return None
    if name == "gemm":
        rows = design.matrix.rows
        ws = design.matrix.dataflow == "ws"
        if a["k"] < 1:
            return "k must be >= 1"
        if a["preload"] and not ws:
            return "preload is only for weight-stationary designs"
        n = a["repeat"]
        a_end = a["a"] + n * a["sa"] + a["k"]
        b_end = a["b"] + n * a["sb"] + (rows if ws else a["k"])
        c_end = a["c"] + n * a["sc"] + (a["k"] if ws else rows)
        if max(a_end, b_end) > design.scratchpad_rows:
            return f"scratchpad rows up to {max(a_end, b_end) - 1} exceed its {design.scratchpad_rows} rows"
        if c_end > design.accumulator_rows:
            return f"accumulator rows up to {c_end - 1} exceed its {design.accumulator_rows} rows"
        return None
    if name == "vec":
        op = VECTOR_OPS[a["op"]]
        if a["rows"] < 1:
            return "rows must be >= 1"
        ends = [a["dst"], a["src"]] + ([a["src2"]] if not a["use_imm"] and op not in VECTOR_UNARY | VECTOR_SHIFT_IMM
                                       else [])
        if max(ends) + a["rows"] > design.accumulator_rows:
            return f"rows exceed the accumulator's {design.accumulator_rows} rows"
        # The unit streams row by row: a source range that starts below dst and reaches it would read rows
        # this same instruction already rewrote, which a read-everything-first model computes differently.
        for name_src, src in zip(("src", "src2"), ends[1:], strict=False):
            if a["dst"] - a["rows"] < src < a["dst"]:
                return (f"{name_src} rows {src}..{src + a['rows'] - 1} start below dst {a['dst']} and reach it; "
                        "the unit streams row by row, so use disjoint ranges or src >= dst")
        if op in VECTOR_SPECIAL and not design.vector.special_functions:
            return f"{op} needs a special-function unit (vector.special_functions)"
        if op in VECTOR_INT_ONLY and design.is_float:
            return f"{op} is an integer operation; this design accumulates in fp32"
        if op in VECTOR_SHIFT_IMM and not design.is_float and not 0 <= a["imm"] <= 31:
            return f"shift amount imm = {a['imm']} must be 0..31"
        return None
    return None


def check_program(design: Design, program: list[Instr] | bytes) -> list[Instr]:
    """Decode (if bytes) and check every instruction; raise ExecutionError naming the first bad pc."""
    if isinstance(program, (bytes, bytearray)):
        try:
            program = from_bytes(bytes(program))
        except EncodingError as exc:
            raise ExecutionError(str(exc)) from None
    for pc, instr in enumerate(program):
        why = check_instr(design, instr)
        if why:
            raise ExecutionError(f"pc {pc}: {instr.text}: {why}")
        if instr.mnemonic == "finish":
            return program
    raise ExecutionError(f"pc {len(program)}: the program ends without finish")


def _wrap32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64).astype(np.int32)


def _shr(x: np.ndarray, s: int) -> np.ndarray:
    x = x.astype(np.int64)
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def apply(design: Design, state: State, instr: Instr) -> None:
    """Execute one (checked) instruction on `state`."""
    a = instr.args
    name = instr.mnemonic
    if name == "load":
        mem = state.sp if a["mem"] == 0 else state.acc
        lo, rows, cols, pad = a["sram"], a["rows"], a["cols"], a["pad"]
        if rows:
            eb = dram_elem_bytes(design, instr)
            idx = a["dram"] + np.arange(rows)[:, None] * a["stride"] + np.arange(cols * eb)[None, :]
            values = from_dram_bytes(state.dram[idx].reshape(-1), _sram_dtype(design, a["mem"]))
            mem[lo:lo + rows, :cols] = values.reshape(rows, cols)
            mem[lo:lo + rows, cols:] = 0
        mem[lo + rows:lo + rows + pad] = 0
    elif name == "store":
        if not a["rows"]:
            return
        mem = state.sp if a["mem"] == 0 else state.acc
        lo, rows, cols = a["sram"], a["rows"], a["cols"]
        block = mem[lo:lo + rows, :cols]
        if a["narrow"]:
            dtype = design.matrix.input_dtype
            if not design.is_float:
                block = np.clip(block, -128, 127)
        else:
            dtype = _sram_dtype(design, a["mem"])
        raw = to_dram_bytes(block, dtype).reshape(rows, -1)
        idx = a["dram"] + np.arange(rows)[:, None] * a["stride"] + np.arange(raw.shape[1])[None, :]
        state.dram[idx] = raw
    elif name == "gemm":
        _gemm(design, state, a)
    elif name == "vec":
        _vec(design, state, a)


def _gemm(design: Design, state: State, a: dict[str, int]) -> None:
    rows, cols = design.matrix.rows, design.matrix.cols
    ws = design.matrix.dataflow == "ws"
    k = a["k"]
    for i in range(a["repeat"] + 1):
        ai, bi, ci = a["a"] + i * a["sa"], a["b"] + i * a["sb"], a["c"] + i * a["sc"]
        if design.is_float:
            if ws:
                if a["preload"]:
                    state.weights = state.sp[bi:bi + rows, :cols].astype(np.float32)
                out = state.sp[ai:ai + k, :rows] @ state.weights
            else:
                out = state.sp[ai:ai + k, :rows].T @ state.sp[bi:bi + k, :cols]
            out = out.astype(np.float32)
            n_out = out.shape[0]
            if a["accumulate"]:
                out = state.acc[ci:ci + n_out, :cols] + out
            state.acc[ci:ci + n_out, :cols] = out
        else:
            if ws:
                if a["preload"]:
                    state.weights = state.sp[bi:bi + rows, :cols].astype(np.int32)
                out = state.sp[ai:ai + k, :rows].astype(np.int64) @ state.weights.astype(np.int64)
            else:
                out = state.sp[ai:ai + k, :rows].T.astype(np.int64) @ state.sp[bi:bi + k, :cols].astype(np.int64)
            n_out = out.shape[0]
            if a["accumulate"]:
                out = out + state.acc[ci:ci + n_out, :cols]
            state.acc[ci:ci + n_out, :cols] = _wrap32(out)


def _vec(design: Design, state: State, a: dict[str, int]) -> None:
    op = VECTOR_OPS[a["op"]]
    n = a["rows"]
    x = state.acc[a["src"]:a["src"] + n]
    imm = a["imm"]
    if design.is_float:
        if a["use_imm"]:
            y = np.array([imm], dtype=np.int32).view(np.float32)[0]
        else:
            y = state.acc[a["src2"]:a["src2"] + n]
        with np.errstate(all="ignore"):
            out = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
                   "max": lambda: np.maximum(x, y), "min": lambda: np.minimum(x, y),
                   "relu": lambda: np.maximum(x, np.float32(0)),
                   "requant": lambda: round_to_input(x, design.matrix.input_dtype),
                   "exp2": lambda: np.exp2(x), "recip": lambda: np.float32(1) / x, "sqrt": lambda: np.sqrt(x),
                   }[op]()
        state.acc[a["dst"]:a["dst"] + n] = np.asarray(out, dtype=np.float32)
        return
    x64 = x.astype(np.int64)
    if op in VECTOR_SHIFT_IMM:
        out = {"shr": lambda: _shr(x64, imm), "shl": lambda: x64 << imm,
               "requant": lambda: np.clip(_shr(x64, imm), -128, 127)}[op]()
    elif op == "relu":
        out = np.maximum(x64, 0)
    else:
        y = np.int64(imm) if a["use_imm"] else state.acc[a["src2"]:a["src2"] + n].astype(np.int64)
        out = {"add": lambda: x64 + y, "sub": lambda: x64 - y, "mul": lambda: (x64 * y) & 0xFFFFFFFF,
               "max": lambda: np.maximum(x64, y), "min": lambda: np.minimum(x64, y)}[op]()
    state.acc[a["dst"]:a["dst"] + n] = _wrap32(out)


def footprint(design: Design, instr: Instr) -> tuple[tuple[str, int, int, bool], ...]:
    """Memory ranges an instruction touches: (space, first, end, is_write), space in dram/sp/acc.

    SRAM ranges are in rows, DRAM ranges in bytes; repeated GEMMs give the bounding range over iterations.
    """
    a = instr.args
    name = instr.mnemonic
    if name in ("load", "store"):
        space = "sp" if a["mem"] == 0 else "acc"
        out = []
        if a["rows"]:
            eb = dram_elem_bytes(design, instr)
            out.append(("dram", a["dram"], a["dram"] + (a["rows"] - 1) * a["stride"] + a["cols"] * eb,
                        name == "store"))
        if a["rows"] + a["pad"]:
            out.append((space, a["sram"], a["sram"] + a["rows"] + a["pad"], name == "load"))
        return tuple(out)
    if name == "gemm":
        rows = design.matrix.rows
        ws = design.matrix.dataflow == "ws"
        n = a["repeat"]
        out = [("sp", a["a"], a["a"] + n * a["sa"] + a["k"], False),
               ("acc", a["c"], a["c"] + n * a["sc"] + (a["k"] if ws else rows), True)]
        if not ws or a["preload"]:
            out.append(("sp", a["b"], a["b"] + n * a["sb"] + (rows if ws else a["k"]), False))
        return tuple(out)
    if name == "vec":
        op = VECTOR_OPS[a["op"]]
        n = a["rows"]
        out = [("acc", a["src"], a["src"] + n, False), ("acc", a["dst"], a["dst"] + n, True)]
        if not a["use_imm"] and op not in VECTOR_UNARY | VECTOR_SHIFT_IMM:
            out.append(("acc", a["src2"], a["src2"] + n, False))
        return tuple(out)
    return ()


def run(design: Design, program: list[Instr] | bytes, dram: np.ndarray | bytes | None = None) -> State:
    """Execute a program in program order until finish; returns the final state."""
    program = check_program(design, program)
    state = new_state(design, dram)
    for instr in program:
        if instr.mnemonic == "finish":
            break
        apply(design, state, instr)
    return state


def dma_beats(design: Design, instr: Instr) -> int:
    """DRAM bus beats of a LOAD or STORE with rows > 0 (docs/timing.md, sections 3 and 7).

    One burst of ceil(row bytes / bandwidth) beats per row; with `memory.dram_burst_merge`, rows contiguous
    in DRAM (stride = row bytes) go as one burst of ceil(total bytes / bandwidth) beats.
    """
    a = instr.args
    row_bytes = a["cols"] * dram_elem_bytes(design, instr)
    bw = design.memory.dram_bandwidth_bytes_per_cycle
    if design.memory.dram_burst_merge and a["stride"] == row_bytes:
        return ceil_div(a["rows"] * row_bytes, bw)
    return a["rows"] * ceil_div(row_bytes, bw)
