"""User errors raise CompilerError subclasses whose messages name the op and the shapes."""

import numpy as np
import pytest

from compiler import CompilerError, DeviceError, DTypeError, KernelBuildError, ShapeError, Tensor, dtypes


def test_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"add.*\(2, 3\).*\(4,\)"):
        Tensor.ones(2, 3, device="REF") + Tensor.ones(4, device="REF")
    with pytest.raises(ShapeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        Tensor.ones(2, 3, device="REF") @ Tensor.ones(4, 5, device="REF")
    with pytest.raises(ShapeError, match="reshape"):
        Tensor.ones(2, 3, device="REF").reshape(4, 2)
    with pytest.raises(ShapeError, match="conv2d"):
        Tensor.ones(1, 3, 4, 4, device="REF").conv2d(Tensor.ones(2, 4, 3, 3, device="REF"))
    with pytest.raises(ShapeError, match="axis"):
        Tensor.ones(2, 3, device="REF").sum(2)
    with pytest.raises(ShapeError, match="index 5 out of range"):
        Tensor.ones(2, 3, device="REF")[5]


def test_unknown_device_lists_available():
    with pytest.raises(DeviceError, match="available: REF"):
        Tensor([1.0], device="TPU")
    from compiler import device

    for fam in ("CUDA", "HIP"):  # real backends now: without their driver the error says why, and what works
        if device.unavailable_reason(fam):
            with pytest.raises(DeviceError, match=rf"'{fam}' is unavailable: .+; available: REF"):
                Tensor([1.0], device=fam)


def test_bad_dtype():
    with pytest.raises(DTypeError, match="supported"):
        Tensor([1.0], device="REF", dtype="complex64")
    with pytest.raises(DTypeError, match="SHL"):
        Tensor([1.0], device="REF") << 1
    assert Tensor([1], device="REF", dtype=np.int64).dtype == dtypes.int32


def test_errors_are_value_errors():
    assert issubclass(CompilerError, ValueError)
    for cls in (ShapeError, DTypeError, DeviceError, KernelBuildError):
        assert issubclass(cls, CompilerError)


def test_build_failure_shows_source_and_log():
    from compiler.device import available

    if "CL" not in available():
        pytest.skip("no OpenCL device")
    from compiler.runtime_opencl import get_cl_device

    with pytest.raises(KernelBuildError) as e:
        get_cl_device(0).compile(
            "__kernel void broken(__global float* a) { a[0] = undefined_thing; }", "broken"
        )
    assert "undefined_thing" in str(e.value) and "source" in str(e.value)
