"""The Console tab of the run screen: the trainer's console output (RUN_DIR/output.log), live.

The file is read by offset, as the event log is (`output_log.read_output`, in a thread worker):
only what was added since the last read, every `POLL_S` seconds while the screen is shown
(`polling.ShownPoller`: a screen covered by another reads nothing) and the run is live; once
when the run is over (ResultsScreen, or the dashboard when its run ends). The first read takes
only the newest `NEWEST_BYTES` (and says how much it left out); the log keeps at most `MAX_LINES`
lines. Every line is made safe by the reader (`output_log.console_lines`: no escape sequence
from the file reaches the terminal) and written as plain text, never markup.

The log follows the end while it is scrolled to the end; scrolled up, it stays where the user is
(the line above it says so) until End brings it back. Long lines wrap at the log's width (again
when it changes); `w` keeps them whole instead (an epoch table stays a table; ← → scroll).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import RichLog, Static

from cnn_tui import text
from cnn_tui.training.runs import output_log
from cnn_tui.training.runs.output_log import NOTE, OutputRead
from cnn_tui.ui.training.polling import ShownPoller

POLL_S = 0.5  # a live run's output.log is looked at twice a second
NEWEST_BYTES = 512 * 1024  # a read takes at most the newest 512 KiB of what is new
MAX_LINES = 5000  # lines kept in the log (the oldest go)

_WARNING_WORDS = ("Warning:", "warning:", "WARNING")
_ERROR_WORDS = ("Traceback (most recent call last)", "Error:", "error:", "ERROR")


def line_style(line: str) -> str:
    """How a line of output is shown: the program's own notes dim, warnings and errors coloured."""
    if line.startswith(NOTE):
        return "dim italic"
    if any(word in line for word in _ERROR_WORDS):
        return "bold red"
    if any(word in line for word in _WARNING_WORDS):
        return "yellow"
    return ""


@dataclass
class ConsoleRead(Message):
    """What one read of output.log found (`read_output`), from offset `start`."""

    read: OutputRead
    ticket: int  # which read it is: only the latest one's is shown


class ConsoleLog(RichLog):
    """The lines; End (or scrolling to the end) follows new output again."""

    BINDINGS = [
        Binding("end", "follow", "Follow"),
        Binding("home", "scroll_home", "Top of the output", show=False),
        Binding("pageup", "page_up", "Page up (↑ a line)", show=False),
        Binding("pagedown", "page_down", "Page down (↓ a line)", show=False),
        Binding("w", "toggle_wrap", "Wrap"),
    ]

    @dataclass
    class Scrolled(Message):
        """The log moved: whether it is at its end (following) may have changed."""

    @dataclass
    class WrapToggled(Message):
        """`w`: long lines wrapped, or kept whole (← → scroll them: tables stay tables)."""

    def action_follow(self) -> None:
        self.scroll_end(animate=False)

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.post_message(self.WrapToggled())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.post_message(self.Scrolled())

    @property
    def following(self) -> bool:
        return self.is_vertical_scroll_end


