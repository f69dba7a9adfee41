"""Scan: the body graph unrolled over the (static) scan length, states carried from step to step and the
per-step outputs stacked; each step is ordinary Tensor code, so the unrolled loop fuses like any graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.tensor import Tensor

from .ops import NodeCtx, op
from .types import held_array


def _tensor(c: NodeCtx, v: Any) -> Tensor:
    if isinstance(v, Tensor):
        return v
    arr, dt = held_array(np.asarray(v), f"node {c.name} scan value")
    return Tensor(arr, device=c.device, dtype=dt)


def _scan(c: NodeCtx, states: list, scans: list, body) -> list:
    """One Scan over unbatched inputs: final states followed by the stacked scan outputs."""
    n_in = len(scans)
    in_axes = list(c.attr("scan_input_axes") or [0] * n_in)
    in_dirs = list(c.attr("scan_input_directions") or [0] * n_in)
    n_state = len(states)
    n_out = len(body.output) - n_state
    out_axes = list(c.attr("scan_output_axes") or [0] * n_out)
    out_dirs = list(c.attr("scan_output_directions") or [0] * n_out)
    scans = [_tensor(c, s) for s in scans]
    lens = {s.shape[a % s.ndim] for s, a in zip(scans, in_axes, strict=True)}
    if len(lens) != 1:
        raise c.fail(f"scan inputs have different lengths along their scan axes: {sorted(lens)}")
    steps = lens.pop()
    outs: list[list] = [[] for _ in range(n_out)]
    for t in range(steps):
        env = dict(c.env)
        for vi, s in zip(body.input[:n_state], states, strict=True):
            env[vi.name] = s
        for vi, s, a, d in zip(body.input[n_state:], scans, in_axes, in_dirs, strict=True):
            a = a % s.ndim
            i = steps - 1 - t if d else t
            env[vi.name] = s[(slice(None),) * a + (i,)]
        res = c.run_graph(body, env, c.opset, c.device)
        states = list(res[:n_state])
        for k in range(n_out):
            outs[k].append(_tensor(c, res[n_state + k]))
    stacked = []
    for k in range(n_out):
        seq = outs[k][::-1] if out_dirs[k] else outs[k]
        r = seq[0].ndim + 1
        stacked.append(Tensor.stack(seq, axis=out_axes[k] % r))
    return states + stacked


@op("Scan", since=9)
def _scan9(c):
    body = c.attr("body")
    m = int(c.attr("num_scan_inputs"))
    n_state = len(c.ins) - m
    return _scan(c, list(c.ins[:n_state]), list(c.ins[n_state:]), body)


@op("Scan", since=8)
def _scan8(c):
    """Opset 8: a leading batch axis on every input, scanned along axis 1, and optional sequence lengths."""
    body = c.attr("body")
    m = int(c.attr("num_scan_inputs"))
    ins = c.ins[1:]
    n_state = len(ins) - m
    batch = _tensor(c, ins[0]).shape[0]
    if c.has(0) and len(set(c.ints(0))) > 1:
        raise c.fail("opset-8 Scan with per-batch sequence lengths that differ is not supported")
    per = []
    for b in range(batch):
        vals = [_tensor(c, v)[b] for v in ins]
        # opset 8 scans along axis 0 of each unbatched input; its directions attribute is `directions`
        c2 = _AxisCtx(c)
        per.append(_scan(c2, vals[:n_state], vals[n_state:], body))
    return [Tensor.stack([p[k] if isinstance(p[k], Tensor) else _tensor(c, p[k]) for p in per], axis=0)
            for k in range(len(per[0]))]


class _AxisCtx(NodeCtx):
    """The node seen as an opset-9 Scan: `directions` read as scan_input_directions."""

    def __init__(self, c: NodeCtx):  # noqa: D107 - a view of c, deliberately not NodeCtx.__init__
        self.__dict__.update(c.__dict__)

    def attr(self, name: str, default: Any = None) -> Any:
        if name == "scan_input_directions":
            return super().attr("directions", default)
        if name in ("scan_input_axes", "scan_output_axes", "scan_output_directions"):
            return default
        return super().attr(name, default)


@op("Loop", since=1)
def _loop(c):
    """Loop, unrolled: the trip count and the condition are read on the host each iteration (they decide how
    many steps run); loop-carried values flow from step to step and scan outputs are stacked on a new axis 0."""
    body = c.attr("body")
    max_trips = int(c.host(0).reshape(-1)[0]) if c.has(0) else None
    cond = bool(c.host(1).reshape(-1)[0]) if c.has(1) else True
    carried = list(c.ins[2:])
    n_carry = len(carried)
    n_scan = len(body.output) - 1 - n_carry
    scans: list[list] = [[] for _ in range(n_scan)]
    if max_trips is None and not c.has(1):
        raise c.fail("a Loop with neither a trip count nor a condition never ends")
    i = 0
    while cond and (max_trips is None or i < max_trips):
        env = dict(c.env)
        env[body.input[0].name] = np.asarray(i, dtype=np.int64)
        env[body.input[1].name] = np.asarray(cond)
        for vi, v in zip(body.input[2:], carried, strict=True):
            env[vi.name] = v
        res = c.run_graph(body, env, c.opset, c.device)
        v = res[0]
        cond = bool((v.numpy() if isinstance(v, Tensor) else np.asarray(v)).reshape(-1)[0])
        carried = list(res[1:1 + n_carry])
        for k in range(n_scan):
            scans[k].append(_tensor(c, res[1 + n_carry + k]))
        i += 1
    if any(not s for s in scans):
        raise c.fail("a Loop that ran no iteration has scan outputs of unknown shape")
    return carried + [Tensor.stack(s, axis=0) for s in scans]
