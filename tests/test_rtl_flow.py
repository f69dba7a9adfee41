"""The Verilator + cocotb flow on a tiny component: build, cache, run a bench."""
import pytest

from rtl import verilator as v
from rtl.smoke import Mac
from rtl.toolchain import find_verilator

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")]


def test_mac_bench_on_verilator_and_cache():
    text = v.to_verilog(Mac(), "mac")
    built = v.build(text, "mac")
    assert built.executable.exists()
    again = v.build(text, "mac")
    assert again is built  # per-session cache
    pairs = [[3, 4], [-5, 6], [127, -128], [-128, -128]]
    out = v.run_bench(built, "rtl.bench_smoke", {"pairs": pairs})
    assert out["acc"] == sum(a * b for a, b in pairs)
    assert v.build_key(text, "mac") == built.key
