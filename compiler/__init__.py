"""A tinygrad-style tensor compiler: lazy tensors, primitive ops, fused kernels, OpenCL/CUDA renderers."""
