"""The error an ONNX model the importer cannot run raises (a CompilerError, so the CLI prints one line)."""

from compiler.errors import CompilerError


class OnnxImportError(CompilerError):
    """An ONNX model, node or input the importer cannot handle; the message names the node and the fix."""
