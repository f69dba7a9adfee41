"""The accelerator backend: lowering of scheduled kernels to isa programs (GEMM tiling, vector ops) and the SIM device.

This subpackage is the only part of `compiler/` that imports `isa` and `sim` (../shared/DESIGN.md).
"""
