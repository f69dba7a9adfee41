"""Run SCALE-Sim 3.0 on one GEMM, in its own virtual environment, and parse its compute report.

SCALE-Sim needs numpy < 2.4, so it never shares an interpreter with the workbench. It runs in a
subprocess whose interpreter is `$SCALESIM_PYTHON` (default `/work/venv-scalesim/bin/python`);
make that environment with

    python3 -m venv /work/venv-scalesim
    /work/venv-scalesim/bin/pip install scalesim==3.0.0 "numpy<2.4"

How a GEMM reaches SCALE-Sim (read from scalesim 3.0.0, `topology_utils.load_arrays_gemm`):
a GEMM topology row is `name, M, N, K,` (the trailing comma matters: SCALE-Sim drops the last
field of each row). It becomes a convolution with an M x K ifmap, a 1 x K filter, 1 channel and
N filters, so M = output rows (ofmap pixels), N = output columns (filters), K = reduction (window).
Its spatio-temporal mapping (`calc_spatio_temporal_params`) is then

    os: Sr = M, Sc = N, T = K      (rows of the array hold output rows, columns hold output columns)
    ws: Sr = K, Sc = N, T = M      (rows hold the reduction, columns the output columns, M streams)

Ideal memory: the generated config runs in SCALE-Sim's `CALC` (estimate-bandwidth) interface mode
with 64 MiB SRAMs, so its read buffers never stall; the report's stall count is subtracted anyway
(`stall_free_cycles = total_cycles - stall_cycles`), so a stall could never leak into the figure.

Convention: SCALE-Sim's "Total Cycles" is the cycle *index* of the last output write (it starts
counting at 0), one less than a count of cycles. This module reports SCALE-Sim's raw numbers and
does not add the 1; a consumer that wants a count adds it in one place (see
tests/fixtures/scalesim/README.md).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SCALESIM_PYTHON = "/work/venv-scalesim/bin/python"
DATAFLOWS = ("os", "ws")
RUN_NAME = "wb_gemm"

_CONFIG_TEMPLATE = """\
[general]
run_name = {run_name}

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {sram_kb}
filtersramszkB = {sram_kb}
ofmapsramszkB = {sram_kb}
IfmapOffset = 0
FilterOffset = 100000000
OfmapOffset = 200000000
Dataflow = {dataflow}
Bandwidth = {bandwidth}
ReadRequestBuffer = 1024
WriteRequestBuffer = 1024

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = {bandwidth}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = {bandwidth}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = False
"""

# Runs inside the SCALE-Sim interpreter. save_disk_space=True: no per-cycle trace CSVs (SCALE-Sim's
# own `scale.py` always writes them, which costs far more disk and time than the simulation).
_DRIVER = """\
import json, sys
from importlib.metadata import version
from scalesim.scale_sim import scalesim
cfg, topo, layout, out = sys.argv[1:5]
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
             input_type_gemm=True)
s.run_scale(top_path=out)
print(json.dumps({"scalesim_version": version("scalesim")}))
"""


class ScaleSimUnavailable(RuntimeError):
    """SCALE-Sim's interpreter is missing or cannot import scalesim; the message says how to fix it."""


@dataclass(frozen=True)
class ScaleSimGemmResult:
    """SCALE-Sim's compute report for one GEMM, raw numbers as SCALE-Sim prints them."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    dataflow: str
    total_cycles: int  # "Total Cycles": index of the last output write (0-based), stalls included
    stall_cycles: int  # "Stall Cycles"
    total_cycles_incl_prefetch: int  # "Total Cycles (incl. prefetch)": DRAM model, not used here
    overall_util_pct: float
    mapping_efficiency_pct: float
    compute_util_pct: float
    scalesim_version: str
    wall_s: float  # wall-clock seconds of the SCALE-Sim subprocess

    @property
    def stall_free_cycles(self) -> int:
        """total_cycles - stall_cycles, still in SCALE-Sim's 0-based convention (a count is this + 1)."""
        return self.total_cycles - self.stall_cycles

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stall_free_cycles"] = self.stall_free_cycles
        return d


def scalesim_python() -> str:
    """The interpreter that has scalesim installed: `$SCALESIM_PYTHON` or the default venv."""
    return os.environ.get("SCALESIM_PYTHON", DEFAULT_SCALESIM_PYTHON)


