"""The one base class for mistakes by the user, which the `workbench` CLI prints as one line with exit code 2.

It lives in `isa`, the layer every package may import, so sim, rtl, compiler and workbench each derive their
own error types from it and the CLI needs no list of them. Anything else that escapes is a bug: a traceback.
"""
from __future__ import annotations


class UserError(ValueError):
    """A mistake by the user (bad file, field, shape, name, option): the message says what and how to fix it."""
