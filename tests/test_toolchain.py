"""The toolchain the workbench relies on is really there: PoCL runs a kernel, Verilator and Yosys build a module."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from compiler.opencl_devices import describe_opencl_devices, opencl_devices
from rtl.toolchain import find_verilator, find_yosys, run_yosys, verilator_env

COUNTER_V = """
module counter(input clk, input rst, output reg [7:0] count);
  always @(posedge clk) count <= rst ? 8'd0 : count + 8'd1;
endmodule
"""

TESTBENCH_V = """
module tb;
  reg clk = 0, rst = 1;
  wire [7:0] count;
  counter dut(.clk(clk), .rst(rst), .count(count));
  always #1 clk = ~clk;
  initial begin
    #4 rst = 0;
    #20 $display("COUNT=%0d", count);
    $finish;
  end
endmodule
"""


def test_pocl_platform_runs_a_kernel():
    import pyopencl as cl

    infos = describe_opencl_devices()
    assert any("portable computing language" in d.platform.lower() for d in infos), infos
    pocl = next(d for d in opencl_devices() if "portable" in d.platform.name.lower())
    ctx = cl.Context([pocl])
    queue = cl.CommandQueue(ctx)
    a = np.arange(1000, dtype=np.float32)
    buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=a)
    prog = cl.Program(ctx, "__kernel void sq(__global float* x){int i=get_global_id(0); x[i]=x[i]*x[i];}").build()
    prog.sq(queue, a.shape, None, buf)
    out = np.empty_like(a)
    cl.enqueue_copy(queue, out, buf)
    np.testing.assert_array_equal(out, a * a)


@pytest.mark.rtl
def test_verilator_builds_and_runs_a_module(tmp_path):
    tool = find_verilator()
    assert tool is not None and tool.version.startswith("5."), tool
    (tmp_path / "counter.v").write_text(COUNTER_V)
    (tmp_path / "tb.v").write_text(TESTBENCH_V)
    build = subprocess.run([tool.path, "--binary", "--timing", "-Wno-fatal", "--top-module", "tb", "-j", "2",
                            "tb.v", "counter.v"], cwd=tmp_path, env=verilator_env(), capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(tmp_path / "obj_dir" / "Vtb")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # reset released at t=4 (posedge at 5), then 10 rising edges up to t=24: the count is 10
    assert "COUNT=10" in run.stdout, run.stdout


@pytest.mark.rtl
def test_yosys_synthesizes_a_module(tmp_path):
    assert find_yosys() is not None
    (tmp_path / "counter.v").write_text(COUNTER_V)
    out = run_yosys(["-q", "-p", "read_verilog counter.v; synth -top counter; tee -o stat.json stat -json"],
                    cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    stat = json.loads((tmp_path / "stat.json").read_text())
    cells = stat["design"]["num_cells"]
    flops = sum(n for t, n in stat["design"]["num_cells_by_type"].items() if "DFF" in t)
    assert flops == 8 and cells > 8, stat["design"]
