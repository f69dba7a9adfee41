"""`OnnxModel`: an ONNX graph checked at load time and run node by node as lazy `compiler.Tensor` operations."""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from compiler.tensor import Tensor

from . import ops_attention  # noqa: F401 - registers the Attention handler
from .errors import OnnxImportError
from .fuse import fold_batchnorm_into_conv
from .ops import HANDLERS, HOST_MAX, NodeCtx, handler_for
from .replay import Replayer, replayable, untraced
from .types import held_array, held_dtype, np_dtype, type_name

DEFAULT_DOMAINS = ("", "ai.onnx")


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in DEFAULT_DOMAINS:
            return int(o.version)
    return 1


def _check_graph(graph: onnx.GraphProto, opset: int, where: str = "") -> None:
    """Every node's op has a handler at this opset (subgraphs of If included), or OnnxImportError now."""
    for node in graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            raise OnnxImportError(f"node {node.name or '(unnamed)'}{where}: op {node.domain}.{node.op_type} is from"
                                  f" domain {node.domain!r}; only the default ONNX domain is supported")
        handler_for(node.op_type, opset, node.name)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _check_graph(a.g, opset, f" (inside {node.op_type} {node.name or '(unnamed)'})")


def _value_info_shape(vi: onnx.ValueInfoProto) -> tuple:
    """A graph input's shape: ints for fixed dims, the dim_param name (or None) for dynamic ones."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return ()
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
                 for d in t.shape.dim)


class OnnxModel:
    """A loaded ONNX model: `model(x, ...)` or `model(name=x)` returns its outputs as lazy Tensors on `device`;
    `model.run({name: array})` returns numpy arrays with the dtypes the graph declares."""

    def __init__(self, model: onnx.ModelProto | str | os.PathLike | bytes, device: str | None = None,
                 replay: bool = True):
        if isinstance(model, (str, os.PathLike)):
            try:
                model = onnx.load(os.fspath(model))
            except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as e:
                raise OnnxImportError(f"{model}: cannot read an ONNX model ({e})") from None
        elif isinstance(model, bytes):
            model = onnx.load_from_string(model)
        self.proto: onnx.ModelProto = model
        self.graph = model.graph
        self.opset = _opset(model)
        self.device = device
        _check_graph(self.graph, self.opset)
        self.initializers: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.graph.initializer
        }
        for sp in self.graph.sparse_initializer:
            raise OnnxImportError(f"initializer {sp.values.name}: sparse initializers are not supported")
        self.inputs = [i for i in self.graph.input if i.name not in self.initializers]
        self.input_names = [i.name for i in self.inputs]
        self.output_names = [o.name for o in self.graph.output]
        self._weights: dict[tuple, Any] = {}
        # load-time work, done once instead of on every call: values computed from initializers and Constants
        # alone (folded: name -> host array), and their device copies ((name, device) -> Tensor)
        self.constants, folded = fold_constants(self.graph, self.initializers, self.opset)
        # what a call runs: the nodes not folded, Conv + BatchNormalization pairs as one Conv
        self.plan, known = fold_batchnorm_into_conv(self.graph, folded, self.initializers | self.constants)
        self.constants = {k: v for k, v in known.items() if k not in self.initializers}
        self._const_tensors: dict[tuple, Tensor] = {}
        self.replay = replay  # run() replays the kernels of repeated input signatures (compiler/onnx/replay.py)
        self._replayer = Replayer(self.run_inputs)

    # --- description -------------------------------------------------------------------------------
    def input_specs(self) -> list[tuple[str, tuple, np.dtype]]:
        """(name, shape with None/str for dynamic dims, numpy dtype) of each graph input the caller feeds."""
        return [(i.name, _value_info_shape(i), np_dtype(i.type.tensor_type.elem_type)) for i in self.inputs]

    def output_dtypes(self) -> list[np.dtype | None]:
        """The numpy dtype each graph output declares (None where it declares none)."""
        return [np_dtype(o.type.tensor_type.elem_type) if o.type.tensor_type.elem_type else None
                for o in self.graph.output]

    # --- running -----------------------------------------------------------------------------------
    def __call__(self, *args, device: str | None = None, **kwargs) -> list[Tensor | np.ndarray]:
        """The outputs (Tensors, or host arrays where the output is shape arithmetic) for positional or named
        inputs (Tensors or numpy arrays)."""
        if len(args) > len(self.input_names):
            raise OnnxImportError(f"model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}),"
                                  f" got {len(args)}")
        feeds = dict(zip(self.input_names, args, strict=False)) | kwargs
        return self._run_graph(feeds, device or self.device)

    def run(self, feeds: dict[str, Any], device: str | None = None) -> dict[str, np.ndarray]:
        """Run on device and return {output name: numpy array} in the dtypes the graph declares. Repeated calls
        with inputs of the same shapes and dtypes replay the recorded kernels (see compiler/onnx/replay.py)."""
        device = device or self.device
        feeds = dict(feeds)
        if self.replay and replayable(feeds, self.initializers, device):
            outs = self._replayer.run(self._input_tensors(feeds, device), device)
        else:
            outs = self._run_graph(feeds, device)
        tens = [o for o in outs if isinstance(o, Tensor)]
        if tens:
            tens[0].realize(*tens[1:])
        result = {}
        for name, o, dt in zip(self.output_names, outs, self.output_dtypes(), strict=True):
            arr = o.numpy() if isinstance(o, Tensor) else np.asarray(o)
            result[name] = arr.astype(dt) if dt is not None and dt.kind != "O" else arr
        return result

    def _input_tensors(self, feeds: dict[str, Any], device: str | None) -> list:
        """Each graph input's fed value on device, in graph order, after checking names, shapes and dtypes."""
        for name in feeds:
            if name not in self.input_names and name not in self.initializers:
                raise OnnxImportError(f"input {name!r}: the model has no such input (inputs: "
                                      f"{', '.join(self.input_names)})")
        out = []
        for vi in self.inputs:
            if vi.name not in feeds:
                raise OnnxImportError(f"input {vi.name!r} not given (shape {_value_info_shape(vi)},"
                                      f" {type_name(vi.type.tensor_type.elem_type)})")
            out.append(self._feed(vi, feeds[vi.name], device))
        return out

    def _run_graph(self, feeds: dict[str, Any], device: str | None) -> list:
        return self.run_inputs(self._input_tensors(feeds, device), device, feeds)

    def run_inputs(self, inputs: list, device: str | None, feeds: dict | None = None,
                   read_back: list | None = None) -> list:
        """The graph's outputs for the input Tensors (in graph order); feeds may override initializers;
        read_back, when given, collects the names of the nodes that read a device value on the host."""
        feeds = feeds or {}
        env: dict[str, Any] = dict(zip(self.input_names, inputs, strict=True))
        for name, arr in self.initializers.items():
            env[name] = feeds[name] if name in feeds else self._weight(name, arr, device)
        if any(name in feeds for name in self.initializers):  # an initializer overridden: nothing was folded
            return run_nodes(self.graph, env, self.opset, device, read_back=read_back)
        env.update(self.constants)
        return run_nodes(self.plan, env, self.opset, device, const_tensors=self._const_tensors,
                         const_names=self.constants.keys() | self.initializers, read_back=read_back)

    def _weight(self, name: str, arr: np.ndarray, device: str | None) -> Any:
        """Small initializers stay on the host (shape arithmetic); large ones are uploaded once per device."""
        if arr.size <= HOST_MAX or arr.dtype.kind not in "biuf":
            return arr
        key = (name, device)
        if key not in self._weights:
            self._weights[key] = Tensor(held_array(arr, f"initializer {name!r}")[0], device=device)
        return self._weights[key]

    def _feed(self, vi: onnx.ValueInfoProto, x: Any, device: str | None) -> Any:
        if isinstance(x, Tensor):
            return x.to(device) if device is not None and x.device != Tensor.zeros(1, device=device).device else x
        arr = np.asarray(x)
        want = _value_info_shape(vi)
        if want and (len(want) != arr.ndim or any(isinstance(w, int) and w and w != s
                                                  for w, s in zip(want, arr.shape, strict=False))):
            raise OnnxImportError(f"input {vi.name!r}: shape {arr.shape} does not fit the model's {want}")
        elem = vi.type.tensor_type.elem_type
        if elem:
            held_dtype(elem, f"input {vi.name!r}")
            arr = arr.astype(np_dtype(elem), copy=False)
        held, dt = held_array(arr, f"input {vi.name!r}")
        return Tensor(held, device=device, dtype=dt)


