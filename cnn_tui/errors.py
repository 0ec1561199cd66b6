"""Errors that reach the user as one line, never as a traceback.

`UsageError` is bad input (flags, form fields, config files, data files, checkpoints): the CLI
prints its message and exits with code 2. `RunError` is a failure while doing valid work (no
network for a download, a diverged run, a full disk: `disk_full`): the CLI prints it and exits
with code 1.

A failed write (`disk_full`, `path_error`) names what was being written, a file or standard
output (`STDOUT`), and the flag that chooses where it goes (`--run-dir` for a run's own files,
`--json-file`, `-o`, ...; the CLI finds it among the flags given, `cli.flag_for`).
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user; the message names the problem and what to do."""


class RunError(RuntimeError):
    """A valid request that could not be carried out; the message says why. The CLI exits with
    `exit_code` (1; a run folder deleted under its trainer: 3, `store.RunFolderGone`)."""

    exit_code = 1


# what a write to standard output names as its file (`cli` sets it on the OSError), so a message
# says the output could not be written rather than blaming a file or a flag
STDOUT = "<stdout>"


def disk_full(exc: BaseException, where: object = None, flag: str | None = None) -> RunError | None:
    """A RunError when `exc` is a full disk (or quota) error, naming what was being written
    (the exception's file, else `where`; `STDOUT` for standard output) and `flag`, the flag that
    chooses where it goes (None: no flag does); None when `exc` is another error."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    target = exc.filename or where
    if target == STDOUT:
        target = "standard output"
        advice = "free space where it is redirected, or redirect it elsewhere"
    else:
        advice = f"free space or choose another {flag}" if flag else "free space"
    return RunError(f"no space left on device while writing {target or 'a file'}: {advice}")


def path_error(exc: BaseException, flag: str | None = None) -> UsageError | None:
    """A UsageError naming the path (and `flag`, the flag that chose it) when `exc` is a file that
    cannot be made, found or written (a folder that does not exist, no permission, a read-only
    disk); None otherwise."""
    import errno

    path_errnos = (
        errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
        errno.ENAMETOOLONG, errno.EEXIST,
    )  # fmt: skip
    if not isinstance(exc, OSError) or exc.errno not in path_errnos or not exc.filename:
        return None
    if exc.filename == STDOUT:
        return None
    another = f" or choose another {flag}" if flag else ""
    return UsageError(
        f"{exc.filename}: {exc.strerror or exc}: check the path{another} (its folder must exist "
        "and be writable by you)"
    )
