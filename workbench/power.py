"""Chip-level power: energy per event at a design's node, the power of a run, the sustained-GEMM breakdown and
the power cap.

Each term cites a figure (docs/sources.md by section: a.n/b.n, and P.n for the chip-level terms):
- datapath: Horowitz's 45 nm MAC energies (b.1) scaled by Stillmaker-Baas (b.2), plus Aladdin register bits (b.3);
- register file (accumulator), L1 (scratchpad) and L2: Horowitz SRAM read energy by macro size (b.1);
- network-on-chip: full-swing on-chip wire energy per bit and mm (P.1) over the mean core-to-L2 distance;
- clock tree: a quarter of on-chip power (P.2);
- DRAM device energy per bit (b.4); memory controller + PHY per bit (P.3);
- leakage and other static power: a fraction of the power under load by device type (P.4);
- supply voltage: every on-die energy is at 0.8 V (b.2); `[power] core_voltage_v` moves it by V^2 (P.6);
- GPU instruction overhead on tensor-core instructions, where a design imitates one (`[power]
  simt_instruction_overhead`, b.3 Dally);
- board: voltage-regulator conversion loss on everything the regulators feed, die and DRAM (`[power]
  vrm_efficiency`, P.7), in a separate "board" group so on-chip pJ/FLOP stays comparable.
When modelled power exceeds the design's TDP, the clock is throttled: energy per event stays, time grows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from isa.counters import MACS_COUNTER
from isa.design import Design
from isa.technology import register_energy_pj_per_bit
from workbench.errors import UsageError
from workbench.nodes import energy_factor, resolve_node

PJ = 1e-12


class PowerInputError(UsageError):
    """A power input out of range or a counter the model does not know."""


# Horowitz 45 nm, pJ per MAC = input-width multiply + accumulator-width add (b.1).
MAC_ENERGY_45NM_PJ = {
    "int8": 0.2 + 0.1,  # 8-bit int mult + 32-bit int add
    "fp16": 1.1 + 0.9,  # 16-bit FP mult + 32-bit FP add (fp32 accumulation)
    "bf16": 1.1 + 0.9,  # [E] no bf16 entry: the fp16 multiplier is used (an upper bound: bf16's mantissa is shorter)
    "fp32": 3.7 + 0.9,  # 32-bit FP mult + add
}
# Horowitz 45 nm SRAM read of 64 bits by macro size (b.1): 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.
SRAM_64BIT_READ_45NM_PJ = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
# Vector unit, per element op: FP32 FMA (3.7 + 0.9) for float designs, int32 mult + add (3.1 + 0.1) (b.1).
VECTOR_OP_45NM_PJ = {True: 3.7 + 0.9, False: 3.1 + 0.1}
# Dally, MICRO-52 (2019): ~30 pJ instruction fetch/decode/operand overhead per GPU instruction (b.3). The node
# is not stated; it is treated as a 16 nm figure [E] and scaled from there.
INSTRUCTION_PJ_AT_16NM = 30.0
# DRAM interface energy, pJ/bit (b.4 recommended defaults). LPDDR/DDR are a gap in the reference:
DRAM_PJ_PER_BIT: dict[str, tuple[float, str]] = {
    "HBM3e": (3.9, "b.4 Samsung HBM3E"),
    "HBM3": (3.9, "b.4 recommended HBM3/3e default"),
    "HBM2e": (6.0, "b.4 Micron HBM2E device figure [E]"),
    "GDDR6": (7.5, "b.4 Micron GDDR6"),
    "GDDR6X": (7.25, "b.4 Micron GDDR6X"),
    # [E] gap: LPDDR is built for lower energy per bit than GDDR at lower speed; Micron's GDDR6 figure is used
    # as a stand-in upper value rather than inventing a lower one.
    "LPDDR5": (7.5, "[E] gap in b.4: GDDR6 figure used"),
    "LPDDR4": (7.5, "[E] gap in b.4: GDDR6 figure used"),
    # [E] Horowitz's DRAM access (b.1) is 20-40 pJ/bit for older DDR including the core; the low end is used.
    "DDR4": (20.0, "[E] b.1 Horowitz DRAM, low end of 20-40 pJ/bit"),
    "DDR5": (20.0, "[E] b.1 Horowitz DRAM, low end of 20-40 pJ/bit"),
}
# L2 / shared global buffer: no capacity in the design schema yet, so its banks are taken as 1 MiB macros [E],
# read at Horowitz's 1 MB figure (b.1). Every byte a core loads or stores passes through it.
L2_MACRO_BYTES = 1 << 20
# Network-on-chip: conventional full-swing repeated wire, 310 fJ/bit/mm at 130 nm, 1.2 V (P.1, survey Table 1),
# moved to hwcomponents' 0.8 V by CV^2 (b.2); the wire capacitance per mm is taken as node-independent [E].
WIRE_FJ_PER_BIT_MM_130NM = 310.0
WIRE_VDD_130NM = 1.2
MODEL_VDD = 0.8
# Mean Manhattan distance between two uniform random points of a square of side L is 2L/3 (L/3 per axis): the
# core-to-L2-slice distance when slices are spread over the die.
MEAN_HOP_FRACTION_OF_SIDE = 2.0 / 3.0
# Clock distribution "consumes at least a quarter of the power budget" of microprocessors (P.2).
CLOCK_TREE_FRACTION = 0.25
# Memory controller + PHY on the logic die, pJ per bit moved (P.3): a 4 nm HBM3 interface at 0.29 pJ/bit
# (JSSC 2024); a 40 nm GDDR5/DDR3 tri-modal interface at 5.0 mW/Gbps = 5 pJ/bit, used for every non-HBM type [E].
MEMORY_PHY_PJ_PER_BIT: dict[str, tuple[float, str]] = {
    "HBM": (0.29, "P.3 4 nm HBM3 interface, 0.29 pJ/bit (JSSC 59(1), 2024)"),
    "other": (5.0, "P.3 40 nm GDDR5/DDR3 interface, 5.0 mW/Gbps (Rambus) [E] for GDDR/DDR/LPDDR"),
}
# Static power as a fraction of the power under sustained load (P.4):
# - FinFET nodes (<= 16 nm): an H200 SXM idles at 80.3 W against 592.8 W under load (13.5%); idle includes HBM
#   refresh and I/O, so this bounds leakage from above;
# - planar nodes (> 16 nm): leakage "more than 40% of total power budget in processors fabricated in 65 nm
#   technology and beyond" (Kannan et al., citing ITRS), used as 40%.
STATIC_FRACTION_FINFET = 80.3 / 592.8
STATIC_FRACTION_PLANAR = 0.40
FINFET_MAX_NM = 16
# Core supply voltage: "Nominal core operating voltages at these process nodes [7 nm, 5 nm] are currently between
# 0.75V and 0.85V" for GPUs and AI processors (P.6, Vicor). MODEL_VDD (0.8 V, b.2) lies inside that range, so it is
# the default; a design may set its own, and every on-die energy on the core rail scales by (V / MODEL_VDD)^2.
CORE_VOLTAGE_RANGE_V = (0.75, 0.85)
# GPU instruction fetch/decode/operand overhead: ~20% of a tensor-core instruction's energy (b.3 Dally): the
# overhead per MAC is 0.2 / 0.8 of the MAC's own energy. Charged only where a design says it imitates SIMT
# tensor instructions (a systolic array issues no instruction per MAC group).
SIMT_INSTRUCTION_OVERHEAD_SHARE = 0.20
# Voltage regulators: a processor VRM converting 12 V to the core voltage is "highly efficient (often exceeding
# 90%)" (P.7); 90% is used, the low end, as the conversion loss of everything the regulators feed [E].
VRM_EFFICIENCY = 0.90


@dataclass
class EventEnergy:
    """Energy of one kind of event at the design's node."""

    event: str
    pj: float  # per event (per byte for byte counters)
    detail: str
    source: str


