"""Schedule replay: `@jit` runs a function's kernels again without rebuilding its graph.

A jitted function (a training step, a model's forward pass) is called normally the first time (that call
compiles its kernels and creates state such as an optimizer's moments). The second and third calls run
normally too while the jit records what they do: every kernel with its buffers, every host-to-device copy,
random draw and `assign`. When both records agree, later calls with inputs of the same shapes, dtypes and
devices replay the recorded kernels directly, binding the new inputs' buffers: no graph building, autograd,
scheduling or program lookup by structure. Inputs of a new shape start over with a capture of their own.

The contract (as tinygrad's TinyJit):
- Tensors passed as arguments are inputs; other arguments are part of the cache key (hashable, compared by
  value). Outputs are the returned Tensors (alone, or in tuples, lists and dicts); Python values such as a
  `loss.item()` cannot be replayed and are refused. Each call returns new output tensors.
- Tensors changed with `assign` (parameters, optimizer state, batch-norm statistics) and gradients are
  updated in place on every replay; a tensor assigned outside the function (a learning rate set from a
  schedule), before or after the capture, is read afresh by every replay. A tensor replaced by a new Python
  object after the capture is not seen (use `assign`); other Python side effects are not replayed.
- `Tensor.rand`/`randn` (dropout) draw new values from `Tensor._rng` on every replay, in the same order as
  the function would, so values equal the unjitted run's.
- The function must run the same kernels on every call: Python control flow that depends on tensor values,
  on Python state that changes between calls, or host data created inside the function that differs between
  calls (a `Tensor(np.array(...))` of changing values) is detected when the two recorded calls differ and
  refused with `JitError`; a difference that first appears after those calls cannot be seen. Values read
  back inside the function (`.item()`, `.numpy()`) are frozen at capture. Switching `Tensor.training` or
  `no_grad` starts a new capture; switching a module's own `train()`/`eval()` does not, so jit each mode
  separately.
- Devices: CL and REF (and CUDA/HIP through the same backend calls). On SIM the function simply runs
  normally every time (with a warning), since the simulator reports per run.
- `WB_JIT=0` turns every jit off (the function runs normally), for comparisons.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import jit_trace, lazy
from .device import RefBuffer
from .errors import CompilerError
from .interpreter import eval_node
from .lazy import GradMode, Node, toposort
from .switches import switch
from .tensor import _ASSIGNED, _LEAVES, Tensor

MANY_KEYS = 16  # captures of one function after which the jit warns that its arguments keep changing


class JitError(CompilerError):
    """A function the jit cannot replay faithfully; the message says why and what to change."""


# --- what a captured call did ------------------------------------------------------------------------
class _RefProgram:
    """One REF evaluation as data: the nodes of a root's graph, its realized leaves numbered as inputs."""

    def __init__(self, root: Node):
        self.rows: list[tuple] = []  # (node copy, source positions) or (None, leaf number)
        self.leaves: list = []
        self.shapes: list[tuple] = []
        pos: dict[int, int] = {}
        key = []
        for n in toposort([root]):
            pos[n.id] = len(self.rows)
            if n.realized:
                self.rows.append((None, len(self.leaves)))
                self.leaves.append(n.buffer)
                self.shapes.append(n.shape)
                key.append(("in", n.shape, n.dtype.name))
            else:
                srcs = tuple(pos[s.id] for s in n.src)
                self.rows.append((Node(n.op, (), n.arg, n.shape, n.dtype, n.device), srcs))
                key.append((n.op.value, n.arg, n.shape, n.dtype.name, srcs))
        self.dtype = root.dtype
        self.key = tuple(key)

    def run(self, leaf_bufs: list) -> RefBuffer:
        vals: list = []
        with np.errstate(all="ignore"):
            for node, srcs in self.rows:
                if node is None:
                    vals.append(leaf_bufs[srcs].numpy().reshape(self.shapes[srcs]))
                else:
                    vals.append(eval_node(node, [vals[i] for i in srcs]))
        return RefBuffer(np.ascontiguousarray(vals[-1]), self.dtype)


