"""One isa program per run of accelerator kernels ("graph" mode) against one program per kernel ("kernel" mode)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Tensor, models
from compiler.accel.runtime import design_of, program_mode, sim_run
from compiler.errors import DeviceError
from compiler.quantize import quantize
from isa.functional import run as functional_run
from sim.simulator import simulate


def _replay_checks(run) -> int:
    """Replay each kept program on the simulator with values (races and deadlocks raise) and on the functional
    model: the same final DRAM, and every kernel's result where the program stores it. Returns the cycles."""
    cycles = 0
    for (design, program, image), expected in zip(run.programs, run.expected_results, strict=True):
        res = simulate(design, program, image, values=True)
        dram = functional_run(design, program, image).dram
        assert np.array_equal(res.state.dram, dram)
        for kernel, addr, want in expected:
            assert np.array_equal(dram[addr:addr + want.size], want), kernel
        cycles += res.cycles
    return cycles


def _run(model, design: str, mode: str, keep: bool = False):
    dev = f"SIM:{design}"
    x = model.sample_input()
    graph = model if design_of(dev).is_float else quantize(model, x)
    xin = x if graph is model else graph.quantize_input(x)
    with sim_run(dev, programs=mode, keep_programs=keep) as run:
        out = graph(Tensor(xin, device=dev)).numpy()
    return out, run


@pytest.mark.parametrize("design", ["small-int8-8x8", "datacenter-bf16-128x128"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_whole_graph_program_is_no_slower_and_gives_the_same_values(name, design):
    model = models.mlp(batch=8, d_in=64, d_hidden=48, d_out=10) if name == "mlp" else models.cnn(batch=2)
    got_k, per_kernel = _run(model, design, "kernel")
    got_g, graph = _run(model, design, "graph")
    assert np.array_equal(got_g, got_k)  # same lowering, values from the functional model: bit-identical
    assert graph.host_ops == [] and len(graph.graph_programs) == 1 and per_kernel.graph_programs == []
    assert 0 < graph.cycles <= per_kernel.cycles  # the single program overlaps neighbouring kernels
    prog = graph.graph_programs[0]
    assert prog.kernels == [k.name for k in graph.kernels] and prog.ends_at == "end of run"
    # totals come from the one program; per-kernel figures are spans inside it (they may overlap)
    assert graph.macs == per_kernel.macs and graph.counters["macs_" + design_of(f"SIM:{design}").matrix.input_dtype] \
        == per_kernel.counters["macs_" + design_of(f"SIM:{design}").matrix.input_dtype]
    starts = [k.start_cycle for k in graph.kernels]
    assert starts == sorted(starts) and all(0 < k.cycles <= graph.cycles for k in graph.kernels)
    assert all(k.program == 0 and k.units["matrix"]["busy"] + k.units["vector"]["busy"] > 0 for k in graph.kernels)
    assert graph.to_json()["program_mode"] == "graph" and graph.to_json()["programs"][0]["cycles"] == graph.cycles


def test_the_single_program_computes_the_model_on_the_simulator_and_the_functional_model():
    """The kept program is one isa program that the simulator accepts with values (no race, no deadlock), whose
    final DRAM equals the functional model's and holds every kernel's result: the stitched tokens order every
    dependency, and where the second GEMM reads the first one's stores directly, it reads the right bytes."""
    model = models.mlp(batch=4, d_in=12, d_hidden=10, d_out=6)
    got, run = _run(model, "tiny-int8-4x4", "graph", keep=True)
    assert len(run.programs) == 1
    assert _replay_checks(run) == run.cycles


def test_a_host_op_splits_the_program():
    dev = "SIM:tiny-int8-4x4"
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (6, 10)).astype(np.int8)
    b = rng.integers(-128, 128, (10, 7)).astype(np.int8)
    outs = {}
    for mode in ("graph", "kernel"):
        with sim_run(dev, programs=mode) as run:
            x = (Tensor(a, device=dev) @ Tensor(b, device=dev)).realize()
            x.float().sqrt().realize()  # no square root on an int8 design: on the host
            z = (x * 3).realize()
            outs[mode] = ((z + x).numpy(), run)
    (g, graph), (k, per_kernel) = outs["graph"], outs["kernel"]
    assert np.array_equal(g, k) and [h.kernel for h in graph.host_ops] == [h.kernel for h in per_kernel.host_ops]
    assert [p.ends_at.split()[0] for p in graph.graph_programs] == ["host", "end"]
    assert [len(p.kernels) for p in graph.graph_programs] == [1, 2]
    assert [k.program for k in graph.kernels] == [0, None, 1, 1]
    assert graph.cycles <= per_kernel.cycles


def test_program_mode_switch(monkeypatch):
    monkeypatch.setenv("WB_SIM_PROGRAMS", "kernel")
    assert program_mode() == "kernel" and program_mode("graph") == "graph"
    monkeypatch.setenv("WB_SIM_PROGRAMS", "layer")
    with pytest.raises(DeviceError, match="WB_SIM_PROGRAMS.*graph, kernel"):  # a one-line error in the CLI
        program_mode()


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_chain_of_gemm_and_vector_kernels_stitches_on_both_dataflows(tmp_path, dataflow):
    """GEMM -> vector -> GEMM (fresh A) -> GEMM with both operands fresh: the boundaries the stitching
    distinguishes (previous kernel on the matrix or the vector unit, fresh A or B) in one program."""
    from isa.design import shipped_designs

    text = shipped_designs()["tiny-int8-4x4"].read_text().replace('dataflow = "os"', f'dataflow = "{dataflow}"')
    path = tmp_path / f"tiny-{dataflow}.toml"
    path.write_text(text)
    dev = f"SIM:{path}"
    rng = np.random.default_rng(3)
    a, b = rng.integers(-1, 2, (9, 10)).astype(np.int8), rng.integers(-1, 2, (10, 12)).astype(np.int8)
    c = rng.integers(0, 2, (12, 7)).astype(np.int8)
    outs = {}
    for mode in ("graph", "kernel"):
        with sim_run(dev, programs=mode, keep_programs=mode == "graph") as run:
            h = (Tensor(a, device=dev) @ Tensor(b, device=dev)).realize()  # int32 holding values in [-10, 10]
            v = (h - 1).realize()
            h2 = (v @ Tensor(c, device=dev)).realize()
            h3 = (h2.T @ v).numpy()
        outs[mode] = (h3, run)
    (g, graph), (k, per_kernel) = outs["graph"], outs["kernel"]
    ref = (a.astype(np.int64) @ b - 1) @ c
    assert np.array_equal(g, k) and np.array_equal(g, ref.T @ (a.astype(np.int64) @ b - 1))
    assert graph.host_ops == [] and len(graph.graph_programs) == 1 and len(graph.kernels) == 4
    assert graph.cycles <= per_kernel.cycles
    assert _replay_checks(graph) == graph.cycles


def _chain(dev: str, seed: int, m: int, k: int, steps: list[tuple[int, int]]):
    """A chain of realized kernels: clip (vector) then x @ W or x @ x.T (GEMM, fresh operands), or x * 2 + 1."""
    rng = np.random.default_rng(seed)
    y = Tensor(rng.integers(-3, 4, (m, k)).astype(np.int32), device=dev)  # int8 values in int32 (a clip on int8 is host)
    for op, n in steps:
        if op == 2:
            y = (y * 2 + 1).realize()
            continue
        y = y.maximum(-5).minimum(5).realize()  # int8-valued again, so the next GEMM takes it
        if op == 0:
            w = rng.integers(-1, 2, (y.shape[1], n)).astype(np.int8)
            y = (y @ Tensor(w, device=dev)).realize()
        else:
            y = (y @ y.T).realize()
    return y.numpy()


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), m=st.integers(1, 9), k=st.integers(1, 9),
       steps=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 9)), min_size=1, max_size=4))
