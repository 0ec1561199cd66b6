"""The text panels of the lesson screen: the step counter, the step's arithmetic, the checks.

They are docked (never scrolled away), so the arithmetic of the current step stays readable in
an 80×24 terminal whatever the size of the arrays above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static


class StepStatus(Static):
    """One line: operation, phase, `step K / TOTAL`, output cell, play state and speed."""

    DEFAULT_CSS = """
    StepStatus {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    def show(self, parts: Sequence[str], playing: bool) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, part in enumerate(parts):
            if index:
                text.append(" │ ", style="dim")
            # the counter is the first part; make it stand out
            text.append(part, style="bold" if index == 1 else "")
            if index == 2:
                text.append(" │ ", style="dim")
                text.append(
                    "▶ playing" if playing else "paused", style="bold" if playing else "dim"
                )
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

    _line_count = 0

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
        # re-lay out the screen only when the panel needs more or fewer lines (a long step
        # wraps in 80 columns); a plain step redraws just this panel
        width = max(self.content_region.width, 1) if self.size.width else 78
        count = len(text.wrap(self.app.console, width))
        self.update(text, layout=count != self._line_count)
        self._line_count = count


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
