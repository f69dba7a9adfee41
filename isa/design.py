"""Architecture parameters of one accelerator design, loaded from a TOML file and validated on load.

A design file drives every model (functional, simulator, RTL, area, cost, power). Each field's unit
is in its name. Sections other than the architecture ones ([cost], [power], [reference]) are kept as
plain tables in `Design.extras` for the workbench models, which validate them themselves.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from isa.errors import UserError
from isa.fields import Spec, check_bool, check_number
from isa.files import read_text

INPUT_DTYPES = ("int8", "fp16", "bf16", "fp32")
ACC_DTYPE_FOR_INPUT = {"int8": "int32", "fp16": "fp32", "bf16": "fp32", "fp32": "fp32"}
DTYPE_BYTES = {"int8": 1, "int32": 4, "fp16": 2, "bf16": 2, "fp32": 4}
DATAFLOWS = ("os", "ws")
DRAM_TYPES = ("DDR4", "DDR5", "LPDDR4", "LPDDR5", "GDDR6", "GDDR6X", "HBM2e", "HBM3", "HBM3e")
EXTRA_SECTIONS = ("cost", "power", "reference")


class DesignError(UserError):
    """A design file is missing, malformed, or has a field out of range; the message says where."""


@dataclass(frozen=True)
class MatrixUnit:
    """The systolic matrix unit."""

    rows: int
    cols: int
    dataflow: str  # "os" (output-stationary) or "ws" (weight-stationary)
    input_dtype: str
    acc_dtype: str
    overlap_tiles: bool = True  # fill/drain of consecutive GEMMs overlap where the dataflow allows


@dataclass(frozen=True)
class Memory:
    """On-chip SRAMs and the DRAM interface."""

    scratchpad_bytes: int
    scratchpad_banks: int
    accumulator_bytes: int
    accumulator_banks: int
    dram_bytes: int  # size of the simulated DRAM address space
    dram_bandwidth_bytes_per_cycle: int
    dram_latency_cycles: int
    dram_type: str = "LPDDR5"
    dram_capacity_bytes: int = 0  # memory fitted to the product (cost model); 0 = same as dram_bytes
    # DRAM realism (docs/timing.md, section 7; the RTL follows all three). The defaults are the blocking
    # fixed-latency pipe: one DMA in flight, one burst per row, stores wait for the round trip.
    dram_outstanding_requests: int = 1  # DMAs in flight at once; the port is held only for transfer beats
    dram_burst_merge: bool = False  # contiguous rows (stride = row bytes) stream as one burst
    dram_posted_stores: bool = False  # a store completes once its data has left the core


@dataclass(frozen=True)
class VectorUnit:
    """The vector unit working on accumulator rows."""

    lanes: int
    special_functions: bool = False  # exp2, reciprocal, sqrt (floating-point designs)


@dataclass(frozen=True)
class Control:
    """Instruction queues between fetch and the load, compute and store units."""

    queue_depth: int = 8


@dataclass(frozen=True)
class Chip:
    """What the core is built in and how many copies a die carries."""

    clock_hz: float
    node_nm: int
    cores: int = 1
    tdp_w: float = 0.0  # thermal design power the clock is throttled to (power models); 0 = not given
    # Read by the chip level only (designs with [l2]: compiler.accel.chip_model; docs/timing.md "Chip level"):
    sustained_clock_hz: float = 0.0  # the clock held under sustained matrix load; 0 = clock_hz
    kernel_overhead_s: float = 0.0  # fixed time per GEMM call: launch, ramp-up and drain of the kernel
    # the DRAM bandwidth a streaming kernel sustains (a measured STREAM figure), bytes/s; 0 = the datasheet's,
    # cores x memory.dram_bandwidth_bytes_per_cycle x clock_hz
    sustained_dram_bandwidth_bytes_per_s: float = 0.0
    # device time a GEMM kernel loses when it starts right after an L2 flush (operand pages' translations and the
    # pipeline's first DRAM round trips, beyond memory.dram_latency_cycles); charged to calls that start cold
    cold_start_s: float = 0.0
    gemm_tiles: tuple[tuple[int, int], ...] = ()  # output tiles (M x N) one core computes at a time; () = any
    # the GEMM library also runs persistent stream-K kernels: every core takes an equal share of all tiles' K steps
    stream_k: bool = False


@dataclass(frozen=True)
class L2Cache:
    """The chip level (optional [l2] section): an L2 / global buffer shared by all cores, and the network-on-chip
    between the cores and it. Simulator-level only (compiler.accel.chip_model); the RTL core has no L2."""

    bytes: int  # capacity shared by all cores
    bandwidth_bytes_per_cycle: int  # all banks together, at the core clock
    latency_cycles: int  # a core's load that hits in the L2
    noc_bandwidth_bytes_per_cycle: int  # one core's link to the L2
    # cores whose identical operand loads one L2 read serves (a multicast to a cluster of cores); 1 = none
    multicast_cores: int = 1
    # dirty bytes the L2 still holds right after a flush (a big memset): a call that starts cold writes back the
    # share of them its own reads evict (docs/timing.md "Chip level"); 0 = none
    flush_dirty_bytes: int = 0


@dataclass(frozen=True)
class Design:
    """One accelerator design: the single source of truth for every model."""

    name: str
    description: str
    matrix: MatrixUnit
    memory: Memory
    vector: VectorUnit
    control: Control
    chip: Chip
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<built in>"
    l2: L2Cache | None = None  # no [l2]: each core's memory is its DRAM share, as before

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def input_bytes(self) -> int:
        """Bytes per matrix-unit input element."""
        return DTYPE_BYTES[self.matrix.input_dtype]

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def acc_bytes(self) -> int:
        """Bytes per accumulator element."""
        return DTYPE_BYTES[self.matrix.acc_dtype]

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def is_float(self) -> bool:
        """True for floating-point designs."""
        return self.matrix.input_dtype != "int8"

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def dim(self) -> int:
        """Elements per scratchpad row: the larger array side, so one row feeds a whole array edge."""
        return max(self.matrix.rows, self.matrix.cols)

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def scratchpad_row_bytes(self) -> int:
        """Bytes in one scratchpad row (`dim` input elements)."""
        return self.dim * self.input_bytes

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def scratchpad_rows(self) -> int:
        """Addressable scratchpad rows."""
        return self.memory.scratchpad_bytes // self.scratchpad_row_bytes

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def accumulator_row_bytes(self) -> int:
        """Bytes in one accumulator row (`dim` accumulator elements)."""
        return self.dim * self.acc_bytes

    @functools.cached_property  # hot in the simulator; a frozen dataclass never changes
    def accumulator_rows(self) -> int:
        """Addressable accumulator rows."""
        return self.memory.accumulator_bytes // self.accumulator_row_bytes

    @property
    def macs_per_cycle(self) -> int:
        """Peak multiply-accumulates per cycle over the whole chip."""
        return self.matrix.rows * self.matrix.cols * self.chip.cores

    @property
    def peak_flops(self) -> float:
        """Peak dense FLOP/s of the chip (one MAC = 2 FLOP)."""
        return 2.0 * self.macs_per_cycle * self.chip.clock_hz

    @property
    def dram_bandwidth_bytes_per_s(self) -> float:
        """DRAM bandwidth of one core in bytes per second."""
        return self.memory.dram_bandwidth_bytes_per_cycle * self.chip.clock_hz

    def replace(self, **sections: Any) -> Design:
        """A copy with whole fields replaced, re-validated (e.g. `matrix=dataclasses.replace(d.matrix, rows=4)`)."""
        new = dataclasses.replace(self, **sections)
        _validate(new, text="", path=new.source)
        return new


# (section, field): what it accepts (isa.fields.Spec, shared with the workbench's [cost]/[power] tables)
_RANGES: dict[tuple[str, str], Spec] = {
    ("matrix", "rows"): Spec("int", 1, 1024),
    ("matrix", "cols"): Spec("int", 1, 1024),
    ("memory", "scratchpad_bytes"): Spec("int", 256, 2**34),
    ("memory", "scratchpad_banks"): Spec("int", 1, 64, pow2=True),
    ("memory", "accumulator_bytes"): Spec("int", 64, 2**34),
    ("memory", "accumulator_banks"): Spec("int", 1, 64, pow2=True),
    ("memory", "dram_bytes"): Spec("int", 4096, 2**40),
    ("memory", "dram_bandwidth_bytes_per_cycle"): Spec("int", 1, 2**16),
    ("memory", "dram_latency_cycles"): Spec("int", 0, 100_000),
    ("memory", "dram_capacity_bytes"): Spec("int", 0, 2**44),
    ("memory", "dram_outstanding_requests"): Spec("int", 1, 65536),
    ("vector", "lanes"): Spec("int", 1, 4096),
    ("control", "queue_depth"): Spec("int", 1, 1024),
    ("chip", "clock_hz"): Spec("number", 1e6, 1e10),
    ("chip", "node_nm"): Spec("int", 2, 180),
    ("chip", "cores"): Spec("int", 1, 1_000_000),
    ("chip", "tdp_w"): Spec("number", 0, 1e6),
    ("chip", "sustained_clock_hz"): Spec("number", 0, 1e10),
    ("chip", "kernel_overhead_s"): Spec("number", 0, 1.0),
    ("chip", "sustained_dram_bandwidth_bytes_per_s"): Spec("number", 0, 1e15),
    ("chip", "cold_start_s"): Spec("number", 0, 1.0),
}
_L2_RANGES: dict[str, Spec] = {
    "bytes": Spec("int", 1024, 2**40),
    "bandwidth_bytes_per_cycle": Spec("int", 1, 2**24),
    "latency_cycles": Spec("int", 0, 100_000),
    "noc_bandwidth_bytes_per_cycle": Spec("int", 1, 2**20),
    "multicast_cores": Spec("int", 1, 64),
    "flush_dirty_bytes": Spec("int", 0, 2**40),
}
_BOOLS: tuple[tuple[str, str], ...] = (("memory", "dram_burst_merge"), ("memory", "dram_posted_stores"),
                                       ("chip", "stream_k"))
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("matrix", "dataflow"): DATAFLOWS,
    ("matrix", "input_dtype"): INPUT_DTYPES,
    ("matrix", "acc_dtype"): ("int32", "fp32"),
    ("memory", "dram_type"): DRAM_TYPES,
}
_SECTIONS = {"matrix": MatrixUnit, "memory": Memory, "vector": VectorUnit, "control": Control, "chip": Chip}


def _line_of(text: str, section: str, key: str) -> int | None:
    """1-based line of `key = ...` inside `[section]` of a TOML text, for error messages."""
    current = ""
    for i, line in enumerate(text.splitlines(), 1):
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            current = head.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return i
    return None


def _where(path: str, text: str, section: str, key: str) -> str:
    line = _line_of(text, section, key)
    return f"{path}:{line}" if line else path


def _validate(design: Design, text: str, path: str) -> None:
    for (section, key), spec in _RANGES.items():
        check_number(_where(path, text, section, key), f"{section}.{key}", getattr(getattr(design, section), key),
                     spec, DesignError)
    for section, key in _BOOLS:
        check_bool(_where(path, text, section, key), f"{section}.{key}", getattr(getattr(design, section), key),
                   DesignError)
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(design, section), key)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), choices, n=1)
            raise DesignError(f"{_where(path, text, section, key)}: field '{section}.{key}' = {value!r} "
                              f"is not one of {', '.join(choices)}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    m = design.matrix
    if m.acc_dtype != ACC_DTYPE_FOR_INPUT[m.input_dtype]:
        raise DesignError(f"{_where(path, text, 'matrix', 'acc_dtype')}: field 'matrix.acc_dtype' = {m.acc_dtype!r} "
                          f"does not fit input_dtype {m.input_dtype!r}; use {ACC_DTYPE_FOR_INPUT[m.input_dtype]!r}")
    if design.vector.special_functions and not design.is_float:
        raise DesignError(f"{_where(path, text, 'vector', 'special_functions')}: field 'vector.special_functions' "
                          "needs a floating-point input_dtype (exp2/reciprocal/sqrt have no int8 meaning)")
    mem = design.memory
    for key, rows, banks, unit in (("scratchpad_bytes", design.scratchpad_rows, mem.scratchpad_banks, design.scratchpad_row_bytes),
                                   ("accumulator_bytes", design.accumulator_rows, mem.accumulator_banks, design.accumulator_row_bytes)):
        need = max(2 * design.dim, banks)
        if rows < need or rows % banks:
            raise DesignError(f"{_where(path, text, 'memory', key)}: field 'memory.{key}' = {getattr(mem, key)} holds "
                              f"{rows} rows of {unit} bytes; need at least {need} rows (two array tiles) and a "
                              f"multiple of the {banks} banks, i.e. a multiple of {unit * banks} bytes >= {need * unit}")
    if mem.dram_bytes % 64:
        raise DesignError(f"{_where(path, text, 'memory', 'dram_bytes')}: field 'memory.dram_bytes' must be a multiple of 64")
    chip = design.chip
    if chip.sustained_clock_hz and not 1e6 <= chip.sustained_clock_hz <= chip.clock_hz:
        raise DesignError(f"{_where(path, text, 'chip', 'sustained_clock_hz')}: field 'chip.sustained_clock_hz' = "
                          f"{chip.sustained_clock_hz:g} must be 0 (= clock_hz) or between 1e6 and clock_hz "
                          f"({chip.clock_hz:g})")
    peak_dram = mem.dram_bandwidth_bytes_per_cycle * chip.cores * chip.clock_hz
    if chip.sustained_dram_bandwidth_bytes_per_s > peak_dram * (1 + 1e-9):
        raise DesignError(f"{_where(path, text, 'chip', 'sustained_dram_bandwidth_bytes_per_s')}: field "
                          f"'chip.sustained_dram_bandwidth_bytes_per_s' = {chip.sustained_dram_bandwidth_bytes_per_s:g} "
                          f"exceeds the datasheet DRAM bandwidth ({peak_dram:g} B/s = cores x "
                          f"memory.dram_bandwidth_bytes_per_cycle x clock_hz); use 0 (= that) or a smaller measured figure")
    for tm, tn in chip.gemm_tiles:
        if tm % m.rows or tn % m.cols:
            raise DesignError(f"{_where(path, text, 'chip', 'gemm_tiles')}: tile {tm}x{tn} of 'chip.gemm_tiles' is "
                              f"not a whole number of {m.rows}x{m.cols} array tiles; use multiples of {m.rows} (M) "
                              f"and {m.cols} (N)")
    if design.l2 is not None:
        for key, spec in _L2_RANGES.items():
            check_number(_where(path, text, "l2", key), f"l2.{key}", getattr(design.l2, key), spec, DesignError)


def parse_design(text: str, path: str = "<string>", name: str | None = None) -> Design:
    """Parse and validate a design from TOML text; errors name the file, line and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DesignError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - set(_SECTIONS) - set(EXTRA_SECTIONS) - {"name", "description", "l2"}
    if unknown:
        first = sorted(unknown)[0]
        lines = text.splitlines()
        line = next((i for i, x in enumerate(lines, 1) if re.match(rf"\s*\[*\s*{re.escape(first)}\s*[]=.]", x)), None)
        hint = difflib.get_close_matches(first, [*_SECTIONS, "l2", *EXTRA_SECTIONS, "name", "description"], n=1)
        raise DesignError(f"{path}{f':{line}' if line else ''}: unknown top-level entries {sorted(unknown)}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else "") + "; allowed: name, description, "
                          f"[{'], ['.join([*_SECTIONS, 'l2', *EXTRA_SECTIONS])}]")
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        table = data.get(section)
        if not isinstance(table, dict):
            raise DesignError(f"{path}: missing section [{section}] (fields: "
                              f"{', '.join(f.name for f in dataclasses.fields(cls))})")
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in table:
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=1)
                raise DesignError(f"{_where(path, text, section, key)}: unknown field '{section}.{key}'"
                                  + (f" (did you mean '{section}.{hint[0]}'?)" if hint else
                                     f"; allowed: {', '.join(names)}"))
        for key, f in names.items():
            if key not in table and f.default is dataclasses.MISSING:
                raise DesignError(f"{path}: section [{section}] is missing required field '{section}.{key}'")
        values = dict(table)
        for key in ("clock_hz", "tdp_w", "sustained_clock_hz", "kernel_overhead_s",
                    "sustained_dram_bandwidth_bytes_per_s", "cold_start_s"):
            if section == "chip" and isinstance(values.get(key), int) and not isinstance(values.get(key), bool):
                values[key] = float(values[key])
        if section == "chip" and "gemm_tiles" in values:
            values["gemm_tiles"] = _gemm_tiles(values["gemm_tiles"], _where(path, text, "chip", "gemm_tiles"))
        kwargs[section] = cls(**values)
    kwargs["l2"] = _parse_l2(data.get("l2"), path, text)
    stem = name or (Path(path).stem if path != "<string>" else "unnamed")
    extras = {k: data[k] for k in EXTRA_SECTIONS if k in data}
    for k, v in extras.items():
        if not isinstance(v, dict):
            raise DesignError(f"{path}: [{k}] must be a table")
    design = Design(name=str(data.get("name", stem)), description=str(data.get("description", "")),
                    extras=extras, source=path, **kwargs)
    _validate(design, text, path)
    if design.memory.dram_capacity_bytes == 0:
        design = dataclasses.replace(design, memory=dataclasses.replace(design.memory,
                                                                         dram_capacity_bytes=design.memory.dram_bytes))
    return design


