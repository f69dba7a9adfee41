"""`estimate`: simulate a workload on a design, then apply the area, cost and power models.

Multi-core designs: the simulator models one core. Without an [l2] section a GEMM is split over `chip.cores`
as a gm x gn grid of output blocks (the grid with the fewest array tiles per core); the largest block is
simulated, its cycles are the run's time (the slowest core), and its event counters are scaled by the ratio of
total to block work. Each core has its own `dram_bandwidth_bytes_per_cycle` share and reads its own A rows and
B columns (no sharing through a cache), which is pessimistic for DRAM traffic.
With an [l2] section the chip level applies (compiler.accel.chip_model, docs/timing.md "Chip level"): the
cores share the L2, and the mapping (grid with idle cores allowed, split-K, batch split, blocking, loop order)
is the best one `compiler.accel.mapping` finds, cached per design and shape.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from isa.design import DTYPE_BYTES, Design
from isa.files import read_text
from workbench.area import AreaBreakdown, design_area
from workbench.cost import UnitCost
from workbench.design_models import (
    design_cost,
    design_run_power,
    design_tdp_w,
    reference_checks,
    reference_chip,
)
from workbench.design_tables import Check, design_tables
from workbench.errors import UsageError
from workbench.power import PowerResult, SustainedPower, sustained_power


class WorkloadError(UsageError):
    """A workload spec that cannot be parsed or does not fit the design's memory."""


@dataclass(frozen=True)
class Layer:
    """One GEMM of a workload: C[m x n] = A[m x k] @ B[k x n], run `count` times.

    out_dtype: the dtype C is written to DRAM in (a library's epilogue converts the accumulator, e.g. to bf16);
    None = the accumulator dtype. Read by the chip level (designs with [l2]) for its DRAM traffic.
    cold: the layer's call starts right after an L2 flush (as a profiler harness times it); the chip level charges it
    the design's `chip.cold_start_s` and `l2.flush_dirty_bytes` write-back once (docs/timing.md "Chip level").
    """

    name: str
    m: int
    n: int
    k: int
    count: int = 1
    out_dtype: str | None = None
    cold: bool = False

    @property
    def flops(self) -> float:
        """FLOPs of all `count` runs (1 MAC = 2 FLOP)."""
        return 2.0 * self.m * self.n * self.k * self.count


@dataclass(frozen=True)
class Workload:
    """A named list of GEMM layers run one after another."""

    name: str
    layers: tuple[Layer, ...]

    @property
    def flops(self) -> float:
        """Total FLOPs."""
        return sum(layer.flops for layer in self.layers)


def _conv_workload(spec: str, text: str) -> Workload:
    """conv:NxCxHxW,KxRxS[,sSTRIDE][,pPAD] as its implicit GEMM: M = N*OH*OW, N = K, K = C*R*S."""
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+),(\d+)x(\d+)x(\d+)((?:,[sp]\d+)*)", text)
    if not m:
        raise WorkloadError(f"workload {spec!r}: expected conv:NxCxHxW,KxRxS[,sSTRIDE][,pPAD] "
                            "(e.g. conv:1x64x56x56,64x3x3,s1,p1)")
    n, c, h, w, k, r, s_ = (int(x) for x in m.groups()[:7])
    opts = {o[0]: int(o[1:]) for o in m.group(8).split(",")[1:]}
    stride, pad = opts.get("s", 1), opts.get("p", 0)
    oh, ow = (h + 2 * pad - r) // max(stride, 1) + 1, (w + 2 * pad - s_) // max(stride, 1) + 1
    if min(n, c, h, w, k, r, s_, stride) < 1 or oh < 1 or ow < 1:
        raise WorkloadError(f"workload {spec!r}: sizes and stride must be >= 1 and the kernel must fit the padded input")
    return Workload(spec, (Layer(f"conv {n}x{c}x{h}x{w} * {k}x{c}x{r}x{s_} (implicit GEMM)", n * oh * ow, k,
                                 c * r * s_),))