def test_random_kernel_chains_one_program_equals_one_per_kernel(tmp_path, dataflow, seed, m, k, steps):
    from isa.design import shipped_designs

    path = tmp_path / f"tiny-{dataflow}.toml"
    if not path.exists():
        path.write_text(shipped_designs()["tiny-int8-4x4"].read_text().replace('dataflow = "os"',
                                                                              f'dataflow = "{dataflow}"'))
    dev = f"SIM:{path}"
    with sim_run(dev, programs="kernel") as per_kernel:
        want = _chain(dev, seed, m, k, steps)
    with sim_run(dev, programs="graph", keep_programs=True) as graph:
        got = _chain(dev, seed, m, k, steps)
    assert np.array_equal(got, want) and graph.host_ops == [] and len(graph.programs) == 1
    assert graph.cycles <= per_kernel.cycles
    _replay_checks(graph)


def test_kernel_counters_add_up_to_the_program():
    model = models.cnn(batch=1)
    _, run = _run(model, "edge-int8-16x16", "graph")
    for key, total in run.counters.items():
        assert sum(k.counters.get(key, 0) for k in run.kernels) == total, key
    assert sum(k.units["load"]["instructions"] for k in run.kernels) == run.units["load"]["instructions"]


def test_loads_of_an_earlier_kernels_output_wait_for_its_stores(monkeypatch):
    """The second Linear's activations come from the first's stores: its loads of them wait (weights go ahead).
    Treating them as independent (as if read from a buffer no kernel of the program wrote) would be faster."""
    from compiler.accel import graph_program

    model = models.mlp(batch=64, d_in=64, d_hidden=256, d_out=64)
    _, honest = _run(model, "datacenter-bf16-128x128", "graph")
    monkeypatch.setattr(graph_program.GraphCollector, "is_written", lambda self, buffer: False)
    _, optimistic = _run(model, "datacenter-bf16-128x128", "graph")
    assert optimistic.cycles < honest.cycles


def test_a_weight_stationary_gemm_reads_the_previous_gemms_stores_in_place(monkeypatch):
    """On a WS design the first Linear's int8 output, as stored, is the second one's A (row-major M x K): the
    second GEMM's loads read that DRAM region itself (its own copy is zeroed), so the race check orders them."""
    from compiler.accel import graph_program

    moved = []
    real = graph_program._retarget
    monkeypatch.setattr(graph_program, "_retarget", lambda *a: (moved.append(a[2:]), real(*a))[1])
    _, run = _run(models.mlp(batch=8, d_in=64, d_hidden=48, d_out=10), "edge-int8-16x16", "graph", keep=True)
    assert len(moved) == 1 and _replay_checks(run) == run.cycles
