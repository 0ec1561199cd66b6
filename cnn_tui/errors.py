"""Errors that reach the user as one line, never as a traceback.

`UsageError` is bad input (flags, form fields, config files, data files, checkpoints): the CLI
prints its message and exits with code 2. `RunError` is a failure while doing valid work (no
network for a download, a diverged run): the CLI prints it and exits with code 1.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user; the message names the problem and what to do."""


class RunError(RuntimeError):
    """A valid request that could not be carried out; the message says why."""
