"""`workbench measure`: run a workload on a real device and record measured TFLOPS, board power and TFLOPS/W.

Time is device time: the workload's kernels are scheduled once, then launched back to back with each launch
timed by the device (OpenCL profiling events, CUDA events), so host-side scheduling is not counted. Power
is the board power NVML reports (NVIDIA GPUs), sampled every 20 ms while the workload runs in a loop for at
least `POWER_WINDOW_S`; elsewhere it is "not available" with the reason. Results are plain JSON with the
device's identity, and `compare`/`estimate --measured FILE` show them as "measured" rows.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from dataclasses import asdict, dataclass

import ml_dtypes
import numpy as np

from workbench.errors import UsageError

POWER_WINDOW_S = 2.0  # NVML's power reading averages over about a second; run well past it
POWER_SAMPLE_S = 0.02
MAX_OPERAND_ELEMENTS = 2**31  # a GEMM operand larger than this does not fit any device's memory
MODELS = {"gpt2-block": "one GPT-2-small block forward (d_model 768, 12 heads, MLP 3072) on T tokens (default 128)"}


@dataclass
class Measurement:
    """One workload measured on one device."""

    workload: str
    dtype: str
    device: str
    device_name: str
    device_ident: str
    flops: float
    kernels: int
    seconds: float  # median device time of one pass over the workload's kernels
    seconds_min: float
    seconds_max: float
    repeats: int
    tflops: float
    power_w: float | None
    power_note: str
    tflops_per_w: float | None
    provenance: str = "measured"

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def _workload(spec: str, device: str, dtype: str):
    """(the Tensor to compute, its FLOP count) for a workload spec; UsageError for a bad one."""
    from compiler import Tensor

    rng = np.random.default_rng(0)
    npdt = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}[dtype]
    m = re.fullmatch(r"gemm:(\d+)x(\d+)x(\d+)", spec.strip(), flags=re.IGNORECASE)
    if m:
        mm, nn, kk = (int(x) for x in m.groups())
        if min(mm, nn, kk) < 1:
            raise UsageError(f"workload {spec!r}: M, N and K must be >= 1")
        if max(mm * kk, kk * nn, mm * nn) > MAX_OPERAND_ELEMENTS:
            raise UsageError(f"workload {spec!r}: an operand of more than {MAX_OPERAND_ELEMENTS} elements fits no "
                             "device's memory; use smaller M, N, K")
        a = Tensor((rng.standard_normal((mm, kk)) * 0.1).astype(npdt), device=device)
        b = Tensor((rng.standard_normal((kk, nn)) * 0.1).astype(npdt), device=device)
        return a @ b, 2.0 * mm * nn * kk
    m = re.fullmatch(r"gpt2-block(?::(\d+))?", spec.strip(), flags=re.IGNORECASE)
    if m:
        from compiler.nn import GPT2Block

        t = int(m.group(1) or 128)
        if not 1 <= t <= 65536:
            raise UsageError(f"workload {spec!r}: T (tokens) must be 1..65536")
        d, h = 768, 3072
        x = Tensor((rng.standard_normal((1, t, d)) * 0.5).astype(np.float32), device=device)
        block = GPT2Block(d, 12, h, device=device)
        # the four attention projections, the MLP's two, and attention's two batched matmuls (2 FLOP a MAC)
        flops = 2.0 * t * (4 * d * d + 2 * d * h) + 2 * 2.0 * t * t * d
        return block(x), flops
    raise UsageError(
        f"workload {spec!r}: expected gemm:MxNxK (e.g. gemm:8192x8192x8192) or a built-in model: "
        + ", ".join(f"{k}[:T] ({v})" for k, v in MODELS.items())
    )


class KernelRunner:
    """The workload's kernels with their programs and buffers, run back to back."""

    def __init__(self, out, device: str):
        from compiler.backend import get_backend

        self.kernels = out.schedule()
        self.backend = get_backend(device)
        self.steps = []
        made: dict[int, object] = {}
        for k in self.kernels:
            prg = self.backend.program(k)
            buf = self.backend.alloc(k.out.size, k.out.dtype)
            made[k.out.id] = buf
            ins = [made.get(n.id) or n.buffer for n in k.buffers[1:]]
            self.steps.append((prg, [buf] + ins))

    def run(self) -> float:
        """Device seconds of one pass over every kernel."""
        return sum(self.backend.run(prg, bufs, wait=True) or 0.0 for prg, bufs in self.steps)


