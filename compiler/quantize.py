"""Post-training quantization as a compiler pass: a float layer model in, an int8 Tensor graph out.

- Weights: int8, one scale per output channel (symmetric, max |w| / 127).
- Activations: one int8 scale per tensor, calibrated on sample inputs: `minmax` (max |a| / 127) or
  `percentile` (the p-th percentile of |a|, clipping outliers).
- Each Linear/Conv2d (with a following ReLU fused) becomes: int8 x int8 products accumulated in int32, plus
  an int32 bias, then requantization by a per-channel integer multiplier and one rounding right shift
  (`(acc * M + 2^(S-1)) >> S`, optionally after a rounding pre-shift), clamped to int8. On the accelerator
  this epilogue runs on the vector unit right after the GEMM. M and S are chosen so that no int32
  intermediate can overflow for any int8 input: the bound is 128 * sum |w_q| + |bias_q| per channel.
- The last layer keeps its int32 accumulator; the host scales it back to float (the logits).
- int4 weight-only (group-wise scales along the input axis) is evaluated for accuracy with fake-quantized
  float weights; it does not run on the accelerator (the ISA has no int4 weight load).
- A language model (the char GPT, `QuantizedGPT`): every Linear of its blocks and its tied head become int8
  GEMMs with float in and out (as in a GPT-2 block); the report adds held-out perplexity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dtypes import dtypes
from .models import builtin as M
from .models.gpt import GPT
from .tensor import Tensor

__all__ = ["QLayer", "QPool", "QFlatten", "QuantizedModel", "quantize", "QuantReport", "quantize_report",
           "fake_quantize_int4", "requant_params", "QLinearFloatIO", "QuantizedBlock", "QuantizedGPT",
           "gpt_quantize_report"]

PRECISION_BITS = 14  # the multiplier keeps at least this many bits when the accumulator bound allows


def _act_scale(a: np.ndarray, method: str, percentile: float) -> float:
    mag = np.abs(a).reshape(-1)
    top = float(np.max(mag)) if method == "minmax" else float(np.percentile(mag, percentile))
    return (top or 1.0) / 127.0


def requant_params(r: np.ndarray, bound: np.ndarray) -> tuple[int, np.ndarray, int]:
    """(pre_shift P, multipliers M, shift S) with M / 2^(S+P) ~ r and no int32 overflow for |acc| <= bound.

    The largest S whose products fit is taken; a pre-shift of the accumulator is added only when the bound
    leaves the multiplier fewer than PRECISION_BITS bits.
    """
    best = None
    for p in range(0, 24):
        b = (bound.astype(np.int64) >> p) + 1
        for s in range(31, 0, -1):
            m = np.round(r * 2.0 ** (s + p)).astype(np.int64)
            if int(np.max(b * m)) + (1 << (s - 1)) < 2**31 and int(m.max()) < 2**31:
                if best is None:
                    best = (p, m, s)
                if m.max() >= 2**PRECISION_BITS:
                    return p, m.astype(np.int32), s
                break
    if best is None:
        raise ValueError("requantization does not fit int32 at any shift")
    return best[0], best[1].astype(np.int32), best[2]


@dataclass
class QLayer:
    """An int8 Linear or Conv2d with fused bias, ReLU and requantization (or int32 output when last)."""

    kind: str  # "linear" or "conv"
    w_q: np.ndarray  # int8: (out, in) or (cout, cin, k, k)
    bias_q: np.ndarray  # int32 per output channel
    scale_in: float
    scale_w: np.ndarray  # float per output channel
    scale_out: float | None  # None: last layer, int32 out
    relu: bool
    pre_shift: int = 0
    mult: np.ndarray | None = None  # int32 per channel
    shift: int = 0
    stride: int = 1
    padding: int = 0
    _tensors: dict = field(default_factory=dict, repr=False)

    def _t(self, name: str, arr: np.ndarray, device: str, shape: tuple) -> Tensor:
        key = (name, device)
        if key not in self._tensors:
            self._tensors[key] = Tensor(arr.reshape(shape), device=device)
        return self._tensors[key]

    @property
    def requant(self) -> bool:
        return self.scale_out is not None

    def __call__(self, x: Tensor) -> Tensor:
        dev = x.device
        ch = (1, -1, 1, 1) if self.kind == "conv" else (-1,)
        w = self._t("w", self.w_q, dev, self.w_q.shape)
        acc = x.conv2d(w, stride=self.stride, padding=self.padding) if self.kind == "conv" else x.linear(w)
        acc = acc + self._t("b", self.bias_q, dev, ch)
        if not self.requant:
            return acc
        if self.pre_shift:
            acc = (acc + (1 << (self.pre_shift - 1))) >> self.pre_shift
        y = (acc * self._t("m", self.mult, dev, ch) + (1 << (self.shift - 1))) >> self.shift
        return y.clip(0 if self.relu else -128, 127).cast(dtypes.int8)


class QPool:
    """Max pooling on int8 values (exact: max commutes with the monotonic requantization)."""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, x: Tensor) -> Tensor:
        return x.cast(dtypes.int32).max_pool2d(self.k).cast(dtypes.int8)


class QFlatten:
    def __call__(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


@dataclass
class QuantizedModel:
    """The int8 graph of a model: int8 in, int32 logits out; the host quantizes inputs and scales outputs."""

    name: str
    layers: list
    scale_in: float
    out_scale: np.ndarray  # per output channel: float = int32 * out_scale
    method: str

    def __call__(self, x_q: Tensor) -> Tensor:
        for layer in self.layers:
            x_q = layer(x_q)
        return x_q

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input to int8 with the calibrated input scale (host)."""
        return np.clip(np.round(x / self.scale_in), -128, 127).astype(np.int8)

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        """int32 logits to float (host)."""
        return out.astype(np.float32) * self.out_scale.astype(np.float32)

    def run(self, x: np.ndarray, device: str = "REF") -> np.ndarray:
        """Quantize x, run the int8 graph on device, dequantize."""
        return self.dequantize(self(Tensor(self.quantize_input(x), device=device)).numpy())


