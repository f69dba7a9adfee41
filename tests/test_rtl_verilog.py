"""Verilog generation is a pure function of the design: the same text in every process.

The Verilator build cache is keyed by a hash of the Verilog, so text that changed with Python's hash seed
(iterating a frozenset while building expressions) made every `rtl run` rebuild the model.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.rtl
ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import dataclasses, hashlib
from isa.design import load_design
from rtl.run import core_verilog
d = load_design("tiny-int8-4x4")
ws = dataclasses.replace(d.replace(matrix=dataclasses.replace(d.matrix, dataflow="ws")), name="tiny-ws")
for design in (d, ws):
    print(hashlib.sha256(core_verilog(design).encode()).hexdigest())
"""


def _digests(hash_seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def test_verilog_is_identical_across_hash_seeds():
    procs = [_digests(seed) for seed in ("1", "2")]
    outs = [p.communicate(timeout=600)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(outs[0]) == 2 and outs[0] == outs[1]

