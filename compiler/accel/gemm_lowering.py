"""GEMM lowering: tile C = A x B of any M, N, K onto a design as a double-buffered ISA program.

DRAM layout (bytes, 64-byte aligned regions): OS designs take A transposed (`AT`, K x M), since the
output-stationary array consumes one column of A per cycle, and B (K x N), both as panels (`_panels`): per
reduction chunk of `kc` rows, the ROWS-wide (A) or COLS-wide (B) tiles one after another, zero-padded to
whole tiles, so that one DMA fetches all the tiles of a block (the DRAM latency is paid per DMA). WS
designs take A (M x K) and B (K x N) row-major. C is M x N row-major in the accumulator dtype
(int32 / fp32). `GemmProgram.dram_image` / `read_c` build and read these images.

Blocking (sizes from `compiler.accel.tiling`): OS keeps a bm x bn block of C tiles in one accumulator half while the
reduction streams in chunks of kc rows (bm A tiles and bn B tiles loaded per chunk); WS keeps ml rows x bn
column tiles and streams each loaded A panel against the bn weight tiles. With `whole_k` (ideal memory)
the folds are SCALE-Sim's: each OS tile streams the whole K, each WS fold all the M rows it can.

Double buffering: the scratchpad and the accumulator are each split in two halves (in different banks),
used alternately by consecutive load groups / output blocks; tokens order load -> gemm -> store and
hand buffers back (docs/timing.md). A `gemm` with `repeat` covers a row of a block's output tiles.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.accel.tiling import MAX_DMA_ROWS, MAX_REPEAT, MAX_STREAM, OsBlock, os_block, ws_block
from isa.design import DEFAULT_DESIGN, DTYPE_BYTES, Design, DesignError, ceil_div, load_design
from isa.encoding import Instr, make
from isa.errors import UserError
from isa.functional import from_dram_bytes, to_dram_bytes
from isa.instructions import INSTRUCTIONS

__all__ = ["GemmProgram", "gemm_program", "gemm_design", "MAX_STREAM", "GemmSizeError", "check_gemm_size",
           "Group", "emit_groups", "split_dma", "Epilogue", "EpilogueDoesNotFit", "operand_bytes"]

MAX_SP_ROWS = INSTRUCTIONS["gemm"].field("a").max + 1  # scratchpad rows a gemm can address
MAX_ACC_ROWS = INSTRUCTIONS["gemm"].field("c").max + 1
MAX_DRAM_BYTES = INSTRUCTIONS["load"].field("dram").max + 1  # DRAM bytes a load or store can address
MAX_DRAM_STRIDE = INSTRUCTIONS["load"].field("stride").max  # bytes between the rows of one DMA


class GemmSizeError(UserError):
    """A GEMM the instruction set cannot express on this design (sizes below 1, operands beyond its DRAM reach)."""


class EpilogueDoesNotFit(ValueError):
    """The accumulator cannot hold the output blocks and the epilogue's per-column operands together."""


@dataclass(frozen=True)
class Epilogue:
    """Vector ops applied in place to every finished block of C in the accumulator, before its store.

    steps: (vec op, per-column operand index or None, immediate or None); each reads the tile and writes it
    back. Operand o is a row of N accumulator-dtype values (a bias, a per-channel multiplier), loaded once per
    block and column tile with a stride-0 DMA that repeats it over the tile's rows. narrow: store C in the
    input dtype (int8 saturating / bf16 / fp16), so a requantized activation leaves the chip as int8.
    """

    steps: tuple[tuple[str, int | None, float | int | None], ...]
    operands: int = 0
    narrow: bool = False


