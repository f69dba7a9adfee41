"""The example training scripts: digits MLP >= 97% and CNN >= 98% held-out on CL (seeded, reproducible),
a ResNet step with batch norm, and the char GPT learning the standard library's source text."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import Device

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_CL = "CL" in Device.available()
needs_cl = pytest.mark.skipif(not HAS_CL, reason="no OpenCL device")


def _example(name: str):
    sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sklearn():
    return pytest.importorskip("sklearn")


@pytest.mark.slow
@needs_cl
def test_digits_mlp_reaches_97_percent(sklearn):
    _, res = _example("train_mlp").train(device="CL", log=lambda *a: None)
    assert res["accuracy"] >= 0.97, res


@pytest.mark.slow
@needs_cl
def test_digits_cnn_reaches_98_percent(sklearn):
    _, res = _example("train_cnn").train(device="CL", log=lambda *a: None)
    assert res["accuracy"] >= 0.98, res


@pytest.mark.slow
@needs_cl
def test_training_is_reproducible(sklearn):
    mlp = _example("train_mlp")
    a, ra = mlp.train(device="CL", epochs=1, log=lambda *a: None)
    b, rb = mlp.train(device="CL", epochs=1, log=lambda *a: None)
    assert ra["final_loss"] == rb["final_loss"]
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=k)


@pytest.mark.slow
def test_resnet_trains_with_batchnorm_on_ref(sklearn):
    from compiler import Tensor
    from compiler.losses import cross_entropy
    from compiler.models import ResNet
    from compiler.optim import SGD

    x, y, _, _ = _example("digits").load_digits_split(0)
    model = ResNet(1, (4, 8), blocks=1, device="REF", seed=0)
    assert "layers.1.downsample.1.running_var" in model.state_dict()
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        loss = cross_entropy(model(Tensor(x[:16], device="REF")), Tensor(y[:16], device="REF"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses
    assert model.bn1.num_batches_tracked.item() == 5
    model.eval()
    assert model(Tensor(x[:4], device="REF")).shape == (4, 10)


@pytest.mark.slow
@needs_cl
def test_char_gpt_learns_and_reports_quantized_perplexity():
    from compiler.quantize_weights import compare_formats

    gpt = _example("train_gpt")
    model, res = gpt.train(steps=60, batch=16, device="CL", log=lambda *a: None)
    # a uniform guess over the 128 ids has perplexity 128; 60 steps already learn character statistics
    assert res["val_perplexity"] < 20, res
    _, val = gpt.load_corpus()
    table = compare_formats(model, lambda m: gpt.perplexity(m, val, "CL", batch=16, n_batches=4))
    assert abs(table["int8"] / table["float32"] - 1) < 0.02, table
    assert abs(table["bfloat16"] / table["float32"] - 1) < 0.02, table
    assert table["int4"] < table["float32"] * 1.5, table
