"""stdout and stderr that never crash a command: any encoding, a reader that went away, a closed
stream. `install` sets them up once at start-up (`cli.run`, and the processes the commands start);
every command then prints as usual.

- **Any encoding.** Where the stream's encoding lacks any of the symbols the commands print (∂, Σ,
  ✓, block characters: an ASCII or latin-1 terminal, `LC_ALL=C`), they are all written in ASCII
  (`SPELLINGS`: "∂" as "d", "→" as "->"), and any other character it lacks is escaped as Python
  writes it (`\\u2014`, the `backslashreplace` error handler). A UTF-8 stream prints every
  character as it is.
- **A reader that went away** (`cnn-tui runs --no-ui | head -1`, a closed pipe; a terminal that
  hung up): the stream is pointed at /dev/null and drops what is written after. On stdout the
  first failed write still raises `BrokenPipeError` once, so a command that only prints stops
  there as coreutils do (`cli.main` returns 0 for it: the reader had what it wanted); a command
  whose work outlives its output (train, sweep) catches it in its reporter (`carry_on`) and goes
  on silently. stderr never raises for it.
- **A closed stream** (`cnn-tui runs --no-ui >&-`: Python then sets `sys.stdout` to None; or file
  descriptor 1 closed): file descriptors 0, 1 and 2 get /dev/null, so the command runs and exits
  with its own code, and no file it opens later takes their place.
- **A failed write says it was standard output** (`NamedStream`, around stdout while `cli.main`
  runs a command): a full disk behind `> file` is reported as standard output's, not some file's.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable
from typing import Any, TextIO, cast

SPELLINGS: dict[str, str] = {
    # the lesson traces' symbols (their ASCII traces are written with exactly these)
    "·": "*",
    "→": "->",
    "⌊": "floor(",
    "⌋": ")",
    "Σ": "sum ",
    "−": "-",
    "×": "x",
    "∂": "d",
    "∞": "inf",
    "°": " deg",
    "Δ": "diff",
    "′": "'",
    "α": "alpha",
    "ᵀ": "^T",
    "\u0302": "hat",  # a combining circumflex: Adam's m̂, v̂, batch norm's x̂ ("xhat")
    "δ": "delta",
    # maths
    "≤": "<=",
    "≥": ">=",
    "≈": "~",
    "≠": "!=",
    "±": "+/-",
    "÷": "/",
    "√": "sqrt",
    "∇": "grad",
    "∈": " in ",
    "²": "^2",
    "³": "^3",
    "β": "beta",
    "γ": "gamma",
    "ε": "eps",
    "η": "eta",
    "θ": "theta",
    "λ": "lambda",
    "μ": "u",  # (Greek mu)
    "µ": "u",  # (the micro sign)
    "π": "pi",
    "σ": "sigma",
    "½": "1/2",
    # punctuation
    "—": "-",
    "–": "-",
    "…": "...",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "\u00a0": " ",  # (no-break space)
    "←": "<-",
    "↔": "<->",
    "↑": "^",
    "↓": "v",
    "⇒": "=>",
    # marks (as `RunState`'s ASCII marks)
    "✓": "+",
    "✔": "+",
    "✗": "x",
    "✘": "x",
    "▶": ">",
    "◀": "<",
    "▲": "^",
    "▼": "v",
    "■": "#",
    "⊘": "%",
    "□": "-",
    "●": "o",
    "○": "o",
    "◆": "*",
    "★": "*",
    "␣": "_",
    # bars and plots: block elements, light to full; box drawing
    "▁": "_",
    "▂": ".",
    "▃": ":",
    "▄": "-",
    "▅": "=",
    "▆": "+",
    "▇": "*",
    "█": "#",
    "▀": "^",
    "▉": "#",
    "▊": "#",
    "▋": "#",
    "▌": "|",
    "▍": "|",
    "▎": "|",
    "▏": "|",
    "▕": "|",
    "░": ".",
    "▒": ":",
    "▓": "%",
    "━": "-",
    "╸": "-",
    "╺": "-",
    "─": "-",
    "│": "|",
    "┃": "|",
    "┆": ":",
    "╭": "+",
    "╮": "+",
    "╰": "+",
    "╯": "+",
    "┌": "+",
    "┐": "+",
    "└": "+",
    "┘": "+",
}
"""The ASCII spelling of each symbol the commands (and Rich's bars) print."""


ASCII = str.maketrans(SPELLINGS)


def spelling_for(encoding: str | None) -> dict[int, str] | None:
    """The table a stream in `encoding` writes through: None where the encoding has every
    symbol (UTF-8), else `ASCII` for them all, so that a line never mixes "6×6" and "->"."""
    try:
        "".join(SPELLINGS).encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return None


# --- a reader that went away -----------------------------------------------------------------


def _reader_gone(exc: OSError, stream: Any) -> bool:
    """A closed pipe or socket; or an I/O error on a terminal (it hung up). An I/O error on a file
    is a real one and is raised."""
    if exc.errno in (errno.EPIPE, errno.ECONNRESET):
        return True
    if exc.errno != errno.EIO:
        return False
    try:
        return stat.S_ISCHR(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


class Guarded:
    """A text stream (sys.stdout, sys.stderr) that writes in any encoding (`spelling_for`) and
    survives its reader (see the module's docstring). Everything but writing and flushing is the
    stream's own (`encoding`, `isatty`, `fileno`: Rich reads them)."""

    def __init__(self, stream: TextIO, *, raise_once: bool) -> None:
        self.stream = stream
        self.raise_once = raise_once
        self.gone = False
        self.spelling = spelling_for(getattr(stream, "encoding", None))

    def write(self, text: str) -> int:
        if not self.gone:
            spelled = text if self.spelling is None else text.translate(self.spelling)
            self._guard(self.stream.write, spelled)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.gone:
            self._guard(self.stream.flush)

    def _guard(self, call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except OSError as exc:
            if not _reader_gone(exc, self.stream):
                raise
            silence(self)
            if self.raise_once:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def silence(stream: Any) -> None:
    """Drop everything written to `stream` from now on: its file descriptor is pointed at
    /dev/null (so what is still buffered, and Python's flush at exit, cannot fail again)."""
    if isinstance(stream, Guarded):
        stream.gone = True
        stream = stream.stream
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
        stream.flush()
    except (OSError, ValueError, AttributeError):  # no real file behind it, or already closed
        pass


def carry_on(function: Callable[..., Any], stream: Any) -> Callable[..., None]:
    """`function` (which prints to `stream`), silencing `stream` instead of failing when it is
    gone: how train and sweep go on training after their reader left."""

    def call(*args: Any) -> None:
        try:
            function(*args)
        except OSError:
            silence(stream)

    return call


# --- start-up ---------------------------------------------------------------------------------


def _fill_if_closed(fd: int) -> None:
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            return
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)


def install() -> None:
    """Set up this process's stdout and stderr (once; a second call changes nothing)."""
    for fd in (0, 1, 2):
        _fill_if_closed(fd)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if isinstance(stream, Guarded):
            continue
        if stream is None:  # closed when Python started: now /dev/null
            stream = open(fd, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a TextIOWrapper, or already closed
            pass
        setattr(sys, name, cast(TextIO, Guarded(stream, raise_once=name == "stdout")))


def flush() -> None:
    """Flush stdout and stderr before the process ends; a reader gone by now is no error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # too late to say more: the command's exit code stands
            pass


class NamedStream:
    """A text stream whose failed writes say which stream it is: an OSError raised by `write`
    or `flush` gets `name` as its file name (`errors.STDOUT`), so the one handler in `main` says
    that standard output could not be written, not some file. Everything else is the stream's."""

    def __init__(self, stream: Any, name: str) -> None:
        self.stream = stream
        self.name_in_errors = name

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            self._named(exc)
            raise

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            self._named(exc)
            raise

    def _named(self, exc: OSError) -> None:
        if exc.filename is None:
            exc.filename = self.name_in_errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
