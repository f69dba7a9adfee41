"""ONNX import: run a model trained elsewhere as a `compiler.Tensor` graph on any device (REF, CL, SIM:...)."""

# importing the op modules registers their handlers in ops.HANDLERS
from . import ops_index, ops_loop, ops_misc, ops_quant, ops_rnn, ops_signal, ops_spatial  # noqa: F401
from .errors import OnnxImportError
from .model import OnnxModel, load_onnx
from .ops import HANDLERS, supported_ops

__all__ = ["HANDLERS", "OnnxImportError", "OnnxModel", "load_onnx", "supported_ops"]
