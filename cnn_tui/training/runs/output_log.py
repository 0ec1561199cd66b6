"""A run's console output (`output.log`): kept by its trainer for every run, read back by the
dashboard's Console tab and `cnn-tui runs --console RUN`.

**Kept.** A trainer that holds its run (`keep_output`, entered by `trainer.holding_run`) tees its
`sys.stdout` and `sys.stderr` into RUN_DIR/output.log while they still print where they did (the
terminal, a pipe, a file): its report lines, its notes, Python warnings (`warnings.showwarning`
writes to `sys.stderr`; PyTorch's C++ `TORCH_WARN` reaches Python as a warning when Python called
it), `print` in a model's code, `logging` handlers that wrote to stdout or stderr, and the error
that ended the run. The file is opened without following a symbolic link
(`fileio.open_own_file`). What goes into it is what a terminal would leave on screen: a line
redrawn with carriage returns (a progress bar) is kept once, as it was last drawn, and escape
sequences (colours, cursor moves) are left out, so a progress bar on a terminal costs the file
nothing.

- A trainer the TUI started already has its file descriptors 1 and 2 on output.log
  (`launcher.spawn_detached`): a stream whose file is output.log itself (same device and inode) is
  not written again, so no line is doubled, and output that C or C++ code writes to the
  descriptors (NCCL, CUDA, glog) is in the file as well. Its stdout, a file, is made
  line-buffered, so a model's `print` is there for the Console tab at once. A trainer started from a shell keeps what
  goes through Python only; such output reaches its terminal alone.
- `torchrun` (`--devices N`): rank 0, which holds the run, keeps its output; the other ranks print
  to the terminal only (their failure is in status.json and the event log all the same). From the
  TUI, every rank's descriptors are on output.log, so theirs is in it too. Lines get no rank prefix.
- **A size cap.** Past `MAX_BYTES`, the file is cut in place (`OutputFile.keep_under_cap`, checked
  every `CHECK_EVERY` bytes written): its first `HEAD_BYTES` (the run's setup, the first
  warnings) and its last `TAIL_BYTES` (the latest output, the error that ended it) stay, with a
  line between them saying how much was left out. A chatty model therefore cannot fill the disk:
  the file stays under MAX_BYTES plus what C code writes between two checks. (What another
  process appends during the few milliseconds of a cut is lost.)
- **A resumed run** appends to the same file after a separator line (`separator`).

**Read back.** `read_output` returns the lines added since an offset, as `console_lines` makes them
safe to show: each line as a terminal would leave it (`plain_line`), then through
`text.one_line`, so no escape sequence from the file reaches the terminal. A file cut since the
offset (it is shorter) is read again from its start. UI-free and torch-free.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import open_own_file
from cnn_tui.text import MIB, one_line, size
from cnn_tui.training.runs.store import OUTPUT_LOG, writing_into

MAX_BYTES = 8 * MIB  # output.log is cut back to its head and tail past this size
HEAD_BYTES = 1 * MIB  # ... keeping its first HEAD_BYTES
TAIL_BYTES = 4 * MIB  # ... and its last TAIL_BYTES
CHECK_EVERY = 64 * 1024  # bytes written between two looks at the file's size
PENDING_MAX = 64 * 1024  # a line longer than this without a line break is written in pieces

NOTE = "[cnn-tui]"  # the start of the lines the program writes into the file itself
_CUT = re.compile(rf"^{re.escape(NOTE)} .*\((\d+) bytes\)")

# escape sequences a terminal interprets: CSI (colours, cursor moves, erase), OSC (a title,
# a hyperlink; ended by BEL or ESC \), and the two-character ones (ESC 7, ESC M ...)
ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]"
)


# --- what a line shows --------------------------------------------------------------------------


def plain_line(line: str) -> str:
    """`line` as a terminal would leave it: the text after its last carriage return (a progress
    bar redrawn in place, as last drawn; a CRLF line ending is no redraw), escape sequences
    removed, tabs expanded. Not yet safe to show: `console_lines` is."""
    line = line.rstrip("\r")
    line = line[line.rfind("\r") + 1 :]
    return ESCAPE_SEQUENCE.sub("", line).expandtabs(8)


def console_lines(data: bytes) -> list[str]:
    """The lines of `data` (the bytes of output.log, split at line feeds only), each safe to show
    on a terminal: `plain_line`, then `text.one_line` (any control character left is shown as
    its escape, `\\x1b`). Bytes that are not UTF-8 are shown as U+FFFD. A last line feed ends
    the last line (it starts no empty one)."""
    if not data:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [one_line(plain_line(line)) for line in lines]


# --- writing: the run's file --------------------------------------------------------------------


def separator(what: str, when: float | None = None) -> str:
    """The line that marks where a session of the run starts in output.log ("resumed")."""
    stamp = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(time.time() if when is None else when)
    )
    return f"{NOTE} ===== {what} {stamp} (pid {os.getpid()}) =====\n"


class OutputFile:
    """RUN_DIR/output.log opened for appending (never through a symbolic link), with the size cap.

    Writes never raise: the file is a copy of what the streams print, so a full disk or a
    deleted folder ends the copy (`broken`), not the training, which meets the same fault in its
    own files and says so."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        max_bytes: int = MAX_BYTES,
        head_bytes: int = HEAD_BYTES,
        tail_bytes: int = TAIL_BYTES,
        check_every: int = CHECK_EVERY,
    ) -> None:
        if head_bytes + tail_bytes + 4096 > max_bytes:
            raise ValueError("output.log's head and tail must fit well under its cap")
        self.path = Path(run_dir) / OUTPUT_LOG
        with writing_into(run_dir):
            self.fd = open_own_file(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        self.max_bytes, self.head_bytes, self.tail_bytes = max_bytes, head_bytes, tail_bytes
        self.check_every = check_every
        self.lock = threading.RLock()
        self.unchecked = 0  # bytes written (by any stream) since the size was last looked at
        self.broken = False

    def identity(self) -> tuple[int, int]:
        info = os.fstat(self.fd)
        return info.st_dev, info.st_ino

    def is_behind(self, stream: Any) -> bool:
        """Whether `stream` (sys.stdout, sys.stderr) writes into this very file: the launcher
        pointed the trainer's file descriptors at it."""
        try:
            info = os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):  # (no file behind it: pytest's capture)
            return False
        return (info.st_dev, info.st_ino) == self.identity()

    def write(self, text: str) -> None:
        data = text.encode("utf-8", errors="backslashreplace")
        with self.lock:
            if self.broken:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:
                self.broken = True
                return
            self.written(len(data))

    def written(self, n_bytes: int) -> None:
        """`n_bytes` went into the file (here, or through a stream that writes into it)."""
        with self.lock:
            self.unchecked += n_bytes
            if self.unchecked >= self.check_every:
                self.unchecked = 0
                self.keep_under_cap()

    def ends_a_line(self) -> bool:
        """Whether the file is empty or its last byte is a line feed."""
        try:
            end = os.fstat(self.fd).st_size
            return end == 0 or os.pread(self.fd, 1, end - 1) == b"\n"
        except OSError:
            return True

    def keep_under_cap(self) -> bool:
        """Past `max_bytes`, cut the file back to its head and its tail (whole lines), with a
        note between them of the bytes left out (in all, counting earlier cuts); True if cut.

        The head is the same at every cut (the first `head_bytes`, back to a line end), so the
        note of an earlier cut, just after it, is found and its count carried on."""
        with self.lock:
            try:
                end = os.fstat(self.fd).st_size
                if end <= self.max_bytes:
                    return False
                head = os.pread(self.fd, self.head_bytes, 0)
                head_end = head.rfind(b"\n") + 1 or len(head)
                earlier = 0
                previous = os.pread(self.fd, 512, head_end).split(b"\n", 1)[0]
                match = _CUT.match(previous.decode("utf-8", errors="replace"))
                if match:
                    earlier = int(match.group(1)) - len(previous) - 1
                start = end - self.tail_bytes
                tail = os.pread(self.fd, self.tail_bytes, start)
                skip = tail.find(b"\n") + 1  # (the tail starts with a whole line)
                tail = tail[skip:]
                left_out = earlier + (start + skip - head_end)
                note = (
                    f"{NOTE} ----- {size(left_out)} of output left out here ({left_out} bytes): "
                    f"output.log keeps its first {size(self.head_bytes)} and last "
                    f"{size(self.tail_bytes)} -----\n"
                ).encode()
                os.ftruncate(self.fd, head_end)
                view = memoryview(note + tail)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:
                self.broken = True
                return False
            return True

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self.fd)
                self.fd = -1
                self.broken = True