@dataclass
class GemmProgram:
    """A generated program and where its operands live in DRAM."""

    design: Design
    m: int
    n: int
    k: int
    program: list[Instr]
    a_addr: int  # AT (OS) or A (WS)
    b_addr: int
    c_addr: int
    dram_bytes: int  # bytes of DRAM the operands need
    kc: int = 0  # OS: reduction chunk of the panel layout (see _panels)
    epilogue: Epilogue | None = None
    operand_addrs: tuple[int, ...] = ()  # the epilogue's per-column operand rows
    a_width: int = 0  # OS: elements per A panel row (ROWS, or M when M < ROWS: no padding in DRAM); 0 = ROWS
    b_width: int = 0  # OS: elements per B panel row (COLS, or N when N < COLS); 0 = COLS

    def dram_image(self, a: np.ndarray, b: np.ndarray, operands: tuple = ()) -> np.ndarray:
        """DRAM bytes holding A and B in the design's input dtype (OS: as panels, WS: A and B row-major),
        and the epilogue's per-column operand rows (N values each, accumulator dtype)."""
        dtype = self.design.matrix.input_dtype
        image = np.zeros(self.dram_bytes, dtype=np.uint8)
        if self.design.matrix.dataflow == "os":
            rows, cols = self.design.matrix.rows, self.design.matrix.cols
            a_src = _panels(np.asarray(a).T, self.a_width or rows, self.kc)
            b_src = _panels(np.asarray(b), self.b_width or cols, self.kc)
        else:
            a_src, b_src = a, b
        raw_a = to_dram_bytes(np.ascontiguousarray(a_src), dtype)
        raw_b = to_dram_bytes(np.ascontiguousarray(b_src), dtype)
        image[self.a_addr:self.a_addr + raw_a.size] = raw_a
        image[self.b_addr:self.b_addr + raw_b.size] = raw_b
        if len(operands) != len(self.operand_addrs):
            raise ValueError(f"the epilogue takes {len(self.operand_addrs)} operand rows, got {len(operands)}")
        for addr, row in zip(self.operand_addrs, operands, strict=True):
            raw = to_dram_bytes(np.asarray(row).reshape(-1)[:self.n], self.design.matrix.acc_dtype)
            image[addr:addr + raw.size] = raw
        return image

    @property
    def c_dtype(self) -> str:
        """The isa dtype C is stored in: the accumulator's, or the input dtype after a narrowing epilogue."""
        narrow = self.epilogue is not None and self.epilogue.narrow
        return self.design.matrix.input_dtype if narrow else self.design.matrix.acc_dtype

    def read_c(self, dram: np.ndarray) -> np.ndarray:
        """The M x N result from a final DRAM image."""
        nbytes = self.m * self.n * DTYPE_BYTES[self.c_dtype]
        return from_dram_bytes(dram[self.c_addr:self.c_addr + nbytes], self.c_dtype).reshape(self.m, self.n)


def _panels(x: np.ndarray, width: int, kc: int) -> np.ndarray:
    """K x W operand in the OS panel layout: per reduction chunk, per tile of `width` columns, its rows.

    Chunk c (rows k0 .. k0 + kl of x) holds the tiles one after another, each `kl` rows of `width` elements
    (zero-padded past W), so one DMA of bm * kl rows fetches bm consecutive tiles of a chunk.
    """
    k, w = x.shape
    tiles = ceil_div(w, width)
    padded = np.zeros((k, tiles * width), dtype=x.dtype)
    padded[:, :w] = x
    return np.concatenate([padded[k0:k0 + kc].reshape(-1, tiles, width).transpose(1, 0, 2).reshape(-1, width)
                           for k0 in range(0, k, kc)])


def _panel_row(k: int, kc: int, tiles: int, k0: int, tile: int) -> int:
    """Row (of tile width) of the panel layout where tile `tile` of the chunk starting at `k0` begins."""
    return k0 * tiles + tile * min(kc, k - k0)


def _align(x: int) -> int:
    return ceil_div(x, 64) * 64


@dataclass
class Group:
    """One double-buffered step: loads into a scratchpad/accumulator half, compute on it, stores of finished output."""

    loads: list[dict[str, Any]]
    gemms: list[dict[str, Any]]
    panel: int
    first_in_panel: bool
    stores: list[dict[str, Any]] = field(default_factory=list)  # set on the last group of a panel
    acc_buffers: int = 2  # accumulator buffers the panels rotate through


