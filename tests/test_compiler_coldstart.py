"""Cold start: rendered programs are kept on disk, and a schedule's kernels are built in parallel."""

import numpy as np
import pytest

from compiler import Device, Tensor, optimizer

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")


def test_rendered_programs_come_back_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(optimizer, "_PROGRAMS", {})
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    f = lambda: (Tensor(a, device="CL").exp2().sum(1) * 0.5).numpy()
    first = f()
    stored = list((tmp_path / "programs").iterdir())
    assert len(stored) == 1
    monkeypatch.setattr(optimizer, "_PROGRAMS", {})  # a new process, as far as the memo knows

    def no_render(k):
        raise AssertionError("rendered again although the program was on disk")

    monkeypatch.setattr(optimizer, "choose_program", no_render)
    np.testing.assert_array_equal(f(), first)
    stored[0].write_bytes(b"{not json")  # a corrupt entry is dropped and rendered again
    monkeypatch.undo()
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(optimizer, "_PROGRAMS", {})
    np.testing.assert_array_equal(f(), first)
    assert (tmp_path / "programs" / stored[0].name).read_bytes().startswith(b"{")


def test_schedule_builds_its_kernels_together(monkeypatch):
    from compiler.runtime_opencl import get_cl_device

    dev = get_cl_device(0)
    built = []
    real = dev.compile_many
    monkeypatch.setattr(dev, "compile_many", lambda items: (built.append(len(items)), real(items)))
    x = Tensor.rand(8, 16, device="CL", seed=7)
    out = (x.softmax(-1) @ Tensor.rand(16, 4, device="CL", seed=8)).numpy()
    assert built and built[0] >= 3  # max, sum and the rest: handed over at once
    ref = Tensor.rand(8, 16, device="REF", seed=7).softmax(-1) @ Tensor.rand(16, 4, device="REF", seed=8)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5)


@pytest.mark.parametrize("tiles", [(48, 64, 64, 6, 2), (32, 32, 128, 2, 4), (96, 128, 256, 6, 2)])
def test_searched_gemm_tiles_compute_the_product(tiles):
    """The register tiles WB_SEARCH may now pick (6x2, 2x4, other slab depths) give the right product."""
    from compiler.kernel_ir import KernelOpts
    from compiler.optimizer import render_program
    from compiler.runtime_opencl import get_cl_device

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((200, 300)).astype(np.float32), rng.standard_normal((300, 136)).astype(np.float32)
    k = (Tensor(a, device="CL") @ Tensor(b, device="CL")).schedule()[0]
    prg = render_program(k, KernelOpts(gemm=tiles))
    dev = get_cl_device(0)
    out = dev.alloc(k.out.size, k.out.dtype)
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
               [out] + [n.buffer for n in k.buffers[1:]], wait=True)
    np.testing.assert_allclose(out.numpy().reshape(200, 136), a @ b, rtol=1e-4, atol=1e-3)
