"""On a CUDA GPU: every graph of the kernel corpus computes the reference interpreter's values on `CUDA`
with the programs the optimizer picks there (tensor-core and tiled GEMMs included), every GEMM template
candidate is right on ragged shapes, and a launch error is a clear DeviceError. Skipped, with the reason,
where CUDA is unavailable."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.device import gpu_count, unavailable_reason
from compiler.kernel_corpus import CORPUS, build, inputs

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def _needs_cuda():
    why = unavailable_reason("CUDA")
    if why or not gpu_count("CUDA"):
        pytest.skip(f"needs a CUDA GPU: {why}")


def _tolerance(name: str) -> dict:
    # float16 storage rounds every intermediate to 11 bits; fp32 GEMMs only reorder the sums
    return {"rtol": 2e-2, "atol": 2e-2} if "f16" in name or "half" in name else {"rtol": 1e-4, "atol": 1e-4}


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_values_on_cuda_match_ref(name):
    arrs = inputs(name)
    got = build(name, "CUDA", arrs).numpy()
    ref = build(name, "REF", arrs).numpy()
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), **_tolerance(name))


@pytest.mark.parametrize("template", ["tiled", "mma"])
def test_every_gemm_candidate_on_cuda(template):
    from compiler.backend import get_backend
    from compiler.kernel_ir import KernelOpts
    from compiler.optimizer import render_program
    from compiler.render_gemm_gpu import mma_candidates, tiled_candidates

    name = "matmul_odd" if template == "tiled" else "matmul_f16_odd"
    arrs = inputs(name)
    ref = build(name, "REF", arrs).numpy().astype(np.float64)
    t = build(name, "CUDA", arrs)
    (k,) = t.schedule()
    be = get_backend("CUDA")
    bufs = [be.alloc(k.out.size, k.out.dtype)] + [n.buffer for n in k.buffers[1:]]
    cands = tiled_candidates() if template == "tiled" else mma_candidates()
    for tile in cands:
        opts = KernelOpts(gpu_gemm=tile) if template == "tiled" else KernelOpts(mma_gemm=tile)
        be.run(render_program(k, opts), bufs, wait=True)
        got = bufs[0].numpy().reshape(ref.shape).astype(np.float64)
        np.testing.assert_allclose(got, ref, err_msg=f"{template} tile {tile}", **_tolerance(name))


def test_large_fp16_matmul_on_tensor_cores():
    from compiler import Tensor

    rng = np.random.default_rng(0)
    a = (rng.standard_normal((1024, 512)) * 0.1).astype(np.float16)
    b = (rng.standard_normal((512, 768)) * 0.1).astype(np.float16)
    t = Tensor(a, device="CUDA") @ Tensor(b, device="CUDA")
    from compiler.backend import program_for

    assert program_for(t.schedule()[0]).opts.mma_gemm is not None
    ref = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_allclose(t.numpy().astype(np.float32), ref, rtol=2e-2, atol=2e-2)


def test_a_bad_launch_is_a_device_error():
    from compiler.errors import DeviceError
    from compiler.runtime_cuda import get_cuda_device

    dev = get_cuda_device(0)
    fn = dev.compile('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', "k")
    with pytest.raises(DeviceError, match="launch of kernel k"):
        dev.launch(fn, (1 << 20,), (4096,), [dev.alloc(1, __import__("compiler").dtypes.float32)], name="k")


def test_search_on_cuda_times_the_gemm_templates_and_caches_the_winner(tmp_path, monkeypatch):
    from compiler import Tensor, optimizer

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WB_SEARCH", "1")
    monkeypatch.setattr(optimizer, "_PROGRAMS", {})
    rng = np.random.default_rng(1)
    a = rng.standard_normal((512, 384)).astype(np.float16)
    b = rng.standard_normal((384, 640)).astype(np.float16)
    t = Tensor(a, device="CUDA") @ Tensor(b, device="CUDA")
    np.testing.assert_allclose(t.numpy().astype(np.float32), a.astype(np.float32) @ b.astype(np.float32),
                               rtol=2e-2, atol=5e-2)
    assert len(list((tmp_path / "search").iterdir())) == 1
    k = (Tensor(a, device="CUDA") @ Tensor(b, device="CUDA")).schedule()[0]
    assert optimizer.search(k, None).mma_gemm is not None  # read back from the cache: a tensor-core tile
