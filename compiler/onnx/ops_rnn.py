"""Recurrent ONNX ops: RNN, GRU and LSTM (forward, reverse, bidirectional; initial states, per-batch sequence
lengths, peepholes, clip, custom activations, both layouts). The time loop is unrolled into the graph (the
sequence length is static), with the input projection of every step done as one matmul up front."""

from __future__ import annotations

from collections.abc import Callable

from compiler.dtypes import dtypes
from compiler.tensor import Tensor

from .ops import NodeCtx, op

# activation name -> (function of (x, alpha, beta), default alpha, default beta); those without alpha/beta
# ignore them but still consume none of the activation_alpha/activation_beta lists
_ACTS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: x.relu(), None, None),
    "tanh": (lambda x, a, b: x.tanh(), None, None),
    "sigmoid": (lambda x, a, b: x.sigmoid(), None, None),
    "affine": (lambda x, a, b: x * a + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: (x >= 0).where(x, x * a), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: (x > a).where(x, 0.0), 1.0, None),
    "scaledtanh": (lambda x, a, b: (x * b).tanh() * a, 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: (x * a + b).clip(0.0, 1.0), 0.2, 0.5),
    "elu": (lambda x, a, b: (x >= 0).where(x, (x.exp() - 1) * a), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + x.abs()), None, None),
    "softplus": (lambda x, a, b: x.relu() + (1 + (-x.abs()).exp()).log(), None, None),
}
_DEFAULTS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _activations(c: NodeCtx, kind: str, n_dirs: int) -> list[list[Callable[[Tensor], Tensor]]]:
    """Per direction, the op's activation functions (f, g[, h]) with their alpha/beta bound."""
    names = list(c.attr("activations") or []) or list(_DEFAULTS[kind]) * n_dirs
    per = len(_DEFAULTS[kind])
    if len(names) == per and n_dirs == 2:
        names = names * 2
    if len(names) != per * n_dirs:
        raise c.fail(f"{len(names)} activations given; {kind} needs {per} per direction ({per * n_dirs})")
    alphas, betas = list(c.attr("activation_alpha") or []), list(c.attr("activation_beta") or [])
    out: list[Callable] = []
    for name in names:
        spec = _ACTS.get(name.lower())
        if spec is None:
            raise c.fail(f"activation {name!r} is not one of {', '.join(sorted(_ACTS))}")
        fn, da, db = spec
        a = alphas.pop(0) if da is not None and alphas else da
        b = betas.pop(0) if db is not None and betas else db
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return [out[d * per:(d + 1) * per] for d in range(n_dirs)]


