"""`workbench run model.onnx`: an imported ONNX model on a device, with random or given inputs, its outputs,
timing and (on SIM) the simulated cycles and energy."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isa.errors import UserError


@dataclass
class OnnxRun:
    """What one run of an ONNX model did: outputs summary, timings and the simulated figures on SIM."""

    model: str
    device: str
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, np.ndarray] = field(repr=False)
    load_seconds: float = 0.0
    first_call_seconds: float = 0.0
    call_seconds: float = 0.0
    sim: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per output: shape, dtype, min, max, mean (and argmax of a 2-d output's first row)."""
        out = {}
        for name, a in self.outputs.items():
            s: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
            if a.size and a.dtype.kind in "biuf":
                f = a.astype(np.float64)
                s.update(min=float(f.min()), max=float(f.max()), mean=float(f.mean()))
            out[name] = s
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serializable dict."""
        return {"model": self.model, "device": self.device, "inputs": self.inputs, "outputs": self.summary(),
                "load_seconds": self.load_seconds, "first_call_seconds": self.first_call_seconds,
                "call_seconds": self.call_seconds, "sim": self.sim, "energy": self.energy}


def parse_inputs(specs: list[str] | None) -> dict[str, np.ndarray]:
    """`name=file.npy` pairs read into arrays, or UserError naming the bad one."""
    feeds = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--input {spec!r}: give name=file.npy")
        p = Path(path)
        if not p.is_file():
            raise UserError(f"--input {name}: file {path} does not exist")
        try:
            feeds[name] = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"--input {name}: {path} is not a .npy array ({e})") from None
        if feeds[name].dtype.kind not in "biuf":  # strings, dates, complex: nothing an ONNX input here takes
            raise UserError(f"--input {name}: {path} holds {feeds[name].dtype} values; save numbers (bool, int or "
                            "float) of the model input's shape")
    return feeds


def random_inputs(model, given: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs for the model's inputs not given, from their declared shapes and dtypes."""
    rng = np.random.default_rng(seed)
    feeds = dict(given)
    for name, shape, dt in model.input_specs():
        if name in feeds:
            continue
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise UserError(f"input {name!r} has dynamic dims {shape}: give it with --input {name}=file.npy")
        if dt.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[name] = rng.random(shape) < 0.5
        else:
            feeds[name] = rng.integers(0, 10, shape).astype(dt)
    return feeds


def run_onnx(path: str, device: str, input_specs: list[str] | None = None, out_dir: str | None = None) -> OnnxRun:
    """Load path, run it cold and then warm (the fourth call, which replays the recorded kernels) on device,
    and (with out_dir) save each output as .npy."""
    from compiler import Device
    from compiler.onnx import load_onnx

    if not Path(path).is_file():
        raise UserError(f"{path}: no such ONNX file")
    device = Device.canonicalize(device)
    t0 = time.perf_counter()
    model = load_onnx(path, device=device)
    load_s = time.perf_counter() - t0
    feeds = random_inputs(model, parse_inputs(input_specs))
    sim, energy = None, None
    t0 = time.perf_counter()
    if device.startswith("SIM"):
        from compiler.accel.runtime import design_of, sim_run

        with sim_run(device) as run:
            outs = model.run(feeds)
        first = time.perf_counter() - t0
        sim = run.to_json()
        if run.cycles:
            from workbench.design_models import design_run_power

            energy = design_run_power(design_of(device), run.counters, run.seconds, 2.0 * run.macs).to_json()
        warm = first
    else:
        outs = model.run(feeds)
        first = time.perf_counter() - t0
        for _ in range(2):  # the calls that record the kernels: the warm call timed next replays them
            model.run(feeds)
        t0 = time.perf_counter()
        outs = model.run(feeds)
        warm = time.perf_counter() - t0
    result = OnnxRun(path, device, {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in feeds.items()},
                     outs, load_s, first, warm, sim, energy)
    if out_dir:
        save_outputs(outs, out_dir)
    return result


def save_outputs(outs: dict[str, np.ndarray], out_dir: str) -> list[Path]:
    """Each output as DIR/<name>.npy (names made file-safe), written whole through a temporary file."""
    from workbench.outputs import check_output_folder, staged_files

    names = {k: re.sub(r"[^A-Za-z0-9_.-]", "_", k) + ".npy" for k in outs}
    folder = check_output_folder(out_dir, list(names.values()))
    targets = [folder / n for n in names.values()]
    with staged_files(targets) as temps:
        for tmp, arr in zip(temps, outs.values(), strict=True):
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)
    return targets
