"""Perplexity in the quantize report: the char GPT's float, int8 (w8a8, on REF and SIM) and int4 forms on
held-out text, and `workbench quantize char-gpt` with given or cached weights (issue 9)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from compiler import Tensor
from compiler.losses import cross_entropy
from compiler.models import GPT, GPTConfig, char_gpt
from compiler.quantize import QuantizedGPT, gpt_quantize_report, quantize
from compiler.weights import save_safetensors
from workbench.cli import main

TINY = GPTConfig(vocab_size=128, block_size=16, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def corpus():
    return char_gpt.load_corpus()


def test_perplexity_from_logits_is_exp_of_the_cross_entropy():
    assert char_gpt.perplexity_from_logits(np.zeros((2, 5, 128), np.float32), np.ones((2, 5), np.int64)) == \
        pytest.approx(128.0)
    rng = np.random.default_rng(0)
    logits, y = rng.standard_normal((3, 4, 128)).astype(np.float32), rng.integers(0, 128, (3, 4))
    ce = cross_entropy(Tensor(logits.reshape(-1, 128), device="REF"), Tensor(y.reshape(-1), device="REF")).item()
    assert char_gpt.perplexity_from_logits(logits, y) == pytest.approx(math.exp(ce), rel=1e-5)


def test_gpt_report_gives_perplexity_and_logit_errors_per_form(corpus):
    train_ids, val_ids = corpus
    model = GPT(TINY, device="REF", seed=1)
    reports = gpt_quantize_report(model, val_ids, train_ids, device="SIM:small-int8-8x8", windows=4)
    assert [r.scheme.split(",")[0] for r in reports] == ["int8 w8a8", "int8 w8a8", "int4 weights"]
    ref_ppl = char_gpt.perplexity_from_logits(
        char_gpt.logits_of(model, char_gpt.eval_windows(val_ids, 16, 4, 1), "REF"),
        np.concatenate([y for _, y in char_gpt.eval_windows(val_ids, 16, 4, 1)]))
    for r in reports:
        assert r.samples == 4 * 16 and r.float_perplexity == ref_ppl and r.top1_agreement is None
        assert r.perplexity > 1 and 0 < r.max_abs_error and 0.9 < r.cosine < 1
    assert reports[0].runs_on == "SIM:small-int8-8x8" and reports[0].cosine > 0.999
    assert abs(reports[0].perplexity / ref_ppl - 1) < 0.01
    assert json.loads(json.dumps(reports[0].to_json()))["perplexity"] == reports[0].perplexity


def test_int8_gpt_runs_the_same_graph_on_sim_and_ref(corpus):
    train_ids, val_ids = corpus
    model = GPT(TINY, device="REF", seed=2)
    qg = quantize(model, np.stack([train_ids[i:i + 16] for i in (0, 999, 5000)]))
    assert isinstance(qg, QuantizedGPT) and len(qg.linears) == 4
    x = np.stack([val_ids[i:i + 16] for i in (0, 100)])
    got = qg(Tensor(x, device="SIM:edge-int8-16x16")).numpy()
    np.testing.assert_array_equal(got, qg(Tensor(x, device="REF")).numpy())
    assert got.shape == (2, 16, 128)


def test_cli_reports_perplexity_with_given_weights(tmp_path, capsys):
    path = tmp_path / "gpt.safetensors"
    save_safetensors(GPT(char_gpt.CONFIG, device="REF", seed=3), path)
    assert main(["quantize", "char-gpt", "--weights", str(path), "--windows", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc) == 3 and all(r["model"] == "char-gpt" and r["samples"] == 64 for r in doc)
    assert all(r["perplexity"] > 1 and r["float_perplexity"] == doc[0]["float_perplexity"] for r in doc)


def test_cli_bad_weights_and_options_are_one_line_errors(tmp_path, capsys):
    small = tmp_path / "small.safetensors"
    save_safetensors(GPT(TINY, device="REF"), small)
    for argv, what in ([["--weights", str(tmp_path / "none.safetensors")], "no such file"],
                       [["--weights", str(small)], "not the char GPT's weights"],
                       [["--batch", "4"], "--windows"]):
        assert main(["quantize", "char-gpt", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert what in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["quantize", "mlp", "--weights", str(small)]) == 2
    assert "--weights is for char-gpt" in capsys.readouterr().err


def test_training_run_is_cached_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_train(steps, device=None, seed=0, log=print, on_step=None):  # the real run: minutes
        calls.append(steps)
        if on_step is not None:
            on_step(0, 4.8)
        return GPT(char_gpt.CONFIG, device="REF", seed=seed), {"val_perplexity": 9.0}

    monkeypatch.setattr(char_gpt, "train", fake_train)
    path, trained = char_gpt.trained_weights(7)
    assert trained and path.is_file() and path.parent == tmp_path / "weights" and "steps7" in path.name
    assert char_gpt.trained_weights(7) == (path, False) and calls == [7]
    assert not list(path.parent.glob("*.tmp*"))  # written whole, then renamed


def test_cli_without_weights_or_cache_on_a_machine_without_opencl_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WB_DEVICE", "REF")
    assert main(["quantize", "char-gpt", "--train-steps", "3"]) == 2
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "weights").exists() or not list((tmp_path / "weights").iterdir())