def scalesim_unavailable_reason(python: str | None = None) -> str | None:
    """None when SCALE-Sim can run; otherwise one line saying why not and how to fix it."""
    python = python or scalesim_python()
    if not Path(python).exists():
        return (f"SCALE-Sim interpreter {python} not found; create it with `python3 -m venv "
                f"/work/venv-scalesim && /work/venv-scalesim/bin/pip install scalesim==3.0.0 'numpy<2.4'` "
                f"or point SCALESIM_PYTHON at one")
    try:
        proc = subprocess.run([python, "-c", "import scalesim.scale_sim"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot import scalesim ({last}); pip install scalesim==3.0.0 'numpy<2.4' there"
    return None


def write_inputs(tmp: Path, m: int, n: int, k: int, rows: int, cols: int,
                 dataflow: str) -> tuple[Path, Path, Path]:
    """Write config, GEMM topology and (empty) layout files for one run; returns their paths."""
    cfg = tmp / "gemm.cfg"
    cfg.write_text(_CONFIG_TEMPLATE.format(run_name=RUN_NAME, rows=rows, cols=cols, dataflow=dataflow,
                                           sram_kb=65536, bandwidth=4096))
    topo = tmp / "gemm_topology.csv"
    topo.write_text(f"Layer, M, N, K,\ngemm, {m}, {n}, {k},\n")
    layout = tmp / "gemm_layout.csv"  # SCALE-Sim opens a layout file even when custom layouts are off
    layout.write_text("Layer,\n")
    return cfg, topo, layout


def parse_compute_report(path: Path) -> dict:
    """The one data row of SCALE-Sim's COMPUTE_REPORT.csv, keyed by its (stripped) header names."""
    with open(path, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if any(c.strip() for c in r)]
    header, data = rows[0], rows[1:]
    if len(data) != 1:
        raise RuntimeError(f"{path}: expected one layer row, found {len(data)}")
    return {h: v for h, v in zip(header, data[0], strict=False) if h}


def run_gemm(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, *, timeout_s: float | None = 600,
             python: str | None = None) -> ScaleSimGemmResult:
    """Run SCALE-Sim on C[M,N] = A[M,K] @ B[K,N] on a rows x cols array; raises ScaleSimUnavailable."""
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    if min(m, n, k, rows, cols) < 1:
        raise ValueError("M, N, K, rows and cols must all be >= 1")
    python = python or scalesim_python()
    if not Path(python).exists():
        raise ScaleSimUnavailable(scalesim_unavailable_reason(python))
    with tempfile.TemporaryDirectory(prefix="wb_scalesim_") as tmpname:
        tmp = Path(tmpname)
        cfg, topo, layout = write_inputs(tmp, m, n, k, rows, cols, dataflow)
        out = tmp / "out"
        t0 = time.perf_counter()
        proc = subprocess.run([python, "-c", _DRIVER, str(cfg), str(topo), str(layout), str(out)],
                              capture_output=True, text=True, timeout=timeout_s, cwd=tmp)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            if "No module named 'scalesim'" in proc.stderr:
                raise ScaleSimUnavailable(scalesim_unavailable_reason(python))
            raise RuntimeError(f"SCALE-Sim failed (rc {proc.returncode}) on M={m} N={n} K={k} "
                               f"{rows}x{cols} {dataflow}:\n{proc.stderr[-2000:]}")
        meta = json.loads(proc.stdout.strip().splitlines()[-1])
        rep = parse_compute_report(out / RUN_NAME / "COMPUTE_REPORT.csv")
    return ScaleSimGemmResult(
        m=m, n=n, k=k, rows=rows, cols=cols, dataflow=dataflow,
        total_cycles=int(rep["Total Cycles"]), stall_cycles=int(rep["Stall Cycles"]),
        total_cycles_incl_prefetch=int(rep["Total Cycles (incl. prefetch)"]),
        overall_util_pct=float(rep["Overall Util %"]),
        mapping_efficiency_pct=float(rep["Mapping Efficiency %"]),
        compute_util_pct=float(rep["Compute Util %"]), scalesim_version=meta["scalesim_version"], wall_s=wall)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run SCALE-Sim 3.0 on one GEMM and print its compute report.")
    p.add_argument("m", type=int, help="output rows")
    p.add_argument("n", type=int, help="output columns")
    p.add_argument("k", type=int, help="reduction length")
    p.add_argument("--array", default="8x8", help="ROWSxCOLS of the systolic array (default 8x8)")
    p.add_argument("--dataflow", choices=DATAFLOWS, default="os")
    p.add_argument("--timeout", type=float, default=600, help="seconds before SCALE-Sim is stopped")
    args = p.parse_args(argv)
    rows, cols = (int(x) for x in args.array.lower().split("x"))
    reason = scalesim_unavailable_reason()
    if reason:
        print(f"SCALE-Sim: not available ({reason})")
        return 0
    res = run_gemm(args.m, args.n, args.k, rows, cols, args.dataflow, timeout_s=args.timeout)
    print(json.dumps(res.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
