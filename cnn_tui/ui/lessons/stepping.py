"""What the step-through lesson screens share: all of their playback, the checks, the board.

`LessonScreen` (conv, pool) and `NetworkScreen` (the whole tiny network) both replay recorded
steps through a UI-free model (`cnn_tui.lessons.op_replay.OpReplay`,
`cnn_tui.lessons.net_replay.NetReplay`; see `LessonModel`). This base class is their one
playback: it moves the model by a step, an output cell, a phase or to either end, plays it on
a timer, changes the speed, follows the step's sample / channel / filter (and cycles them),
restarts on a new example, shows the `?` page (the notation legend and the keys), scrolls the board to the current step and fits
it to its content, and runs the PyTorch and numerical checks in one worker thread (torch is
imported there, never at start-up). It also goes to a typed step, cell or phase (`:`, the
`goto.GotoPrompt`) and skips the steps whose product is 0 (`z` / `Z`), where the model can
(`cnn_tui.lessons.navigation`); the step panel's last line says what such a move did
(`info_line`). A screen builds its model, redraws, and says which checks
it runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui.lessons.navigation import GotoTarget, Skip
from cnn_tui.lessons.replay import READ, WRITE
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.help import LessonHelp
from cnn_tui.ui.lessons.step_panel import CheckPanel

# steps per second while playing
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
DEFAULT_SPEED = 2  # index into SPEEDS: 5 steps/s
_MAX_TICKS_PER_SECOND = 30

STEP_GROUP = Binding.Group("step", compact=True)
CELL_GROUP = Binding.Group("cell", compact=True)
SPEED_GROUP = Binding.Group("speed", compact=True)

# Go to and skip zero products, on every lesson screen whose model can (`check_action`).
NAV_BINDINGS = [
    Binding("colon", "goto", "go to", key_display=":", tooltip="a step, an output cell or a phase"),
    # z / Z stay out of the footer (the `?` keys panel lists them): at 80×24 a footer line more
    # is a board row less
    Binding("z", "skip_zeros(1)", "skip zero products", key_display="z", show=False),
    Binding("Z", "skip_zeros(-1)", "skip zero products, backward", key_display="Z", show=False),
]

# The keys both lessons move with, in footer order: step, cell (the screens add their own).
MOVE_BINDINGS = [
    # the footer shows a group's description ("←→ step"), the keys panel each description
    Binding("left,h", "step(-1)", "step back", key_display="←", group=STEP_GROUP),
    Binding("right,l", "step(1)", "step forward", key_display="→", group=STEP_GROUP),
    Binding(
        "left_square_bracket,shift+left",
        "prev_cell",
        "previous output cell",
        key_display="[",
        group=CELL_GROUP,
    ),
    Binding(
        "right_square_bracket,shift+right",
        "next_cell",
        "finish the output cell",
        key_display="]",
        group=CELL_GROUP,
    ),
    *NAV_BINDINGS,
]
PLAY_BINDINGS = [
    Binding("space", "toggle_play", "play", key_display="␣"),
    Binding("minus", "speed(-1)", "slower", key_display="-", group=SPEED_GROUP),
    Binding("plus,equals_sign", "speed(1)", "faster", key_display="+", group=SPEED_GROUP),
]


def jump_bindings(first: str, last: str) -> list[Binding]:
    """home / end: to the start and the end of what the screen's model jumps over (a pass, a
    layer), described as `first` and `last`."""
    return [
        Binding("home,g", "jump('start')", first, key_display="home"),
        Binding("end,G", "jump('end')", last, key_display="end"),
    ]


LEAVE_BINDINGS = [
    Binding("question_mark,f1", "toggle_keys", "help", key_display="?"),
    Binding("escape", "app.pop_screen", "home"),
    Binding("ctrl+q", "app.quit", "quit", priority=True),
]

# One check: its key in the check panel and a function (run in the worker) giving its text.
Check = tuple[str, Callable[[], str]]


class LessonModel(Protocol):
    """What the playback moves: a lesson's UI-free model, a cursor over its recorded steps."""

    @property
    def position(self) -> int: ...

    @property
    def total(self) -> int: ...

    def seek(self, position: int) -> int: ...

    def step(self, delta: int = 1) -> int: ...

    def next_cell(self) -> int: ...

    def prev_cell(self) -> int: ...

    def next_phase(self) -> int: ...

    def jump(self, where: str) -> int: ...

    def view_indices(self) -> dict[str, int]: ...

    def axis_sizes(self) -> dict[str, int]: ...

    # go to and skip zeros (`cnn_tui.lessons.navigation`); a model without them hides the keys
    def goto_names(self) -> list[str]: ...

    def resolve_goto(self, text: str, view: Mapping[str, int]) -> GotoTarget: ...

    def go_to(self, target: GotoTarget) -> int: ...

    def skip_zeros(self, direction: int = 1) -> Skip: ...


