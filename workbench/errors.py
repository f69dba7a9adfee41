"""The one exception type the CLI turns into a clean message and exit code 2."""


class UsageError(Exception):
    """A mistake by the user (bad file, field, shape, name): the message says what and how to fix it."""