def _attention_workload(spec: str, text: str) -> Workload:
    """attention:BxHxSxD as its two batched GEMMs, scores Q K^T and context P V (softmax not counted)."""
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+)", text)
    if not m or min(int(x) for x in m.groups()) < 1:
        raise WorkloadError(f"workload {spec!r}: expected attention:BxHxSxD with sizes >= 1 "
                            "(batch, heads, sequence, head dim; e.g. attention:1x32x2048x128)")
    b, heads, seq, d = (int(x) for x in m.groups())
    return Workload(spec, (Layer("attention scores Q K^T", seq, seq, d, b * heads),
                           Layer("attention context P V", seq, d, seq, b * heads)))


def parse_workload(spec: str) -> Workload:
    """`gemm:MxNxK`, `conv:...`, `attention:...` or a CSV file with columns name,m,n,k[,count]."""
    kind, _, rest = spec.strip().partition(":")
    if kind.lower() == "conv":
        return _conv_workload(spec, rest)
    if kind.lower() == "attention":
        return _attention_workload(spec, rest)
    m = re.fullmatch(r"gemm:(\d+)x(\d+)x(\d+)", spec.strip(), flags=re.IGNORECASE)
    if m:
        dims = tuple(int(x) for x in m.groups())
        if min(dims) < 1:
            raise WorkloadError(f"workload {spec!r}: M, N and K must be >= 1")
        return Workload(spec, (Layer(f"gemm {dims[0]}x{dims[1]}x{dims[2]}", *dims),))
    path = Path(spec)
    if spec.startswith("gemm") or not path.suffix.lower() == ".csv":
        raise WorkloadError(
            f"workload {spec!r}: expected gemm:MxNxK (e.g. gemm:4096x4096x4096), conv:NxCxHxW,KxRxS[,sS][,pP], "
            "attention:BxHxSxD or a .csv file with columns name,m,n,k[,count]"
        )
    if not path.exists():
        raise WorkloadError(f"workload file {spec} not found")
    layers = []
    with io.StringIO(read_text(path, "workload CSV", WorkloadError), newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"name", "m", "n", "k"} - set(reader.fieldnames or [])
        if missing:
            raise WorkloadError(f"{spec}: missing column(s) {', '.join(sorted(missing))}; need name,m,n,k[,count]")
        for line, row in enumerate(reader, 2):
            try:
                vals = [int(row[c]) for c in ("m", "n", "k")] + [int(row.get("count") or 1)]
            except (TypeError, ValueError):  # TypeError: a short row leaves its last cells None
                raise WorkloadError(f"{spec}:{line}: m, n, k and count must be integers, got {dict(row)}") from None
            if min(vals) < 1:
                raise WorkloadError(f"{spec}:{line}: m, n, k and count must be >= 1, got {vals}")
            layers.append(Layer(row["name"], *vals))
    if not layers:
        raise WorkloadError(f"{spec}: no layers")
    return Workload(path.stem, tuple(layers))


def core_grid(m: int, n: int, design: Design) -> tuple[int, int]:
    """(gm, gn) with gm x gn = cores minimizing array tiles of the largest block (ties: smaller block)."""
    from compiler.accel.mapping import divisor_grid

    return divisor_grid(m, n, design)


def check_fits(design: Design, layer: Layer, block_m: int, block_n: int) -> None:
    """Raise WorkloadError naming the memory that cannot hold A, B and C (product memory, simulated DRAM)."""
    ib, ob = design.input_bytes, design.acc_bytes

    def need(mm: int, nn: int) -> tuple[int, str]:
        a, b, c = mm * layer.k * ib, layer.k * nn * ib, mm * nn * ob
        return a + b + c, (
            f"A {mm}x{layer.k} {design.matrix.input_dtype} {a:,} B + B {layer.k}x{nn} {b:,} B + "
            f"C {mm}x{nn} {design.matrix.acc_dtype} {c:,} B"
        )

    total, what = need(layer.m, layer.n)
    cap = design.memory.dram_capacity_bytes
    if total > cap:
        raise WorkloadError(
            f"{layer.name} does not fit {design.name}: {what} = {total:,} bytes, but "
            f"memory.dram_capacity_bytes is {cap:,}"
        )
    total, what = need(block_m, block_n)
    if total > design.memory.dram_bytes:
        raise WorkloadError(
            f"{layer.name} does not fit {design.name}'s simulated DRAM: one core's block needs "
            f"{what} = {total:,} bytes, but memory.dram_bytes is {design.memory.dram_bytes:,}"
        )


