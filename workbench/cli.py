"""The `workbench` command: one argparse tree; each area registers its subcommands from its own module."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.errors import UsageError

# Each module defines `register(subparsers)` and may define `USER_ERRORS`, a tuple of exception
# types that are the user's mistake (printed as one line, exit 2) rather than bugs (traceback).
COMMAND_MODULES = (
    "workbench.doctor",
    "workbench.demo",
    "workbench.cli_isa",
    "workbench.cli_rtl",
    "workbench.cli_models",
    "workbench.cli_run",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep its message, drop the noise
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> tuple[argparse.ArgumentParser, tuple[type[BaseException], ...]]:
    """The full argument parser and the exception types that count as user errors."""
    parser = _Parser(prog="workbench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"petaflop-workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    user_errors: list[type[BaseException]] = [UsageError]
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
        user_errors.extend(getattr(module, "USER_ERRORS", ()))
    return parser, tuple(user_errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `workbench` console script; returns the process exit code."""
    parser, user_errors = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except user_errors as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench chips | head` is not an error
        return 0
