"""`workbench demo` runs the whole main job on embedded defaults."""
from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.demo import mlp_flops


def test_demo_json_runs_every_stage(capsys):
    assert main(["demo", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"]["matches_numpy"] and out["device"]["device"].startswith("CL")
    assert out["simulated"]["bit_exact"] and out["simulated"]["cycles"] > 0 and out["simulated"]["host_ops"] == 0
    assert out["simulated"]["precision"].startswith("int8") and out["simulated"]["energy_j"] > 0
    assert out["simulated"]["cosine_to_float"] > 0.99
    assert out["estimate"]["achieved_tflops"]["provenance"] == "simulated"
    assert out["estimate"]["price_usd"]["provenance"] == "modelled"


def test_demo_text_names_provenance(capsys):
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    for word in ("measured", "simulated", "modelled", "datasheet", "bit-exact"):
        assert word in text


def test_demo_runs_the_float_model_on_a_float_design(capsys):
    assert main(["demo", "--json", "--design", "datacenter-bf16-128x128"]) == 0
    sim = json.loads(capsys.readouterr().out)["simulated"]
    assert sim["precision"] == "float32" and sim["bit_exact"] and sim["cosine_to_float"] > 0.9999


def test_demo_unknown_design_is_a_clean_error(capsys):
    assert main(["demo", "--design", "no-such-design"]) == 2
    assert "no-such-design" in capsys.readouterr().err


def test_flops():
    assert mlp_flops() == pytest.approx(2 * 64 * (512 * 1024 + 1024 * 512))


def test_demo_unknown_device_lists_the_available_ones(capsys):
    assert main(["demo", "--device", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "NOPE" in err and "CL" in err and "Traceback" not in err
