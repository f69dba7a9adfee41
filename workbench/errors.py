"""The CLI's user-error type: the project-wide `isa.errors.UserError`, under the name workbench modules use."""
from isa.errors import UserError

UsageError = UserError  # one class, two names: `except UsageError` and `except UserError` catch the same errors

__all__ = ["UsageError", "UserError"]
