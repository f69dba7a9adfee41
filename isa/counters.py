"""Names of the core's event counters and token counters: one table for the simulator, the RTL and its bench.

Event counters feed the energy model; the MAC counter is per input dtype (`MACS_COUNTER`), spelled out
here so that a search for a counter's name finds every use. Token counters are indexed in `TOKENS` order.
"""
from isa.design import INPUT_DTYPES

# Counted on every design, in this order.
EVENT_COUNTERS = ("instructions", "vector_ops", "scratchpad_read_bytes", "scratchpad_write_bytes",
                  "accumulator_read_bytes", "accumulator_write_bytes", "dram_read_bytes", "dram_write_bytes")
# Input dtype -> the name of its MAC counter.
MACS_COUNTER = {"int8": "macs_int8", "fp16": "macs_fp16", "bf16": "macs_bf16", "fp32": "macs_fp32"}
assert set(MACS_COUNTER) == set(INPUT_DTYPES), "every input dtype needs a MAC counter"

# Token counters between the queues: short name (RTL signals), the direction in words, and the index.
TOKENS = ("l2c", "c2l", "c2s", "s2c")
TOKEN_NAMES = ("load->compute", "compute->load", "compute->store", "store->compute")
L2C, C2L, C2S, S2C = range(len(TOKENS))


def event_counters(input_dtype: str) -> tuple[str, ...]:
    """Every event counter of a design with this input dtype, in report order."""
    return (*EVENT_COUNTERS, MACS_COUNTER[input_dtype])
