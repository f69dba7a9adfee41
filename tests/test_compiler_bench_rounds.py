"""bench/compiler_bench.py's interleaved rounds: merged medians and per-round ratio ranges (no subprocess)."""

import os
import time

import pytest

from bench.compiler_bench import merge_rounds, summarize


def _rep(times: dict, load: float) -> dict:
    return {"available": True, "loadavg_start": [load], "errors": {},
            "results": [{"workload": w, "median_s": t, "min_s": t * 0.9, "times_s": [t], "flop": 2e9,
                         "gflops": 2.0 / t, "check": {"ok": True}} for w, t in times.items()]}


def test_rounds_merge_to_median_and_ratios_keep_their_range():
    rounds = [
        {"numpy": _rep({"conv2d": 2.0}, 1.0), "ours": _rep({"conv2d": 1.0}, 1.5)},
        {"numpy": _rep({"conv2d": 6.0}, 9.0), "ours": _rep({"conv2d": 2.0}, 8.0)},
        {"numpy": _rep({"conv2d": 4.0}, 4.0), "ours": _rep({"conv2d": 4.0}, 3.0)},
    ]
    merged = merge_rounds(rounds)
    rec = merged["ours"]["results"][0]
    assert rec["median_s"] == 2.0 and rec["round_medians_s"] == [1.0, 2.0, 4.0] and rec["min_s"] == 0.9
    assert merged["numpy"]["loadavg_range"] == [1.0, 9.0]
    (row,) = summarize(merged, {}, ["conv2d"], rounds)
    assert row["ours_vs_numpy"] == 2.0  # medians 4.0 / 2.0
    assert row["ranges"]["ours_vs_numpy"] == [1.0, 3.0]  # per round: 2.0, 3.0, 1.0
    assert row["ranges"]["ours_vs_torch"] is None  # no torch column


def test_threads_option_limits_every_column():
    """--threads N reaches BLAS, PyTorch (through the worker) and PoCL in each column's environment."""
    from types import SimpleNamespace

    from bench.compiler_bench import column_command

    args = SimpleNamespace(device="CL", quick=True, threads=1, numpy_threads=None, compiler_root=None,
                           tinygrad_jit=False, ours_jit=False)
    for column in ("numpy", "ours"):
        cmd, env, _ = column_command(column, args, [])
        assert cmd[cmd.index("--threads") + 1] == "1"
        assert env["OPENBLAS_NUM_THREADS"] == env["POCL_MAX_PTHREAD_COUNT"] == env["POCL_CPU_MAX_CU_COUNT"] == "1"
    cmd, _, _ = column_command("ours", SimpleNamespace(**{**vars(args), "threads": None}), [])
    assert "--threads" not in cmd


def test_ours_jit_option_runs_the_workload_under_compiler_jit():
    """--ours-jit reaches only the ours column, whose worker then replays the workload with compiler.jit."""
    from types import SimpleNamespace

    import numpy as np

    from bench import compiler_worker as cw
    from bench.compiler_bench import column_command

    args = SimpleNamespace(device="CL", quick=True, threads=None, numpy_threads=None, compiler_root=None,
                           tinygrad_jit=False, ours_jit=True)
    assert "--ours-jit" in column_command("ours", args, [])[0]
    assert "--ours-jit" not in column_command("numpy", args, [])[0]
    fw = cw.make_framework("ours", "REF", jit=False, ours_jit=True)
    assert fw.note.startswith("@jit")
    p = cw.sizes("elementwise", quick=True)
    ins = [fw.to_device(a[:4096]) for a in cw.make_inputs("elementwise", p)]
    f = fw.fn("elementwise", p)
    expect = cw.numpy_fn("elementwise", p)(*[a[:4096] for a in cw.make_inputs("elementwise", p)])
    for _ in range(3):  # the first call records, the later ones replay
        np.testing.assert_allclose(fw.to_numpy(fw.finish(f(*ins))), expect, rtol=1e-6)


def test_worker_checks_against_numpy_only_after_every_timing(monkeypatch):
    """The numpy reference runs after the timed calls: its BLAS threads spin for a while after a call and
    would slow the column being timed."""
    import numpy as np

    from bench import compiler_worker as cw

    events = []

    class Fake(cw.Framework):
        name = "fake"

        def fn(self, name, p):
            return lambda a, b: events.append("call") or (a @ b + (1.0 if name == "matmul_512" else 0.0))

    real = cw.numpy_fn
    monkeypatch.setattr(cw, "numpy_fn", lambda name, p: (events.append("reference"), real(name, p))[1])
    pending: list = []
    fw = Fake()
    recs = [cw.run_workload(fw, w, quick=True, runs=3, warmup=1, pending=pending)
            for w in ("matmul_1024", "matmul_512")]
    assert events == ["call"] * 10 and all("check" not in r for r in recs)
    cw.check_pending(fw, quick=True, pending=pending)
    assert events[10:] == ["reference", "reference"]
    assert recs[0]["check"]["ok"] and not recs[1]["check"]["ok"]  # the second fake is off by one
    assert isinstance(pending[0][1], np.ndarray)


