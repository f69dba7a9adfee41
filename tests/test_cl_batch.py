"""Batched kernel builds: many sources in one OpenCL program (compiler/cl_batch.py, CLDevice.compile_many)."""

import numpy as np
import pytest

from compiler import Device, KernelBuildError, Tensor
from compiler.cl_batch import batch_source, split_source

needs_cl = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")

HELPER = "inline float twice(float x) {\n  return 2.0f * x;\n}\n"
# same kernel name, different bodies, a shared helper: what two fused kernels of one shape look like
SRCS = [
    (HELPER + "__kernel void E_4(__global float* a) { a[get_global_id(0)] = twice(a[get_global_id(0)]); }\n",
     "E_4"),
    (HELPER + "__kernel void E_4(__global float* a) { a[get_global_id(0)] += 1.0f; }\n", "E_4"),
    ("typedef float f1;\n" + HELPER + "__kernel void r_4(__global float* a) { a[get_global_id(0)] = (f1)3; }\n",
     "r_4"),
]


def test_batch_source_shares_helpers_and_renames_clashing_kernels():
    src, names = batch_source(SRCS)
    assert src.count("inline float twice") == 1 and src.count("typedef float f1") == 1
    assert names[0] == "E_4" and names[1] != "E_4" and names[2] == "r_4"
    assert f"__kernel void {names[1]}(" in src
    # a suffixed name that is some other kernel's own name already: still one name per kernel
    k = "__kernel void {}(__global float* a) {{ a[0] = {}; }}\n"
    clash = [(k.format("E_4", 1), "E_4"), (k.format("E_4_2", 2), "E_4_2"), (k.format("E_4", 3), "E_4")]
    assert len(set(batch_source(clash)[1])) == 3
    assert split_source("__kernel void a() {}\n__kernel void b() {}\n") is None  # two kernels: not batched
    assert batch_source([("__kernel void a() {}", "b")]) is None  # the entry point is not the kernel named


@needs_cl
def test_compile_many_builds_one_program_per_batch(tmp_path, monkeypatch):
    from compiler.runtime_opencl import CLDevice

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    dev = CLDevice(0)
    dev.compile_many(SRCS)
    assert len(dev.batches) == 1 and all(s in dev.programs for s, _ in SRCS)
    outs = []
    for src, _ in SRCS:
        buf = dev.alloc(4, Tensor([0.0]).dtype)
        buf.copyin(np.arange(4, dtype=np.float32))
        dev.launch(dev.programs[src], (4,), None, [buf], wait=True)
        outs.append(buf.numpy().tolist())
    assert outs == [[0, 2, 4, 6], [1, 2, 3, 4], [3, 3, 3, 3]]


@needs_cl
def test_batched_binaries_come_back_from_disk(tmp_path, monkeypatch):
    """Where our cache keeps binaries (drivers without their own cache), a batch is stored once and each
    kernel finds it; a corrupt batch entry is rebuilt."""
    from compiler.runtime_opencl import CLDevice

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    dev = CLDevice(0)
    dev.cache_binaries = True
    dev.compile_many(SRCS)
    assert len(list((tmp_path / "clbatch").iterdir())) == 1 and len(list((tmp_path / "clref").iterdir())) == 3
    again = CLDevice(0)
    again.cache_binaries = True
    assert again._cached(again._key(SRCS[1][0]), "E_4") is not None
    next((tmp_path / "clbatch").iterdir()).write_bytes(b"not a binary")
    third = CLDevice(0)
    third.cache_binaries = True
    third.compile_many(SRCS)  # the corrupt batch is dropped and built again
    assert all(s in third.programs for s, _ in SRCS)


@needs_cl
def test_a_broken_kernel_in_a_batch_is_named():
    from compiler.runtime_opencl import CLDevice

    broken = ("__kernel void bad(__global float* a) { a[0] = undefined_thing; }\n", "bad")
    with pytest.raises(KernelBuildError, match=r"(?s)kernel bad failed.*--- source ---"):
        CLDevice(0).compile_many([SRCS[0], broken])


def _guarded_sources():
    from compiler.cl_math import prelude

    body = "__kernel void {n}(__global float* a) {{ a[get_global_id(0)] = {e}; }}\n"
    exprs = [("m_4", "wb_fmax(a[get_global_id(0)], 1.0f)"), ("x_4", "wb_exp2(a[get_global_id(0)])"),
             ("b_4", "wb_fmax(wb_exp2(a[get_global_id(0)]), 0.5f)")]
    return [(prelude(body.format(n=n, e=e)) + body.format(n=n, e=e), n) for n, e in exprs]


def test_include_guarded_helpers_stay_whole_in_a_batch():
    """The renderer wraps each helper in #ifndef/#endif: a batch must keep each guard block whole (splitting
    it at its lines kept one `#endif` for all of them, so every batch failed and was rebuilt kernel by kernel)."""
    srcs = _guarded_sources()
    src, _ = batch_source(srcs)
    assert src.count("#ifndef") == src.count("#endif") == len({d for s, _ in srcs for d in split_source(s)[0]})


@needs_cl
def test_rendered_kernels_build_as_one_batch(tmp_path, monkeypatch):
    from compiler.runtime_opencl import CLDevice

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    dev = CLDevice(0)
    dev.compile_many(_guarded_sources())
    assert len(dev.batches) == 1  # built together, not one by one after a failed batch