def split_dma(dmas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DMAs with more rows than the rows field holds, as several; tokens stay on the first and last."""
    out = []
    for x in dmas:
        if x["rows"] <= MAX_DMA_ROWS:
            out.append(x)
            continue
        parts = []
        for r0 in range(0, x["rows"], MAX_DMA_ROWS):
            part = {key: v for key, v in x.items() if not key.startswith(("pop", "push", "pad"))}
            part.update(sram=x["sram"] + r0, dram=x["dram"] + r0 * x["stride"], rows=min(MAX_DMA_ROWS, x["rows"] - r0))
            parts.append(part)
        parts[-1]["pad"] = x.get("pad", 0)
        for key in ("pop_prev", "pop_next"):
            if x.get(key):
                parts[0][key] = 1
        for key in ("push_prev", "push_next"):
            if x.get(key):
                parts[-1][key] = 1
        out += parts
    return out


def panel_widths(design: Design, m: int, n: int) -> tuple[int, int]:
    """Elements per row of the OS A and B panels in DRAM: a whole array edge, or M (N) when it is smaller.

    A GEMV (M = 1) then reads its activation once, one element per row, instead of ROWS - 1 zeros beside it;
    the load zero-fills the rest of each scratchpad row, the padding the array itself needs.
    """
    return min(m, design.matrix.rows), min(n, design.matrix.cols)


def _os_groups(design: Design, m: int, n: int, k: int, a_addr: int, b_addr: int, c_addr: int,
               blk: OsBlock, first_half: int = 0, order: str = "nm") -> list[Group]:
    """Output-stationary groups: per bm x bn block of C tiles, one group per reduction chunk of kc rows.

    order "nm": column blocks outer, row blocks inner (B panel reused across the row blocks); "mn" the reverse.
    """
    rows, cols = design.matrix.rows, design.matrix.cols
    ib, ab = design.input_bytes, design.acc_bytes
    a_w, b_w = panel_widths(design, m, n)
    sp_half, acc_buf = design.scratchpad_rows // 2, design.accumulator_rows // blk.acc_buffers
    bm, bn, kc = blk.bm, blk.bn, blk.kc
    m_tiles, n_tiles = ceil_div(m, rows), ceil_div(n, cols)
    groups: list[Group] = []
    resident_a: list[tuple[int, int] | None] = [None, None]  # A tiles held by each scratchpad half
    resident_b: list[tuple[int, int] | None] = [None, None]  # B tiles held by each scratchpad half
    panel = 0
    blocks = [(i0, j0) for j0 in range(0, n_tiles, bn) for i0 in range(0, m_tiles, bm)]
    if order == "mn":
        blocks.sort()
    for i0, j0 in blocks:
        col_tiles = range(j0, min(n_tiles, j0 + bn))
        row_tiles = range(i0, min(m_tiles, i0 + bm))
        acc_base = (panel % blk.acc_buffers) * acc_buf
        for kk, k0 in enumerate(range(0, k, kc)):
            kl = min(kc, k - k0)
            half = (len(groups) + first_half) % 2
            sp_base = half * sp_half
            loads = []
            # The panel layout puts the chunk's tiles back to back: one DMA each for the A and the B tiles,
            # so the DRAM latency is paid twice per group, not once per tile.
            if resident_a[half] != (i0, k0):  # with one chunk, A or B may still be there from two groups ago
                resident_a[half] = (i0, k0)
                loads.append(dict(op="load.sp", sram=sp_base, dram=a_addr + _panel_row(k, kc, m_tiles, k0, i0)
                                  * a_w * ib, stride=a_w * ib, rows=kl * len(row_tiles), cols=a_w))
            if resident_b[half] != (j0, k0):
                resident_b[half] = (j0, k0)
                loads.append(dict(op="load.sp", sram=sp_base + bm * kc, dram=b_addr
                                  + _panel_row(k, kc, n_tiles, k0, j0) * b_w * ib, stride=b_w * ib,
                                  rows=kl * len(col_tiles), cols=b_w))
            if not loads:  # the group still needs a load to carry its tokens: an empty one
                loads = [dict(op="load.sp", sram=sp_base, dram=0, stride=0, rows=0, cols=1)]
            gemms = [dict(op="gemm", a=sp_base + t * kl, b=sp_base + bm * kc, c=acc_base + t * bn * rows, k=kl,
                          repeat=len(col_tiles) - 1, sb=kl, sc=rows, accumulate=int(kk > 0))
                     for t in range(len(row_tiles))]
            groups.append(Group(loads, gemms, panel, kk == 0, acc_buffers=blk.acc_buffers))
        groups[-1].stores = [dict(op="store.acc", sram=acc_base + (ti * bn + tj) * rows,
                                  dram=c_addr + (i * rows * n + j * cols) * ab, stride=n * ab,
                                  rows=min(rows, m - i * rows), cols=min(cols, n - j * cols))
                             for ti, i in enumerate(row_tiles) for tj, j in enumerate(col_tiles)]
        panel += 1
    return groups


def _ws_groups(design: Design, m: int, n: int, k: int, a_addr: int, b_addr: int, c_addr: int,
               whole_k: bool, first_half: int = 0) -> list[Group]:
    """Weight-stationary groups: per block of ml rows x bn column tiles of C, one group per kg K tiles.

    The kg A tiles (ml x ROWS each) of a group are loaded once and streamed against the weight tiles of all
    bn column tiles, so A is read once per column block instead of once per column tile.
    """
    rows, cols = design.matrix.rows, design.matrix.cols
    ib, ab = design.input_bytes, design.acc_bytes
    sp_half, acc_half = design.scratchpad_rows // 2, design.accumulator_rows // 2
    blk = ws_block(design, m, n, k, whole_k)
    mc, bn, kg = blk.ml, blk.bn, blk.kg
    k_tiles, n_tiles = ceil_div(k, rows), ceil_div(n, cols)
    groups: list[Group] = []
    resident: list[tuple[int, int] | None] = [None, None]  # A tiles held by each scratchpad half
    panel = 0
    for m0 in range(0, m, mc):
        ml = min(mc, m - m0)
        for j0 in range(0, n_tiles, bn):
            col_tiles = range(j0, min(n_tiles, j0 + bn))
            acc_base = (panel % 2) * acc_half
            for gi, t0 in enumerate(range(0, k_tiles, kg)):
                kts = range(t0, min(k_tiles, t0 + kg))
                half = (len(groups) + first_half) % 2
                sp_base = half * sp_half
                b_rows = min(k, (t0 + len(kts)) * rows) - t0 * rows
                loads = []
                if resident[half] != (m0, t0):  # A stays put while only the weight tiles change
                    resident[half] = (m0, t0)
                    loads = [dict(op="load.sp", sram=sp_base + t * mc, dram=a_addr + (m0 * k + kt * rows) * ib,
                                  stride=k * ib, rows=ml, cols=min(rows, k - kt * rows)) for t, kt in enumerate(kts)]
                gemms = []
                for tj, j in enumerate(col_tiles):
                    b_base = sp_base + kg * mc + tj * kg * rows
                    c = acc_base + tj * mc
                    loads.append(dict(op="load.sp", sram=b_base, dram=b_addr + (t0 * rows * n + j * cols) * ib,
                                      stride=n * ib, rows=b_rows, cols=min(cols, n - j * cols),
                                      pad=len(kts) * rows - b_rows))
                    first = 0
                    if gi == 0:  # the first K tile overwrites the accumulator rows, the rest accumulate
                        gemms.append(dict(op="gemm", a=sp_base, b=b_base, c=c, k=ml, preload=1))
                        first = 1
                    if len(kts) > first:
                        gemms.append(dict(op="gemm", a=sp_base + first * mc, b=b_base + first * rows, c=c,
                                          k=ml, preload=1, accumulate=1, repeat=len(kts) - first - 1, sa=mc,
                                          sb=rows))
                groups.append(Group(loads, gemms, panel, gi == 0))
            groups[-1].stores = [dict(op="store.acc", sram=acc_base + tj * mc, dram=c_addr + (m0 * n + j * cols) * ab,
                                      stride=n * ab, rows=ml, cols=min(cols, n - j * cols))
                                 for tj, j in enumerate(col_tiles)]
            panel += 1
    return groups


def _tokens(g: int, grp: Group) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Loads, gemms and stores of group `g` with the double-buffering token flags set."""
    loads = [dict(x) for x in grp.loads]
    gemms = [dict(x) for x in grp.gemms]
    stores = [dict(x) for x in grp.stores]
    if g >= 2:
        loads[0]["pop_next"] = 1  # scratchpad half free again (gemm of group g - 2 done)
    loads[-1]["push_next"] = 1
    gemms[0]["pop_prev"] = 1
    gemms[-1]["push_prev"] = 1
    if grp.first_in_panel and grp.panel >= grp.acc_buffers:
        gemms[0]["pop_next"] = 1  # accumulator buffer free again (stores of panel - buffers done)
    if stores:
        gemms[-1]["push_next"] = 1
        stores[0]["pop_prev"] = 1
        stores[-1]["push_prev"] = 1
    return split_dma(loads), gemms, split_dma(stores)


def emit_groups(groups: list[Group], depth: int) -> list[Instr]:
    """Instructions of the groups with the double-buffering tokens, in a software-pipelined order.

    Fetch is in order and queues hold `depth` entries, so the program lists the loads of group g + 1 before
    the gemms of group g when they fit half a queue (a long run of gemms waiting for their loads would
    otherwise keep the next loads from being fetched; more loads than that would keep the gemms from being
    fetched instead), and a block's stores after the following group's loads (stores waiting for their gemms
    in a full store queue would hold back the prefetch). Tokens, not program order, order the units.
    """
    parts = [_tokens(g, grp) for g, grp in enumerate(groups)]
    seq: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # stores of the previous group
    ahead = False  # this group's loads were already emitted
    for g, (loads, gemms, stores) in enumerate(parts):
        if not ahead:
            seq += loads
        ahead = g + 1 < len(parts) and len(parts[g + 1][0]) <= depth // 2
        if ahead:
            seq += parts[g + 1][0]
        seq += pending + gemms
        pending = stores
    prog = [make(x.pop("op"), **x) for x in seq + pending]
    prog.append(make("finish"))
    return prog


def operand_bytes(design: Design, m: int, n: int, k: int) -> tuple[int, int]:
    """Bytes of A and B in their DRAM layout (OS panels pad M and N to whole tiles when larger than one)."""
    rows, cols = design.matrix.rows, design.matrix.cols
    os = design.matrix.dataflow == "os"
    a_elems = (ceil_div(m, rows) * rows if m > rows else m) * k if os else m * k  # OS panels pad to whole tiles
    b_elems = k * (ceil_div(n, cols) * cols if n > cols else n) if os else k * n  # (see panel_widths)
    return a_elems * design.input_bytes, b_elems * design.input_bytes


def _layout(design: Design, m: int, n: int, k: int) -> tuple[int, int, int, int]:
    """(A address, B address, C address, DRAM bytes needed) of the operands in DRAM."""
    a_bytes, b_bytes = operand_bytes(design, m, n, k)
    b_addr = _align(a_bytes)
    c_addr = _align(b_addr + b_bytes)
    return 0, b_addr, c_addr, _align(c_addr + m * n * design.acc_bytes)


def check_gemm_size(design: Design, m: int, n: int, k: int) -> None:
    """Raise GemmSizeError, before any work, if the ISA cannot express this GEMM on `design`."""
    if min(m, n, k) < 1:
        raise GemmSizeError(f"GEMM sizes must be >= 1, got m={m} n={n} k={k}")
    need = _layout(design, m, n, k)[3]
    if need > MAX_DRAM_BYTES:
        raise GemmSizeError(f"GEMM {m}x{n}x{k} needs {need:,} bytes of DRAM for A, B and C, but loads and stores "
                            f"address at most {MAX_DRAM_BYTES:,} (the 'dram' field); use smaller sizes")
    ib, ab = design.input_bytes, design.acc_bytes
    strides = {"a row of C (N)": n * ab}
    if design.matrix.dataflow == "ws":
        strides.update({"a row of A (K)": k * ib, "a row of B (N)": n * ib})
    for what, stride in strides.items():
        if stride > MAX_DRAM_STRIDE:
            raise GemmSizeError(f"GEMM {m}x{n}x{k}: {what} is {stride:,} bytes, above the largest DMA stride "
                                f"{MAX_DRAM_STRIDE:,} (the 'stride' field); use smaller sizes")


def gemm_program(design: Design, m: int, n: int, k: int, whole_k: bool = False,
                 epilogue: Epilogue | None = None, first_half: int = 0, block: OsBlock | None = None,
                 order: str = "nm") -> GemmProgram:
    """Tile an M x K by K x N GEMM onto `design` (ragged sizes zero-padded by the loads).

    whole_k: keep SCALE-Sim's fold structure (each OS tile streams the whole reduction in one gemm) for the
    ideal-memory mode, where loads are free and only the folds count.
    epilogue: vector ops on each finished block before its store (raises EpilogueDoesNotFit when the
    accumulator cannot also hold its operands).
    first_half: the scratchpad half the first group loads into (1: the upper one), so that a program placed
    after another one in a single program starts in the half the other one finished with first.
    block, order (OS only, a mapping search's choice): the blocking instead of `os_block`'s, and the loop
    order of the output blocks ("nm": column blocks outer, "mn": row blocks outer).
    """
    check_gemm_size(design, m, n, k)
    a_addr, b_addr, c_addr, dram_bytes = _layout(design, m, n, k)
    tiling = design if epilogue is None or not epilogue.operands else \
        _epilogue_tiling_design(design, epilogue, m, n, k, whole_k)
    os = design.matrix.dataflow == "os"
    if os:
        blk = block if block is not None and epilogue is None else os_block(tiling, m, n, k, whole_k)
        groups = _os_groups(tiling, m, n, k, a_addr, b_addr, c_addr, blk, first_half, order)
    else:
        groups = _ws_groups(tiling, m, n, k, a_addr, b_addr, c_addr, whole_k, first_half)
    op_addrs: tuple[int, ...] = ()
    if epilogue is not None:
        row_bytes = ceil_div(n, design.matrix.cols) * design.matrix.cols * design.acc_bytes
        op_addrs = tuple(dram_bytes + o * _align(row_bytes) for o in range(epilogue.operands))
        dram_bytes += epilogue.operands * _align(row_bytes)
        rep = design.matrix.rows if os else ws_block(tiling, m, n, k, whole_k).ml
        _add_epilogue(design, groups, epilogue, n, c_addr, op_addrs, tiling.accumulator_rows, rep)
    a_w, b_w = panel_widths(design, m, n) if os else (0, 0)
    return GemmProgram(design, m, n, k, emit_groups(groups, design.control.queue_depth), a_addr, b_addr, c_addr,
                       dram_bytes, blk.kc if os else 0, epilogue, op_addrs, a_w, b_w)


def _epilogue_tiling_design(design: Design, epilogue: Epilogue, m: int, n: int, k: int, whole_k: bool) -> Design:
    """The design the blocking sees: an accumulator small enough that two blocks' operand rows fit beside it.

    The operand rows of a block are `operands * bn * (tile rows)`; the blocking is asked again with the
    accumulator shrunk by what the last choice needed until it fits, so big accumulators lose only the rows
    the operands take. 1 + 2 * operands shares of the accumulator always fit (a block takes at most one share).
    """
    unit = 2 * design.memory.accumulator_banks
    rows = design.accumulator_rows
    safe = rows // (1 + 2 * epilogue.operands) // unit * unit
    for _ in range(8):
        try:
            tiling = design.replace(memory=dataclasses.replace(
                design.memory, accumulator_bytes=rows * design.accumulator_row_bytes))
        except DesignError:
            break
        if design.matrix.dataflow == "os":
            blk = os_block(tiling, m, n, k, whole_k)
            bn, rep = blk.bn, design.matrix.rows
        else:
            wblk = ws_block(tiling, m, n, k, whole_k)
            bn, rep = wblk.bn, wblk.ml
        need = 2 * epilogue.operands * bn * rep
        if rows + need <= design.accumulator_rows:
            return tiling
        rows = (design.accumulator_rows - need) // unit * unit
        if rows <= safe:
            break
    try:
        return design.replace(memory=dataclasses.replace(
            design.memory, accumulator_bytes=safe * design.accumulator_row_bytes))
    except DesignError:
        raise EpilogueDoesNotFit(f"{design.accumulator_rows} accumulator rows cannot hold output blocks and "
                                 f"{epilogue.operands} operand(s)") from None


def _add_epilogue(design: Design, groups: list[Group], epi: Epilogue, n: int, c_addr: int,
                  op_addrs: tuple[int, ...], reserved_base: int, rep: int) -> None:
    """Per block: operand loads with its first group, vec ops after its last gemm, stores narrowed.

    Operand rows of block p live at reserved_base + (p % 2) * (operands * bn * rep): the loads of block p + 2
    wait (compute->load token of two groups back) for block p's vec ops, the last compute of its group.
    """
    cols, ab = design.matrix.cols, design.acc_bytes
    out_b = design.input_bytes if epi.narrow else ab
    panels: dict[int, list[Group]] = {}
    for g in groups:
        panels.setdefault(g.panel, []).append(g)
    per_panel = max((len({_col(s, c_addr, ab, n, cols) for s in grp[-1].stores}) for grp in panels.values()),
                    default=1) * epi.operands * rep
    if reserved_base + 2 * per_panel > design.accumulator_rows:
        raise EpilogueDoesNotFit(f"the epilogue's operands need {2 * per_panel} accumulator rows beyond "
                                 f"{reserved_base}; the design has {design.accumulator_rows}")
    for p, grp in panels.items():
        stores = grp[-1].stores
        col_tiles = sorted({_col(s, c_addr, ab, n, cols) for s in stores})
        where = {j: reserved_base + (p % 2) * per_panel + t * epi.operands * rep for t, j in enumerate(col_tiles)}
        for j in col_tiles:
            for o in range(epi.operands):
                grp[0].loads.append(dict(op="load.acc", sram=where[j] + o * rep, dram=op_addrs[o] + j * cols * ab,
                                         stride=0, rows=rep, cols=min(cols, n - j * cols)))
        vecs = []
        for st in stores:
            j = _col(st, c_addr, ab, n, cols)
            for op, operand, imm in epi.steps:
                v = dict(op=f"vec.{op}", dst=st["sram"], src=st["sram"], rows=st["rows"])
                if operand is not None:
                    v["src2"] = where[j] + operand * rep
                elif imm is not None:
                    v.update(use_imm=1, imm=int(np.array(imm, dtype=np.float32).view(np.int32)) if design.is_float
                             else int(imm))
                vecs.append(v)
        grp[-1].gemms += vecs
        for st in stores:
            e = (st["dram"] - c_addr) // ab
            st.update(narrow=int(epi.narrow), dram=c_addr + e * out_b, stride=n * out_b)


def _col(store: dict[str, Any], c_addr: int, ab: int, n: int, cols: int) -> int:
    """The column tile a store of C writes (from its DRAM address)."""
    return ((store["dram"] - c_addr) // ab % n) // cols


def gemm_design(design: Design | str | None = None, rows: int | None = None, cols: int | None = None,
                dataflow: str | None = None, m: int = 1, n: int = 1, k: int = 1,
                ideal_memory: bool = False) -> Design:
    """The design a GEMM runs on: overrides applied, SRAM rows kept (bytes scale with the array edge).

    With ideal memory, the scratchpad and accumulator grow so that each fold streams the whole
    reduction (OS) or all M rows (WS), up to the 65535-row `k` field, as SCALE-Sim assumes.
    """
    if design is None:
        design = DEFAULT_DESIGN
    d = load_design(design) if isinstance(design, str) else design
    if rows or cols or dataflow:
        mat = dataclasses.replace(d.matrix, rows=rows or d.matrix.rows, cols=cols or d.matrix.cols,
                                  dataflow=dataflow or d.matrix.dataflow)
        new_dim = max(mat.rows, mat.cols)
        mem = dataclasses.replace(d.memory, scratchpad_bytes=d.scratchpad_rows * new_dim * d.input_bytes,
                                  accumulator_bytes=max(d.accumulator_rows, 2 * new_dim) * new_dim * d.acc_bytes)
        if d.scratchpad_rows < 2 * new_dim:
            mem = dataclasses.replace(mem, scratchpad_bytes=2 * new_dim * new_dim * d.input_bytes)
        d = d.replace(matrix=mat, memory=mem)
    if ideal_memory:
        r = d.matrix.rows
        if d.matrix.dataflow == "os":
            need_sp = 2 * min(k, MAX_STREAM) * (1 + min(ceil_div(n, d.matrix.cols), MAX_REPEAT))
            need_acc = 2 * r * min(ceil_div(n, d.matrix.cols), MAX_REPEAT)
        else:
            mc = min(m, MAX_STREAM)
            need_sp = 2 * (mc + r) * ceil_div(k, r)
            need_acc = 2 * mc
        sp_rows = max(d.scratchpad_rows, min(_round_up(need_sp, d.memory.scratchpad_banks), MAX_SP_ROWS))
        acc_rows = max(d.accumulator_rows, min(_round_up(need_acc, d.memory.accumulator_banks), MAX_ACC_ROWS))
        mem = dataclasses.replace(d.memory, scratchpad_bytes=sp_rows * d.scratchpad_row_bytes,
                                  accumulator_bytes=acc_rows * d.accumulator_row_bytes)
        d = d.replace(memory=mem)
    return d


def _round_up(x: int, multiple: int) -> int:
    # keep each half a whole number of banks so the two buffers never share a bank
    return ceil_div(x, 2 * multiple) * 2 * multiple