def _gemm_tiles(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    """[chip] gemm_tiles as a tuple of (M, N) pairs: a list of two-element lists of positive integers."""
    ok = isinstance(value, list) and all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 65536
                                                    for x in t) for t in value)
    if not ok:
        raise DesignError(f"{where}: field 'chip.gemm_tiles' = {value!r} must be a list of [M, N] pairs of "
                          "positive integers, e.g. [[128, 128], [128, 256]]")
    return tuple((int(t[0]), int(t[1])) for t in value)


def _parse_l2(table: Any, path: str, text: str) -> L2Cache | None:
    """The optional [l2] section; unknown or missing fields name the file and line."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise DesignError(f"{path}: [l2] must be a table")
    names = {f.name: f for f in dataclasses.fields(L2Cache)}
    for key in table:
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            raise DesignError(f"{_where(path, text, 'l2', key)}: unknown field 'l2.{key}'"
                              + (f" (did you mean 'l2.{hint[0]}'?)" if hint else f"; allowed: {', '.join(names)}"))
    for key, f in names.items():
        if key not in table and f.default is dataclasses.MISSING:
            raise DesignError(f"{path}: section [l2] is missing required field 'l2.{key}'")
    return L2Cache(**table)


def shipped_designs() -> dict[str, Path]:
    """Design names shipped with the package (the `designs/` folder), mapped to their files."""
    source_tree = Path(__file__).resolve().parent.parent / "designs"
    if source_tree.is_dir():  # a checkout (plain or editable install)
        files = list(source_tree.glob("*.toml"))
    else:  # a regular install: setuptools maps designs/ to the `isa.designs` package
        files = [Path(str(p)) for p in resources.files("isa.designs").iterdir() if str(p).endswith(".toml")]
    return {p.stem: p for p in sorted(files)}


def load_design(name_or_path: str | Path) -> Design:
    """Load a design by shipped name (e.g. `small-int8-8x8`) or by path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise DesignError(f"{path}: design file not found")
        return parse_design(read_text(path, "design file", DesignError), str(path))
    shipped = shipped_designs()
    if str(name_or_path) not in shipped:
        hint = difflib.get_close_matches(str(name_or_path), shipped, n=3)
        raise DesignError(f"unknown design {str(name_or_path)!r}; "
                          + (f"did you mean {', '.join(hint)}? " if hint else "")
                          + f"shipped designs: {', '.join(sorted(shipped))} (or give a path to a .toml file)")
    p = shipped[str(name_or_path)]
    return parse_design(p.read_text(), f"designs/{p.name}")


DEFAULT_DESIGN = "small-int8-8x8"


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of a / b."""
    return -(-a // b)


__all__ = ["Design", "DesignError", "L2Cache", "MatrixUnit", "Memory", "VectorUnit", "Control", "Chip", "load_design",
           "parse_design", "shipped_designs", "DEFAULT_DESIGN", "ceil_div", "DTYPE_BYTES"]
