"""Runtime behaviour: devices, the on-disk program cache, WB_DEBUG output, WB_SEARCH, nn layers."""

import numpy as np
import pytest

from compiler import Device, DeviceError, Tensor
from compiler.interpreter import evaluate

HAS_CL = "CL" in Device.available()
needs_cl = pytest.mark.skipif(not HAS_CL, reason="no OpenCL device")


def test_device_names():
    assert Device.canonicalize("ref") == "REF"
    assert Device.available()[0] == "REF"
    if HAS_CL:
        assert Device.canonicalize("cl:0") == "CL"
    with pytest.raises(DeviceError, match="available"):
        Device.canonicalize("CL:99")
    assert Device.default() in Device.available() and Device.DEFAULT == Device.default()


@needs_cl
def test_program_cache_survives_corrupt_entries(tmp_path, monkeypatch):
    from compiler import program_cache
    from compiler.runtime_opencl import CLDevice

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    # the binaries a driver without a cache of its own gets kept (PoCL keeps its own: forced on here)
    src = "__kernel void add1(__global float* a) { a[get_global_id(0)] += 1.0f; }"
    first = CLDevice(0)
    first.cache_binaries = True
    first.compile(src, "add1")
    entries = list((tmp_path / "cl").iterdir())
    assert len(entries) == 1 and entries[0].stat().st_size > 0
    entries[0].write_bytes(b"garbage, not a binary")
    fresh = CLDevice(0)  # a new in-memory cache: must read the disk entry, find it corrupt, rebuild
    fresh.cache_binaries = True
    kernel = fresh.compile(src, "add1")
    buf = fresh.alloc(4, Tensor([0.0]).dtype)
    buf.copyin(np.zeros(4, np.float32))
    fresh.launch(kernel, (4,), None, [buf], wait=True)
    assert buf.numpy().tolist() == [1.0] * 4
    assert entries[0].read_bytes() != b"garbage, not a binary"
    assert program_cache.read("cl", entries[0].name) is not None


@needs_cl
def test_debug_output(capsys, monkeypatch):
    monkeypatch.setenv("WB_DEBUG", "4")
    x = Tensor(np.arange(8, dtype=np.float32), device="CL")
    (x * 3 + 1).realize()
    out = capsys.readouterr().out
    assert "schedule: 1 kernels" in out and "GFLOP/s" in out and "GB/s" in out
    assert "__kernel void E_8" in out and "IR E_8" in out


@needs_cl
def test_search_caches_winner(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WB_SEARCH", "1")
    a = np.arange(64, dtype=np.float32)
    out = (Tensor(a, device="CL") * 2).exp2()
    np.testing.assert_allclose(out.numpy(), np.exp2(a * 2), rtol=1e-5)
    assert len(list((tmp_path / "search").iterdir())) == 1
    from compiler.optimizer import search

    k = (Tensor(a, device="CL") * 2).exp2().schedule()[0]
    assert search(k, None) is not None  # second time: read from the cache, no timing


@pytest.mark.parametrize("dev", ["REF"] + (["CL"] if HAS_CL else []))
def test_gpt2_block_matches_reference(dev):
    from compiler.nn import GPT2Block

    blk = GPT2Block(d_model=32, n_heads=4, d_hidden=64, device=dev, seed=3)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 8, 32)).astype(np.float32), device=dev)
    y = blk(x)
    ref = evaluate(y.node)
    out = y.numpy()
    assert out.shape == (2, 8, 32)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    # causality: changing the last token leaves earlier outputs alone
    x2 = x.numpy()
    x2[:, -1] += 1.0
    out2 = blk(Tensor(x2, device=dev)).numpy()
    np.testing.assert_allclose(out2[:, :-1], out[:, :-1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(out2[:, -1], out[:, -1])


def test_nn_layers_against_numpy():
    from compiler.nn import Embedding, LayerNorm, Linear

    lin = Linear(6, 4, device="REF", seed=1)
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(lin(Tensor(x, device="REF")).numpy(), x @ lin.weight.numpy().T, rtol=1e-5)
    ln = LayerNorm(6, device="REF")
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(Tensor(x, device="REF")).numpy(), ref, rtol=1e-4, atol=1e-5)
    emb = Embedding(10, 3, device="REF")
    idx = np.array([[4, 0, 9]], np.int32)
    np.testing.assert_allclose(emb(Tensor(idx, device="REF")).numpy(), emb.weight.numpy()[idx])
    assert len(lin.parameters()) == 2


@needs_cl
def test_freed_results_return_their_memory():
    from compiler.runtime_opencl import get_cl_device

    a = Tensor(np.ones(12345, np.float32), device="CL")
    for _ in range(2):
        r = (a * 3 + 1).realize()
        assert r.numpy()[0] == 4.0
        del r  # no reference cycle may keep the result alive: its buffer goes back to the pool
    assert get_cl_device(0).free_buffers.get(12345 * 4)


def test_pocl_workers_are_pinned_only_where_each_has_its_cpu():
    # PoCL pins worker i to CPU i: only when every such CPU is the process's to use
    from compiler.opencl_devices import pocl_can_pin

    assert pocl_can_pin({}, {0, 1}, 2)
    assert not pocl_can_pin({}, {0, 1, 2, 3}, 64)  # a container with 4 of 64 CPUs: 64 workers
    assert pocl_can_pin({"POCL_MAX_PTHREAD_COUNT": "2"}, {0, 1, 2, 3}, 64)
    assert not pocl_can_pin({"POCL_MAX_PTHREAD_COUNT": "1"}, {5}, 64)  # taskset -c 5: CPU 0 is not ours
    assert not pocl_can_pin({"POCL_CPU_MAX_CU_COUNT": "8", "POCL_MAX_PTHREAD_COUNT": "2"}, {0, 1, 2, 3}, 4)
    assert not pocl_can_pin({}, None, 2)  # no CPU affinity on this OS


@needs_cl
@pytest.mark.parametrize("given", [None, "0"])
def test_pocl_affinity_is_set_unless_the_user_chose(given):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "POCL_AFFINITY"}
    if given is not None:
        env["POCL_AFFINITY"] = given
    code = ("import os; from compiler import Tensor; from compiler.opencl_devices import pocl_can_pin, allowed_cpus;"
            "(Tensor([1.0], device='CL') + 1).numpy();"
            "print(os.environ.get('POCL_AFFINITY'), pocl_can_pin(os.environ, allowed_cpus(), os.cpu_count()))")
    got, can = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.split()
    assert got == (given if given is not None else ("1" if can == "True" else "None"))


def test_switches_read_what_os_environ_holds(monkeypatch):
    """compiler.switches.switch is os.environ.get at a tenth of the cost: values set, changed and removed
    through os.environ (as monkeypatch and users' exports do) are seen at once, defaults apply when unset."""
    import os

    from compiler.switches import switch

    monkeypatch.delenv("WB_TEST_SWITCH", raising=False)
    assert switch("WB_TEST_SWITCH") is None and switch("WB_TEST_SWITCH", "d") == "d"
    monkeypatch.setenv("WB_TEST_SWITCH", "1")
    assert switch("WB_TEST_SWITCH") == "1" == os.environ.get("WB_TEST_SWITCH")
    os.environ["WB_TEST_SWITCH"] = "é"  # a value as the locale encodes it, decoded back
    assert switch("WB_TEST_SWITCH", "d") == "é"
    monkeypatch.delenv("WB_TEST_SWITCH")
    assert switch("WB_TEST_SWITCH", "d") == "d"
    assert switch("PATH") == os.environ.get("PATH")
