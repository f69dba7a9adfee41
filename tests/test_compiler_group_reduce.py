"""The work-group reduce GPUs get (KernelOpts.group): every work-item of a group strides through one output's
reduce and the partial results meet in shared memory. Checked on the CL device (PoCL runs work-groups and
barriers like a GPU) against REF, with the programs forced, so CI covers what GPUs choose by default."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.kernel_ir import KernelOpts
from compiler.optimizer import heuristic_opts, render_program

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")
rng = np.random.default_rng(7)

CASES = {
    "row sum": lambda d: Tensor(rng.standard_normal((6, 300)).astype(np.float32), device=d).sum(-1),
    "max with NaN": lambda d: Tensor(np.where(np.arange(6 * 70).reshape(6, 70) % 37 == 5, np.nan,
                                              rng.standard_normal((6, 70))).astype(np.float32), device=d).max(-1),
    "two reduce axes": lambda d: Tensor(rng.standard_normal((3, 5, 7, 11)).astype(np.float32), device=d).sum((1, 3)),
    "fused epilogue": lambda d: (Tensor(rng.standard_normal((4, 130)).astype(np.float32), device=d).exp().sum(-1) + 1).log(),
    "int sum": lambda d: Tensor(rng.integers(-1000, 1000, (5, 96)).astype(np.int32), device=d).sum(-1),
    "half mean": lambda d: Tensor(rng.standard_normal((3, 200)).astype(np.float16), device=d).mean(-1),
    "column sum": lambda d: Tensor(rng.standard_normal((64, 9)).astype(np.float32), device=d).sum(0),
}


@pytest.mark.parametrize("group", [32, 128])
@pytest.mark.parametrize("case", list(CASES))
def test_group_reduce_on_cl_matches_ref(case, group):
    from compiler.backend import get_backend

    state = rng.bit_generator.state
    ref = CASES[case]("REF").numpy()
    rng.bit_generator.state = state  # the same inputs for the CL build
    t = CASES[case]("CL")
    ks = t.schedule()
    assert len(ks) == 1
    (k,) = ks
    prg = render_program(k, KernelOpts(group=group))
    assert "wb_part" in prg.src and prg.local_size[0] == group
    be = get_backend("CL")
    out = be.alloc(k.out.size, k.out.dtype)
    be.run(prg, [out] + [n.buffer for n in k.buffers[1:]], wait=True)
    got = out.numpy().reshape(ref.shape)
    tol = 2e-3 if ref.dtype == np.float16 else 1e-5
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)


def test_gpus_choose_the_group_reduce_for_long_rows_only():
    long_rows = Tensor(np.ones((128, 768), np.float32), device="REF").sum(-1).schedule()[0]
    short_rows = Tensor(np.ones((128, 16), np.float32), device="REF").sum(-1).schedule()[0]
    assert heuristic_opts(long_rows, is_cpu=False).group == 128
    assert heuristic_opts(short_rows, is_cpu=False).group == 0
    assert heuristic_opts(long_rows, is_cpu=True).group == 0
