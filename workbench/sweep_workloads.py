"""Workload kinds a sweep can run on every design point, and how one point is evaluated.

A kind turns its spec table (`[[workloads]]` entry) into a `SweepWorkload`: a name, a `key` (the content
that identifies it in the results database) and `evaluate(design)`, which returns the figures of
`workbench.estimate`. Kinds: `gemm` and `layers` (GEMM layers through the GEMM program generator), `model` (a
built-in model or a Python model file) and `onnx` (an ONNX file), the last two compiled by the compiler for the
`SIM` device of each design point (int8-quantized on int8 designs) and run whole. A new kind registers a parser in
`WORKLOAD_KINDS`; nothing else in the sweep changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from isa.design import Design
from isa.errors import UserError
from workbench.estimate import Layer, Workload, WorkloadError, estimate, estimate_from_run, parse_workload


class SweepWorkload(Protocol):
    """What a sweep needs of a workload."""

    name: str

    def key(self) -> dict[str, Any]:
        """Plain data that identifies the work done (hashed with the design into the result key)."""
        ...

    def evaluate(self, design: Design) -> dict[str, Any]:
        """`estimate` figures of this workload on `design` as {name: {value, unit, provenance, note}}."""
        ...


@dataclass(frozen=True)
class GemmLayers:
    """GEMM layers run one after another (one inference), simulated through `workbench.estimate`."""

    name: str
    layers: tuple[Layer, ...]

    def key(self) -> dict[str, Any]:
        """Kind and the layers' shapes and counts (names do not change the result)."""
        return {"kind": "gemm", "layers": [[la.m, la.n, la.k, la.count] for la in self.layers]}

    def evaluate(self, design: Design) -> dict[str, Any]:
        """Simulate the layers on `design` and apply the area, cost and power models."""
        # a design with [l2] runs the chip-level mapping search, whose mappings are cached on disk per design
        # content and shape (compiler.accel.mapping), so it needs no memo here
        timing = None if design.l2 is not None else simulate_gemm_timing
        est = estimate(design, Workload(self.name, self.layers), simulate=timing)
        return {k: {"value": f.value, "unit": f.unit, "provenance": f.provenance, "note": f.note}
                for k, f in est.figures.items()}


@dataclass(frozen=True)
class GemmTiming:
    """What `estimate` reads of a simulated GEMM: its cycles and event counters."""

    cycles: int
    counters: dict[str, float]


def simulate_gemm_timing(m: int, n: int, k: int, *, design: Design, values: bool = False,
                         ideal_memory: bool = False) -> GemmTiming:
    """`compiler.accel.gemm_run.simulate_gemm`'s cycles and counters, memoized on what determines them.

    The simulator's cycles and counters depend on the matrix unit, memories, vector unit, control and core
    count, never on the clock, the node or the [cost]/[power] tables (only its `seconds` uses the clock, and
    `estimate` recomputes that). So the points of a sweep that differ only there share one simulation per
    worker process: the same numbers, computed once.
    """
    assert not values, "timing only"
    key = (*timing_key(design), m, n, k, ideal_memory)
    hit = _TIMINGS.get(key)
    if hit is None:
        from compiler.accel.gemm_run import simulate_gemm

        result = simulate_gemm(m, n, k, design=design, values=False, ideal_memory=ideal_memory)
        hit = GemmTiming(int(result.cycles), dict(result.counters))
        if len(_TIMINGS) >= _MAX_TIMINGS:
            _TIMINGS.pop(next(iter(_TIMINGS)))  # oldest first
        _TIMINGS[key] = hit
    return hit


def timing_key(design: Design) -> tuple:
    """The design fields the simulated cycles and counters depend on (see simulate_gemm_timing)."""
    return (design.matrix, design.memory, design.vector, design.control, design.chip.cores)


_TIMINGS: dict[tuple, GemmTiming] = {}
_MAX_TIMINGS = 4096