class _WatchedCtx(NodeCtx):
    """A NodeCtx that notes in read_back each node that reads a device Tensor's values on the host (a shape
    operand fed as a graph input, an If condition): a replay could not see those values change."""

    def __init__(self, *args, read_back: list):
        super().__init__(*args)
        self.read_back = read_back

    def host(self, i: int) -> np.ndarray:
        if isinstance(self.ins[i], Tensor):
            self.read_back.append(self.name)
        return super().host(i)


def run_nodes(graph: onnx.GraphProto, env: dict[str, Any], opset: int, device: str | None,
              skip: frozenset | set = frozenset(), const_tensors: dict | None = None,
              const_names: Any = (), read_back: list | None = None) -> list:
    """Run a graph's nodes in order on env (name -> Tensor or host array) and return its outputs. Nodes whose
    index is in skip are already in env (folded at load time); host arrays named in const_names become device
    Tensors once per device, kept in const_tensors; read_back, when given, collects the names of the nodes
    that read device values on the host (subgraphs included)."""
    sub = run_nodes if read_back is None else functools.partial(run_nodes, read_back=read_back)
    for i, node in enumerate(graph.node):
        if i in skip:
            continue
        handler = handler_for(node.op_type, opset, node.name)
        ins = [env[n] if n else None for n in node.input]
        for n in node.input:
            if n and n not in env:
                raise OnnxImportError(f"node {node.name or node.op_type}: input {n!r} is not produced by any"
                                      " earlier node, initializer or graph input")
        host = all(v is None or (isinstance(v, np.ndarray) and v.size <= HOST_MAX) for v in ins) and any(
            v is not None for v in ins) and node.op_type not in ("RandomNormal", "RandomUniform")
        if not host and const_tensors is not None and device is not None:
            ins = [_const_tensor(n, v, device, const_tensors) if isinstance(v, np.ndarray) and n in const_names
                   else v for n, v in zip(node.input, ins, strict=True)]
        args = (node, ins, opset, device, env, sub)
        ctx = NodeCtx(*args) if read_back is None else _WatchedCtx(*args, read_back=read_back)
        if host and node.op_type != "If":
            ctx.device = "REF"  # shape arithmetic on small host values: evaluated now, kept on the host
            with untraced():  # part of building the graph, not a kernel a replay should run again
                outs = handler(ctx)
        else:
            outs = handler(ctx)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        for name, val in zip(node.output, outs, strict=False):
            if not name:
                continue
            if host and isinstance(val, Tensor):
                with untraced():
                    val = val.numpy()
            env[name] = val
    missing = [o.name for o in graph.output if o.name not in env]
    if missing:
        raise OnnxImportError(f"graph outputs {missing} are not produced by any node")
    return [env[o.name] for o in graph.output]


