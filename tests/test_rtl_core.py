"""The RTL core on Verilator (cocotb bench) against the functional model (values) and the simulator (cycles).

Every example program and a seeded set of random valid programs must give the functional model's final
DRAM byte for byte, the simulator's cycle count exactly, and the simulator's event counters.
"""
import numpy as np
import pytest

from isa.design import load_design
from rtl.programs import dram_image, example_programs, load_program
from rtl.toolchain import find_verilator
from workbench.rtl_agreement import run_on_rtl, valid_random_program
from workbench.rtl_sweep import sweep_design

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")]

# "+ws": the 4x4 design with a weight-stationary array (the shipped WS design is the 16x16 edge one).
TINY, SMALL, TINY_WS = "tiny-int8-4x4", "small-int8-8x8", "tiny-int8-4x4+ws"


def _check(res):
    assert res.cycles_match, res.mismatch
    assert res.values_match, res.mismatch
    assert res.counters_match, res.mismatch


@pytest.mark.parametrize("design", [TINY, SMALL])
@pytest.mark.parametrize("program", [p.name for p in example_programs()])
def test_example_program_agrees(design, program):
    d = load_design(design)
    path = next(p for p in example_programs() if p.name == program)
    _check(run_on_rtl(d, load_program(d, path), dram_image(d)))


@pytest.mark.parametrize("design,seed", [*((TINY, s) for s in range(12)), *((SMALL, s) for s in range(100, 106)),
                                         *((TINY_WS, s) for s in range(200, 208))])
def test_random_program_agrees(design, seed):
    d = sweep_design(design)
    prog, image = valid_random_program(d, seed)
    if d.matrix.dataflow == "ws" and seed == 200:  # the WS set must exercise weight preloads
        assert any(i.mnemonic == "gemm" and i.args["preload"] for i in prog)
    _check(run_on_rtl(d, prog, image))


@pytest.mark.parametrize("design,mnk,seed", [(TINY, (6, 5, 9), 7), (SMALL, (16, 12, 20), 7),
                                             (TINY_WS, (7, 6, 9), 8),
                                             (TINY, (1, 3, 9), 9)])  # M < ROWS, N < COLS: unpadded panels
def test_simulator_gemm_generator_program_agrees(design, mnk, seed):
    """The ISA engineer's double-buffered GEMM generator (compiler.accel.gemm_lowering), run on the RTL: C = A x B."""
    from compiler.accel.gemm_lowering import gemm_program

    d = sweep_design(design)
    m, n, k = mnk
    gp = gemm_program(d, m, n, k)
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k))
    b = rng.integers(-128, 128, (k, n))
    res = run_on_rtl(d, gp.program, gp.dram_image(a, b))
    _check(res)
    np.testing.assert_array_equal(gp.read_c(res.dram), a @ b)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(300, 303))
def test_random_program_agrees_edge_16x16_ws(seed):
    """The shipped 16x16 weight-stationary design (a long Verilator build: marked slow)."""
    d = load_design("edge-int8-16x16")
    prog, image = valid_random_program(d, seed)
    _check(run_on_rtl(d, prog, image))


def _directed_timing_programs(filename: str = "test_sim_timing.py"):
    """Every program the simulator's directed timing tests (tests/`filename`) simulate with the design's own
    overlap setting and real memory: captured by running those tests with a spy (property tests skipped)."""
    import importlib.util
    import inspect
    from pathlib import Path

    path = Path(__file__).with_name(filename)
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("_sim_timing_for_rtl", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    captured = []
    real = mod.simulate

    def spy(design, program, *args, **kw):
        if not kw.get("ideal_memory") and kw.get("overlap") in (None, design.matrix.overlap_tiles):
            captured.append((design, list(program)))
        return real(design, program, *args, **kw)

    mod.simulate = spy
    for name, fn in vars(mod).items():
        if not name.startswith("test_") or not callable(fn) or hasattr(fn, "hypothesis"):
            continue
        params = inspect.signature(fn).parameters
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        if marks:
            names = [n.strip() for n in marks[0].args[0].split(",")]
            for values in marks[0].args[1]:
                values = values if isinstance(values, (tuple, list)) else (values,)
                try:
                    fn(**dict(zip(names, values, strict=True)))
                except Exception:  # their assertions are theirs; we only want the programs
                    pass
        elif not params:
            try:
                fn()
            except Exception:
                pass
    return captured


def test_simulator_directed_timing_programs_agree():
    """The simulator engineer's hand-computed schedules (one per timing rule) give the same cycles on the RTL."""
    programs = _directed_timing_programs()
    assert len(programs) >= 8
    for design, program in programs:
        res = run_on_rtl(design, program)
        _check(res)
