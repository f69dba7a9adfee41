"""Training pieces: losses, optimizers, nn layers, state dicts, safetensors, weight quantization (REF, numpy
references; PyTorch cross-checks where it is installed)."""

import math

import numpy as np
import pytest

from compiler import Tensor, dtypes, nn
from compiler.autograd import no_grad
from compiler.errors import DTypeError, ShapeError
from compiler.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from compiler.optim import SGD, Adam, AdamW, cosine_lr, linear_warmup, step_lr
from compiler.quantize_weights import compare_formats, fake_quantize, quantize_state, weight_bytes
from compiler.weights import from_bfloat16_bits, load_safetensors, round_to_bfloat16, save_safetensors

R = np.random.default_rng(0)


def T(a, **kw):
    return Tensor(np.asarray(a), device="REF", **kw)


def _log_softmax(x):
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


# --- losses --------------------------------------------------------------------------------------
def test_cross_entropy_with_smoothing_and_ignore_index_matches_numpy():
    x = R.standard_normal((6, 5)).astype(np.float32)
    y = np.array([0, 4, -100, 2, 1, -100], np.int32)
    lp = _log_softmax(x.astype(np.float64))
    keep = y != -100
    ls = 0.1
    per = -((1 - ls) * lp[np.arange(6), np.where(keep, y, 0)] + ls * lp.mean(1))
    want = per[keep].mean()
    logits = T(x, requires_grad=True)
    loss = cross_entropy(logits, T(y), label_smoothing=ls)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-5)
    loss.backward()
    onehot = np.eye(5)[np.where(keep, y, 0)]
    g = (np.exp(lp) - (1 - ls) * onehot - ls / 5) * keep[:, None] / keep.sum()
    np.testing.assert_allclose(logits.grad.numpy(), g, rtol=1e-4, atol=1e-6)


def test_cross_entropy_spatial_and_nll_and_reductions():
    x = R.standard_normal((2, 3, 4)).astype(np.float32)  # (N, C, L)
    y = R.integers(0, 3, (2, 4)).astype(np.int32)
    lp = _log_softmax(np.moveaxis(x, 1, -1).reshape(-1, 3))
    per = -lp[np.arange(8), y.reshape(-1)]
    np.testing.assert_allclose(cross_entropy(T(x), T(y), reduction="none").numpy(), per.reshape(2, 4), rtol=1e-5)
    np.testing.assert_allclose(cross_entropy(T(x), T(y), reduction="sum").item(), per.sum(), rtol=1e-5)
    lp2 = _log_softmax(x[:, :, 0])
    np.testing.assert_allclose(nll_loss(T(lp2), T(y[:, 0])).item(), -lp2[[0, 1], y[:, 0]].mean(), rtol=1e-5)
    with pytest.raises(ShapeError, match="class indices"):
        cross_entropy(T(x[:, :, 0]), T(np.zeros(2, np.float32)))
    with pytest.raises(ShapeError, match="reduction"):
        mse_loss(T(x), T(x), reduction="avg")


def test_mse_and_bce_with_logits_match_numpy():
    a, b = R.standard_normal((4, 3)).astype(np.float32), R.random((4, 3)).astype(np.float32)
    np.testing.assert_allclose(mse_loss(T(a), T(b)).item(), ((a - b) ** 2).mean(), rtol=1e-5)
    x = a * 10  # large logits: the stable form must not overflow
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    want = -(b * np.log(sig + 1e-300) + (1 - b) * np.log(1 - sig + 1e-300))
    np.testing.assert_allclose(binary_cross_entropy_with_logits(T(x), T(b)).item(), want.mean(), rtol=1e-4)
    pw = np.array([2.0, 1.0, 0.5], np.float32)
    want = -(pw * b * np.log(sig + 1e-300) + (1 - b) * np.log(1 - sig + 1e-300))
    got = binary_cross_entropy_with_logits(T(x), T(b), pos_weight=T(pw)).item()
    np.testing.assert_allclose(got, want.mean(), rtol=1e-4)


