"""CUDA and HIP without a GPU: every kernel of the compiler's corpus renders in both dialects and compiles
(NVRTC for sm_80 and sm_90; clang from the ziglang wheel for gfx1100), the tensor-core GEMM's PTX holds
mma instructions, the GPU-shaped OpenCL GEMM computes the right values on PoCL, and CUDA without a driver
is a clear error."""

from __future__ import annotations

import re

import numpy as np
import pytest

from compiler import backend
from compiler.backend_opencl import OpenCLBackend
from compiler.device import canonicalize
from compiler.dialects import CUDA, HIP, OPENCL
from compiler.errors import DeviceError
from compiler.kernel_corpus import CORPUS, build, gpu_kernels, inputs, one_translation_unit
from compiler.kernel_ir import KernelOpts
from compiler.optimizer import gpu_gemm_opts, heuristic_opts, render_program
from compiler.render_gemm_gpu import mma_candidates, tiled_candidates

nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="the dev extra installs cuda-bindings")


def _kernels(family: str) -> list:
    """Every corpus kernel as scheduled, re-targeted at a GPU family (Kernel is plain data)."""
    return [k for name in CORPUS for k in gpu_kernels(name, family)]


def _programs(family: str) -> list:
    """The heuristic's program of each corpus kernel, plus every GEMM template candidate on two GEMMs."""
    ks = _kernels(family)
    prgs = [render_program(k, heuristic_opts(k, False)) for k in ks]
    f32 = next(k for k in ks if k.name == "r_130_97__70")  # matmul_odd: ragged tiles on every side
    prgs += [render_program(f32, KernelOpts(gpu_gemm=t)) for t in tiled_candidates()]
    if family == "CUDA":
        f16 = next(k for k in ks if k.name == "r_100_120__72")  # matmul_f16_odd
        prgs += [render_program(f16, KernelOpts(mma_gemm=t)) for t in mma_candidates()]
    return prgs


@pytest.fixture(scope="module")
def cuda_programs():
    return _programs("CUDA")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_corpus_kernel_compiles_with_nvrtc(cuda_programs, arch):
    from compiler.nvrtc import compile_cuda

    ptx = compile_cuda(one_translation_unit(CUDA, [p.src for p in cuda_programs]), "corpus", arch).decode()
    assert len(re.findall(r"^\.visible \.entry ", ptx, re.M)) == len(cuda_programs)
    assert f".target {arch}" in ptx


def _one(name: str, family: str):
    (k,) = [k for k in gpu_kernels(name, family) if k.reduce is not None]
    return k


def test_gemm_templates_are_chosen_for_gpus():
    assert heuristic_opts(_one("matmul_256", "CUDA"), False).gpu_gemm is not None  # fp32: tiled GEMM
    assert heuristic_opts(_one("matmul_f16", "CUDA"), False).mma_gemm is not None  # fp16: tensor cores
    assert heuristic_opts(_one("conv2d_f16", "CUDA"), False).mma_gemm is not None  # conv2d through it
    assert heuristic_opts(_one("matmul_f16", "HIP"), False).mma_gemm is None  # no tensor-core template on HIP
    assert heuristic_opts(_one("matmul_256", "HIP"), False).gpu_gemm is not None


def test_tensor_core_ptx_holds_mma_instructions(cuda_programs):
    from compiler.nvrtc import compile_cuda

    mma = [p for p in cuda_programs if p.opts.mma_gemm]
    assert len(mma) >= 5
    for p in mma[:2]:
        ptx = compile_cuda(p.src, p.name, "sm_80").decode()
        assert re.search(r"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32", ptx), p.name
    plain = next(p for p in cuda_programs if p.opts.gpu_gemm)
    assert "mma.sync" not in compile_cuda(plain.src, plain.name, "sm_80").decode()


def test_tensor_core_gemm_stages_plain_fp16_factors_with_16_byte_loads():
    from compiler.nvrtc import compile_cuda

    plain = render_program(_one("matmul_f16", "CUDA"), KernelOpts(mma_gemm=mma_candidates()[0]))
    body = plain.src[plain.src.index('extern "C"'):]
    # A along K into K-innermost rows, B along N into K-major rows; each copy in the prologue and in the loop
    assert body.count("wb_cp16(As+j*") == 2 and body.count("wb_cp16(Bs+kk*") == 2
    assert "wb_ldsm4(a0" in body and "wb_ldsm4t(b0" in body  # B's K-major slab is transposed by ldmatrix
    ptx = compile_cuda(plain.src, plain.name, "sm_80").decode()
    assert "cp.async.cg.shared.global" in ptx and "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in ptx
    conv = render_program(_one("conv2d_f16", "CUDA"), KernelOpts(mma_gemm=mma_candidates()[0]))
    assert "wb_cp16(As" not in conv.src  # a padded conv window goes through the per-element staging


