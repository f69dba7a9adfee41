"""compiler.jit: replayed calls give the values of unjitted ones (training steps with optimizer state, batch
norm, dropout, gradient accumulation, schedules), new shapes capture again, and what cannot be replayed is
refused. Tiny models, a few steps each."""

import warnings

import numpy as np
import pytest

from compiler import Tensor, nn
from compiler.jit import JitError, jit
from compiler.losses import cross_entropy
from compiler.models import MLP, SmallCNN
from compiler.optim import SGD, Adam

DEVICES = ["REF", "CL"]


def _replaying(f) -> bool:
    return any(e.plan is not None for e in f.entries.values())


class _BNNet(nn.Module):
    """Conv, batch norm (running statistics assigned every step), dropout, linear head."""

    def __init__(self, device):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, device=device, seed=1)
        self.bn = nn.BatchNorm2d(4, device=device)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 16, 10, device=device, seed=2)

    def forward(self, x):
        return self.fc(self.drop(self.bn(self.conv(x)).relu().max_pool2d(2).flatten(1)))


def _train(make, opt_cls, device, use_jit, steps=6, image=True, lr_schedule=True, batch=8, **opt_kw):
    Tensor.manual_seed(7)  # dropout draws from the shared generator: same draws with and without jit
    net = make(device)
    opt = opt_cls(net.parameters(), lr=1e-2, **opt_kw)

    def step(x, y):
        loss = cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    f = jit(step) if use_jit else step
    rng = np.random.default_rng(0)
    losses = []
    for i in range(steps):
        x = rng.random((batch, 1, 8, 8) if image else (batch, 64), dtype=np.float32)
        y = rng.integers(0, 10, batch).astype(np.int32)
        if lr_schedule:
            opt.lr = 1e-2 / (1 + i)  # set outside the jitted step: every replay must read it
        losses.append(f(Tensor(x, device=device), Tensor(y, device=device)).item())
    if use_jit:
        assert _replaying(f)
    return net, losses, opt


@pytest.mark.parametrize("device", DEVICES)
def test_mlp_training_steps_equal_with_and_without_jit(device):
    # on CL the shapes of examples/train_mlp.py (batch 64, Adam), so CI compiles these kernels once for both
    hidden, batch = ((128, 64), 64) if device == "CL" else ((16,), 8)
    make = lambda d: MLP(64, hidden, 10, device=d, seed=0)  # noqa: E731
    a, la, oa = _train(make, Adam, device, False, batch=batch)
    b, lb, ob = _train(make, Adam, device, True, batch=batch)
    assert la == lb and ob.steps == oa.steps == 6
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_allclose(q.numpy(), p.numpy(), atol=1e-6, err_msg=name)


def test_digits_cnn_on_cl_equal_with_and_without_jit():
    # the shapes of examples/train_cnn.py (batch 64, Adam), so CI compiles these kernels once for both
    make = lambda d: SmallCNN(1, 8, 16, 32, 10, device=d, seed=0)  # noqa: E731
    a, la, _ = _train(make, Adam, "CL", False, steps=5, batch=64)
    b, lb, _ = _train(make, Adam, "CL", True, steps=5, batch=64)
    assert la == lb
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_allclose(q.numpy(), p.numpy(), atol=1e-6, err_msg=name)


def test_cnn_with_batchnorm_and_dropout_equal_with_and_without_jit():
    # on REF: the CL path is the MLP's above, and a cold start would compile every conv kernel here
    for make in (lambda d: SmallCNN(1, 8, 4, 8, 10, device=d, seed=0), _BNNet):
        a, la, _ = _train(make, SGD, "REF", False, momentum=0.9, weight_decay=1e-3)
        b, lb, _ = _train(make, SGD, "REF", True, momentum=0.9, weight_decay=1e-3)
        np.testing.assert_allclose(lb, la, rtol=1e-6)
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            np.testing.assert_allclose(q.numpy(), p.numpy(), atol=1e-6, err_msg=name)  # running stats too


@pytest.mark.parametrize("device", DEVICES)
def test_outputs_are_new_tensors_and_gradients_accumulate(device):
    w = Tensor(np.array([1.0, -2.0, 3.0], np.float32), device=device, requires_grad=True)

    @jit
    def f(x):
        y = (w * x).sum()
        y.backward()  # no zero_grad: gradients add up over calls, as without jit
        return {"y": y, "pair": (x * 2, None)}

    outs = [f(Tensor(np.full(3, i, np.float32), device=device)) for i in range(5)]
    assert _replaying(f)
    assert [o["y"].item() for o in outs] == [2.0 * i for i in range(5)]
    np.testing.assert_array_equal(outs[3]["pair"][0].numpy(), np.full(3, 6.0))
    assert outs[4]["pair"][1] is None
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 0 + 1 + 2 + 3 + 4.0))