# --- optimizers ----------------------------------------------------------------------------------
def _run(opt_cls, steps=3, **kw):
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    w = T(w0, requires_grad=True)
    opt = opt_cls([w], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (w * w * T(np.array([1.0, 2.0, 3.0], np.float32))).sum().backward()
        opt.step()
    return w.numpy(), w0


def _grad(w):
    return w * 2 * np.array([1.0, 2.0, 3.0])


def test_sgd_momentum_nesterov_weight_decay_follow_pytorch_formulas():
    got, w = _run(SGD, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    w, buf = w.astype(np.float64), None
    for _ in range(3):
        g = _grad(w) + 0.01 * w
        buf = g if buf is None else 0.9 * buf + g
        w = w - 0.1 * (g + 0.9 * buf)
    np.testing.assert_allclose(got, w, rtol=1e-5)
    got, w = _run(SGD, lr=0.1)
    np.testing.assert_allclose(got, w * (1 - 0.2 * np.array([1, 2, 3])) ** 3, rtol=1e-5)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_and_adamw_follow_the_papers(cls):
    got, w = _run(cls, lr=0.01, weight_decay=0.1)
    w, m, v = w.astype(np.float64), 0, 0
    for t in range(1, 4):
        g = _grad(w)
        if cls is Adam:
            g = g + 0.1 * w
        else:
            w = w * (1 - 0.01 * 0.1)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(got, w, rtol=1e-5)


def test_schedules_are_plain_functions():
    assert cosine_lr(0, 1.0, 100, warmup_steps=10) == pytest.approx(0.1)
    assert cosine_lr(10, 1.0, 100, warmup_steps=10) == pytest.approx(1.0)
    assert cosine_lr(100, 1.0, 100, min_lr=0.1) == pytest.approx(0.1)
    assert cosine_lr(55, 1.0, 100, warmup_steps=10) == pytest.approx(0.5)
    assert step_lr(25, 1.0, 10, 0.5) == pytest.approx(0.25)
    assert linear_warmup(4, 2.0, 10) == pytest.approx(1.0)


def test_changing_lr_reuses_kernels():
    w = T(np.ones(4, np.float32), requires_grad=True)
    opt = SGD([w], lr=0.1)
    for lr in (0.1, 0.2):
        opt.lr = lr
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.numpy(), (1 - 0.2) * (1 - 0.4) * np.ones(4), rtol=1e-6)


# --- layers --------------------------------------------------------------------------------------
def test_batchnorm_train_updates_running_stats_and_eval_uses_them():
    bn = nn.BatchNorm2d(3, device="REF")
    x = R.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1
    y = bn(T(x)).numpy()
    mu, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    np.testing.assert_allclose(y, (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mu, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var((0, 2, 3), ddof=1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    want = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(T(x)).numpy(), want, rtol=1e-4, atol=1e-5)
    assert [k for k, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def test_groupnorm_rmsnorm_dropout():
    x = R.standard_normal((2, 4, 3)).astype(np.float32)
    g = x.reshape(2, 2, -1)
    want = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(nn.GroupNorm(2, 4, device="REF")(T(x)).numpy(), want, rtol=1e-4, atol=1e-5)
    want = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(nn.RMSNorm(3, device="REF")(T(x)).numpy(), want, rtol=1e-5)
    d = nn.Dropout(0.5)
    kept = d(T(np.ones((100, 100), np.float32))).numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.4 < (kept > 0).mean() < 0.6
    d.eval()
    assert d(T(np.ones(5, np.float32))).numpy().tolist() == [1.0] * 5


def test_embedding_gathers_and_rejects_float_indices():
    e = nn.Embedding(7, 3, device="REF")
    idx = np.array([[6, 0], [5, 2]], np.int64)  # int64 indices are accepted (held as int32)
    np.testing.assert_allclose(e(T(idx)).numpy(), e.weight.numpy()[idx])
    with pytest.raises(IndexError, match="out of range"):
        e(T(np.array([-1])))
    with pytest.raises(ShapeError, match="integers"):
        e(T(np.zeros(2, np.float32)))
    with pytest.raises(DTypeError, match="does not fit int32"):
        T(np.array([2**40]))
    assert not any(n.op.name == "CMPNE" for n in _nodes(e(T(idx)).node)), "embedding must not be one-hot"


def _nodes(root):
    from compiler.lazy import toposort

    return toposort([root])


# --- state dicts and safetensors -----------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(1, 2, 3, device="REF", seed=1)
        self.bn = nn.BatchNorm2d(2, device="REF")
        self.blocks = [nn.Linear(8, 4, device="REF", seed=2), nn.Linear(4, 3, bias=False, device="REF", seed=3)]

    def forward(self, x):
        x = self.bn(self.conv(x)).relu().flatten(1)
        return self.blocks[1](self.blocks[0](x))


def test_state_dict_names_round_trip_and_errors(tmp_path):
    net = Net()
    keys = list(net.state_dict())
    assert keys == [
        "conv.weight", "conv.bias", "bn.weight", "bn.bias", "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
    ]  # fmt: skip
    path = tmp_path / "net.safetensors"
    save_safetensors(net, path, metadata={"model": "Net"})
    other = Net()
    with no_grad():
        other.conv.weight.assign(other.conv.weight * 0)
    other.load_state_dict(load_safetensors(path))
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k].numpy(), v.numpy())
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    with pytest.raises(nn.StateDictError, match="missing keys: conv.bias.*unexpected keys: extra"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "conv.bias"} | {"extra": np.zeros(1)})
    with pytest.raises(nn.StateDictError, match=r"blocks.0.weight has shape \(3, 8\).*\(4, 8\)"):
        other.load_state_dict(sd | {"blocks.0.weight": np.zeros((3, 8), np.float32)})
    other.load_state_dict({"conv.bias": np.ones(2, np.float32)}, strict=False)
    assert other.conv.bias.numpy().tolist() == [1.0, 1.0]
    assert not list(tmp_path.glob(".*tmp"))


def test_bfloat16_storage_rounds_to_nearest_even(tmp_path):
    x = np.array([1.0, 1.00390625, 1.01171875, -3.14159, 1e-40, np.inf], np.float32)
    r = round_to_bfloat16(x)
    assert r[0] == 1.0 and r[1] == 1.0 and r[2] == 1.015625 and r[5] == np.inf  # ties go to even
    assert abs(r[3] - x[3]) / abs(x[3]) < 2**-8
    save_safetensors({"w": x, "i": np.arange(3, dtype=np.int32)}, tmp_path / "w.safetensors", dtype="bfloat16")
    back = load_safetensors(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(back["w"], r)
    assert back["i"].dtype == np.int32
    assert (tmp_path / "w.safetensors").stat().st_size < 200
    assert from_bfloat16_bits(np.array([0x3F80], np.uint16))[0] == 1.0
    with pytest.raises(DTypeError, match="not a valid safetensors"):
        (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
        load_safetensors(tmp_path / "bad.safetensors")


# --- weight quantization -------------------------------------------------------------------------
def test_fake_quantization_error_bounds():
    w = R.standard_normal((8, 64)).astype(np.float32)
    q8 = fake_quantize(w, 8)
    step = np.abs(w).max(1, keepdims=True) / 127
    assert np.all(np.abs(q8 - w) <= step / 2 + 1e-7)
    q4 = fake_quantize(w, 4, group_size=32)
    assert len(np.unique(q4[0, :32])) <= 16
    assert np.abs(q4 - w).mean() > np.abs(q8 - w).mean()
    st = quantize_state({"w": w, "b": np.ones(8, np.float32)}, "int4")
    assert st["b"].tolist() == [1.0] * 8
    assert weight_bytes({"w": w}, "int4") < weight_bytes({"w": w}, "int8") < weight_bytes({"w": w}, "float32")
    with pytest.raises(ShapeError):
        quantize_state({"w": w}, "int3")


def test_compare_formats_restores_the_weights():
    lin = nn.Linear(32, 4, device="REF", seed=5)
    x = T(R.standard_normal((3, 32)).astype(np.float32))
    before = lin.weight.numpy()
    table = compare_formats(lin, lambda m: float(m(x).sum().item()))
    assert set(table) == {"float32", "int8", "int4", "bfloat16"}
    np.testing.assert_array_equal(lin.weight.numpy(), before)
    assert math.isclose(table["int8"], table["float32"], rel_tol=0.05, abs_tol=0.05)


# --- cross-checks with PyTorch (where installed) -------------------------------------------------
def test_layers_and_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    net = Net()
    tn = torch.nn.ModuleDict(
        {
            "conv": torch.nn.Conv2d(1, 2, 3),
            "bn": torch.nn.BatchNorm2d(2),
            "blocks": torch.nn.ModuleList([torch.nn.Linear(8, 4), torch.nn.Linear(4, 3, bias=False)]),
        }
    )
    assert set(tn.state_dict()) == set(net.state_dict())
    tn.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    x = R.standard_normal((3, 1, 4, 4)).astype(np.float32)
    y = R.integers(0, 3, 3)
    out = net(T(x))
    cross_entropy(out, T(y), label_smoothing=0.1).backward()
    tx = torch.tensor(x)
    h = torch.relu(tn["bn"](tn["conv"](tx))).flatten(1)
    tout = tn["blocks"][1](tn["blocks"][0](h))
    torch.nn.functional.cross_entropy(tout, torch.tensor(y), label_smoothing=0.1).backward()
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    grads = dict(tn.named_parameters())
    for k, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[k].grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(net.bn.running_var.numpy(), tn["bn"].running_var.numpy(), rtol=1e-5)


def test_int_dtype_of_indices_is_int32():
    assert T(np.array([1, 2], np.int64)).dtype == dtypes.int32