def ops_unit(design: Design) -> str:
    """The unit of a design's rates: TOPS for integer designs, TFLOPS for floating-point ones."""
    return "TFLOPS" if design.is_float else "TOPS"


def price_basis(margin: float) -> str:
    """What a design's price means: its modelled cost to make, with the margin if one is given."""
    if not margin:
        return "cost to make one unit (no margin, no board), not a street price"
    return f"cost to make / (1 - margin {margin:g}), no board"


AUTO_GEMM_START = 4096  # large enough to keep the reference designs' arrays busy; halved until it fits


def fits(design: Design, layer: Layer) -> bool:
    """True if `layer` passes check_fits on `design` with the split `estimate` would use."""
    gm, gn = core_grid(layer.m, layer.n, design)
    try:
        check_fits(design, layer, math.ceil(layer.m / gm), math.ceil(layer.n / gn))
    except WorkloadError:
        return False
    return True


def auto_workload(design: Design, start: int = AUTO_GEMM_START) -> Workload:
    """The largest square power-of-two GEMM, at most `start`, whose operands fit the design's memory."""
    n = start
    while n >= 16:
        layer = Layer(f"gemm {n}x{n}x{n}", n, n, n)
        if fits(design, layer):
            return Workload(f"gemm:{n}x{n}x{n}", (layer,))
        n //= 2
    raise WorkloadError(f"{design.name}: not even a 16x16x16 GEMM fits memory.dram_bytes {design.memory.dram_bytes:,}")


def resolve_workload(spec: str | None, design: Design) -> Workload:
    """`spec` parsed, or with None/"auto" the largest square GEMM that fits (auto_workload)."""
    if spec is None or spec == "auto":
        return auto_workload(design)
    return parse_workload(spec)


@dataclass
class Figure:
    """One reported number with its unit and provenance."""

    value: float | None
    unit: str
    provenance: str  # measured | simulated | modelled | datasheet
    note: str = ""


@dataclass
class LayerRun:
    """Simulation of one layer: the grid, the simulated block and its cycles."""

    name: str
    m: int
    n: int
    k: int
    count: int
    grid: tuple[int, int]
    block: tuple[int, int, int]
    cycles: int
    scale: float  # total work / simulated block work
    mapping: str = ""  # the chip-level mapping (designs with [l2]); empty: the divisor grid above
    bound: str = ""  # what sets a chip-level run's time: core, dram or l2


@dataclass
class Estimate:
    """Everything `workbench estimate` reports for a design and a workload."""

    design: str
    workload: str
    figures: dict[str, Figure]
    layers: list[LayerRun]
    counters: dict[str, float]
    area: AreaBreakdown
    cost: UnitCost
    power: PowerResult | None
    checks: list[Check] = field(default_factory=list)
    reference_chip: str | None = None
    sustained: SustainedPower | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


Simulator = Callable[..., Any]


def _default_simulator() -> Simulator:
    from compiler.accel.gemm_run import simulate_gemm

    return simulate_gemm