@dataclass
class EnergyTerm:
    """One counter multiplied by its energy."""

    event: str
    count: float
    pj_each: float
    joules: float


@dataclass
class PowerResult:
    """Energy and average power of one run, with each term; throttled to the TDP where it would exceed it.

    `seconds` is the run time after any throttling; `unthrottled_seconds` and `unthrottled_power_w` are the run at
    the nominal clock, and `clock_scale` (<= 1) is the clock the power cap allows.
    """

    terms: list[EnergyTerm]
    dynamic_j: float
    seconds: float
    static_w: float
    static_j: float
    energy_j: float
    average_power_w: float
    flops: float
    energy_per_flop_j: float
    tdp_w: float | None
    within_tdp: bool | None
    unthrottled_seconds: float = 0.0
    unthrottled_power_w: float = 0.0
    clock_scale: float = 1.0
    provenance: str = "modelled"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


@dataclass
class PowerItem:
    """One part of the chip's power at sustained load."""

    name: str
    watts: float
    detail: str
    source: str
    on_chip: bool = True
    group: str = "chip"  # "chip" (die and DRAM) or "board" (voltage regulators)


@dataclass
class SustainedPower:
    """Power by part with every MAC busy at the nominal clock (a large GEMM's steady state), and the cap."""

    design: str
    items: list[PowerItem]
    dynamic_w: float
    static_w: float
    total_w: float
    on_chip_w: float
    flops_per_s: float
    tdp_w: float | None
    clock_scale: float  # the clock the TDP allows at this load (1 = no throttling)
    provenance: str = "modelled"

    def item(self, name: str) -> float:
        """Watts of the named part (0 if absent)."""
        return sum(i.watts for i in self.items if i.name == name)

    @property
    def on_chip_pj_per_flop(self) -> float:
        """On-die energy per FLOP (everything but the DRAM devices), pJ."""
        return self.on_chip_w / self.flops_per_s / PJ

    def to_json(self) -> dict:
        """Plain-dict form, with the on-chip energy per FLOP."""
        return {**asdict(self), "on_chip_pj_per_flop": self.on_chip_pj_per_flop}