@dataclass
class _Step:
    backend: object | None  # None for a REF evaluation
    program: object | None  # a backend Program, a _RefProgram, or None for an empty output
    out: object
    inputs: list
    device: str
    size: int
    dtype: object

    def signature(self) -> tuple:
        p = self.program
        if isinstance(p, _RefProgram):
            return ("REF", p.key)
        if p is None:
            return ("empty", self.device, self.dtype.name)
        return (self.device, p.name, p.src, tuple(p.global_size), p.local_size and tuple(p.local_size), self.size)


class _Recorder:
    """Receives the reports of realize.py, device.py and tensor.py while a call runs (jit_trace.ACTIVE)."""

    def __init__(self):
        self.steps: list[_Step] = []
        self.uploads: dict[int, tuple[int, object, str]] = {}  # id(buffer) -> (order, buffer, digest)
        self.randoms: dict[int, Callable] = {}  # id(buffer) -> draws a new buffer like it
        self.assigned: dict[int, tuple[Tensor, object]] = {}  # id(tensor) -> (tensor, buffer before)

    def kernel(self, k, backend, program, out) -> None:
        ins = [n.buffer for n in k.buffers[1:]] if program is not None else []
        self.steps.append(_Step(backend, program, out, ins, k.device, k.out.size, k.out.dtype))

    def ref_eval(self, root: Node, buf) -> None:
        rp = _RefProgram(root)
        self.steps.append(_Step(None, rp, buf, rp.leaves, "REF", buf.size, root.dtype))

    def upload(self, buf, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        digest = hashlib.blake2b(arr.tobytes(), digest_size=16)
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        self.uploads[id(buf)] = (len(self.uploads), buf, digest.hexdigest())

    def random(self, buf, redraw: Callable) -> None:
        self.randoms[id(buf)] = redraw

    def assign(self, t: Tensor) -> None:
        if id(t) not in self.assigned:
            self.assigned[id(t)] = (t, t.node.buffer if t.node.realized else None)


def _bound_at_start(args: list[Tensor]) -> tuple[dict[int, tuple], list[Tensor]]:
    """Buffers that replay must look up afresh, by the tensor holding them when the call starts: {id(buffer):
    key}; and the parameters (leaves with requires_grad) whose gradients the call may change."""
    # each entry holds its buffer too, so no buffer made during the call can take a dead one's id
    bound: dict[int, tuple] = {}
    params = [t for t in _LEAVES.values()]
    for t in list(_ASSIGNED.values()) + params:
        if t.node.realized:
            bound.setdefault(id(t.node.buffer), (("tensor", t), t.node.buffer))
    for p in params:
        if p.grad is not None and p.grad.node.realized:
            bound.setdefault(id(p.grad.node.buffer), (("grad", p), p.grad.node.buffer))
    for i, t in enumerate(args):  # an argument is an argument even when it is also a parameter
        bound[id(t.node.buffer)] = (("arg", i), t.node.buffer)
    return bound, params


class _Capture:
    """One recorded call, with every buffer its kernels read resolved to where it comes from."""

    def __init__(self, rec: _Recorder, bound: dict, args: list[Tensor], outputs: list[Tensor], out_spec,
                 grads: list[tuple[Tensor, Tensor | None]]):  # fmt: skip
        self.rec, self.out_spec = rec, out_spec
        for t, before in rec.assigned.values():
            if before is not None and id(before) not in bound:
                bound[id(before)] = (("tensor", t), before)
        arg_pos = {id(t): i for i, t in enumerate(args)}
        produced: dict[int, int] = {}

        def key(buf) -> tuple:
            j = produced.get(id(buf))
            if j is not None:
                return ("temp", j)
            if id(buf) in rec.uploads:
                return ("upload", rec.uploads[id(buf)][0])
            if id(buf) in bound:
                return bound[id(buf)][0]
            return ("const", buf)

        self.step_keys = []
        for j, st in enumerate(rec.steps):
            self.step_keys.append(tuple(key(b) for b in st.inputs))
            produced[id(st.out)] = j
        self.out_keys = [(key(t.node.buffer), t.shape, t.dtype, t.device) for t in outputs]
        self.assign_keys = []
        for t, _ in rec.assigned.values():
            target = ("arg", arg_pos[id(t)]) if id(t) in arg_pos else ("tensor", t)
            self.assign_keys.append((target, key(t.node.buffer)))
        self.grad_keys = [(p, None if g is None else key(g.node.buffer)) for p, g in grads]

    def signature(self) -> tuple:
        def sig(k):
            if k is None:
                return None
            kind, v = k
            return (kind, id(v)) if kind in ("tensor", "grad", "const") else k

        return (
            tuple(st.signature() for st in self.rec.steps),
            tuple(tuple(sig(k) for k in ks) for ks in self.step_keys),
            tuple((sig(k), s, d.name, dev) for k, s, d, dev in self.out_keys),
            tuple((sig(t), sig(k)) for t, k in self.assign_keys),
            tuple((id(p), sig(k)) for p, k in self.grad_keys),
            self.out_spec,
        )

    def uploads_by_order(self) -> list[tuple[object, str, bool]]:
        """(buffer, digest, drawn at random) of each host-to-device copy, in call order."""
        ups = sorted(self.rec.uploads.values(), key=lambda u: u[0])
        return [(buf, digest, id(buf) in self.rec.randoms) for _, buf, digest in ups]


def _difference(a: _Capture, b: _Capture) -> str:
    """Where two captures of a function first differ, in words."""
    sa, sb = a.rec.steps, b.rec.steps
    if len(sa) != len(sb):
        return f"the calls ran {len(sa)} and {len(sb)} kernels"
    for j, (x, y) in enumerate(zip(sa, sb, strict=True)):
        if x.signature() != y.signature():
            return f"kernel {j} differs ({getattr(x.program, 'name', 'REF')} vs {getattr(y.program, 'name', 'REF')})"
    for j, (x, y) in enumerate(zip(a.step_keys, b.step_keys, strict=True)):
        if [k[0] for k in x] != [k[0] for k in y] or x != y:
            kinds = ", ".join(f"{p[0]} vs {q[0]}" for p, q in zip(x, y, strict=True) if p != q)
            return (
                f"kernel {j} ({getattr(sa[j].program, 'name', 'REF')}) reads other buffers ({kinds}): a tensor the "
                "function reads was replaced by a new one between calls instead of being updated with assign()"
            )
    return "their outputs, assigned tensors or gradients differ"


# --- replay --------------------------------------------------------------------------------------------
class _Plan:
    """The kernels of a captured call, with each argument slot saying where its buffer comes from."""

    def __init__(self, a: _Capture, b: _Capture, n_args: int):
        if a.signature() != b.signature():
            raise JitError(
                f"jit: the function did different work in two calls ({_difference(a, b)}); it cannot be replayed. "
                "Python control flow that depends on tensor values or on changing Python state must move out of "
                "the jitted function (see compiler/jit.py for the contract)"
            )
        # host data copied in by the call: the same both times (a constant) or drawn at random; else refuse
        upload_src: dict[int, tuple] = {}
        ups_a, ups_b = a.uploads_by_order(), b.uploads_by_order()
        if len(ups_a) != len(ups_b):
            raise JitError(
                f"jit: the function copied host data to the device {len(ups_a)} and {len(ups_b)} times in two "
                "calls; it cannot be replayed (see compiler/jit.py for the contract)"
            )
        draws: list[Callable] = []  # every random draw of the call, in call order (they share one generator)
        for m, ((_, da, ra), (buf, db, rb)) in enumerate(zip(ups_a, ups_b, strict=True)):
            if da == db:
                upload_src[m] = ("const", buf)
            elif ra and rb:
                draws.append(b.rec.randoms[id(buf)])
                upload_src[m] = ("random", draws[-1])
            else:
                raise JitError(
                    f"jit: the function copies host data of {buf.size} elements to the device, and it differs "
                    "between calls (a Tensor made from Python values inside the function?); pass it as a Tensor "
                    "argument, or keep it in a tensor outside the function and update it with assign()"
                )
        slots: dict[tuple, int] = {}

        def resolve(k: tuple) -> tuple:
            kind, v = k
            if kind == "upload":
                k = upload_src[v]
                kind, v = k
            return kind, v

        # every non-argument, non-temp source in first-use order: ("tensor"/"grad", tensor) looked up afresh at
        # each replay, ("const", buffer), ("random", draw)
        sources: list[tuple] = []

        def slot_of(k: tuple):
            kind, v = resolve(k)
            if kind == "arg":
                return v
            if kind == "temp":
                return ("temp", v)
            sk = (kind, id(v))
            if sk not in slots:
                slots[sk] = len(sources)
                sources.append((kind, v))
            return ("src", slots[sk])

        steps = [tuple(slot_of(k) for k in ks) for ks in b.step_keys]
        outs = [(slot_of(k), s, d, dev) for k, s, d, dev in b.out_keys]
        assigns = [(t, slot_of(k)) for t, k in b.assign_keys]
        grads = [(p, None if k is None else slot_of(k)) for p, k in b.grad_keys]
        # the environment of a replay: arguments, then sources (tensor lookups, constants, random draws), temps
        self.sources = sources
        base_temp = n_args + len(sources)

        def index(s) -> int:
            if isinstance(s, int):
                return s
            return n_args + s[1] if s[0] == "src" else base_temp + s[1]

        self.steps = [
            (st.backend, st.program, st.size, st.dtype, tuple(index(s) for s in ins))
            for st, ins in zip(b.rec.steps, steps, strict=True)
        ]
        self.outs = [(index(s), shape, dt, dev) for s, shape, dt, dev in outs]
        self.assigns = [(target, index(s)) for target, s in assigns]
        self.grads = [(p, None if s is None else index(s)) for p, s in grads]
        # (draw, its slot in the environment or None when no kernel reads it), in call order
        self.draws = [(d, slots.get(("random", id(d)))) for d in draws]
        self.draws = [(d, None if i is None else n_args + i) for d, i in self.draws]
        for kind, v in sources:
            if kind == "const":  # a tensor holding it may be assigned later: then read that tensor
                jit_trace.watch(v, self)
        self.backends = list({id(st.backend): st.backend for st in b.rec.steps if st.backend is not None}.values())
        self.out_spec = b.out_spec

    def rebind(self, buf, tensor: Tensor) -> None:
        """Read tensor's current buffer where the capture read the constant buf (tensor was assigned)."""
        self.sources = [("tensor", tensor) if k == "const" and v is buf else (k, v) for k, v in self.sources]

    def replay(self, args: list[Tensor]):
        env = [t.node.buffer for t in args]
        for kind, v in self.sources:
            if kind == "const":
                env.append(v)
            elif kind == "random":
                env.append(None)  # drawn below, in call order
            else:  # a tensor (or a parameter's gradient) that may have been replaced since the capture
                t = v if kind == "tensor" else v.grad
                if t is None:
                    raise JitError("jit: a parameter's .grad that the captured function read is now None")
                if not t.node.realized:
                    t.realize()
                env.append(t.node.buffer)
        for draw, i in self.draws:
            buf = draw()
            if i is not None:
                env[i] = buf
        for be, prg, size, dtype, ins in self.steps:
            if be is None:  # REF
                env.append(prg.run([env[i] for i in ins]))
                continue
            out = be.alloc(size, dtype)
            if prg is not None:
                be.run(prg, [out] + [env[i] for i in ins])
            env.append(out)
        for be in self.backends:
            be.synchronize()
        for (kind, t), i in self.assigns:
            _rebind(args[t] if kind == "arg" else t, env[i])
        for p, i in self.grads:
            p.grad = None if i is None else Tensor(lazy.load(env[i], p.shape, p.dtype, p.device))
        outs = [Tensor(lazy.load(env[i], shape, dt, dev)) for i, shape, dt, dev in self.outs]
        return _unflatten(self.out_spec, iter(outs))


def _rebind(t: Tensor, buf) -> None:
    """Point t at buf (its new value), as assign() would, keeping requires_grad."""
    keep = t.requires_grad
    if keep:
        _LEAVES.pop(t.node.id, None)
    t.node = lazy.load(buf, t.shape, t.dtype, t.device)
    if keep:
        t.requires_grad = True


# --- outputs: Tensors in nested tuples, lists and dicts ---------------------------------------------
def _flatten(obj, leaves: list):
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return "T"
    if obj is None:
        return None
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_flatten(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten(v, leaves)) for k, v in obj.items()))
    raise JitError(
        f"jit: the function returned a {type(obj).__name__}, which a replay cannot compute; return Tensors "
        "(e.g. the loss, and call .item() outside the jitted function)"
    )