def _recurrent(c: NodeCtx, kind: str) -> list[Tensor | None]:
    x = c.t(0)
    if not x.dtype.is_float:
        raise c.fail(f"input dtype {x.dtype.name} (the recurrent ops take float tensors)")
    layout = int(c.attr("layout", 0))
    if layout:
        x = x.permute(1, 0, 2)  # (batch, seq, in) -> (seq, batch, in)
    seq, batch, _ = x.shape
    w, r = c.t(1).cast(x.dtype), c.t(2).cast(x.dtype)
    n_dirs, g_h = w.shape[0], w.shape[1]
    hidden = int(c.attr("hidden_size", g_h // _GATES[kind]))
    direction = c.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional") or (n_dirs == 2) != (direction == "bidirectional"):
        raise c.fail(f"direction {direction!r} does not fit W of shape {w.shape} ({n_dirs} directions)")
    acts = _activations(c, kind, n_dirs)
    clip = c.attr("clip")

    def pre(t: Tensor) -> Tensor:  # the gates' inputs before their activation
        return t.clip(-clip, clip) if clip is not None else t

    def state(i: int) -> Tensor | None:
        if not c.has(i):
            return None
        s = c.t(i).cast(x.dtype)
        return s.permute(1, 0, 2) if layout else s  # -> (dirs, batch, hidden)

    h0, c0 = state(5), state(6) if kind == "LSTM" else None
    lens = c.t(4).cast(dtypes.int32).reshape(batch, 1) if c.has(4) else None
    ys, hs, cs = [], [], []
    for d in range(n_dirs):
        f_act = acts[d]
        xw = x.reshape(seq * batch, -1).matmul(w[d].T).reshape(seq, batch, g_h)  # every step's input part
        if c.has(3):
            bias = c.t(3).cast(x.dtype)[d]
            wb, rb = bias[:g_h], bias[g_h:]
            xw = xw + (wb if kind == "GRU" else wb + rb)
        else:
            rb = None
        rt = r[d].T
        h = h0[d] if h0 is not None else Tensor.zeros(batch, hidden, dtype=x.dtype, device=x.device)
        cell = c0[d] if c0 is not None else (h * 0 if kind == "LSTM" else None)
        peep = c.t(7).cast(x.dtype)[d] if kind == "LSTM" and c.has(7) else None
        reverse = direction == "reverse" or d == 1
        out = [None] * seq
        for t in (range(seq - 1, -1, -1) if reverse else range(seq)):
            xt = xw[t]
            if kind == "RNN":
                h_new, c_new = f_act[0](pre(xt + h.matmul(rt))), None
            elif kind == "GRU":
                h_new, c_new = _gru_step(c, xt, h, rt, rb, hidden, f_act, pre), None
            else:
                h_new, c_new = _lstm_step(c, xt, h, cell, rt, peep, hidden, f_act, pre)
            if lens is not None:  # past a sequence's end: its state holds and its output is zero
                valid = lens > t
                h_new = valid.where(h_new, h)
                c_new = valid.where(c_new, cell) if c_new is not None else None
                out[t] = valid.where(h_new, 0.0)
            else:
                out[t] = h_new
            h, cell = h_new, c_new
        ys.append(Tensor.stack(out, axis=0))  # (seq, batch, hidden)
        hs.append(h)
        cs.append(cell)
    y = Tensor.stack(ys, axis=1)  # (seq, dirs, batch, hidden)
    y_h, y_c = Tensor.stack(hs, axis=0), Tensor.stack(cs, axis=0) if kind == "LSTM" else None
    if layout:
        y, y_h = y.permute(2, 0, 1, 3), y_h.permute(1, 0, 2)
        y_c = y_c.permute(1, 0, 2) if y_c is not None else None
    return [y, y_h, y_c][: len(c.node.output)]


def _gru_step(c: NodeCtx, xt, h, rt, rb, hidden: int, f_act, pre) -> Tensor:
    f, g = f_act
    hr = h.matmul(rt)  # (batch, 3 * hidden): z, r, h parts
    if rb is not None:
        hr = hr + rb
    part = [(i * hidden, (i + 1) * hidden) for i in range(3)]
    x_z, x_r, x_h = (xt[:, a:b] for a, b in part)
    h_z, h_r, h_h = (hr[:, a:b] for a, b in part)
    z, r = f(pre(x_z + h_z)), f(pre(x_r + h_r))
    if c.attr("linear_before_reset", 0):
        n = g(pre(x_h + r * h_h))
    else:  # the reset gate scales the state before its recurrence matmul
        rh = (r * h).matmul(rt[:, part[2][0]:part[2][1]])
        n = g(pre(x_h + rh + (rb[part[2][0]:part[2][1]] if rb is not None else 0)))
    return (1 - z) * n + z * h


def _lstm_step(c: NodeCtx, xt, h, cell, rt, peep, hidden: int, f_act, pre) -> tuple[Tensor, Tensor]:
    f, g, hh = f_act
    gates = xt + h.matmul(rt)  # i, o, f, c parts
    gi, go, gf, gc = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
    if peep is not None:
        pi, po, pf = (peep[k * hidden:(k + 1) * hidden] for k in range(3))
        gi, gf = gi + pi * cell, gf + pf * cell
    i = f(pre(gi))
    fg = 1 - i if c.attr("input_forget", 0) else f(pre(gf))
    cell = fg * cell + i * g(pre(gc))
    if peep is not None:
        go = go + po * cell
    return f(pre(go)) * hh(cell), cell


op("RNN", since=7)(lambda c: _recurrent(c, "RNN"))
op("GRU", since=7)(lambda c: _recurrent(c, "GRU"))
op("LSTM", since=7)(lambda c: _recurrent(c, "LSTM"))