def test_tensor_core_tiles_fit_in_the_shared_memory_they_launch_with():
    from compiler.render_gemm_gpu import MMA_SHARED_LIMIT, mma_shared_bytes

    k = _one("matmul_f16", "CUDA")
    for tile in mma_candidates():
        assert mma_shared_bytes(tile) <= MMA_SHARED_LIMIT, tile
        prg = render_program(k, KernelOpts(mma_gemm=tile))
        assert 0 < prg.shared_bytes <= mma_shared_bytes(tile), tile
        assert "extern __shared__" in prg.src
    legacy = render_program(k, KernelOpts(mma_gemm=(64, 64, 32, 2, 2)))  # a tile cached before stages existed
    assert mma_shared_bytes((64, 64, 32, 2, 2, 1)) < legacy.shared_bytes <= mma_shared_bytes((64, 64, 32, 2, 2, 2))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.float16])
@pytest.mark.parametrize("opts", [KernelOpts(), KernelOpts(group=32)])
def test_small_integer_reduces_compile_for_cuda(dtype, opts):
    """A reduce's accumulators are declared in the dialect's type names (uint8 max once declared `uchar`, an
    OpenCL name, which NVRTC rejected; found by the differential test on an H200)."""
    from compiler import Tensor
    from compiler.nvrtc import compile_cuda

    for t in (Tensor(np.arange(40, dtype=dtype).reshape(4, 10), device="REF").max(-1),
              Tensor(np.array([3], dtype=dtype), device="REF").max()):
        (k,) = t.schedule()
        k.device = "CUDA"
        prg = render_program(k, opts, CUDA)
        assert "uchar" not in prg.src
        compile_cuda(prg.src, prg.name, "sm_80")


def test_nvrtc_errors_name_the_kernel_and_carry_the_log():
    from compiler.errors import KernelBuildError
    from compiler.nvrtc import compile_cuda

    with pytest.raises(KernelBuildError, match=r"(?s)kernel broken for sm_80 failed.*undefined.*--- source ---"):
        compile_cuda('extern "C" __global__ void broken() { undefined_thing(); }', "broken", "sm_80")


@pytest.mark.slow
def test_every_corpus_kernel_compiles_for_amdgpu_gfx1100():
    pytest.importorskip("ziglang", reason="the dev extra installs ziglang")
    from compiler.amdgpu_offline import EM_AMDGPU, compile_hip_offline, elf_machine

    prgs = _programs("HIP")
    obj = compile_hip_offline(one_translation_unit(HIP, [p.src for p in prgs]), "corpus", "gfx1100")
    assert elf_machine(obj) == EM_AMDGPU
    for p in prgs:  # every kernel's symbol is in the code object
        assert p.name.encode() in obj


def test_cuda_without_a_driver_is_a_clear_error(monkeypatch):
    from compiler import device

    if device.gpu_count("CUDA"):
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(DeviceError, match=r"device 'cuda' is unavailable: CUDA: .*(driver|cuda-bindings)"):
        canonicalize("cuda")
    with pytest.raises(DeviceError, match=r"unavailable"):
        canonicalize("CUDA:1")


class _GpuShapedCL(OpenCLBackend):
    """PoCL running the OpenCL GEMM that a CL GPU device would get."""

    def program(self, k):
        return render_program(k, gpu_gemm_opts(k) or heuristic_opts(k, True), OPENCL)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["matmul_odd", "matmul_bias_gelu", "conv2d_stride"])
def test_gpu_shaped_opencl_gemm_values_on_pocl(name, monkeypatch):
    monkeypatch.setattr(backend, "_BACKENDS", {})
    monkeypatch.setitem(backend._FACTORIES, "CL", _GpuShapedCL)
    ks = build(name, "CL").schedule()
    assert any(gpu_gemm_opts(k) is not None for k in ks), "the corpus entry must exercise the GPU GEMM"
    srcs = [render_program(k, gpu_gemm_opts(k), OPENCL).src for k in ks if gpu_gemm_opts(k) is not None]
    # aligned plain factors move in float4 loads (A scattered along K, B stored whole); ragged ones (K=70,
    # K=75) and conv windows do not
    assert any("float4 v" in src for src in srcs) == (name == "matmul_bias_gelu")
    arrs = inputs(name)
    got = build(name, "CL", arrs).numpy()
    ref = build(name, "REF", arrs).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