def simulate_workload(
    design: Design, workload: Workload, simulate: Simulator | None = None, ideal_memory: bool = False
) -> tuple[list[LayerRun], dict[str, float], int]:
    """Simulate every layer (largest core block); returns the runs, whole-chip counters and total cycles.

    ideal_memory: the simulator's analysis mode (free loads and stores), the matrix unit's time alone.
    """
    if design.l2 is not None and simulate is None:
        return _chip_level_workload(design, workload, ideal_memory)
    simulate = simulate or _default_simulator()
    runs, counters, cycles = [], {}, 0
    for layer in workload.layers:
        gm, gn = core_grid(layer.m, layer.n, design)
        bm, bn = math.ceil(layer.m / gm), math.ceil(layer.n / gn)
        check_fits(design, layer, bm, bn)
        result = simulate(bm, bn, layer.k, design=design, values=False, ideal_memory=ideal_memory)
        scale = layer.m * layer.n / (bm * bn)
        for key, value in result.counters.items():
            counters[key] = counters.get(key, 0.0) + value * scale * layer.count
        cycles += int(result.cycles) * layer.count
        runs.append(
            LayerRun(
                layer.name,
                layer.m,
                layer.n,
                layer.k,
                layer.count,
                (gm, gn),
                (bm, bn, layer.k),
                int(result.cycles),
                scale,
            )
        )
    return runs, counters, cycles


def _chip_level_workload(
    design: Design, workload: Workload, ideal_memory: bool
) -> tuple[list[LayerRun], dict[str, float], int]:
    """simulate_workload for a design with a shared L2: each layer's best mapping (batch = the layer's count)."""
    from compiler.accel.mapping import best_run

    runs, counters, cycles = [], {}, 0
    for layer in workload.layers:
        gm, gn = core_grid(layer.m, layer.n, design)
        check_fits(design, layer, math.ceil(layer.m / gm), math.ceil(layer.n / gn))
        out_bytes = DTYPE_BYTES[layer.out_dtype] if layer.out_dtype else None
        run = best_run(design, layer.m, layer.n, layer.k, layer.count, ideal_memory=ideal_memory, out_bytes=out_bytes,
                       cold=layer.cold)
        for key, value in run.counters.items():
            counters[key] = counters.get(key, 0.0) + value
        cycles += run.cycles
        mp = run.mapping
        block_work = run.block[0] * run.block[1] * run.block[2]
        runs.append(LayerRun(layer.name, layer.m, layer.n, layer.k, layer.count, (mp.gm, mp.gn), run.block,
                             run.cycles, layer.count * layer.m * layer.n * layer.k / block_work,
                             mp.describe(), run.bound))
    return runs, counters, cycles


def estimate(
    design: Design,
    workload: Workload,
    *,
    margin: float | None = None,
    volume: int | None = None,
    synth: dict[str, float] | None = None,
    simulate: Simulator | None = None,
) -> Estimate:
    """Simulate `workload` on `design` and report performance, energy, area, cost and their ratios."""
    reference_chip(design)  # an unknown chip name fails before the simulation, not after
    design_tables(design)
    runs, counters, cycles = simulate_workload(design, workload, simulate)
    _, _, ideal_cycles = simulate_workload(design, workload, simulate, ideal_memory=True)
    return estimate_from_run(design, workload.name, workload.flops, counters, cycles, ideal_cycles, runs,
                             margin=margin, volume=volume, synth=synth)