def _layer_float_ops(model: M.Sequential) -> list:
    """(layer, fused relu) groups of the float model, pools and flattens kept."""
    out, i, layers = [], 0, model.layers
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, (M.Linear, M.Conv2d)):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], M.ReLU)
            out.append((layer, relu))
            i += 2 if relu else 1
        elif isinstance(layer, (M.MaxPool2d, M.Flatten)):
            out.append((layer, False))
            i += 1
        else:
            raise ValueError(f"quantize: layer {type(layer).__name__} of {model.name} has no int8 form "
                             "(supported: Linear, Conv2d, ReLU, MaxPool2d, Flatten)")
    return out


class QLinearFloatIO:
    """A Linear inside a float model (a transformer block): int8 GEMM, float in and out.

    x is quantized with its calibrated per-tensor scale (round half up, clamp), multiplied by the per-channel
    int8 weights with int32 accumulation, and scaled back to float with the bias added. The GEMM runs on an
    int8 array; the float quantize/dequantize steps run wherever float ops can (the host on int8 designs).
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, x_calib: np.ndarray, method: str,
                 percentile: float):
        self.s_w = np.maximum(np.abs(weight).max(axis=1), 1e-12) / 127.0
        self.w_q = np.clip(np.round(weight / self.s_w[:, None]), -127, 127).astype(np.int8)
        self.s_in = _act_scale(x_calib, method, percentile)
        self.scale = (self.s_in * self.s_w).astype(np.float32)
        self.bias = None if bias is None else bias.astype(np.float32)
        self._tensors: dict = {}

    def _t(self, name: str, device: str) -> Tensor:
        if (name, device) not in self._tensors:
            self._tensors[(name, device)] = Tensor(getattr(self, name), device=device)
        return self._tensors[(name, device)]

    def __call__(self, x: Tensor) -> Tensor:
        dev = x.device
        xq = (x * (1.0 / self.s_in) + 0.5).floor().clip(-128, 127).cast(dtypes.int8)
        y = xq.linear(self._t("w_q", dev)).cast(dtypes.float32) * self._t("scale", dev)
        return y + self._t("bias", dev) if self.bias is not None else y


_BLOCK_LINEARS = (("attn", "qkv"), ("attn", "proj"), ("mlp", "fc"), ("mlp", "proj"))


class QuantizedBlock:
    """A GPT-2 block whose four Linears are int8 GEMMs (QLinearFloatIO); float in and out."""

    def __init__(self, model: M.Sequential, calib: np.ndarray, method: str, percentile: float):
        self.name, self.block, self.method = model.name, model.layers[0], method
        ref = self._nn_block("REF")
        seen: dict[tuple, np.ndarray] = {}
        originals = {p: getattr(getattr(ref, p[0]), p[1]) for p in _BLOCK_LINEARS}
        for path, lin in originals.items():
            def record(x, lin=lin, path=path):  # calibration: remember each Linear's float input
                seen[path] = x.numpy()
                return lin(x)

            setattr(getattr(ref, path[0]), path[1], record)
        try:
            self.block(Tensor(calib, device="REF")).realize()
        finally:
            for path, lin in originals.items():
                setattr(getattr(ref, path[0]), path[1], lin)
        self.linears = {path: QLinearFloatIO(lin.weight.numpy(), None if lin.bias is None else lin.bias.numpy(),
                                             seen[path], method, percentile) for path, lin in originals.items()}

    def _nn_block(self, device: str):
        if device not in self.block.blocks:
            self.block(Tensor(np.zeros((1, 1, self.block.args[0]), np.float32), device=device))
        return self.block.blocks[device]

    def __call__(self, x: Tensor) -> Tensor:
        nb = self._nn_block(x.device)
        saved = {p: getattr(getattr(nb, p[0]), p[1]) for p in _BLOCK_LINEARS}
        for p, q in self.linears.items():
            setattr(getattr(nb, p[0]), p[1], q)
        try:
            return nb(x)
        finally:
            for p, lin in saved.items():
                setattr(getattr(nb, p[0]), p[1], lin)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return x  # float in: each Linear quantizes its own input

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        return out


class QuantizedGPT:
    """A GPT whose block Linears and tied head are int8 GEMMs (QLinearFloatIO); token ids in, float logits out.

    Embeddings, layer norms, attention scores, softmax and GELU stay float (on the host of an int8 design).
    Calibrated on `calib` token windows (B, T): each GEMM's float input there sets its activation scale.
    """

    def __init__(self, model: GPT, calib: np.ndarray, method: str, percentile: float):
        self.config, self.method = model.config, method
        self.state = {k: v.numpy() for k, v in model.state_dict().items()}
        ref = self._float_copy("REF")  # a private copy: its Linears are wrapped for calibration
        originals = {(i, *p): getattr(getattr(blk, p[0]), p[1]) for i, blk in enumerate(ref.h) for p in _BLOCK_LINEARS}
        seen: dict[tuple, np.ndarray] = {}
        for key, lin in originals.items():
            def record(x, lin=lin, key=key):  # calibration: remember each Linear's float input
                seen[key] = x.numpy()
                return lin(x)

            setattr(getattr(ref.h[key[0]], key[1]), key[2], record)
        hidden = ref.hidden(Tensor(np.asarray(calib, np.int32), device="REF")).numpy()
        self.linears = {key: QLinearFloatIO(lin.weight.numpy(), None if lin.bias is None else lin.bias.numpy(),
                                            seen[key], method, percentile) for key, lin in originals.items()}
        self.head = QLinearFloatIO(self.state["wte.weight"], None, hidden, method, percentile)
        self._copies: dict[str, GPT] = {}

    def _float_copy(self, device: str) -> GPT:
        g = GPT(self.config, device=device)
        g.load_state_dict(self.state)
        g.eval()
        return g

    def _on(self, device: str) -> GPT:
        """The model on device with its Linears replaced by the int8 ones (made once per device)."""
        if device not in self._copies:
            g = self._float_copy(device)
            for (i, part, name), q in self.linears.items():
                setattr(getattr(g.h[i], part), name, q)
            self._copies[device] = g
        return self._copies[device]

    def __call__(self, idx: Tensor) -> Tensor:
        return self.head(self._on(idx.device).hidden(idx))


def quantize(model: M.Sequential, calib: np.ndarray, method: str = "minmax", percentile: float = 99.99):
    """Post-training int8 quantization of a layer model, calibrated on `calib` (a float input batch).

    Layer models (Linear/Conv2d/ReLU/MaxPool2d/Flatten) become a QuantizedModel, int8 end to end; a GPT-2
    block becomes a QuantizedBlock whose Linears are int8 GEMMs between float ops; a GPT (calib: token
    windows) becomes a QuantizedGPT.
    """
    if method not in ("minmax", "percentile"):
        raise ValueError(f"quantize: method {method!r} is not 'minmax' or 'percentile'")
    if isinstance(model, GPT):
        return QuantizedGPT(model, calib, method, percentile)
    if len(model.layers) == 1 and isinstance(model.layers[0], M._Block):
        return QuantizedBlock(model, calib, method, percentile)
    groups = _layer_float_ops(model)
    # calibration: the float activations at every quantization point (REF, numpy)
    x = Tensor(calib, device="REF")
    s_in = _act_scale(calib, method, percentile)
    scale = s_in
    layers: list = []
    weighted = [g for g in groups if isinstance(g[0], (M.Linear, M.Conv2d))]
    last = weighted[-1][0]
    for layer, relu in groups:
        y = layer(x)
        if relu:
            y = y.relu()
        y = y.realize()
        if isinstance(layer, M.MaxPool2d):
            layers.append(QPool(layer.k))
        elif isinstance(layer, M.Flatten):
            layers.append(QFlatten())
        else:
            w = layer.weight.reshape(layer.weight.shape[0], -1)
            s_w = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
            w_q = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(np.int8).reshape(layer.weight.shape)
            bias_q = np.round(layer.bias / (scale * s_w)).astype(np.int64)
            bias_q = np.clip(bias_q, -(2**30), 2**30).astype(np.int32)
            kind = "conv" if isinstance(layer, M.Conv2d) else "linear"
            extra = dict(stride=layer.stride, padding=layer.padding) if kind == "conv" else {}
            if layer is last:
                layers.append(QLayer(kind, w_q, bias_q, scale, s_w, None, relu, **extra))
                out_scale = scale * s_w
            else:
                s_out = _act_scale(y.numpy(), method, percentile)
                bound = 128 * np.abs(w_q.reshape(w_q.shape[0], -1).astype(np.int64)).sum(axis=1) + np.abs(bias_q)
                p, mult, shift = requant_params(scale * s_w / s_out, bound)
                layers.append(QLayer(kind, w_q, bias_q, scale, s_w, s_out, relu, p, mult, shift, **extra))
                scale = s_out
        x = y
    return QuantizedModel(model.name, layers, s_in, out_scale, method)


def fake_quantize_int4(w: np.ndarray, group: int = 32) -> np.ndarray:
    """w with int4 weight-only quantization: symmetric [-7, 7] per group of `group` inputs per output row."""
    flat = w.reshape(w.shape[0], -1)
    n = flat.shape[1]
    pad = (-n) % group
    g = np.pad(flat, ((0, 0), (0, pad))).reshape(flat.shape[0], -1, group)
    s = np.maximum(np.abs(g).max(axis=2, keepdims=True), 1e-12) / 7.0
    q = np.clip(np.round(g / s), -7, 7) * s
    return q.reshape(flat.shape[0], -1)[:, :n].reshape(w.shape).astype(np.float32)


@dataclass
class QuantReport:
    """Accuracy of a quantized model against its float reference on the same inputs (measured, never assumed)."""

    model: str
    scheme: str
    runs_on: str
    samples: int
    cosine: float
    max_abs_error: float
    relative_error: float  # ||q - f|| / ||f||
    top1_agreement: float | None  # classifiers: fraction of samples whose arg-max matches
    perplexity: float | None = None  # language models: the quantized model's held-out perplexity
    float_perplexity: float | None = None  # ... and the float model's on the same text

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _compare(model: str, scheme: str, runs_on: str, ref: np.ndarray, got: np.ndarray, classifier: bool) -> QuantReport:
    f, q = ref.astype(np.float64).reshape(ref.shape[0], -1), got.astype(np.float64).reshape(ref.shape[0], -1)
    cos = float(np.sum(f * q) / (np.linalg.norm(f) * np.linalg.norm(q) or 1.0))
    top1 = float(np.mean(f.argmax(1) == q.argmax(1))) if classifier else None
    return QuantReport(model, scheme, runs_on, ref.shape[0], cos, float(np.max(np.abs(f - q))),
                       float(np.linalg.norm(f - q) / (np.linalg.norm(f) or 1.0)), top1)


def quantize_report(model: M.Sequential, x: np.ndarray, calib: np.ndarray | None = None,
                    device: str = "REF", int4_group: int = 32) -> list[QuantReport]:
    """Float vs int8 (minmax and percentile calibration, run on `device`) vs int4 weight-only (REF), per model.

    int4 is evaluated on layer models (mlp, cnn); a GPT-2 block reports int8 only.
    """
    calib = x if calib is None else calib
    ref = model(Tensor(x, device="REF")).numpy()
    reports = []
    for method in ("minmax", "percentile"):
        qm = quantize(model, calib, method)
        got = qm.dequantize(qm(Tensor(qm.quantize_input(x), device=device)).numpy())
        what = "int8 Linears (float elsewhere)" if isinstance(qm, QuantizedBlock) else "int8 w8a8 per-channel"
        reports.append(_compare(model.name, f"{what}, {method} calibration", device, ref, got, model.classifier))
    saved = [(layer, layer.weight) for layer in model.layers if isinstance(layer, (M.Linear, M.Conv2d))]
    if not saved:
        return reports
    try:
        for layer, w in saved:
            layer.weight = fake_quantize_int4(w, int4_group)
            layer.__dict__.pop("_tensors", None)
        got = model(Tensor(x, device="REF")).numpy()
    finally:
        for layer, w in saved:
            layer.weight = w
            layer.__dict__.pop("_tensors", None)
    reports.append(_compare(model.name, f"int4 weight-only, groups of {int4_group}", "host (REF): no int4 load "
                            "in the ISA", ref, got, model.classifier))
    return reports


def gpt_quantize_report(model: GPT, val_ids: np.ndarray, calib_ids: np.ndarray, device: str = "REF",
                        windows: int = 64, batch: int = 16, calib_windows: int = 8,
                        progress=None) -> list[QuantReport]:
    """Float vs int8 (w8a8, minmax and percentile, run on `device`) vs int4 weight-only (REF) for a GPT.

    int8: every block Linear and the tied head are int8 GEMMs (QuantizedGPT); int4: every weight of two or
    more dimensions (the tied embedding too) in groups of 32, as `quantize_weights.quantize_state`.

    Each form predicts the same `windows` evenly spaced held-out windows of val_ids (block_size characters
    each); the report gives its perplexity next to the float model's, and cosine and max |error| of its
    logits against the float logits. Calibration uses `calib_windows` windows of calib_ids (other text).
    progress(label) is called before each form is evaluated.
    """
    from .models.char_gpt import eval_windows, logits_of, perplexity_from_logits
    from .quantize_weights import quantize_state

    block, batch = model.config.block_size, min(batch, windows)
    wins = eval_windows(val_ids, block, batch, -(-windows // batch))  # whole batches: windows rounded up
    targets = np.concatenate([y for _, y in wins])
    calib = np.concatenate([x for x, _ in eval_windows(calib_ids, block, calib_windows, 1)])
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    step = progress or (lambda label: None)

    def float_model(weights: dict) -> GPT:
        g = GPT(model.config, device="REF")
        g.load_state_dict(weights)
        return g.eval()

    step("float32 (REF)")
    ref = logits_of(float_model(state), wins, "REF")
    ref_ppl = perplexity_from_logits(ref, targets)

    def row(scheme: str, runs_on: str, got: np.ndarray) -> QuantReport:
        # one sample per predicted character: cosine and max |error| over all of their logits
        r = _compare("char-gpt", scheme, runs_on, ref.reshape(-1, ref.shape[-1]), got.reshape(-1, got.shape[-1]),
                     False)
        r.perplexity, r.float_perplexity = perplexity_from_logits(got, targets), ref_ppl
        return r

    reports = []
    for method in ("minmax", "percentile"):
        step(f"int8 {method} ({device})")
        qg = quantize(model, calib, method)
        reports.append(row(f"int8 w8a8, {method}", device, logits_of(qg, wins, device)))
    step("int4 weight-only (REF)")
    int4 = float_model(quantize_state(state, "int4"))
    reports.append(row("int4 weights, groups of 32", "host (REF): no int4 load in the ISA",
                       logits_of(int4, wins, "REF")))
    return reports