def test_onnx_bench_blocks_start_with_an_untimed_call():
    from bench.onnx_bench import _interleaved

    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    out = _interleaved(fns, repeats=7, block=3)
    assert [len(v) for v in out.values()] == [7, 7]
    # blocks of 1 untimed + 3, 3 and 1 timed calls, alternating
    assert calls == ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4 + ["a"] * 2 + ["b"] * 2


def test_pocl_threads_timeline_lists_each_kernel_of_an_eager_call():
    """--timeline reports the host's part before the first launch and every kernel of the call, and puts
    pyopencl's enqueue back afterwards."""
    import pyopencl as cl

    from bench import pocl_threads

    enqueue = cl.enqueue_nd_range_kernel
    text = pocl_threads.timeline("softmax", calls=2, quick=True)
    assert cl.enqueue_nd_range_kernel is enqueue
    head, *kernels = text.splitlines()
    assert head.startswith("softmax, 2 eager calls") and "host before the first launch" in head
    assert len(kernels) >= 2 and all(line.rstrip().endswith(" ms") for line in kernels)


def test_eager_modes_alternates_the_switches_and_puts_them_back(monkeypatch, tmp_path):
    """bench.eager_modes sets each mode's switches for its blocks of calls, packed rebuilds happen only in
    the modes that allow them, and the environment is as it was afterwards."""
    import json

    from bench import eager_modes
    from compiler import graph_template

    monkeypatch.setenv("WB_LAUNCH_AHEAD", "0")
    monkeypatch.delenv("WB_COMPOSITE_MEMO", raising=False)
    packed = []
    replay = graph_template._replay_packed
    monkeypatch.setattr(graph_template, "_replay_packed",
                        lambda *a: (packed.append(os.environ.get("WB_COMPOSITE_MEMO")), replay(*a))[1])
    out = tmp_path / "modes.json"
    assert eager_modes.main(["--workload", "softmax", "--device", "CL", "--rounds", "2", "--calls", "1",
                             "--modes", "packed,unpacked,ahead", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["modes"]
    assert list(res) == ["packed", "unpacked", "ahead"] and all(len(r["wall"]) == 2 for r in res.values())
    assert packed and set(packed) == {None}  # only the packed mode rebuilt packed
    assert os.environ["WB_LAUNCH_AHEAD"] == "0" and "WB_COMPOSITE_MEMO" not in os.environ


@pytest.mark.parametrize(
    "module,argv,word",
    [
        ("bench.compiler_bench", ["--columns", "bogus"], "--columns"),
        ("bench.pocl_threads", ["--workload", "nope", "--timeline", "1"], "--workload"),
        ("bench.eager_modes", ["--modes", "fast"], "--modes"),
        ("bench.eager_modes", ["--device", "NOPE"], "--device"),
    ],
)
def test_an_unknown_column_or_workload_is_refused_before_any_run(capsys, module, argv, word):
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(argv)
    assert exc.value.code == 2 and word in capsys.readouterr().err


def test_worker_times_a_short_workload_for_at_least_min_time(monkeypatch):
    """A workload of a few milliseconds gets its median over every call of --min-time seconds, not over
    --runs calls alone; --runs still sets the least number, and MAX_RUNS the most."""
    from bench import compiler_worker as cw

    calls = []

    class Fake(cw.Framework):
        name = "fake"

        def fn(self, name, p):
            return lambda a: calls.append(time.perf_counter()) or time.sleep(0.002)

    rec = cw.run_workload(Fake(), "sum", quick=True, runs=5, warmup=0, min_time=0.1)
    assert len(rec["times_s"]) > 5 and sum(rec["times_s"]) >= 0.1  # 2 ms calls: more than --runs of them
    assert len(cw.run_workload(Fake(), "sum", quick=True, runs=5, warmup=0)["times_s"]) == 5
    monkeypatch.setattr(cw, "MAX_RUNS", 12)
    assert len(cw.run_workload(Fake(), "sum", quick=True, runs=5, warmup=0, min_time=60)["times_s"]) == 12