class WorkloadSpecError(UserError):
    """A `[[workloads]]` entry that cannot be used; the caller adds the spec's file:line (of `key`, when given)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _gemm(table: dict[str, Any], base_dir: Path) -> SweepWorkload:
    shape = table["gemm"]
    if isinstance(shape, list) and len(shape) == 3 and all(isinstance(x, int) and not isinstance(x, bool) for x in shape):
        dims = shape
    elif isinstance(shape, str) and re.fullmatch(r"\s*\d+\s*x\s*\d+\s*x\s*\d+\s*", shape, flags=re.IGNORECASE):
        dims = [int(x) for x in re.split(r"x", shape.strip(), flags=re.IGNORECASE)]
    else:
        raise WorkloadSpecError(f"gemm = {shape!r}: expected \"MxNxK\" (e.g. \"512x512x512\") or [M, N, K]")
    if min(dims) < 1:
        raise WorkloadSpecError(f"gemm = {shape!r}: M, N and K must be >= 1")
    count = table.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise WorkloadSpecError(f"count = {count!r}: must be an integer >= 1")
    m, n, k = dims
    name = str(table.get("name", f"gemm:{m}x{n}x{k}" + (f"x{count}" if count > 1 else "")))
    return GemmLayers(name, (Layer(f"gemm {m}x{n}x{k}", m, n, k, count),))


def _layers(table: dict[str, Any], base_dir: Path) -> SweepWorkload:
    file = table["layers"]
    if not isinstance(file, str) or not file.lower().endswith(".csv"):
        raise WorkloadSpecError(f"layers = {file!r}: expected a .csv file with columns name,m,n,k[,count]")
    path = Path(file) if Path(file).is_absolute() else base_dir / file
    try:
        wl = parse_workload(str(path))
    except WorkloadError as exc:
        raise WorkloadSpecError(str(exc)) from None
    return GemmLayers(str(table.get("name", wl.name)), wl.layers)


def _figures_of_run(design: Design, name: str, run) -> dict[str, Any]:
    """`estimate` figures of a model's SIM run: its cycles and counters; FLOPs are the accelerator's MACs x 2."""
    if not run.cycles:
        raise UserError(f"{name}: no kernel ran on the accelerator of {design.name} (every op ran on the host)")
    est = estimate_from_run(design, name, 2.0 * run.macs, run.counters, run.cycles)
    figures = {k: {"value": f.value, "unit": f.unit, "provenance": f.provenance, "note": f.note}
               for k, f in est.figures.items()}
    figures["host_flops"] = {"value": float(run.host_flops), "unit": "FLOP", "provenance": "modelled",
                             "note": "work of the ops that ran on the host: not in the accelerator's figures"}
    return figures


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class CompiledModel:
    """A built-in model (mlp, cnn, gpt2-block) or a Python model file, compiled for each design point's SIM device."""

    name: str
    model: str
    batch: int | None
    content: str  # the model file's hash ("" for a built-in model): a changed file is a new workload

    def key(self) -> dict[str, Any]:
        """Kind, model, batch and the file's content hash."""
        return {"kind": "model", "model": self.model, "batch": self.batch, "content": self.content}

    def evaluate(self, design: Design) -> dict[str, Any]:
        """Compile and run the model on the design (quantized on int8 designs); the figures of the run."""
        from compiler.accel.sim_device import device_for_design
        from workbench.model_run import run_model

        result, run = run_model(self.model, device_for_design(design), batch=self.batch)
        if not result.matches_reference:
            raise UserError(f"{self.name}: the SIM output differs from {result.reference} "
                            f"(max error {result.max_abs_error_vs_reference:.3g})")
        return _figures_of_run(design, self.name, run)


@dataclass(frozen=True)
class OnnxFile:
    """An ONNX model file (seeded random inputs) compiled for each design point's SIM device."""

    name: str
    path: str
    content: str

    def key(self) -> dict[str, Any]:
        """Kind and the file's content hash (its path does not change the result)."""
        return {"kind": "onnx", "content": self.content}

    def evaluate(self, design: Design) -> dict[str, Any]:
        """Import and run the model on the design; the figures of the run."""
        from compiler.accel.runtime import sim_run
        from compiler.accel.sim_device import device_for_design
        from compiler.onnx import load_onnx
        from workbench.onnx_run import random_inputs

        device = device_for_design(design)
        model = load_onnx(self.path, device=device)
        with sim_run(device) as run:
            model.run(random_inputs(model, {}))
        return _figures_of_run(design, self.name, run)


def _model_file(value: Any, key: str, suffix: str, base_dir: Path) -> Path:
    if not isinstance(value, str) or not value.lower().endswith(suffix):
        raise WorkloadSpecError(f"{key} = {value!r}: expected a {suffix} file")
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    if not path.is_file():
        raise WorkloadSpecError(f"{key} = {value!r}: no such file ({path})")
    return path


def _model(table: dict[str, Any], base_dir: Path) -> SweepWorkload:
    from compiler.models import BUILTIN

    model, batch = table["model"], table.get("batch")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 65_536):
        raise WorkloadSpecError(f"batch = {batch!r}: must be an integer from 1 to 65,536", key="batch")
    if isinstance(model, str) and model in BUILTIN:
        spec, content = model, ""
    else:
        if not isinstance(model, str) or not model.endswith(".py"):
            raise WorkloadSpecError(f"model = {model!r}: expected one of {', '.join(BUILTIN)} or a .py file "
                                    "defining model()")
        path = _model_file(model, "model", ".py", base_dir)
        spec, content = str(path), _file_sha256(path)
    name = str(table.get("name", model + (f":{batch}" if batch else "")))
    return CompiledModel(name, spec, batch, content)


def _onnx(table: dict[str, Any], base_dir: Path) -> SweepWorkload:
    path = _model_file(table["onnx"], "onnx", ".onnx", base_dir)
    return OnnxFile(str(table.get("name", path.name)), str(path), _file_sha256(path))


# kind (the key that selects it in a [[workloads]] entry) -> (parser, the other keys it accepts)
WORKLOAD_KINDS: dict[str, tuple[Callable[[dict[str, Any], Path], SweepWorkload], tuple[str, ...]]] = {
    "gemm": (_gemm, ("name", "count")),
    "layers": (_layers, ("name",)),
    "model": (_model, ("name", "batch")),
    "onnx": (_onnx, ("name",)),
}


def evaluate_point(design: Design, workload: SweepWorkload) -> dict[str, Any]:
    """{status: ok, figures} or {status: error, error}: a point that fails is a result, not an exception."""
    try:
        return {"status": "ok", "figures": workload.evaluate(design), "error": None}
    except Exception as exc:  # any model failure is recorded with the point and the sweep goes on
        return {"status": "error", "figures": None, "error": f"{type(exc).__name__}: {exc}"}