def _nvml_handle(device: str):
    """The NVML handle of a CUDA device (matched by PCI bus id), or a reason string why there is none."""
    if not device.startswith("CUDA"):
        return "board power is read through NVML, which covers NVIDIA GPUs only; " f"{device} is not a CUDA device"
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed (pip install 'petaflop-workbench[cuda]')"
    try:
        pynvml.nvmlInit()
        from compiler.device import gpu_index
        from compiler.runtime_cuda import get_cuda_device

        dev = get_cuda_device(gpu_index(device))
        bus = dev.drv.cuDeviceGetPCIBusId(64, dev.handle)[1].split(b"\0")[0].decode()
        return pynvml.nvmlDeviceGetHandleByPciBusId(bus)
    except Exception as exc:  # the reason is the report
        return f"NVML could not be used: {exc}"


def _sample_power(handle, stop: threading.Event, out: list) -> None:
    import pynvml

    while not stop.is_set():
        try:
            out.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)  # mW -> W
        except Exception:  # a failed read is a missing sample, not a failed measurement
            pass
        time.sleep(POWER_SAMPLE_S)


def measure(spec: str, device: str | None = None, dtype: str = "float32", repeats: int = 10) -> Measurement:
    """Measure workload spec on device (default: the default device)."""
    from compiler.device import canonicalize, describe

    device = canonicalize(device)
    if device == "REF":
        raise UsageError("--device REF is the numpy reference interpreter; measure a real device (CL, CUDA, HIP)")
    if device.startswith("SIM"):  # nothing to time: the simulator's cycles are the figure
        raise UsageError(f"--device {device} is a simulated accelerator; measure a real device (CL, CUDA, HIP), "
                         f"or simulate it with `workbench estimate {device.partition(':')[2] or 'DESIGN'} "
                         f"--workload gemm:MxNxK`")
    out, flops = _workload(spec, device, dtype)
    runner = KernelRunner(out, device)
    runner.run()  # compile and warm up
    times = [runner.run() for _ in range(repeats)]
    handle = _nvml_handle(device)
    power, note = None, ""
    if isinstance(handle, str):
        note = f"not available: {handle}"
    else:
        samples: list[float] = []
        stop = threading.Event()
        th = threading.Thread(target=_sample_power, args=(handle, stop, samples), daemon=True)
        th.start()
        t_end = time.perf_counter() + POWER_WINDOW_S
        while time.perf_counter() < t_end:
            times.append(runner.run())
        stop.set()
        th.join()
        if samples:
            power = statistics.mean(samples)
            note = f"NVML board power, mean of {len(samples)} samples over {POWER_WINDOW_S:g}+ s of back-to-back runs"
        else:
            note = "not available: NVML returned no power samples"
    sec = statistics.median(times)
    tflops = flops / sec / 1e12
    ident = getattr(runner.backend.dev, "ident", device)
    return Measurement(
        spec, dtype, device, describe(device), ident, flops, len(runner.kernels), sec, min(times), max(times),
        len(times), tflops, power, note, tflops / power if power else None,
    )


def load_measurements(path: str) -> list[Measurement]:
    """Measurements from a JSON file written by `workbench measure --out` (one object or a list)."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"--measured {path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"--measured {path}: not JSON ({exc})") from None
    rows = data if isinstance(data, list) else [data]
    fields = set(Measurement.__dataclass_fields__)
    numbers = {"flops", "seconds", "seconds_min", "seconds_max", "tflops", "power_w", "tflops_per_w"}
    out = []
    for i, r in enumerate(rows):
        missing = sorted(fields - {"provenance"} - set(r)) if isinstance(r, dict) else ["everything"]
        if missing:
            raise UsageError(f"--measured {path}: entry {i} is not a `workbench measure` result (missing "
                             f"{', '.join(missing)})")
        bad = [k for k in sorted(numbers) if not (isinstance(r[k], int | float) or (r[k] is None and k in (
            "power_w", "tflops_per_w")))]
        if bad:
            raise UsageError(f"--measured {path}: entry {i} has non-numeric {', '.join(bad)}")
        out.append(Measurement(**{k: v for k, v in r.items() if k in fields}))
    return out
