"""Errors a user can cause. The CLI prints these as one line and exits with code 2, no traceback."""


class UserError(Exception):
    """A mistake in the user's input (a config, a path, a record): shown as one line, exit code 2."""

    exit_code = 2
