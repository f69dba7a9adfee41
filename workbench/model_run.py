"""One compiled model on one device: values checked, and on SIM the simulated run with modelled energy.

On an int8 design the model is quantized first (`compiler.quantize`, calibrated on the sample input) and
the SIM output is compared bit for bit with the same int8 graph on REF; on a float design the float model
runs and is compared with REF within the input dtype's rounding. Accuracy against the float model is
always measured. Energy comes from the power model (`workbench.design_models.design_run_power`: the design's
static power and TDP cap, as `estimate` uses them) fed with the run's event counters, so the compiler never
imports the workbench.
"""

from __future__ import annotations

import importlib.util
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import UsageError

__all__ = ["ModelRun", "load_model", "run_model"]


@dataclass
class ModelRun:
    """A model's run on a device; `to_json()` is the CLI's --json output."""

    model: str
    device: str
    design: str | None
    precision: str  # "int8 (quantized: ...)" or "float32"
    matches_reference: bool
    reference: str  # what it was compared with
    max_abs_error_vs_reference: float
    accuracy: dict[str, Any]  # vs the float model: cosine, max error, top-1 agreement
    wall_seconds: float
    sim: dict[str, Any] | None = None  # SimRun.to_json() (simulated)
    energy: dict[str, Any] | None = None  # PowerResult.to_json() (modelled)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _raise_if_in(exc: Exception, path: Path, spec: str) -> None:
    """The user's model file raised in its own code: a one-line UsageError naming the file and line.

    A UsageError, or an exception raised inside other code (a bug of ours the model only reached), is left as it
    is (the latter keeps its traceback)."""
    if isinstance(exc, UsageError):
        return
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    if frames and Path(frames[-1].filename).resolve() == path.resolve():
        raise UsageError(f"{spec}:{frames[-1].lineno}: the model file raised {type(exc).__name__}: {exc}") from None


def load_model(spec: str, batch: int | None = None):
    """A built-in model by name (mlp, cnn, gpt2-block) or a Python file that defines `model()`."""
    from compiler import models

    if spec in models.BUILTIN:
        kw = {"batch": batch} if batch and spec != "gpt2-block" else {}
        if batch and spec == "gpt2-block":
            kw = {"t": batch}
        return models.build(spec, **kw)
    path = Path(spec)
    if path.suffix != ".py":
        raise UsageError(f"unknown model {spec!r}; built in: {', '.join(models.BUILTIN)}, or a .py file "
                         "that defines model()")
    if not path.is_file():
        raise UsageError(f"{spec}: model file not found")
    mod_spec = importlib.util.spec_from_file_location(f"_wb_model_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except SyntaxError as exc:  # also a file that is not UTF-8 text: Python reports that as a SyntaxError
        where = f"{spec}:{exc.lineno}" if exc.lineno else spec
        raise UsageError(f"{where}: not a Python model file: {exc.msg}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {spec}: {exc.strerror or exc}") from None
    except Exception as exc:
        _raise_if_in(exc, path, spec)
        raise
    if not hasattr(module, "model"):
        raise UsageError(f"{spec}: defines no model() function returning the model to run")
    try:
        model = module.model()
    except Exception as exc:
        _raise_if_in(exc, path, spec)
        raise
    if not hasattr(model, "sample_input"):
        raise UsageError(f"{spec}: model() must return a compiler.models.Sequential (it needs sample_input())")
    return model


def _accuracy(ref: np.ndarray, got: np.ndarray, classifier: bool) -> dict[str, Any]:
    f, q = ref.astype(np.float64).reshape(ref.shape[0], -1), got.astype(np.float64).reshape(ref.shape[0], -1)
    denom = np.linalg.norm(f) * np.linalg.norm(q)
    out = {"cosine": float(np.sum(f * q) / denom) if denom else 1.0, "max_abs_error": float(np.max(np.abs(f - q))),
           "relative_error": float(np.linalg.norm(f - q) / (np.linalg.norm(f) or 1.0))}
    if classifier:
        out["top1_agreement"] = float(np.mean(f.argmax(1) == q.argmax(1)))
    return out


def run_model(spec, device: str = "SIM", quantize: str = "auto", batch: int | None = None,
              trace: bool = False):
    """Run the model (a name, a .py file, or a compiler.models.Sequential) on device; returns (ModelRun, SimRun or None)."""
    from compiler import Device, Tensor
    from compiler.accel.runtime import design_of, sim_run
    from compiler.quantize import quantize as quantize_model

    model = load_model(spec, batch) if isinstance(spec, str) else spec
    device = Device.canonicalize(device)
    x = model.sample_input()
    float_ref = model(Tensor(x, device="REF")).numpy()
    design = design_of(device) if device.startswith("SIM") else None
    use_int8 = quantize in ("minmax", "percentile") or (quantize == "auto" and design is not None and not design.is_float)
    notes = []
    if use_int8:
        try:
            calib = model.sample_input(seed=2)  # calibrate on another batch than the one measured
            qm = quantize_model(model, calib, "minmax" if quantize == "auto" else quantize)
        except ValueError as exc:
            use_int8 = False
            notes.append(f"not quantized ({exc}); float ops on an int8 design run on the host")
    t0 = time.perf_counter()
    run = None
    ctx = sim_run(device, trace=trace) if design is not None else None
    if ctx is not None:
        run = ctx.__enter__()
    try:
        if use_int8:
            xq = qm.quantize_input(x)
            raw = qm(Tensor(xq, device=device)).numpy()
            got = qm.dequantize(raw)
        else:
            got = model(Tensor(x, device=device)).numpy()
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    wall = time.perf_counter() - t0
    if use_int8:
        ref_raw = qm(Tensor(xq, device="REF")).numpy()
        matches = bool(np.array_equal(raw, ref_raw))
        err = float(np.max(np.abs(raw.astype(np.int64) - ref_raw.astype(np.int64)))) if raw.size else 0.0
        precision, reference = f"int8 (quantized, {qm.method} calibration)", "the same int8 graph on REF (bit-exact)"
    else:
        err = float(np.max(np.abs(got - float_ref))) if got.size else 0.0
        if design is not None and design.is_float:
            eps = 2.0**-8 if design.matrix.input_dtype == "bf16" else 2.0**-11 if design.matrix.input_dtype == "fp16" else 1e-6
            matches = err <= 8 * eps * float(np.max(np.abs(float_ref)) or 1.0) + 1e-6
            reference = f"the float model on REF (within {design.matrix.input_dtype} operand rounding)"
        else:
            matches = bool(np.allclose(got, float_ref, rtol=1e-4, atol=1e-4))
            reference = "the float model on REF"
        precision = "float32"
    result = ModelRun(model.name, device, design.name if design else None, precision, matches, reference, err,
                      _accuracy(float_ref, got, getattr(model, "classifier", False)), wall, notes=notes)
    if run is not None:
        result.sim = run.to_json()
        if run.cycles:
            from workbench.design_models import design_run_power

            power = design_run_power(design, run.counters, run.seconds, 2.0 * run.macs)
            result.energy = power.to_json()
        if run.host_ops:
            result.notes.append(f"{len(run.host_ops)} kernel(s) ran on the host ({run.host_flops:,} FLOP): "
                                "see sim.host_ops; the accelerator figures exclude them")
    return result, run