def estimate_from_run(
    design: Design,
    workload_name: str,
    flops: float,
    counters: dict[str, float],
    cycles: int,
    ideal_cycles: int | None = None,
    runs: list[LayerRun] | None = None,
    *,
    margin: float | None = None,
    volume: int | None = None,
    synth: dict[str, float] | None = None,
) -> Estimate:
    """The figures of `estimate` from a simulated run's whole-chip counters and cycles (any program: GEMM
    layers, or a model compiled for the SIM device); ideal_cycles, when known, gives the array-bound figure."""
    tables = design_tables(design)
    chip = reference_chip(design)
    area = design_area(design, synth=synth, host_pcie_lanes=tables["cost"].get("host_pcie_lanes"))
    cost, area_prov = design_cost(design, area, margin, volume)
    tdp = design_tdp_w(design)
    # the power cap: above the TDP the clock is throttled and the run takes longer (power.run_power)
    power = design_run_power(design, counters, cycles / design.chip.clock_hz, flops)
    seconds = power.seconds
    achieved = flops / seconds
    peak = design.peak_flops
    price = cost.price_usd
    die_usd = sum(t.usd for t in cost.terms if t.name.startswith("die:"))
    ops = f"{ops_unit(design)} {design.matrix.input_dtype}"  # int8 designs do integer ops: TOPS, not TFLOPS
    f = {
        "peak_tflops": Figure(peak / 1e12, ops, "modelled", "2 x rows x cols x cores x clock"),
        "achieved_tflops": Figure(
            achieved / 1e12,
            ops,
            "simulated",
            f"{cycles:,} cycles of the slowest core"
            + (f", clock throttled to {power.clock_scale:.1%} by the TDP" if power.clock_scale < 1 else ""),
        ),
        "utilization": Figure(achieved / peak, "fraction", "simulated"),
        "seconds": Figure(seconds, "s", "simulated"),
        "energy_j": Figure(power.energy_j, "J", "modelled", "simulated counters x energy per event + static"),
        "energy_per_flop_pj": Figure(power.energy_per_flop_j / 1e-12, "pJ/FLOP", "modelled"),
        "average_power_w": Figure(power.average_power_w, "W", "modelled"),
        "static_power_w": Figure(power.static_w, "W", "modelled"),
        "area_modelled_mm2": Figure(area.total_mm2, "mm^2", "modelled"),
        "die_area_costed_mm2": Figure(cost.dies[0].area_mm2, "mm^2", area_prov),
        "die_cost_usd": Figure(die_usd, "USD", "modelled", "all dies, before assembly yield"),
        "unit_cost_usd": Figure(cost.cost_usd, "USD", "modelled", "cost to make one unit: no margin, no board"),
        "price_usd": Figure(price, "USD", "modelled", price_basis(cost.margin)),
        "peak_tflops_per_kusd": Figure(peak / 1e12 / price * 1000, f"{ops}/$1000", "modelled"),
        "achieved_tflops_per_kusd": Figure(achieved / 1e12 / price * 1000, f"{ops}/$1000", "modelled"),
        "achieved_tflops_per_w": Figure(achieved / 1e12 / power.average_power_w, f"{ops}/W", "modelled"),
        "dram_bytes": Figure(
            counters.get("dram_read_bytes", 0) + counters.get("dram_write_bytes", 0), "bytes", "simulated"
        ),
    }
    sus = sustained_power(design, tdp)
    peak_power = sus.dynamic_w + power.static_w
    f["peak_rate_power_w"] = Figure(
        peak_power, "W", "modelled", "sustained large-GEMM load: every MAC busy at the nominal clock, DRAM at full "
        "bandwidth, static"
    )
    f["peak_rate_energy_per_flop_pj"] = Figure(peak_power / peak / 1e-12, "pJ/FLOP", "modelled")
    f["sustained_on_chip_pj_per_flop"] = Figure(
        sus.on_chip_pj_per_flop, "pJ/FLOP", "modelled", "on-die energy per FLOP at sustained load (no DRAM devices)"
    )
    for item in sus.items:
        f[f"sustained_{item.name}_w"] = Figure(item.watts, "W", "modelled", f"{item.detail} [{item.source}]")
    if tdp:
        f["tdp_w"] = Figure(tdp, "W", "datasheet")
        f["sustained_power_vs_tdp"] = Figure(
            peak_power / tdp - 1, "fraction", "modelled", "sustained large-GEMM power relative to the TDP"
        )
        f["sustained_clock_scale"] = Figure(sus.clock_scale, "fraction", "modelled", "clock the TDP allows")
    if ideal_cycles:
        f["achieved_tflops_ideal_memory"] = Figure(
            flops / (ideal_cycles / design.chip.clock_hz) / 1e12,
            ops,
            "simulated",
            "simulator ideal-memory mode (free loads/stores): the array-bound upper limit",
        )
    checks = reference_checks(design, die_usd, cost.cost_usd, power, peak_power)
    return Estimate(
        design.name, workload_name, f, runs or [], counters, area, cost, power, checks, chip.key if chip else None,
        sus,
    )