def pe_hop_bits(design: Design) -> int:
    """Register bits written per MAC: os moves A and B one hop; ws moves A and the partial sum."""
    in_bits = 8 * design.input_bytes
    return 2 * in_bits if design.matrix.dataflow == "os" else in_bits + 8 * design.acc_bytes


def sram_pj_per_byte_45nm(macro_bytes: float) -> float:
    """SRAM energy per byte at 45 nm for one macro (bank) of `macro_bytes`, log-log interpolated (b.1)."""
    if macro_bytes <= 0:
        raise PowerInputError(f"SRAM macro size must be > 0 bytes, got {macro_bytes}")
    pts = SRAM_64BIT_READ_45NM_PJ
    seg = pts[:2] if macro_bytes <= pts[1][0] else pts[1:]
    (s0, e0), (s1, e1) = seg
    slope = math.log(e1 / e0) / math.log(s1 / s0)
    return e0 * (macro_bytes / s0) ** slope / 8.0  # per 64-bit access -> per byte


def dram_pj_per_bit(memory_type: str) -> tuple[float, str]:
    """DRAM interface energy per bit and its source."""
    if memory_type not in DRAM_PJ_PER_BIT:
        raise PowerInputError(f"unknown memory type {memory_type!r}; known: {', '.join(DRAM_PJ_PER_BIT)}")
    return DRAM_PJ_PER_BIT[memory_type]


def memory_phy_pj_per_bit(memory_type: str) -> tuple[float, str]:
    """Memory controller + PHY energy per bit on the logic die, and its source (P.3)."""
    return MEMORY_PHY_PJ_PER_BIT["HBM" if memory_type.startswith("HBM") else "other"]


def wire_fj_per_bit_mm() -> float:
    """Full-swing on-chip wire energy per bit and mm at MODEL_VDD (P.1 scaled by CV^2)."""
    return WIRE_FJ_PER_BIT_MM_130NM * (MODEL_VDD / WIRE_VDD_130NM) ** 2


