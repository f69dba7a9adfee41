"""A small layer shared by the plan-memo and launch-ahead tests: a matmul with its bias and activation,
then a row softmax (several kernels), with its numpy reference."""

import numpy as np

from compiler import Tensor


def arr(*shape, seed=0, dtype=np.float32) -> np.ndarray:
    """Seeded standard-normal data of the given shape and dtype."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def t(a: np.ndarray) -> Tensor:
    """The array as a CL tensor."""
    return Tensor(a, device="CL")


def f(x, w, b):
    """The layer on tensors."""
    return ((x @ w + b).relu() * 0.5).softmax(-1)


def ref(x, w, b):
    """The layer in numpy."""
    y = np.maximum(x @ w + b, 0) * 0.5
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