@dataclass
class LineFilter:
    """What one stream wrote, as whole lines for the file (`plain_line`): text is held until its
    line ends, and a line redrawn with carriage returns keeps only its last drawing, so a
    progress bar's frames never reach the file (at most `PENDING_MAX` characters are held)."""

    pending: str = ""

    def feed(self, text: str) -> list[str]:
        parts = (self.pending + text).split("\n")
        self.pending = parts.pop()
        redraw = self.pending.rfind("\r", 0, len(self.pending) - 1)  # (not a CRLF's own CR)
        if redraw >= 0:
            self.pending = self.pending[redraw + 1 :]
        if len(self.pending) > PENDING_MAX:
            parts.append(self.pending)
            self.pending = ""
        return [plain_line(part) + "\n" for part in parts]

    def rest(self) -> str:
        """What is held at the end, as a last line ("" when it shows nothing)."""
        line, self.pending = plain_line(self.pending), ""
        return line + "\n" if line.strip() else ""


@dataclass
class OutputSink:
    """Where the tees (`TeeStream`) of a trainer holding its run send what they print."""

    file: OutputFile
    to_file: dict[str, bool]  # stream name -> written into the file (False: it writes there itself)
    filters: dict[str, LineFilter] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        with self.file.lock:  # (threads print too)
            if not self.to_file.get(name, False):
                self.file.written(len(text))  # (it reached the file through the stream: the cap)
                return
            lines = self.filters.setdefault(name, LineFilter()).feed(text)
            if lines:
                self.file.write("".join(lines))

    def close(self) -> None:
        with self.file.lock:
            for filtered in self.filters.values():
                rest = filtered.rest()
                if rest:
                    self.file.write(rest)
            self.file.close()


