"""Petaflop Workbench: run models on GPUs, simulate custom accelerators, compare cost-performance."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("petaflop-workbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"