def die_side_mm(design: Design) -> float:
    """Side of the (square) die: [cost] die_area_mm2 if given, else the modelled area."""
    from workbench.area import design_area  # area imports nothing from power; late import keeps the module light
    from workbench.design_tables import design_tables

    area = design_tables(design)["cost"].get("die_area_mm2") or design_area(design).total_mm2
    return math.sqrt(area)


def static_fraction(nm: int) -> float:
    """Static power as a fraction of the power under load (P.4): FinFET or planar."""
    return STATIC_FRACTION_FINFET if nm <= FINFET_MAX_NM else STATIC_FRACTION_PLANAR


def power_options(design: Design) -> dict:
    """The design's [power] choices the energies depend on: core voltage, SIMT overhead, VRM efficiency."""
    from workbench.design_tables import design_tables  # late import, as in die_side_mm

    p = design_tables(design)["power"]
    return {
        "core_voltage_v": float(p.get("core_voltage_v", MODEL_VDD)),
        "simt_instruction_overhead": bool(p.get("simt_instruction_overhead", False)),
        "vrm_efficiency": float(p.get("vrm_efficiency", VRM_EFFICIENCY)),
    }


def vrm_efficiency(eta: float) -> float:
    """A checked voltage-regulator efficiency in (0, 1]."""
    if not 0 < eta <= 1:
        raise PowerInputError(f"[power] vrm_efficiency = {eta} must be in (0, 1] (1 = the chip alone, no board)")
    return eta


def voltage_factor(core_voltage_v: float) -> float:
    """Dynamic energy at `core_voltage_v` relative to the model's 0.8 V (C V^2, b.2)."""
    if not 0 < core_voltage_v <= 2.0:
        raise PowerInputError(f"[power] core_voltage_v = {core_voltage_v} must be in (0, 2] V")
    return (core_voltage_v / MODEL_VDD) ** 2


def simt_overhead_per_mac_pj(mac_pj: float) -> float:
    """Instruction overhead per MAC when it is SIMT_INSTRUCTION_OVERHEAD_SHARE of a tensor instruction (b.3)."""
    share = SIMT_INSTRUCTION_OVERHEAD_SHARE
    return mac_pj * share / (1 - share)


