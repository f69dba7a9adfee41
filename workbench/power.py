"""Energy per event at a design's node and the average power of a run, from the simulator's event counters.

Horowitz's 45 nm energies (docs/sources.md b.1) scaled by Stillmaker-Baas factors (b.2); DRAM energy
per bit by memory type (b.4); leakage as a fraction of peak dynamic power (basis b.3, fraction [E]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from isa.design import Design
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
# Aladdin 40 nm register, 0.009 pJ per bit written (b.3): the systolic hops each MAC causes (see pe_hop_bits).
REGISTER_ENERGY_40NM_PJ_PER_BIT = 0.009
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
# [E] Leakage as a fraction of peak dynamic power. Basis: TPU v4's measured idle power is about half its mean
# (90 of 170 W, b.3); idle includes clocks, refresh and I/O that are not pure leakage, so 0.3 is taken.
LEAKAGE_FRACTION = 0.3


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
    """Energy and average power of one run, with each term."""

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
    provenance: str = "modelled"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


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


def event_energies(design: Design) -> dict[str, EventEnergy]:
    """Energy per event of `design` at its node, keyed by simulator counter name."""
    nm = resolve_node(design.chip.node_nm).nm
    f = energy_factor(nm)
    dtype = design.matrix.input_dtype
    hop = pe_hop_bits(design) * REGISTER_ENERGY_40NM_PJ_PER_BIT * f / energy_factor(40)
    mem = design.memory
    out = {
        f"macs_{dtype}": EventEnergy(
            f"macs_{dtype}",
            MAC_ENERGY_45NM_PJ[dtype] * f + hop,
            f"{dtype} MAC {MAC_ENERGY_45NM_PJ[dtype] * f:.4f} pJ + {pe_hop_bits(design)} register bits {hop:.4f} pJ",
            "b.1 Horowitz x b.2 energy factor; b.3 Aladdin register",
        ),
        "vector_ops": EventEnergy(
            "vector_ops", VECTOR_OP_45NM_PJ[design.is_float] * f, "per element op", "b.1 Horowitz x b.2"
        ),
        "instructions": EventEnergy(
            "instructions",
            INSTRUCTION_PJ_AT_16NM * f / energy_factor(16),
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
    return out


def peak_rate_dynamic_w(design: Design) -> dict[str, float]:
    """Dynamic power by part with every MAC busy each cycle, fed from the scratchpad, and DRAM at full bandwidth.

    This is the design's own worst case (a modelled TDP): it does not depend on how well a program reuses
    data. The array reads one A column and one B row, (rows + cols) input elements, per cycle per core.
    """
    e = event_energies(design)
    clock, cores, m = design.chip.clock_hz, design.chip.cores, design.matrix
    return {
        "macs": e[f"macs_{m.input_dtype}"].pj * design.macs_per_cycle * clock * PJ,
        "operand_feed": e["scratchpad_read_bytes"].pj * (m.rows + m.cols) * design.input_bytes * cores * clock * PJ,
        "dram": e["dram_read_bytes"].pj * design.dram_bandwidth_bytes_per_s * cores * PJ,
    }


def peak_dynamic_power_w(design: Design) -> float:
    """Total dynamic power at the peak rate (the basis for leakage)."""
    return sum(peak_rate_dynamic_w(design).values())


def static_power_w(design: Design, leakage_fraction: float = LEAKAGE_FRACTION) -> float:
    """Leakage power: a fraction of peak dynamic power ([E], basis b.3)."""
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
    """Energy of a run from event counters (whole chip) and its average power; checked against `tdp_w`."""
    if seconds <= 0:
        raise PowerInputError(f"run time must be > 0 s, got {seconds}")
    energies = event_energies(design)
    terms = []
    for name, count in counters.items():
        if not count:
            continue
        if name not in energies:
            if name.startswith("macs_"):
                raise PowerInputError(
                    f"counter {name!r} does not match the design's input dtype {design.matrix.input_dtype!r}"
                )
            continue  # counters without an energy (e.g. DMA descriptors) are not charged
        e = energies[name]
        terms.append(EnergyTerm(name, float(count), e.pj, float(count) * e.pj * PJ))
    dynamic = sum(t.joules for t in terms)
    static = static_power_w(design) if static_w is None else float(static_w)
    energy = dynamic + static * seconds
    power = energy / seconds
    return PowerResult(
        terms=terms,
        dynamic_j=dynamic,
        seconds=seconds,
        static_w=static,
        static_j=static * seconds,
        energy_j=energy,
        average_power_w=power,
        flops=flops,
        energy_per_flop_j=energy / flops if flops else float("nan"),
        tdp_w=tdp_w,
        within_tdp=None if tdp_w is None else power <= tdp_w,
    )
