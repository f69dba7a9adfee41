"""Loss functions shaped like torch.nn.functional's: cross-entropy (label smoothing, ignore_index), NLL,
MSE and binary cross-entropy with logits. All of them are Tensor compositions, so they differentiate
through the primitive ops' rules."""

from __future__ import annotations

from .errors import ShapeError
from .tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, weight: Tensor | None = None) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ShapeError(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weight is None:
        return loss.mean()
    return loss.sum() / weight.sum().maximum(1.0)


def _classes_last(x: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N*d1*..., C); (N, C) stays."""
    if x.ndim == 2:
        return x
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def nll_loss(log_probs: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-log_probs[target] per sample; samples whose target is ignore_index count neither way."""
    return _nll(_classes_last(log_probs), target, ignore_index, reduction, 0.0)


def _nll(logp: Tensor, target: Tensor, ignore_index: int, reduction: str, smoothing: float) -> Tensor:
    t = target.reshape(-1)
    if t.dtype.is_float:
        raise ShapeError(f"target must hold class indices (integers), got {t.dtype.name}; use .int()")
    if t.shape[0] != logp.shape[0]:
        raise ShapeError(f"target has {t.shape[0]} entries for {logp.shape[0]} predictions")
    keep = t != ignore_index
    picked = logp.gather(1, keep.where(t, 0).reshape(-1, 1)).reshape(-1)
    loss = -picked if not smoothing else -(picked * (1 - smoothing) + logp.mean(1) * smoothing)
    loss = keep.where(loss, 0.0)
    if reduction == "none":
        return loss.reshape(target.shape)
    return _reduce(loss, reduction, keep.float())


def cross_entropy(
    logits: Tensor, target: Tensor, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """log_softmax over classes (axis 1) then NLL; label_smoothing mixes in the uniform distribution."""
    if not 0 <= label_smoothing < 1:
        raise ShapeError(f"label_smoothing {label_smoothing} must be in [0, 1)")
    logp = _classes_last(logits).log_softmax(1)
    return _nll(logp, target, ignore_index, reduction, label_smoothing)


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error."""
    d = pred - target
    return _reduce(d * d, reduction)


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Tensor, pos_weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Sigmoid + binary cross-entropy, computed stably: max(x,0) - x*t + log(1 + exp(-|x|))."""
    x, t = logits.float(), target.float()
    log1pexp = (1.0 + (-x.abs()).exp()).log()
    if pos_weight is None:
        loss = x.relu() - x * t + log1pexp
    else:  # PyTorch: (1 - t) * x + (1 + (pw - 1) * t) * log(1 + exp(-x))
        w = (pos_weight - 1.0) * t + 1.0
        loss = (1.0 - t) * x + w * (log1pexp + (-x).relu())
    return _reduce(loss, reduction)
