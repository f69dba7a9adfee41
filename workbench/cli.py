"""The `workbench` command: one argparse tree; each area registers its subcommands from its own module."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from isa.errors import UserError
from workbench import __version__

# Each module defines `register(subparsers)`. Every mistake by the user raises a subclass of
# `isa.errors.UserError` (printed as one line, exit 2); anything else is a bug and keeps its traceback.
COMMAND_MODULES = (
    "workbench.doctor",
    "workbench.demo",
    "workbench.cli_isa",
    "workbench.cli_rtl",
    "workbench.cli_models",
    "workbench.cli_run",
    "workbench.cli_sweep",
    "workbench.cli_measure",
)

DESCRIPTION = """\
Petaflop Workbench: what does a petaflop cost, and could a custom accelerator
do better?

Run a model on this machine's GPU or CPU (OpenCL), simulate custom accelerator
designs cycle by cycle (and on their RTL), and compare FLOPS per dollar and per
watt against real chips. Start with `workbench demo`; `workbench doctor` checks
the toolchain. Each command has --help."""

EPILOG = """\
Mistakes (a bad file, field, shape or option) print one line naming the thing
and the fix, exit code 2. Designs are TOML files (shipped ones by name, e.g.
small-int8-8x8); the figures' sources are in docs/sources.md."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2: the usage block (12 lines for `cost`) hid the error
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every command module registered."""
    parser = _Parser(prog="workbench", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"petaflop-workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `workbench` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench chips | head` is not an error
        return 0


if __name__ == "__main__":  # `python -m workbench.cli` works as `python -m workbench` and `workbench` do
    raise SystemExit(main())