def _const_tensor(name: str, arr: np.ndarray, device: str, cache: dict) -> Any:
    """The device Tensor of a constant host value, made on first use (no upload on later calls)."""
    key = (name, device)
    if key not in cache:
        try:
            held, dt = held_array(arr, f"constant {name!r}")
        except OnnxImportError:  # not a tensor the device can hold: the handler decides what to do with it
            return arr
        cache[key] = Tensor(held, device=device, dtype=dt)
    return cache[key]


# ops whose output is not a function of their inputs alone, or that run subgraphs: never folded
_NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
               "Multinomial", "If", "Loop", "Scan"}


def fold_constants(graph: onnx.GraphProto, initializers: dict[str, np.ndarray],
                   opset: int) -> tuple[dict[str, np.ndarray], set[int]]:
    """Evaluate (on REF, as host arrays) every node whose inputs are all initializers, Constants or values
    folded before it: ({output name: array}, indices of the folded nodes). A node that fails here is left to
    run (and report its error) at call time."""
    known: dict[str, Any] = dict(initializers)
    consts: dict[str, np.ndarray] = {}
    folded: set[int] = set()
    for i, node in enumerate(graph.node):
        if node.op_type in _NOT_FOLDED or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            continue
        if not all(n == "" or n in known for n in node.input) or (not node.input and node.op_type != "Constant"):
            continue
        try:
            outs = handler_for(node.op_type, opset, node.name)(
                NodeCtx(node, [known[n] if n else None for n in node.input], opset, "REF", known, run_nodes))
        except Exception:  # noqa: BLE001 - left to the run, which reports it with the node's name
            continue
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        vals = [o.numpy() if isinstance(o, Tensor) else o for o in outs]
        if len(vals) < len(node.output) or not all(isinstance(v, np.ndarray) for v in vals):
            continue
        for name, v in zip(node.output, vals, strict=False):
            if name:
                known[name] = consts[name] = v
        folded.add(i)
    return consts, folded


def load_onnx(model: onnx.ModelProto | str | os.PathLike | bytes, device: str | None = None,
              replay: bool = True) -> OnnxModel:
    """Load an ONNX model (path, bytes or ModelProto) and check that every op is supported; with replay,
    `run()` replays the kernels of repeated input shapes (compiler/onnx/replay.py)."""
    return OnnxModel(model, device, replay)


__all__ = ["OnnxModel", "load_onnx", "held_array", "HANDLERS"]