class ConsoleView(Vertical):
    """The Console tab: a line saying where the file is and whether the log follows it, the
    log, and a word in its place while there is nothing to show."""

    DEFAULT_CSS = """
    ConsoleView { height: 1fr; }
    ConsoleView #console-where { height: 1; padding: 0 1; color: $text-muted; }
    ConsoleView #console-empty { padding: 1 2; color: $text-muted; }
    ConsoleView #console-log { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.run_dir: Path | None = None
        self.live = False
        self.over = False
        self.file_offset = 0
        self.shown_lines = 0  # lines read from the file and shown (the log keeps MAX_LINES)
        self.kept: deque[str] = deque(maxlen=MAX_LINES)  # the lines shown, to wrap them again
        self.wrapped_at = 0  # the log's width when its lines were wrapped
        self.drawn: tuple[str, str] = ("", "")  # what the two texts show (redrawn on a change)
        self.reading = False
        self.ticket = 0  # the latest read asked for
        self.read: OutputRead | None = None  # the latest read
        self.poller: ShownPoller | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="console-where", markup=True)
        yield Static(id="console-empty", markup=False)
        yield ConsoleLog(id="console-log", max_lines=MAX_LINES, wrap=True, markup=False)

    # --- reading --------------------------------------------------------------------------------

    def start(self, run_dir: Path, *, live: bool) -> None:
        """Show `run_dir`'s output: followed while `live`, else read once."""
        self.run_dir, self.live, self.over = Path(run_dir), live, not live
        self._show_state()
        if live:
            self.poller = ShownPoller(self, POLL_S, self.poll)
            self.poller.start()
        else:
            self.poll()

    def run_over(self) -> None:
        """The run ended: read what is left (a last line without its line feed too), then stop."""
        if self.over or self.run_dir is None:
            return
        self.over = True
        if self.poller is not None and self.poller.timer is not None:
            self.poller.timer.stop()
            self.poller.timer = None
        self.reading = False  # (a read in flight is superseded: this one reads from its start)
        self.poll()

    def poll(self) -> None:
        if self.run_dir is None or self.reading:
            return
        if self.read is not None and not self.over and self._unchanged():
            return  # (one stat: no thread started for a file that did not grow)
        self.reading = True
        self.ticket += 1
        self._read(self.run_dir, self.file_offset, self.over, self.ticket)

    def _unchanged(self) -> bool:
        """Whether output.log is as the last read left it: still missing, or not grown since."""
        assert self.run_dir is not None and self.read is not None
        try:
            grown = os.stat(output_log.output_path(self.run_dir)).st_size != self.read.size
        except OSError:
            return not self.read.exists
        return self.read.exists and not self.read.problem and not grown

    @work(thread=True, exit_on_error=False, group="console-read")
    def _read(self, run_dir: Path, offset: int, final: bool, ticket: int) -> None:
        read = output_log.read_output(run_dir, offset, newest=NEWEST_BYTES, final=final)
        self.post_message(ConsoleRead(read, ticket))

    @on(ConsoleRead)
    def _on_read(self, message: ConsoleRead) -> None:
        message.stop()
        if message.ticket != self.ticket:  # (superseded by a later read from the same offset)
            return
        self.reading = False
        read = self.read = message.read
        log = self.query_one(ConsoleLog)
        notes: list[str] = []
        if read.restarted:
            log.clear()
            self.kept.clear()
            self.shown_lines = 0
            notes.append(
                f"{NOTE} {output_log.OUTPUT_LOG} was cut to its head and tail: shown again "
                "from its start"
            )
        if read.skipped:
            notes.append(
                f"{NOTE} {text.size(read.skipped)} of earlier output not shown here: "
                f"cnn-tui runs --console {text.one_line(self.run_dir)} prints it all"
            )
        self.file_offset = read.offset
        lines = notes + read.lines
        if lines:
            self.kept.extend(lines)
            self.shown_lines += len(lines)
            width = log.scrollable_content_region.width
            if width and width == self.wrapped_at:
                self._write(lines, scroll_end=log.following)
            else:  # hidden (another tab): written whole once shown, from `kept` (bounded)
                self.wrapped_at = 0
                self._wrap_again()
        self._show_state()

    def _write(self, lines: list[str] | deque[str], *, scroll_end: bool) -> None:
        log = self.query_one(ConsoleLog)
        content = Text()
        for index, line in enumerate(lines):
            if index:
                content.append("\n")
            content.append(line, style=line_style(line))
        width = log.scrollable_content_region.width
        widest = width if log.wrap else max(width, *(cell_len(line) for line in lines))
        log.write(content, width=widest, scroll_end=scroll_end)
        self.wrapped_at = width

    def _wrap_again(self) -> None:
        """The log's lines wrapped at its new width (RichLog wraps a line once, as written)."""
        log = self.query_one(ConsoleLog)
        width = log.scrollable_content_region.width
        if not self.kept or not width or width == self.wrapped_at:
            return  # (nothing to show, hidden, or wrapped at this width already)
        following = log.following or not log.lines
        log.clear()
        self._write(self.kept, scroll_end=following)

    # --- drawing --------------------------------------------------------------------------------

    @on(ConsoleLog.WrapToggled)
    def _wrap_toggled(self, message: ConsoleLog.WrapToggled) -> None:
        message.stop()
        self.wrapped_at = 0  # (written again, wrapped or whole)
        self._wrap_again()
        self._show_state()

    @on(ConsoleLog.Scrolled)
    def _scrolled(self, message: ConsoleLog.Scrolled) -> None:
        message.stop()
        self._show_state()

    def on_resize(self) -> None:
        self._show_state()
        self.call_after_refresh(self._wrap_again)  # (once the log has its new size)

    def on_show(self) -> None:
        self.call_after_refresh(self._wrap_again)  # (its tab shown: what came meanwhile)

    def empty_text(self) -> str:
        """What the log's place says while there is no line to show ("" once there is one)."""
        read = self.read
        if self.shown_lines or read is None:
            return ""
        if read.problem:
            return read.problem
        if not read.exists:
            if self.over:
                return (
                    f"this run kept no console output (no {output_log.OUTPUT_LOG} in its "
                    "folder): runs started from a shell kept none before every run kept one"
                )
            return "no output yet: the trainer has not written anything"
        return "the trainer printed nothing" if self.over else "no output yet"

    def _show_state(self) -> None:
        if self.run_dir is None:
            return
        log = self.query_one(ConsoleLog)
        empty = self.empty_text()
        if self.shown_lines and not log.following:
            back = "End: the last line" if self.over else "End follows the output again"
            state = f"[b $text-warning]scrolled up[/]: {back}"
        elif self.shown_lines and not self.over:
            state = "[b]following[/b] the output"
        else:
            state = f"{text.count(self.shown_lines)} lines" if self.shown_lines else ""
        if self.shown_lines and not log.wrap:
            state += " · not wrapped (w)"
        path = str(output_log.output_path(self.run_dir))
        room = max(8, self.size.width - 2 - len(_plain(state)) - 3)
        shown = path if len(path) <= room else "…" + path[-(room - 1) :]
        where = " · ".join(p for p in (state, text.markup(shown)) if p)
        if (empty, where) == self.drawn:
            return  # (a poll that found nothing new redraws nothing)
        self.drawn = (empty, where)
        self.query_one("#console-empty", Static).update(empty)
        self.query_one("#console-empty").display = bool(empty)
        log.display = not empty
        self.query_one("#console-where", Static).update(where)


def _plain(markup: str) -> str:
    return Text.from_markup(markup).plain
