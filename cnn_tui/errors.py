"""Errors that reach the user as one line, never as a traceback.

`UsageError` is bad input (flags, form fields, config files, data files, checkpoints): the CLI
prints its message and exits with code 2. `RunError` is a failure while doing valid work (no
network for a download, a diverged run, a full disk: `disk_full`): the CLI prints it and exits
with code 1.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user; the message names the problem and what to do."""


class RunError(RuntimeError):
    """A valid request that could not be carried out; the message says why."""


def disk_full(exc: BaseException, where: object = "the run directory") -> RunError | None:
    """A RunError naming the file when `exc` is a full disk (or quota) error; None otherwise."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return RunError(
        f"no space left on device while writing {exc.filename or where}: free space or choose "
        "another --run-dir"
    )


def path_error(exc: BaseException) -> UsageError | None:
    """A UsageError naming the path when `exc` is a file that cannot be made, found or written
    (a folder that does not exist, no permission, a read-only disk); None otherwise."""
    import errno

    path_errnos = (
        errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
        errno.ENAMETOOLONG, errno.EEXIST,
    )  # fmt: skip
    if not isinstance(exc, OSError) or exc.errno not in path_errnos or not exc.filename:
        return None
    return UsageError(
        f"{exc.filename}: {exc.strerror or exc}: check the path (its folder must exist and be "
        "writable by you)"
    )
