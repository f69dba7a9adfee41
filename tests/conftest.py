"""Shared pytest setup: GPU detection for the `gpu` marker."""
from __future__ import annotations

import functools
import shutil
import subprocess

import pytest


@functools.cache
def gpu_available() -> str | None:
    """A description of a usable GPU (OpenCL GPU device or CUDA), or None."""
    try:
        from compiler.opencl_devices import describe_opencl_devices

        gpus = [d for d in describe_opencl_devices() if d.is_gpu]
        if gpus:
            return f"OpenCL GPU {gpus[0].name}"
    except Exception:  # any OpenCL failure just means "no OpenCL GPU"
        pass
    smi = shutil.which("nvidia-smi")
    if smi and subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0:
        return "CUDA GPU (nvidia-smi)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items) or gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU: no OpenCL GPU device and no CUDA device found")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
