"""The kernel IR seam: index reads answered on the IR, the reduce identity per dtype, device names, backends,
and that scheduling loads no backend (Kernel is plain data)."""

import subprocess
import sys

import numpy as np
import pytest

from compiler import Tensor, dtypes
from compiler.backend import get_backend, register_backend
from compiler.device import cl_index, describe
from compiler.dtypes import reduce_identity
from compiler.errors import DeviceError
from compiler.indexing import reads
from compiler.ops import Ops
from compiler.render_gemm import _is_plain_load, _reads_along_k, gemm_plan
from compiler.symbolic import Lin


def _ref(*shape):
    return Tensor(np.ones(shape, np.float32), device="REF")


def _axis_vars(k):
    return tuple(Lin.var(f"a{i}", s) for i, s in enumerate(k.full_shape))


def test_matmul_factors_read_their_own_axes():
    k = (_ref(8, 16) @ _ref(16, 32)).schedule()[0]
    assert k.full_shape == (8, 32, 16) and k.reduce_axes == (2,)
    x, y = k.reduce.src[0].src
    rx, ry = reads(k, x, _axis_vars(k)), reads(k, y, _axis_vars(k))
    # A[m, k] at m*16 + k, B[k, n] at k*32 + n: row-major positions worked out by hand
    assert [str(lin) for _, lin in rx.loads] == ["(a0*16+a2)"] and rx.variables() == {"a0", "a2"}
    assert [str(lin) for _, lin in ry.loads] == ["(a1+a2*32)"] and ry.variables() == {"a1", "a2"}
    assert not rx.checks and not rx.computes
    assert _is_plain_load(k, x) and _is_plain_load(k, y)


def test_padded_conv_reads_are_checked_and_not_plain():
    k = _ref(1, 2, 5, 5).conv2d(_ref(3, 2, 3, 3), padding=1).schedule()[0]
    # axes: batch, out channel, oy, ox, in channel, ky, kx
    assert k.full_shape == (1, 3, 5, 5, 2, 3, 3)
    x, w = k.reduce.src[0].src
    rx = reads(k, x, _axis_vars(k))
    # x[c, oy+ky-1, ox+kx-1] at c*25 + (oy+ky-1)*5 + (ox+kx-1), valid only where both rows are in 0..4
    assert [str(lin) for _, lin in rx.loads] == ["(a2*5+a3+a4*25+a5*5+a6+-6)"]
    assert sorted(map(str, rx.checks)) == ["(a2+a5)", "(a3+a6)"]
    assert reads(k, w, _axis_vars(k)).variables() == {"a1", "a4", "a5", "a6"}
    assert not _is_plain_load(k, x) and _is_plain_load(k, w)


def test_reshape_of_size_one_axes_keeps_indices_past_a_pad():
    """A reshape that only adds or drops size-1 axes maps indices straight through: linearizing would wrap a
    padded border's negative index into divisions (a conv's input is often a pooled buffer of (n,c,h,w,1,1))."""
    from compiler.indexing import view_index

    x = _ref(2, 3, 4, 5, 1, 1).reshape(2, 3, 4, 5).pad(((0, 0), (0, 0), (1, 1), (1, 1)))
    (idx, bounds) = view_index(x.node, tuple(Lin.var(f"a{i}", s) for i, s in enumerate(x.shape)))
    reshape = x.node.src[0]
    src_idx, _ = view_index(reshape, idx)
    assert [str(i) for i in src_idx] == ["a0", "a1", "(a2+-1)", "(a3+-1)", "0", "0"] and len(bounds) == 4


def test_computed_factor_and_stride_along_k():
    s = (_ref(4, 6) * 2).sum(1).schedule()[0]
    assert reads(s, s.reduce.src[0], _axis_vars(s)).computes and not _is_plain_load(s, s.reduce.src[0])
    k = (_ref(64, 64) @ _ref(64, 48)).schedule()[0]
    plan = gemm_plan(k)
    assert plan is not None
    # A[m, k] is read along k (stride 1); B[k, n] moves 48 elements per k but 1 per n
    assert _reads_along_k(k, plan, plan.a, True)
    assert not _reads_along_k(k, plan, plan.b, False)


def test_coefficient_of_a_variable_is_its_plain_term_only():
    """Lin.coefficient reads a variable's plain term (0 when absent or only inside a division or remainder);
    Lin.without drops that term and keeps the rest."""
    i, j = Lin.var("i", 8), Lin.var("j", 40)
    x = i * 3 + j.floordiv(4) * 5 + j.mod(4) + 7
    assert (x.coefficient("i"), x.coefficient("j"), x.coefficient("k")) == (3, 0, 0)
    assert ((x + j * 2).coefficient("j"), (x - i * 3).coefficient("i")) == (2, 0)
    rest = (x + j * 2).without("j")
    assert rest.coefficient("j") == 0 and "j" in rest.variables() and rest.const == 7
    assert rest.render() == x.render()


@pytest.mark.parametrize(
    "dtype,lowest",
    [("float32", -np.inf), ("float16", -np.inf), ("int32", -(2**31)), ("int8", -128), ("uint8", 0), ("bool", 0)],
)
def test_reduce_identity_per_dtype(dtype, lowest):
    d = getattr(dtypes, dtype)
    assert reduce_identity(Ops.SUM, d) == 0
    assert reduce_identity(Ops.REDUCE_MAX, d) == lowest == d.min


def test_device_names_parse_in_one_place():
    assert cl_index("CL") == 0 and cl_index("CL:2") == 2 and cl_index("cl:3") == 3
    with pytest.raises(DeviceError, match="CL or CL:n"):
        cl_index("REF")
    assert describe("REF") == "REF"


def test_backends_are_registered_per_device_family(monkeypatch):
    from compiler import backend

    monkeypatch.setattr(backend, "_FACTORIES", dict(backend._FACTORIES))
    monkeypatch.setattr(backend, "_BACKENDS", {})
    made = []
    register_backend("FAKE", lambda dev: made.append(dev) or object())
    a = get_backend("FAKE:1")
    assert get_backend("FAKE:1") is a and made == ["FAKE:1"]
    with pytest.raises(DeviceError, match="no backend"):
        get_backend("NOPE")


def test_scheduling_loads_no_backend():
    code = (
        "import sys, numpy as np\n"
        "from compiler import Tensor\n"
        "t = Tensor(np.ones((4, 4), np.float32), device='REF')\n"
        "assert len((t @ t).relu().schedule()) == 1\n"
        "bad = [m for m in ('compiler.optimizer', 'compiler.render_opencl', 'compiler.backend') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