def event_energies(design: Design) -> dict[str, EventEnergy]:
    """Energy per event of `design` at its node, keyed by simulator counter name (plus the per-byte L2, NoC and
    memory-PHY energies, which are charged on every DRAM byte)."""
    nm = resolve_node(design.chip.node_nm).nm
    opts = power_options(design)
    vf = voltage_factor(opts["core_voltage_v"])
    f = energy_factor(nm) * vf  # every on-die energy below is on the core rail
    dtype = design.matrix.input_dtype
    hop = pe_hop_bits(design) * register_energy_pj_per_bit(nm) * vf  # the systolic hops each MAC causes
    mem = design.memory
    mac = MAC_ENERGY_45NM_PJ[dtype] * f
    simt = simt_overhead_per_mac_pj(mac) if opts["simt_instruction_overhead"] else 0.0
    out = {
        MACS_COUNTER[dtype]: EventEnergy(
            MACS_COUNTER[dtype],
            mac + hop + simt,
            f"{dtype} MAC {mac:.4f} pJ + {pe_hop_bits(design)} register bits {hop:.4f} pJ"
            + (f" + SIMT instruction overhead {simt:.4f} pJ" if simt else ""),
            "b.1 Horowitz x b.2 energy factor; b.3 Aladdin register" + ("; b.3 Dally overhead" if simt else ""),
        ),
        "vector_ops": EventEnergy(
            "vector_ops", VECTOR_OP_45NM_PJ[design.is_float] * f, "per element op", "b.1 Horowitz x b.2"
        ),
        "instructions": EventEnergy(
            "instructions",
            INSTRUCTION_PJ_AT_16NM * f / energy_factor(16),  # f carries the voltage factor
            "per instruction",
            "b.3 Dally MICRO-52 (node assumed 16 nm [E])",
        ),
    }
    for name, size, banks in (
        ("scratchpad", mem.scratchpad_bytes, mem.scratchpad_banks),
        ("accumulator", mem.accumulator_bytes, mem.accumulator_banks),
    ):
        pj = sram_pj_per_byte_45nm(size / banks) * f
        for op in ("read", "write"):
            out[f"{name}_{op}_bytes"] = EventEnergy(
                f"{name}_{op}_bytes",
                pj,
                f"per byte, {size // banks:,} B macro" + (" (write taken equal to read [E])" if op == "write" else ""),
                "b.1 Horowitz SRAM by size (log-log) x b.2",
            )
    pj_bit, src = dram_pj_per_bit(mem.dram_type)
    for op in ("read", "write"):
        out[f"dram_{op}_bytes"] = EventEnergy(
            f"dram_{op}_bytes", 8 * pj_bit, f"per byte, {mem.dram_type} {pj_bit} pJ/bit", src
        )
    out["l2_bytes"] = EventEnergy(
        "l2_bytes",
        sram_pj_per_byte_45nm(L2_MACRO_BYTES) * f,
        f"per byte into or out of a core, {L2_MACRO_BYTES >> 20} MiB L2 bank [E]",
        "b.1 Horowitz 1 MB SRAM x b.2",
    )
    hop_mm = MEAN_HOP_FRACTION_OF_SIDE * die_side_mm(design)
    out["noc_bytes"] = EventEnergy(
        "noc_bytes",
        8 * wire_fj_per_bit_mm() * vf * hop_mm / 1000,
        f"per byte, {wire_fj_per_bit_mm() * vf:.0f} fJ/bit/mm over {hop_mm:.1f} mm (2/3 of the die side)",
        "P.1 full-swing wire, CV^2 to 0.8 V",
    )
    phy_bit, phy_src = memory_phy_pj_per_bit(mem.dram_type)
    out["memory_phy_bytes"] = EventEnergy("memory_phy_bytes", 8 * phy_bit, f"per byte, {phy_bit} pJ/bit", phy_src)
    return out


# Energies charged on every DRAM byte besides the device itself: the byte crosses the memory PHY, an L2 bank and
# the network-on-chip to reach its core (the simulator's cores load straight from DRAM; issue 14 adds the L2).
_PER_DRAM_BYTE = ("l2_bytes", "noc_bytes", "memory_phy_bytes")
# Chip-level runs (designs with [l2], compiler/accel/chip_model.py) count the bytes between the cores and the L2.
_CORE_L2 = ("l2_read_bytes", "l2_write_bytes")
_OFF_CHIP = ("dram_read_bytes", "dram_write_bytes")


