"""bench/conv_winograd_probe.py's Winograd matrices: F(2x2,3x3) and F(4x4,3x3) reproduce a direct 3x3 conv
(padding 1) in numpy, partial tiles included, with the float32 error docs/benchmarks.md reports."""

import numpy as np
import pytest

from bench.conv_winograd_probe import F2, F4, np_direct, np_winograd


@pytest.mark.parametrize("mats,bound", [(F2, 2e-6), (F4, 4e-5)], ids=["F2", "F4"])
@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (2, 16, 8, 8), (1, 5, 6, 13)])
def test_winograd_matches_direct_conv(mats, bound, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((4, shape[1], 3, 3)) / np.sqrt(9 * shape[1])).astype(np.float32)
    ref = np_direct(x.astype(np.float64), w.astype(np.float64))
    out = np_winograd(x, w, mats)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= bound * np.abs(ref).max()
