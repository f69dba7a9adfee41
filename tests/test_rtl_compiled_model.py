"""A compiled model on the RTL: the one isa program the SIM device generates for the whole int8 MLP on
tiny-int8-4x4 (output- and weight-stationary; both GEMMs, the first with its epilogue, stitched with tokens;
on WS the second reads the first's int8 output where it was stored) gives the same DRAM bytes as the
functional model, every kernel's result, and the same cycles and event counters as the simulator on the
Verilator-built core."""
import numpy as np
import pytest

from compiler import Tensor, models
from compiler.accel.runtime import sim_run
from compiler.quantize import quantize
from isa.design import shipped_designs
from rtl.toolchain import find_verilator
from workbench.rtl_agreement import run_on_rtl

pytestmark = [pytest.mark.rtl, pytest.mark.slow,
              pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_compiled_int8_mlp_agrees_on_rtl(tmp_path, dataflow):
    text = shipped_designs()["tiny-int8-4x4"].read_text().replace('dataflow = "os"', f'dataflow = "{dataflow}"')
    path = tmp_path / f"tiny-int8-4x4-{dataflow}.toml"
    path.write_text(text)
    dev = f"SIM:{path}"
    model = models.mlp(batch=4, d_in=12, d_hidden=10, d_out=6)
    x = model.sample_input()
    qm = quantize(model, x)
    with sim_run(dev, keep_programs=True, programs="graph") as run:
        qm(Tensor(qm.quantize_input(x), device=dev)).realize()
    # one program for the whole graph: two GEMMs, the first with its bias/requantize/ReLU epilogue and int8 stores
    assert run.host_ops == [] and len(run.kernels) == 2 and len(run.programs) == 1
    design, program, image = run.programs[0]
    assert any(i.mnemonic == "vec" for i in program) and any(i.mnemonic == "store" and i.args["narrow"] for i in program)
    res = run_on_rtl(design, program, image)
    assert res.values_match and res.cycles_match and res.counters_match, res.mismatch
    assert res.rtl_cycles == run.cycles and np.isfinite(run.utilization)
    for kernel, addr, want in run.expected_results[0]:  # each kernel's result, where the program stores it
        assert np.array_equal(res.dram[addr:addr + want.size], want), kernel
    with sim_run(dev, programs="kernel") as per_kernel:
        qm(Tensor(qm.quantize_input(x), device=dev)).realize()
    assert run.cycles <= per_kernel.cycles