class TeeStream:
    """A text stream (sys.stdout, sys.stderr) that writes where it wrote before and, while a
    trainer holds its run (`sink`), into the run's output.log. Everything but writing is the
    stream's own (`isatty`, `fileno`, `encoding`: Rich reads them)."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self.stream = stream
        self.name = name
        self.sink: OutputSink | None = None

    def write(self, text: str) -> int:
        sink = self.sink
        if sink is not None and text:  # (first: a terminal gone does not lose the file's copy)
            sink.add(self.name, text)
        return self.stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


STREAMS = ("stdout", "stderr")


@contextlib.contextmanager
def teeing() -> Iterator[None]:
    """sys.stdout and sys.stderr as `TeeStream`s while the block runs (those already are stay).

    `cnn-tui train --no-ui` enters it before it makes its reporter, which keeps the stream it
    prints to: once the trainer holds its run (`keep_output`), the reporter's lines go into
    output.log too."""
    installed: dict[str, TeeStream] = {}
    for name in STREAMS:
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TeeStream):
            installed[name] = TeeStream(stream, name)
            setattr(sys, name, installed[name])
    handlers = _follow_in_logging(installed)
    try:
        yield
    finally:
        for handler, original in handlers:
            if handler.stream in installed.values():
                handler.setStream(original)
        for name, tee in installed.items():
            if getattr(sys, name) is tee:
                setattr(sys, name, tee.stream)


def _follow_in_logging(tees: dict[str, TeeStream]) -> list[tuple[logging.StreamHandler, Any]]:
    """Point the `logging` handlers that write to the streams now teed at their tees (a handler
    keeps the stream it was made with); returns (handler, its stream before) to put back."""
    originals = {id(tee.stream): tee for tee in tees.values()}
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    changed = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler and id(handler.stream) in originals:
                before = handler.stream
                handler.setStream(originals[id(before)])  # type: ignore[arg-type]
                changed.append((handler, before))
    return changed


@contextlib.contextmanager
def keep_output(
    run_dir: str | os.PathLike[str], *, resume: bool = False, **cap: int
) -> Iterator[OutputFile]:
    """While the block runs, what this process prints also goes into RUN_DIR/output.log (see the
    module's docstring); a resumed run's output follows a separator line. The error that ends the
    block is written there too, as `cnn-tui` prints it (a traceback for a bug), unless stderr
    writes into the file itself (it will print it there). Call it holding the run's lock. `cap`:
    `OutputFile`'s size limits (tests)."""
    file = OutputFile(run_dir, **cap)
    try:
        with teeing():
            tees = [tee for name in STREAMS if isinstance(tee := getattr(sys, name), TeeStream)]
            to_file = {tee.name: not file.is_behind(tee.stream) for tee in tees}
            for tee in tees:  # (what was printed before goes first, where it goes)
                with contextlib.suppress(OSError, ValueError):
                    tee.flush()
                if not to_file[tee.name]:  # (a file is block-buffered: each line in it at once)
                    with contextlib.suppress(AttributeError, ValueError, OSError):
                        tee.stream.reconfigure(line_buffering=True)
            if resume:
                file.write(("" if file.ends_a_line() else "\n") + separator("resumed"))
            sink = OutputSink(file, to_file)
            for tee in tees:
                tee.sink = sink
            try:
                yield file
            except BaseException as exc:
                if to_file.get("stderr"):
                    _record_error(sink, exc)
                raise
            finally:
                for tee in tees:
                    with contextlib.suppress(OSError, ValueError):
                        tee.flush()
                    tee.sink = None
                sink.close()
    finally:
        file.close()


def _record_error(sink: OutputSink, exc: BaseException) -> None:
    """The error that ended the trainer, into output.log as `cnn-tui` prints it on stderr."""
    if isinstance(exc, UsageError):
        text = f"cnn-tui: error: {one_line(exc)}\n"
    elif isinstance(exc, RunError):
        text = f"cnn-tui: {one_line(exc)}\n"
    elif isinstance(exc, KeyboardInterrupt):
        text = "cnn-tui: interrupted\n"
    elif isinstance(exc, Exception):
        text = "".join(traceback.format_exception(exc))
    else:  # SystemExit, GeneratorExit: nothing to say
        return
    sink.add("stderr", text)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputRead:
    """What `read_output` found: `lines` (safe to show) and the `offset` to read on from."""

    lines: list[str]
    offset: int
    exists: bool = True  # output.log is there (a regular file)
    restarted: bool = False  # the file was cut (or replaced) since the offset: read from its start
    skipped: int = 0  # bytes left unread before `lines` (`newest`)
    size: int = 0  # the file's size when read
    problem: str = ""  # why it cannot be read (a symbolic link, not a regular file, ...)


def output_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / OUTPUT_LOG


def _open_for_reading(path: Path) -> tuple[int | None, str]:
    """(fd, "") of output.log, opened without following a link; (None, why) if it cannot be."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"{OUTPUT_LOG} is a symbolic link: not shown"
        return None, f"{OUTPUT_LOG} cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, f"{OUTPUT_LOG} is not a regular file: not shown"
    return fd, ""


def read_output(
    run_dir: str | os.PathLike[str],
    offset: int = 0,
    *,
    newest: int | None = None,
    most: int | None = None,
    final: bool = False,
) -> OutputRead:
    """The lines of output.log from byte `offset` on (whole lines; with `final`, the run is over
    and a last line without its line feed counts too).

    `newest`: read only the last `newest` bytes of what is new (from a line's start), saying how
    many were `skipped`. `most`: read at most `most` bytes now (the rest at the next call).
    An offset past the file's end (it was cut) reads it again from the start (`restarted`)."""
    fd, problem = _open_for_reading(output_path(run_dir))
    if fd is None:
        return OutputRead([], offset, exists=False, problem=problem)
    try:
        end = os.fstat(fd).st_size
        restarted = offset > end
        start = 0 if restarted else offset
        skipped = 0
        if newest is not None and end - start > newest:
            skipped = end - newest - start
            start = end - newest
        length = end - start if most is None else min(end - start, most)
        data = os.pread(fd, length, start) if length > 0 else b""
    except OSError as exc:
        return OutputRead([], offset, problem=f"{OUTPUT_LOG} cannot be read ({exc.strerror})")
    finally:
        os.close(fd)
    if skipped:  # (from the start of a line: the partial one is skipped too)
        cut = data.find(b"\n") + 1
        skipped, start, data = skipped + cut, start + cut, data[cut:]
    last = data.rfind(b"\n")
    whole = final and start + len(data) == end
    if not whole:
        if last < 0 and len(data) >= (most or PENDING_MAX) > 0:
            last = len(data) - 1  # one line longer than a read: shown in pieces
        data = data[: last + 1]
    lines = console_lines(data)
    return OutputRead(lines, start + len(data), True, restarted, skipped, end)


def tail_offset(run_dir: str | os.PathLike[str], lines: int) -> int:
    """The offset where the last `lines` whole lines of output.log start (0: it has no more)."""
    fd, _ = _open_for_reading(output_path(run_dir))
    if fd is None:
        return 0
    try:
        end = position = os.fstat(fd).st_size
        if lines <= 0:
            return end
        if end and os.pread(fd, 1, end - 1) == b"\n":
            end -= 1  # (the last line's own line feed)
            position = end
        found = 0
        while position > 0:
            block = min(64 * 1024, position)
            data = os.pread(fd, block, position - block)
            index = len(data)
            while True:
                index = data.rfind(b"\n", 0, index)
                if index < 0:
                    break
                found += 1
                if found == lines:
                    return position - block + index + 1
            position -= block
        return 0
    except OSError:
        return 0
    finally:
        os.close(fd)