@dataclass
class CheckDone(Message):
    """A check worker finished one check of computation `token`."""

    token: int
    which: str  # "torch" | "grad"
    text: str


class SteppingScreen(Screen):
    """Base of the lesson screens: their model moved, played, checked and drawn, one way."""

    # short terminals (80×24) drop the header to leave room for the arrays
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (30, "-tall")]

    # whether the PyTorch and gradient checks run (tests switch it off for determinism)
    run_checks_default: ClassVar[bool] = True

    # the ids of this screen's board, its scrolling container and its check panel
    board_id: ClassVar[str] = ""
    scroll_id: ClassVar[str] = ""
    check_id: ClassVar[str] = ""
    grad_pending: ClassVar[str] = "finite differences: checking…"

    model: LessonModel  # what the keys move, built by `_compute`
    example: Any  # the lesson example the model replays
    op: str  # the lesson: "conv", "pool", "net", "batchnorm", "dropout" (its `?` legend)

    def __init__(
        self, *, run_checks: bool | None = None, name: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(name=name, id=id)
        self.run_checks = self.run_checks_default if run_checks is None else run_checks
        self.playing = False
        self.speed_index = DEFAULT_SPEED
        self._timer: Timer | None = None
        self._token = 0
        self._checks = {"torch": "", "grad": ""}
        # the slice of the arrays on the board: sample n, channel c, filter f (a screen's axes)
        self.view: dict[str, int] = {}
        # what the last move did, said in the step panel ("skipped 14 zero products")
        self.move_note = ""

    # ----------------------------------------------------------------- what a screen gives

    def _compute(self, **options: Any) -> None:
        """Build `self.model` for `self.example` (options: the screen's own, e.g. the pass)."""
        raise NotImplementedError

    def _redraw(self) -> None:
        raise NotImplementedError

    def checks(self) -> list[Check]:
        """The checks of the current computation, run in the worker: ("grad", fn), ("torch", fn)."""
        return []

    # ----------------------------------------------------------------- a new example

    def _restart(self, example: Any, **options: Any) -> None:
        """A new example: stop, rebuild the model, show its first slices, re-run the checks."""
        self._stop()
        self.example = example
        self._token += 1  # checks still running for the old example are ignored
        self._compute(**options)
        self.view = dict.fromkeys(self.view, 0)
        self.view.update(self.model.view_indices())  # where the model stands (`v`, `m` keep it)
        self.move_note = ""
        self.refresh_bindings()
        self._redraw()
        self._start_checks()

    # ----------------------------------------------------------------- moving

    def _move(self, move: Callable[..., object], *args: Any) -> None:
        """A key that moves the model: stop playing, move, follow the step."""
        self._stop()
        move(*args)
        self._moved()

    def _moved(self, note: str = "") -> None:
        """After the model moved: follow the step's sample / channel / filter, redraw (with
        `note`, what the move did, in the step panel until the next move)."""
        self.move_note = note
        self.view.update(self.model.view_indices())
        self._redraw()

    def info_line(self, line: str) -> str:
        """The step panel's last line: what the last move did (a go-to, a skip over zero
        products) until the next move, else `line` (the screen's own)."""
        return self.move_note or line

    def action_step(self, delta: int) -> None:
        self._move(self.model.step, delta)

    def action_next_cell(self) -> None:
        self._move(self.model.next_cell)

    def action_prev_cell(self) -> None:
        self._move(self.model.prev_cell)

    def action_next_phase(self) -> None:
        self._move(self.model.next_phase)

    def action_jump(self, where: str) -> None:
        self._move(self.model.jump, where)

    def action_goto(self) -> None:
        """Ask for a step, a cell or a phase (`goto.GotoPrompt`) and go there."""
        from cnn_tui.ui.lessons.goto import GotoPrompt

        self._stop()
        model = self.model

        def arrived(target: GotoTarget | None) -> None:
            if target is not None and self.model is model:
                self.go_to(target, f"went to {target.label}" if target.label else "")

        prompt = GotoPrompt(lambda text: model.resolve_goto(text, self.view), model.goto_names())
        self.app.push_screen(prompt, arrived)

    def go_to(self, target: GotoTarget, note: str = "") -> None:
        """Move to a target the model resolved (`resolve_goto`), `note` in the step panel."""
        self._stop()
        self.model.go_to(target)
        self._moved(note)

    def action_skip_zeros(self, direction: int) -> None:
        """To the next (previous) step whose product is not 0, saying how many were skipped."""
        self._stop()
        skip = self.model.skip_zeros(direction)
        self._moved(skip.message())

    def action_cycle(self, axis: str) -> None:
        """Show the next sample / channel / filter of the arrays (`axis` "n", "c" or "f")."""
        size = self.model.axis_sizes().get(axis, 1)
        self.view[axis] = (self.view.get(axis, 0) + 1) % max(size, 1)
        self._redraw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the keys that do nothing here (they stay out of the footer)."""
        if action == "cycle":
            axis = parameters[0] if parameters else ""
            return self.model.axis_sizes().get(str(axis), 1) > 1
        if action == "goto":
            return hasattr(self.model, "resolve_goto")
        if action == "skip_zeros":
            return hasattr(self.model, "skip_zeros")
        return True

    # ----------------------------------------------------------------- play

    def action_toggle_keys(self) -> None:
        """The `?` page: the notation beside the lecture's, then every key (`LessonHelp`)."""
        self._stop()
        self.app.push_screen(LessonHelp(getattr(self, "op", ""), self))

    def action_toggle_play(self) -> None:
        if self.playing:
            self._stop()
        else:
            if self.model.position >= self.model.total:
                self.model.seek(0)
            self.playing = True
            self._start_timer()
        self._redraw()

    def action_speed(self, delta: int) -> None:
        self.speed_index = min(max(self.speed_index + delta, 0), len(SPEEDS) - 1)
        if self.playing:
            self._start_timer()
        self._redraw()

    @property
    def speed(self) -> int:
        return SPEEDS[self.speed_index]

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        interval = max(1 / self.speed, 1 / _MAX_TICKS_PER_SECOND)
        self._timer = self.set_interval(interval, self._tick)

    def _tick(self) -> None:
        speed = self.speed
        per_tick = (
            max(1, round(speed / _MAX_TICKS_PER_SECOND)) if speed > _MAX_TICKS_PER_SECOND else 1
        )
        self.model.step(per_tick)
        if self.model.position >= self.model.total:
            self._stop()
        self._moved()

    def _stop(self) -> None:
        self.playing = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    # ----------------------------------------------------------------- the board

    def _follow_step(self) -> None:
        """After a redraw: fit the board's container to its lines (no blank band before the
        step panel) and scroll the current step into view: its operands and the written cell
        when they fit the view together, else the operands (the step's arithmetic says where
        the result goes)."""
        self.call_after_refresh(self._scroll_to_step)

    def _scroll_to_step(self) -> None:
        board = self.query_one(f"#{self.board_id}", ArrayBoard)
        scroll = self.query_one(f"#{self.scroll_id}", VerticalScroll)
        self._fit_board(board, scroll)
        both = board.highlight_region((READ, WRITE))
        view = scroll.scrollable_content_region
        if both is not None and (both.height > view.height or both.width > view.width):
            both = board.highlight_region((READ,)) or board.highlight_region()
        if both is not None:
            scroll.scroll_to_region(both, animate=False, immediate=True)

    def _fit_board(self, board: ArrayBoard, scroll: VerticalScroll) -> None:
        """Give the board's container the board's height, at most what the screen leaves."""
        room = self._board_room(scroll)
        if board.room != room or board.stale_width():
            board.room = room
            board.relayout()  # crop to the room there is, not to the last fit
        board_w, board_h = board.board_size
        view_w = scroll.scrollable_content_region.width  # (padding and scrollbar excluded)
        height = min(board_h + (1 if board_w > view_w else 0), room)
        if scroll.styles.height is None or scroll.styles.height.value != height:
            scroll.styles.height = height

    def _board_room(self, scroll: VerticalScroll) -> int:
        """The lines the screen leaves the board's container, the other parts laid out."""
        others = sum(
            child.outer_size.height
            for child in self.children
            if isinstance(child, Widget)
            and child is not scroll
            and child.display
            and str(child.styles.dock or "") in ("", "none", "top", "bottom")
        )
        return max(self.size.height - others, 3)

    def on_mount(self) -> None:
        """(Besides the screen's own `on_mount`.) The board is fitted again after a layout of
        the screen that leaves it unfitted (`_check_fit`)."""
        self.screen_layout_refresh_signal.subscribe(self, self._check_fit)

    def _check_fit(self, _screen: Screen) -> None:
        """After each layout: fit the board again if it was laid out for a width its container
        no longer gives it, or for a room the other parts no longer leave it.

        When keys come faster than the layout, a step's panels change height and the screen
        shows a scrollbar for a moment: every part is two columns narrower, the step panel
        may wrap a line more, and a board fitted then kept that narrower layout (nothing
        resized the board) and the screen its scrollbar. Fitting again once the panels are
        laid out ends where slow keys end: the board in what the screen leaves, no scrollbar."""
        board = self.query_one(f"#{self.board_id}", ArrayBoard)
        scroll = self.query_one(f"#{self.scroll_id}", VerticalScroll)
        if board.stale_width() or (
            board.room is not None and board.room != self._board_room(scroll)
        ):
            self._follow_step()

    def on_resize(self) -> None:
        self._follow_step()

    def on_screen_resume(self) -> None:
        """Back from a modal (the go-to prompt, the edit form): fit the board again. A move made
        while the modal was up was fitted to the step panel it replaced (a taller one leaves a
        blank band under the board): after the screen's own layout, so its panels' sizes are
        the new ones."""
        self.call_after_refresh(self._follow_step)

    # ----------------------------------------------------------------- checks

    def _start_checks(self) -> None:
        if not self.run_checks:
            self._checks = {"torch": "PyTorch comparison off", "grad": "gradient check off"}
            self._show_checks()
            return
        has_torch = importlib.util.find_spec("torch") is not None
        self._checks = {
            "torch": "PyTorch: checking…" if has_torch else "PyTorch: not installed, skipped",
            "grad": self.grad_pending,
        }
        self._show_checks()
        jobs = [job for job in self.checks() if has_torch or job[0] != "torch"]
        self._run_checks(jobs, self._token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lesson-check")
    def _run_checks(self, jobs: list[Check], token: int) -> None:
        worker = get_current_worker()
        for which, job in jobs:
            if worker.is_cancelled:
                return
            text = job()
            if not worker.is_cancelled:
                self.post_message(CheckDone(token, which, text))

    @on(CheckDone)
    def _check_done(self, message: CheckDone) -> None:
        if message.token == self._token:
            self._checks[message.which] = message.text
            self._show_checks()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "lesson-check" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._checks = {"torch": "check failed", "grad": f"{type(error).__name__}: {error}"}
            self._show_checks()

    def _show_checks(self) -> None:
        self.query_one(f"#{self.check_id}", CheckPanel).show(
            self._checks["torch"], self._checks["grad"]
        )
