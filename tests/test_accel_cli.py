"""`workbench run` and `workbench quantize`: compiled models on SIM from the command line."""
import json

from workbench.cli import main


def test_run_mlp_on_an_int8_design_json(capsys, tmp_path):
    trace = tmp_path / "t.json"
    assert main(["run", "mlp", "--device", "SIM:edge-int8-16x16", "--batch", "1", "--json", "--trace", str(trace)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["matches_reference"] and out["precision"].startswith("int8") and out["design"] == "edge-int8-16x16"
    assert out["sim"]["cycles"] > 0 and out["sim"]["host_ops"] == [] and out["energy"]["energy_j"] > 0
    assert out["accuracy"]["cosine"] > 0.99 and {k["unit"] for k in out["sim"]["kernels"]} == {"matrix+vector"}
    assert json.loads(trace.read_text())["traceEvents"]


def test_run_cnn_text_on_a_float_design(capsys):
    assert main(["run", "cnn", "--device", "SIM:rx7900xtx-like", "--batch", "1"]) == 0
    text = capsys.readouterr().out
    assert "matches" in text and "cycles" in text and "energy" in text and "vector" in text


def test_quantize_report_json(capsys):
    assert main(["quantize", "cnn", "--batch", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["scheme"].split()[0] for r in rows] == ["int8", "int8", "int4"]
    assert all(0.9 < r["cosine"] <= 1 and r["top1_agreement"] is not None for r in rows)


def test_run_bad_inputs_are_one_line_errors(capsys, tmp_path):
    assert main(["run", "resnet", "--device", "SIM"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert main(["run", "mlp", "--device", "SIM:no-such-design"]) == 2
    err = capsys.readouterr().err
    assert "no-such-design" in err and "Traceback" not in err
    empty = tmp_path / "m.py"
    empty.write_text("x = 1\n")
    assert main(["run", str(empty)]) == 2
    assert "defines no model()" in capsys.readouterr().err


def test_run_a_model_file(capsys, tmp_path):
    f = tmp_path / "tiny.py"
    f.write_text("from compiler import models\n\n\ndef model():\n    return models.mlp(batch=2, d_in=8, d_hidden=12, d_out=4)\n")
    assert main(["run", str(f), "--device", "SIM:edge-int8-16x16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matches_reference"]
