"""bench/compiler_bench.py's interleaved rounds: merged medians and per-round ratio ranges (no subprocess)."""

from bench.compiler_bench import merge_rounds, summarize


def _rep(times: dict, load: float) -> dict:
    return {"available": True, "loadavg_start": [load], "errors": {},
            "results": [{"workload": w, "median_s": t, "min_s": t * 0.9, "times_s": [t], "flop": 2e9,
                         "gflops": 2.0 / t, "check": {"ok": True}} for w, t in times.items()]}


def test_rounds_merge_to_median_and_ratios_keep_their_range():
    rounds = [
        {"numpy": _rep({"conv2d": 2.0}, 1.0), "ours": _rep({"conv2d": 1.0}, 1.5)},
        {"numpy": _rep({"conv2d": 6.0}, 9.0), "ours": _rep({"conv2d": 2.0}, 8.0)},
        {"numpy": _rep({"conv2d": 4.0}, 4.0), "ours": _rep({"conv2d": 4.0}, 3.0)},
    ]
    merged = merge_rounds(rounds)
    rec = merged["ours"]["results"][0]
    assert rec["median_s"] == 2.0 and rec["round_medians_s"] == [1.0, 2.0, 4.0] and rec["min_s"] == 0.9
    assert merged["numpy"]["loadavg_range"] == [1.0, 9.0]
    (row,) = summarize(merged, {}, ["conv2d"], rounds)
    assert row["ours_vs_numpy"] == 2.0  # medians 4.0 / 2.0
    assert row["ranges"]["ours_vs_numpy"] == [1.0, 3.0]  # per round: 2.0, 3.0, 1.0
    assert row["ranges"]["ours_vs_torch"] is None  # no torch column
