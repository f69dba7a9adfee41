"""The accelerator's architecture: design parameters, instruction set, assembler and functional model."""