def sustained_power(
    design: Design,
    tdp_w: float | None = None,
    *,
    flops_per_s: float | None = None,
    dram_bytes_per_s: float | None = None,
) -> SustainedPower:
    """Power by part at sustained large-GEMM load: by default every MAC busy each cycle at the nominal clock.

    Per core and cycle the array reads one A column and one B row, (rows + cols) input elements, from the
    scratchpad; the accumulator reads and writes one row; the core's DRAM port runs at its full bandwidth, each
    byte also written into the scratchpad and crossing the memory PHY, an L2 bank and the network-on-chip; with an
    [l2] section the cores fill from the L2 at its bandwidth (capped by their network-on-chip links) instead, and
    DRAM refills the L2 at the DRAM bandwidth. These are the design's own worst-case rates, independent of how
    well a program reuses data. Clock tree and static
    power follow from the other parts (P.2, P.4); `tdp_w` gives the clock the cap allows.

    `flops_per_s` (at most the design's peak) and `dram_bytes_per_s` (at most its DRAM bandwidth) give the power
    at another load, e.g. a chip's measured GEMM throughput: the array-side parts scale with the FLOP rate, the
    memory-side parts with the DRAM rate, and the static power stays the full-load figure (leakage does not
    follow the load).
    """
    e = event_energies(design)
    clock, cores, m = design.chip.clock_hz, design.chip.cores, design.matrix
    cycles_per_s = clock * cores
    full_port = design.memory.dram_bandwidth_bytes_per_cycle * cycles_per_s
    peak = design.peak_flops
    if flops_per_s is not None and not 0 < flops_per_s <= peak * (1 + 1e-9):
        raise PowerInputError(f"{design.name}: a load of {flops_per_s / 1e12:,.2f} TFLOPS is outside (0, the "
                              f"design's peak {peak / 1e12:,.2f} TFLOPS]")
    if dram_bytes_per_s is not None and not 0 <= dram_bytes_per_s <= full_port * (1 + 1e-9):
        raise PowerInputError(f"{design.name}: a DRAM rate of {dram_bytes_per_s / 1e9:,.1f} GB/s is outside [0, "
                              f"the design's bandwidth {full_port / 1e9:,.1f} GB/s]")
    util = 1.0 if flops_per_s is None else flops_per_s / peak
    port_bytes_per_s = full_port if dram_bytes_per_s is None else dram_bytes_per_s
    # Bytes per second into the cores. Without [l2] they come straight from DRAM. With it, from the shared L2 at
    # its bandwidth (or the cores' network-on-chip links, whichever is less), scaled like the array by the load:
    # at a fixed mapping the L2-to-core traffic is proportional to the FLOPs; DRAM only refills the L2.
    l2 = design.l2
    if l2 is None:
        fill_bytes_per_s, l2_bytes_per_s, fill_what = port_bytes_per_s, port_bytes_per_s, "into the cores from DRAM"
    else:
        fill_bytes_per_s = util * min(l2.bandwidth_bytes_per_cycle, cores * l2.noc_bandwidth_bytes_per_cycle) * clock
        l2_bytes_per_s = fill_bytes_per_s + port_bytes_per_s
        fill_what = "from the L2 into the cores"
    macs = e[MACS_COUNTER[m.input_dtype]]
    nm = resolve_node(design.chip.node_nm).nm
    opts = power_options(design)
    vf = voltage_factor(opts["core_voltage_v"])
    hop = pe_hop_bits(design) * register_energy_pj_per_bit(nm) * vf
    mac = MAC_ENERGY_45NM_PJ[m.input_dtype] * energy_factor(nm) * vf
    simt = macs.pj - mac - hop
    feed = (m.rows + m.cols) * design.input_bytes
    acc_row = design.accumulator_row_bytes
    busy = util * cycles_per_s  # core-cycles per second with the array busy
    mac_rate = design.macs_per_cycle * clock * util
    volts = f" at {opts['core_voltage_v']:g} V" if vf != 1 else ""
    items = [
        PowerItem("datapath", mac * mac_rate * PJ,
                  f"{design.macs_per_cycle:,} MACs x {clock / 1e9:g} GHz x {util:.1%} busy{volts}", macs.source),
        PowerItem("pe_registers", hop * mac_rate * PJ,
                  f"{pe_hop_bits(design)} register bits per MAC", "b.3 Aladdin register x b.2"),
    ]
    if opts["simt_instruction_overhead"]:
        items.append(PowerItem("instruction_overhead", simt * mac_rate * PJ,
                               f"{SIMT_INSTRUCTION_OVERHEAD_SHARE:.0%} of each tensor instruction's energy "
                               "(fetch, decode, operand delivery; [power] simt_instruction_overhead)", "b.3 Dally"))
    items += [
        PowerItem("register_file", 2 * acc_row * e["accumulator_read_bytes"].pj * busy * PJ,
                  f"accumulator: one {acc_row} B row read + written per busy cycle per core",
                  e["accumulator_read_bytes"].source),
        PowerItem("l1_scratchpad", (feed * busy + fill_bytes_per_s) * e["scratchpad_read_bytes"].pj * PJ,
                  f"{feed} B operand reads per busy cycle per core + {fill_bytes_per_s / 1e12:.2f} TB/s of fills",
                  e["scratchpad_read_bytes"].source),
        PowerItem("l2", l2_bytes_per_s * e["l2_bytes"].pj * PJ,
                  f"{fill_bytes_per_s / 1e12:.2f} TB/s {fill_what}"
                  + (f" + {port_bytes_per_s / 1e12:.2f} TB/s of DRAM refills" if l2 is not None else ""),
                  e["l2_bytes"].source),
        PowerItem("network_on_chip", fill_bytes_per_s * e["noc_bytes"].pj * PJ,
                  f"{fill_bytes_per_s / 1e12:.2f} TB/s, {e['noc_bytes'].detail}", e["noc_bytes"].source),
        PowerItem("memory_phy", port_bytes_per_s * e["memory_phy_bytes"].pj * PJ,
                  f"{port_bytes_per_s / 1e12:.2f} TB/s, {e['memory_phy_bytes'].detail}", e["memory_phy_bytes"].source),
    ]
    logic = sum(i.watts for i in items)
    items.append(PowerItem("clock_tree", logic * CLOCK_TREE_FRACTION / (1 - CLOCK_TREE_FRACTION),
                           f"{CLOCK_TREE_FRACTION:.0%} of on-chip power", "P.2"))
    items.append(PowerItem("dram", port_bytes_per_s * e["dram_read_bytes"].pj * PJ,
                           f"{port_bytes_per_s / 1e12:.2f} TB/s, {e['dram_read_bytes'].detail}",
                           e["dram_read_bytes"].source, on_chip=False))
    chip_dynamic = sum(i.watts for i in items)
    frac = static_fraction(nm)
    if flops_per_s is None and dram_bytes_per_s is None:
        leakage = chip_dynamic * frac / (1 - frac)
    else:
        leakage = sustained_power(design).item("static")
    items.append(PowerItem("static", leakage, f"{frac:.1%} of the power under full load "
                           f"({'FinFET' if nm <= FINFET_MAX_NM else 'planar'} {nm} nm)", "P.4"))
    eta = vrm_efficiency(opts["vrm_efficiency"])
    loss = 1 / eta - 1  # regulator loss per watt delivered
    items.append(PowerItem("voltage_regulators", (chip_dynamic + leakage) * loss,
                           f"{eta:.0%} conversion efficiency on the {chip_dynamic + leakage:,.1f} W delivered to the "
                           "die and DRAM", "P.7", on_chip=False, group="board"))
    # the regulators' loss follows what they deliver: its dynamic share throttles with the clock, the rest does not
    dynamic = chip_dynamic * (1 + loss)
    static = leakage * (1 + loss)
    total = dynamic + static
    return SustainedPower(
        design=design.name,
        items=items,
        dynamic_w=dynamic,
        static_w=static,
        total_w=total,
        on_chip_w=sum(i.watts for i in items if i.on_chip),
        flops_per_s=util * peak,
        tdp_w=tdp_w,
        clock_scale=throttle_clock_scale(dynamic, static, tdp_w),
    )