def _unflatten(spec, leaves):
    if spec == "T":
        return next(leaves)
    if spec is None:
        return None
    kind, items = spec
    if kind == "dict":
        return {k: _unflatten(v, leaves) for k, v in items}
    seq = [_unflatten(o, leaves) for o in items]
    return tuple(seq) if kind == "tuple" else seq


# --- the decorator -----------------------------------------------------------------------------------------
@dataclass
class _Entry:
    calls: int = 0
    first: _Capture | None = None
    plan: _Plan | None = None
    passthrough: bool = False


class jit:  # noqa: N801 - a decorator, spelled like functools.cache
    """Decorator: replay the kernels of `fn` on later calls with inputs of the same shapes (see the module doc)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.entries: dict[tuple, _Entry] = {}
        functools.update_wrapper(self, fn)

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self.__call__, obj)

    def reset(self) -> None:
        """Forget every capture (the next calls capture again)."""
        self.entries.clear()

    def __call__(self, *args, **kwargs):
        if jit_trace.ACTIVE is not None or switch("WB_JIT", "1") == "0":
            return self.fn(*args, **kwargs)  # inside another capture (it records these kernels), or turned off
        tensors, key = _inputs(args, kwargs)
        if tensors:
            tensors[0].realize(*tensors[1:])
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry()
            if len(self.entries) == MANY_KEYS:
                warnings.warn(
                    f"jit: {self.__name__} was called with {MANY_KEYS} different input shapes or non-Tensor arguments;"
                    " each starts a capture of its own, so a Python number that changes every call (pass it as a"
                    " Tensor) keeps the jit from replaying",
                    stacklevel=2,
                )
        if entry.plan is not None:
            return entry.plan.replay(tensors)
        entry.calls += 1
        if entry.passthrough or entry.calls == 1:  # the warm-up call compiles and creates state
            result = self.fn(*args, **kwargs)
            _flatten(result, [])  # refuse outputs a replay could not give from the first call on
            return result
        result, cap = self._capture(tensors, args, kwargs)
        if any(st.device.startswith("SIM") for st in cap.rec.steps):
            warnings.warn("jit: SIM kernels are not replayed; the function runs normally on every call", stacklevel=2)
            entry.passthrough = True
            return result
        if entry.first is None:
            entry.first = cap
            return result
        first, entry.first = entry.first, None
        entry.plan = _Plan(first, cap, len(tensors))
        return result

    def _capture(self, tensors: list[Tensor], args, kwargs):
        bound, params = _bound_at_start(tensors)
        grads_before = {id(p): p.grad for p in params}
        rec = _Recorder()
        jit_trace.ACTIVE = rec
        try:
            result = self.fn(*args, **kwargs)
            outputs: list[Tensor] = []
            spec = _flatten(result, outputs)
            grads = [(p, p.grad) for p in params if p.grad is not grads_before[id(p)]]
            pending = outputs + [t for t, _ in rec.assigned.values()] + [g for _, g in grads if g is not None]
            if pending:
                pending[0].realize(*pending[1:])
        finally:
            jit_trace.ACTIVE = None
        return result, _Capture(rec, bound, tensors, outputs, spec, grads)


def _inputs(args: tuple, kwargs: dict) -> tuple[list[Tensor], tuple]:
    """The Tensor arguments in order, and the cache key: their shapes/dtypes/devices and the other arguments."""
    tensors, key = [], []
    for name, v in [(i, a) for i, a in enumerate(args)] + sorted(kwargs.items()):
        if isinstance(v, Tensor):
            tensors.append(v)
            key.append((name, "T", v.shape, v.dtype.name, v.device))
        else:
            try:
                hash(v)
            except TypeError:
                raise JitError(
                    f"jit: argument {name!r} is a {type(v).__name__}, neither a Tensor nor hashable; pass Tensors "
                    "as separate arguments"
                ) from None
            key.append((name, v))
    return tensors, (tuple(key), GradMode.enabled, Tensor.training)
