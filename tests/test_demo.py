"""`workbench demo` runs the whole main job on embedded defaults."""
from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.demo import _quantize, mlp_flops


def test_demo_json_runs_every_stage(capsys):
    assert main(["demo", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"]["matches_numpy"] and out["device"]["device"].startswith("CL")
    assert out["simulated"]["gemms_bit_exact"] and out["simulated"]["cycles"] > 0
    assert out["simulated"]["cosine_to_float"] > 0.99
    assert out["estimate"]["achieved_tflops"]["provenance"] == "simulated"
    assert out["estimate"]["price_usd"]["provenance"] == "modelled"


def test_demo_text_names_provenance(capsys):
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    for word in ("measured", "simulated", "modelled", "datasheet", "bit-exact"):
        assert word in text


def test_demo_rejects_float_design_cleanly(capsys):
    assert main(["demo", "--design", "datacenter-bf16-128x128"]) == 2
    assert "int8" in capsys.readouterr().err


def test_quantize_round_trip_and_flops():
    import numpy as np

    a = np.array([[-2.0, 0.5], [1.0, 2.0]], dtype=np.float32)
    q, s = _quantize(a)
    assert q.dtype == np.int8 and q.max() == 127 and q.min() == -127
    assert np.max(np.abs(q * s - a)) <= s / 2 + 1e-7
    assert mlp_flops() == pytest.approx(2 * 64 * (512 * 1024 + 1024 * 512))


def test_demo_unknown_device_lists_the_available_ones(capsys):
    assert main(["demo", "--device", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "NOPE" in err and "CL" in err and "Traceback" not in err
