"""CLI: chips, cost, and clean one-line errors with exit code 2."""

import json

from workbench.cli import main


def test_chips_json(capsys):
    assert main(["chips", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    xtx = next(r for r in rows if r["key"] == "rx-7900-xtx")
    assert xtx["provenance"] == "datasheet" and round(xtx["tflops_per_kusd"], 1) == 122.9


def test_chips_table(capsys):
    assert main(["chips"]) == 0
    out = capsys.readouterr().out
    assert "tinybox-red" in out and "27,500[E]" in out


def test_cost_worked_example(capsys):
    a8 = ["--edge-exclusion-mm", "0", "--scribe-mm", "0", "--d0", "0.1"]  # a.8's assumptions
    assert main(["cost", "--area-mm2", "814", "--node", "N4", *a8]) == 0
    out = capsys.readouterr().out
    assert "gross dies per wafer 63.5" in out and "negative_binomial 0.487" in out and "$549.91" in out
    assert main(["cost", "--area-mm2", "814", "--node", "N4"]) == 0  # defaults: 3 mm edge, 0.1 mm scribe, D0 0.06
    assert "edge excl. 3 mm, scribe 0.1 mm" in capsys.readouterr().out
    assert (
        main(
            [
                "cost",
                "--area-mm2",
                "814",
                "--node",
                "4nm",
                "--harvest",
                "144:132:0.6",
                *a8,
                "--memory-gb",
                "80",
                "--memory-type",
                "HBM3",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert round(data["die"]["effective_yield"], 3) == 0.734
    assert data["unit"]["terms"][1]["usd"] == 1200


def test_user_errors_are_one_line(capsys):
    assert main(["cost", "--area-mm2", "814", "--node", "N8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "closest known: 7nm, 10nm" in err and "Traceback" not in err
    assert main(["cost", "--area-mm2", "100", "--node", "5", "--harvest", "10:12:0.5"]) == 2
    assert "--harvest.required = 12" in capsys.readouterr().err
    assert main(["cost", "--area-mm2", "100", "--node", "5", "--memory-gb", "8"]) == 2
    assert "without a memory type" in capsys.readouterr().err
    assert main(["compare", "h100-like", "--chip", "h10"]) == 2
    assert "ambiguous: it matches h100-sxm (NVIDIA H100 SXM), h100-pcie" in capsys.readouterr().err
    assert main(["estimate", "no-such-design"]) == 2
    assert "unknown design" in capsys.readouterr().err


def test_cost_for_a_design(capsys):
    assert main(["cost", "--design", "rx7900xtx-like", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["die_area_provenance"] == "datasheet"
    dies = sum(t["usd"] for t in data["unit"]["terms"] if t["name"].startswith("die:"))
    assert abs(dies / 166 - 1) <= 0.15  # C.4: Navi31 GCD + 6 MCD, published $166
    assert main(["cost", "--node", "N4"]) == 2
    assert "--area-mm2 and --node" in capsys.readouterr().err


def test_cost_published_comparison(capsys):
    assert main(["cost", "--published"]) == 0
    out = capsys.readouterr().out
    assert "AD102: model with defaults $284.08; median of published $259.00 (+9.7%)" in out
    assert "ad102-mackerel" in out and "under its inputs $350.24 (-7.3%)" in out
    assert main(["cost", "--published", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by_die"]["Navi31"]["median_published_usd"] == 166
    assert {r["die"] for r in data["estimates"]} == {"H100", "AD102", "AD103", "AD104", "Navi31"}
    assert main(["cost", "--published", "--area-mm2", "100"]) == 2
    assert "--published" in capsys.readouterr().err
