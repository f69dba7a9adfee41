"""Amaranth implementation of the accelerator core, its Verilog export, and the Verilator/Yosys flows."""