def test_new_input_shape_captures_again():
    @jit
    def f(x, scale):
        return (x * scale).sum(-1)

    for n in (3, 3, 3, 3, 5, 5, 5, 5, 3):
        x = np.arange(2 * n, dtype=np.float32).reshape(2, n)
        np.testing.assert_allclose(f(Tensor(x, device="CL"), 2.0).numpy(), (x * 2).sum(-1))
    assert len(f.entries) == 2 and all(e.plan is not None for e in f.entries.values())
    np.testing.assert_allclose(f(Tensor(np.ones((2, 3), np.float32), device="CL"), 3.0).numpy(), [9.0, 9.0])
    assert len(f.entries) == 3  # another Python argument is another capture
    with pytest.warns(UserWarning, match="different input shapes or non-Tensor arguments"):
        for scale in range(20):
            f(Tensor(np.ones((2, 3), np.float32), device="REF"), float(scale))


def test_data_dependent_control_flow_is_refused():
    @jit
    def f(x):
        return x * 2 if x.sum().item() > 0 else x + 1

    f(Tensor(np.ones(4, np.float32), device="CL"))
    f(Tensor(np.ones(4, np.float32), device="CL"))
    with pytest.raises(JitError, match="different work"):
        f(Tensor(-np.ones(4, np.float32), device="CL"))


def test_changing_host_data_inside_and_python_outputs_are_refused():
    calls = []

    @jit
    def f(x):
        calls.append(1)
        return x + Tensor(np.array([len(calls)], np.float32), device="CL")

    with pytest.raises(JitError, match="host data"):
        for _ in range(3):
            f(Tensor(np.ones(1, np.float32), device="CL"))

    @jit
    def g(x):
        return (x * 2).sum().item()

    with pytest.raises(JitError, match="returned a float"):
        g(Tensor(np.ones(2, np.float32), device="CL"))


def test_sim_runs_unjitted_with_a_warning():
    @jit
    def f(x):
        return x + x

    x = Tensor(np.array([1, 2, 3], np.int8), device="SIM")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        outs = [f(x).numpy() for _ in range(4)]
    assert any("SIM" in str(m.message) for m in w) and not _replaying(f)
    for o in outs:
        np.testing.assert_array_equal(o, [2, 4, 6])


def test_jit_on_a_method_with_keyword_tensors_under_no_grad():
    from compiler.autograd import no_grad

    class Model:
        def __init__(self):
            self.w = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), device="REF")

        @jit
        def forward(self, x, *, bias):
            return (x @ self.w + bias).relu()

    m = Model()
    with no_grad():
        for i in range(5):
            x, b = np.full((1, 2), i - 2, np.float32), np.array([0.5, -0.5], np.float32)
            got = m.forward(Tensor(x, device="REF"), bias=Tensor(b, device="REF")).numpy()
            np.testing.assert_allclose(got, np.maximum(x @ m.w.numpy() + b, 0))
        m.w.assign(Tensor(np.eye(2, dtype=np.float32), device="REF"))  # changed in place: the replay reads it
        got = m.forward(
            Tensor(np.ones((1, 2), np.float32), device="REF"), bias=Tensor(np.zeros(2, np.float32), device="REF")
        )
    np.testing.assert_allclose(got.numpy(), [[1.0, 1.0]])
    assert _replaying(Model.forward)


def test_random_draws_follow_the_generator_in_call_order():
    def f(x):
        Tensor.rand(2, device="REF")  # drawn and unused: later draws must still line up
        return x + Tensor.randn(3, device="REF") * Tensor.rand(3, device="REF")

    x = Tensor(np.zeros(3, np.float32), device="REF")
    outs = {}
    for use_jit in (False, True):
        g = jit(f) if use_jit else f
        Tensor.manual_seed(3)
        vals = [g(x).numpy() for _ in range(5)]
        Tensor.manual_seed(11)  # reseeding between replays is seen too
        outs[use_jit] = vals + [g(x).numpy()]
    for a, b in zip(outs[False], outs[True], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(outs[True][3], outs[True][4])
