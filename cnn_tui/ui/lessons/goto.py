"""The go-to prompt of the lesson screens: a step number, a cell or a phase, typed.

A small modal at the bottom of the screen (the board stays in sight above it) with one Input.
What is typed is resolved by the lesson's UI-free model (`resolve_goto`, see
`cnn_tui.lessons.navigation`), which does not move it: a query that leads nowhere (a step out
of range, an unknown phase, not a cell) is explained on the prompt's last lines and the board
stays as it was; Enter on a good one closes the prompt with its target, Escape cancels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cnn_tui.lessons.navigation import GotoError, GotoTarget
from cnn_tui.text import one_line


class GotoPrompt(ModalScreen[GotoTarget | None]):
    """Ask where to go; dismisses with the model's target (None: cancelled)."""

    DEFAULT_CSS = """
    GotoPrompt {
        align: center bottom;
        background: $background 30%;
    }
    GotoPrompt #goto-box {
        width: 100%;
        max-width: 100;
        height: auto;
        padding: 0 1;
        border: round $accent;
        background: $surface;
    }
    GotoPrompt #goto-input {
        border: none;
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    GotoPrompt #goto-help {
        color: $text-muted;
    }
    GotoPrompt #goto-error {
        color: $text-error;
        height: auto;  /* a long message wraps, never cut at the box's edge */
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        resolve: Callable[[str], GotoTarget],
        phases: Sequence[str],
        *,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.resolve = resolve  # text -> target, GotoError when it leads nowhere; never moves
        self.phases = list(phases)

    def compose(self) -> ComposeResult:
        with Vertical(id="goto-box") as box:
            box.border_title = "go to"
            box.border_subtitle = "enter: go · esc: cancel"
            yield Input(placeholder="a step number, a cell i,j or a phase", id="goto-input")
            yield Static(self._help(), id="goto-help")
            yield Static("", id="goto-error")

    def _help(self) -> Text:
        return Text.assemble(
            ("step ", "bold"),
            "N as the status counts · ",
            ("cell ", "bold"),
            "i,j (its first step) · ",
            ("phase ", "bold"),
            " ".join(self.phases),
            " (then N: its N-th step)",
        )

    @on(Input.Changed)
    def _typed(self) -> None:
        self.query_one("#goto-error", Static).update("")

    @on(Input.Submitted)
    def _go(self, event: Input.Submitted) -> None:
        try:
            target = self.resolve(event.value)
        except GotoError as exc:
            self.query_one("#goto-error", Static).update(Text(one_line(exc)))
            return
        self.dismiss(target)

    def action_cancel(self) -> None:
        self.dismiss(None)
