"""The text panels of the lesson screen: the step counter, the step's arithmetic, the checks.

They are docked (never scrolled away), so the arithmetic of the current step stays readable in
an 80×24 terminal whatever the size of the arrays above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static


class StepStatus(Static):
    """One line: operation and phase, `step K / TOTAL`, output cell, play state, then the rest
    (speed, the example, ...) as the model lists them.

    The parts come in their order on the line: phase, step, cell, the speed, then the rest
    most important first (the mode, the example). When the line is too narrow the speed goes
    first, then a part's aside after a comma ("example edge-detect, seed 0"), then the last
    parts (the example, then the mode); the phase, the step and the play state always stay (the phase loses its leading
    operation name, then the cell goes, before they would be cut).
    The model assembles the parts (`OpReplay.status_parts`, `NetReplay.status_parts`).
    """

    DEFAULT_CSS = """
    StepStatus {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    _SEPARATOR = " │ "
    _parts: tuple[str, ...] = ()
    _playing = False

    def show(self, parts: Sequence[str], playing: bool) -> None:
        self._parts, self._playing = tuple(parts), playing
        self._draw()

    def on_resize(self) -> None:
        if self._parts:
            self._draw()

    def _all_parts(self) -> list[str]:
        parts = list(self._parts)
        play = "▶ playing" if self._playing else "paused"
        return [*parts[:3], play, *parts[3:]]  # phase, step, cell, play, speed, ...

    @property
    def full_text(self) -> str:
        """The whole line, every part, as a terminal wide enough shows it."""
        return self._SEPARATOR.join(self._all_parts())

    def fitted(self, width: int) -> list[str]:
        """The parts shown in `width` columns, play state included, in their order."""
        line = self._all_parts()

        def length(items: list[str]) -> int:
            return sum(len(item) for item in items) + len(self._SEPARATOR) * (len(items) - 1)

        if len(line) > 4 and length(line) > width:
            del line[4]  # the speed first: the example and the mode say more
        for index in reversed(range(4, len(line))):
            if length(line) > width and ", " in line[index]:
                # "true convolution, kernel rotated 180°" → "true convolution"
                line[index] = line[index].split(", ", 1)[0]
        while len(line) > 4 and length(line) > width:
            line.pop()  # the least important part left
        if length(line) > width and " · " in line[0]:
            line[0] = line[0].split(" · ", 1)[1]  # "conv2d · backward · dX" → "backward · dX"
        if len(line) == 4 and length(line) > width:
            del line[2]  # the cell goes before the play state
        return line

    def _draw(self) -> None:
        width = self.content_region.width if self.size.width else self.app.size.width - 2
        text = Text(no_wrap=True, overflow="ellipsis")
        play = "▶ playing" if self._playing else "paused"
        for index, part in enumerate(self.fitted(max(width, 1))):
            if index:
                text.append(self._SEPARATOR, style="dim")
            if part == play and index >= 2:
                text.append(part, style="bold" if self._playing else "dim")
            else:  # the counter is the second part; make it stand out
                text.append(part, style="bold" if index == 1 else "")
        self.update(text, layout=False)  # always one line: no need to re-lay out the screen


class StepPanel(Static):
    """The arithmetic of the current step: formula, numbers, the cell's running sum, and a last
    dim line (the example's output-size formula, where dout comes from, or what to press next).

    `rules`, drawn above them, say what the step applies: the rule of the phase (the chain rule,
    going backward) and the local derivative, in general and at this step."""

    DEFAULT_CSS = """
    StepPanel {
        height: auto;
        padding: 0 1;
        border-top: solid $accent 50%;
    }
    """

    def show(self, lines: Sequence[str], formula: str, rules: Sequence[str] = ()) -> None:
        text = Text()
        for index, rule in enumerate(rules):
            text.append("rule " if index == 0 else "     ", style="dim")
            text.append(rule)
            text.append("\n")
        for index, line in enumerate(lines):
            if index:
                text.append("\n")
            if index == 0:
                text.append(line, style="bold")
            elif index == 1:
                text.append(line)
            else:
                text.append(line, style="italic")
        text.append("\n")
        text.append(formula, style="dim")
        # re-lay out the screen only when the panel needs more or fewer lines than it has on
        # screen (a long step wraps in 80 columns); a plain step redraws just this panel.
        # (Against the lines laid out, not the last text's: a text drawn while a scrollbar of
        # the screen narrowed it for a moment wrapped a line more, and the panel kept a line
        # too few once it widened, cutting its last line.)
        self.update(text, layout=False)
        if not self.size.width:
            self.refresh(layout=True)
            return
        needed = self.get_content_height(self.size, self.app.size, self.size.width)
        if needed != self.size.height:
            self.refresh(layout=True)


class CheckPanel(Static):
    """Can the numbers be trusted? PyTorch's result and the numerical gradient check."""

    DEFAULT_CSS = """
    CheckPanel {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def show(self, torch_text: str, grad_text: str) -> None:
        self.update(Text.assemble(("check ", "bold"), torch_text, (" │ ", "dim"), grad_text))
