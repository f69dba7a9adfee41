"""Load-time graph rewrites on constants: inference BatchNormalization folded into the Conv before it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx


def fold_batchnorm_into_conv(graph: onnx.GraphProto, skip: set[int],
                             consts: dict[str, np.ndarray]) -> tuple[onnx.GraphProto, dict[str, np.ndarray]]:
    """A graph of the nodes not in skip (folded already) where each `Conv -> BatchNormalization` pair with
    constant weights and statistics is one Conv with scaled weights and a shifted bias (the Conv's output
    feeding only that BatchNormalization), and the constants with the new weights and biases added.
    y = (conv(x, w) + b - mean) * s + beta with s = scale / sqrt(var + eps) is conv(x, w * s) + (b - mean) * s
    + beta, one kernel epilogue less and no per-call arithmetic on the statistics."""
    nodes = [n for i, n in enumerate(graph.node) if i not in skip]
    uses = Counter(name for n in nodes for name in n.input)
    uses.update(o.name for o in graph.output)
    has_subgraphs = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                        for n in nodes for a in n.attribute)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    consts = dict(consts)
    out: list[onnx.NodeProto | None] = list(nodes)
    for i, bn in enumerate(nodes):
        if has_subgraphs or bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        j = producer.get(bn.input[0])
        if j is None or nodes[j].op_type != "Conv" or uses[bn.input[0]] != 1 or out[j] is None:
            continue
        conv = nodes[j]
        params = list(bn.input[1:5])
        w_name = conv.input[1]
        b_name = conv.input[2] if len(conv.input) > 2 else ""
        if len(params) != 4 or any(p not in consts for p in [*params, w_name]) or (b_name and b_name not in consts):
            continue
        w = consts[w_name]
        if w.dtype.kind != "f" or any(consts[p].dtype.kind != "f" for p in params):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale, beta, mean, var = (consts[p].astype(np.float64) for p in params)
        if any(v.shape != (w.shape[0],) for v in (scale, beta, mean, var)):  # not per output channel
            continue
        s = scale / np.sqrt(var + eps)
        b = consts[b_name].astype(np.float64) if b_name else np.zeros_like(s)
        new_w, new_b = f"{bn.output[0]}::conv_bn_weight", f"{bn.output[0]}::conv_bn_bias"
        consts[new_w] = (w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        consts[new_b] = ((b - mean) * s + beta).astype(w.dtype)
        fused = onnx.NodeProto()
        fused.CopyFrom(conv)
        del fused.input[:]
        fused.input.extend([conv.input[0], new_w, new_b])
        fused.output[0] = bn.output[0]
        out[j], out[i] = None, fused  # at the BatchNormalization's place: every consumer comes after it
    plan = onnx.GraphProto()
    plan.name = graph.name
    plan.node.extend(n for n in out if n is not None)
    plan.output.extend(graph.output)
    return plan, consts