def throttle_clock_scale(dynamic_w: float, static_w: float, tdp_w: float | None) -> float:
    """Clock fraction that brings dynamic + static power down to `tdp_w` (energy per event fixed), at most 1."""
    if tdp_w is None or dynamic_w + static_w <= tdp_w:
        return 1.0
    if static_w >= tdp_w:
        raise PowerInputError(
            f"static power {static_w:,.1f} W alone exceeds the TDP {tdp_w:,.1f} W; raise [chip] tdp_w or lower the "
            "leakage ([power] static_w / leakage_fraction)"
        )
    return (tdp_w - static_w) / dynamic_w


def peak_dynamic_power_w(design: Design) -> float:
    """Total dynamic power at sustained load."""
    return sustained_power(design).dynamic_w


def static_power_w(design: Design, leakage_fraction: float | None = None) -> float:
    """Static power: the node's fraction of the power under sustained load (P.4), or `leakage_fraction` of the
    sustained dynamic power where a design sets one."""
    if leakage_fraction is None:
        return sustained_power(design).static_w
    if not 0 <= leakage_fraction < 1:
        raise PowerInputError(f"leakage_fraction = {leakage_fraction} must be in [0, 1)")
    return leakage_fraction * peak_dynamic_power_w(design)


def run_power(
    design: Design,
    counters: dict[str, float],
    seconds: float,
    flops: float,
    *,
    static_w: float | None = None,
    tdp_w: float | None = None,
) -> PowerResult:
    """Energy of a run from event counters (whole chip) and its average power, capped at `tdp_w`.

    Every DRAM byte is also charged its memory-PHY, L2 and network-on-chip energy (in a chip-level run, the
    L2 and network-on-chip energy go on the counted core-to-L2 bytes instead, and every DRAM byte is charged
    its L2 refill), the on-chip dynamic energy
    its clock-tree share, and all of it the voltage regulators' conversion loss (`static_w` includes theirs). Above the TDP the clock is throttled: the dynamic energy stays, the time stretches to
    dynamic / (TDP - static), and the static energy grows with it.
    """
    if seconds <= 0:
        raise PowerInputError(f"run time must be > 0 s, got {seconds}")
    energies = event_energies(design)
    terms = []
    for name, count in counters.items():
        if not count:
            continue
        if name not in energies or name in _PER_DRAM_BYTE:
            if name in MACS_COUNTER.values():
                raise PowerInputError(
                    f"counter {name!r} does not match the design's input dtype {design.matrix.input_dtype!r}"
                )
            continue  # counters without an energy (e.g. DMA descriptors) are not charged
        e = energies[name]
        terms.append(EnergyTerm(name, float(count), e.pj, float(count) * e.pj * PJ))
    dram_bytes = sum(float(counters.get(k, 0)) for k in _OFF_CHIP)
    core_l2_bytes = sum(float(counters.get(k, 0)) for k in _CORE_L2)
    if core_l2_bytes:  # a chip-level run: the cores move these through the L2 and the NoC; DRAM refills the L2
        per_byte = {"l2_bytes": core_l2_bytes + dram_bytes, "noc_bytes": core_l2_bytes, "memory_phy_bytes": dram_bytes}
    else:  # the cores load straight from DRAM: every DRAM byte also crosses an L2 bank and the NoC
        per_byte = dict.fromkeys(_PER_DRAM_BYTE, dram_bytes)
    for name in _PER_DRAM_BYTE:
        e, count = energies[name], per_byte[name]
        if count:
            terms.append(EnergyTerm(name, count, e.pj, count * e.pj * PJ))
    on_chip = sum(t.joules for t in terms if t.event not in _OFF_CHIP)
    if on_chip:
        clock_j = on_chip * CLOCK_TREE_FRACTION / (1 - CLOCK_TREE_FRACTION)
        terms.append(EnergyTerm("clock_tree", on_chip, CLOCK_TREE_FRACTION / (1 - CLOCK_TREE_FRACTION), clock_j))
    delivered = sum(t.joules for t in terms)
    loss = 1 / vrm_efficiency(power_options(design)["vrm_efficiency"]) - 1
    if delivered and loss:
        terms.append(EnergyTerm("voltage_regulators", delivered, loss, delivered * loss))
    dynamic = sum(t.joules for t in terms)
    static = static_power_w(design) if static_w is None else float(static_w)
    power0 = dynamic / seconds + static
    scale = throttle_clock_scale(dynamic / seconds, static, tdp_w)
    run_s = seconds / scale
    energy = dynamic + static * run_s
    power = energy / run_s
    notes = []
    if scale < 1:
        notes.append(
            f"power cap: {power0:,.1f} W at the nominal clock exceeds the TDP {tdp_w:,.1f} W; clock throttled to "
            f"{scale:.1%}, run time {seconds:.4g} s -> {run_s:.4g} s"
        )
    return PowerResult(
        terms=terms,
        dynamic_j=dynamic,
        seconds=run_s,
        static_w=static,
        static_j=static * run_s,
        energy_j=energy,
        average_power_w=power,
        flops=flops,
        energy_per_flop_j=energy / flops if flops else float("nan"),
        tdp_w=tdp_w,
        within_tdp=None if tdp_w is None else power <= tdp_w * (1 + 1e-9),
        unthrottled_seconds=seconds,
        unthrottled_power_w=power0,
        clock_scale=scale,
        notes=notes,
    )
