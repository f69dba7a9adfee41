"""Optimizers (SGD with momentum/Nesterov/weight decay, Adam, AdamW) and learning-rate schedules.

An optimizer builds each update from Tensor ops under no_grad and realizes every new parameter and
state in one schedule, so the whole update of a model fuses into a few kernels. The learning rate, the
step count and Adam's bias corrections live in small device tensors updated in place rather than in the
kernels' constants, so changing them every step (a schedule) reuses the compiled kernels, and a training
step replayed by `compiler.jit` reads them too. Schedules are plain functions of the step.
"""

from __future__ import annotations

import math

import numpy as np

from .autograd import no_grad
from .errors import ShapeError
from .tensor import Tensor


class Optimizer:
    """Holds the parameters; `lr` may be reassigned at any time (e.g. from a schedule)."""

    def __init__(self, params, lr: float):
        self.params = [p for p in params]
        if not self.params:
            raise ShapeError("optimizer: got an empty parameter list")
        for p in self.params:
            if not p.requires_grad:
                p.requires_grad = True
        self._lr, self._lr_t = None, self._scalar(0.0)
        self.lr = lr
        self._t = self._scalar(0.0)  # steps taken, on the device so that a replayed (jit) step counts too
        self.state: list[dict[str, Tensor]] = [{} for _ in self.params]

    def _scalar(self, v: float) -> Tensor:
        """A (1,)-shaped device tensor: per-step scalars live in buffers that kernels read, not in their source."""
        return Tensor(np.array([v], np.float32), device=self.params[0].device)

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # assigned in place, so compiled kernels (and a jit replaying a training step) read the new rate
        if value != self._lr:
            self._lr = float(value)
            self._lr_t.assign(self._scalar(self._lr))

    @property
    def steps(self) -> int:
        """How many updates step() has applied (read from the device)."""
        return int(self._t.item())

    def zero_grad(self) -> None:
        """Forget the gradients (the next backward() starts from zero)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        with no_grad():
            outs = [self._t.assign(self._t + 1)] + self._prepare()
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                new, state = self._update(p, p.grad.cast(p.dtype), self.state[i])
                for k, v in state.items():  # state tensors change in place after the first step
                    if k in self.state[i]:
                        self.state[i][k].assign(v)
                    else:
                        self.state[i][k] = v
                outs.append(p.assign(new))
                outs.extend(self.state[i].values())
        outs[0].realize(*outs[1:])

    def _prepare(self) -> list[Tensor]:
        """Per-step device scalars computed before the updates; returns the tensors it assigned."""
        return []

    def _update(self, p: Tensor, g: Tensor, state: dict) -> tuple[Tensor, dict]:
        """The new value of parameter p from its gradient g and state (each optimizer defines its own rule)."""
        raise NotImplementedError(f"{type(self).__name__} defines no update rule (_update)")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation), Nesterov momentum
    and L2 weight decay (added to the gradient)."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ShapeError("SGD: nesterov needs momentum > 0 and dampening 0")
        super().__init__(params, lr)
        self.momentum, self.dampening, self.weight_decay, self.nesterov = momentum, dampening, weight_decay, nesterov

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + p * self.weight_decay
        if self.momentum:
            buf = state.get("momentum_buffer")
            buf = g if buf is None else buf * self.momentum + g * (1 - self.dampening)
            state = {"momentum_buffer": buf}
            g = g + buf * self.momentum if self.nesterov else buf
        return p - g * self._lr_t, state


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; weight_decay is L2 added to the gradient."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        self._q1, self._q2 = self._scalar(0.0), self._scalar(0.0)  # 1 - beta1**t and 1 - beta2**t

    def _prepare(self) -> list[Tensor]:
        # lr * sqrt(1 - b2^t) / (1 - b1^t), and eps * sqrt(1 - b2^t): PyTorch's arrangement of the update;
        # 1 - b^t is kept on the device as q_t = (1 - b) + b * q_(t-1), exact at t = 1 and free of the
        # cancellation of 1 - b**t in float32
        b1, b2 = self.betas
        q1 = self._q1.assign(self._q1 * b1 + (1 - b1))
        q2 = self._q2.assign(self._q2 * b2 + (1 - b2))
        c2 = q2.sqrt()
        self._lr_step, self._eps_step = self._lr_t * c2 / q1, c2 * self.eps
        return [q1, q2]

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay and not self.decoupled:
            g = g + p * self.weight_decay
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        m = g * (1 - b1) if m is None else m * b1 + g * (1 - b1)
        v = g * g * (1 - b2) if v is None else v * b2 + g * g * (1 - b2)
        if self.weight_decay and self.decoupled:
            p = p - p * (self._lr_t * self.weight_decay)
        return p - m * self._lr_step / (v.sqrt() + self._eps_step), {"exp_avg": m, "exp_avg_sq": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p -= lr * weight_decay * p each step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


# --- learning-rate schedules: plain functions of the step ------------------------------------------
def constant_lr(step: int, base_lr: float) -> float:
    """The same rate at every step."""
    return base_lr


def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """base_lr * gamma ** (step // step_size)."""
    return base_lr * gamma ** (step // step_size)


def linear_warmup(step: int, base_lr: float, warmup_steps: int) -> float:
    """Rises linearly from base_lr/warmup_steps to base_lr over warmup_steps, then stays."""
    return base_lr * min(1.0, (step + 1) / max(1, warmup_steps))


def cosine_lr(step: int, base_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warmup, then a cosine decay from base_lr to min_lr at total_steps."""
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    frac = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * frac))
