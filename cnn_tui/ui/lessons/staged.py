"""What the lessons in stages share: the network lesson and the batch-norm / dropout lessons.

Both replay a recorded run stage by stage (a layer and its pass, or a stage of the layer): a
status line, the pipeline line with the stage at work marked, the stage's arrays on the board,
the rule panel (what the stage computes, the chain rule going backward), the step panel and the
checks. `StagedScreen` composes and redraws that screen from its replay model (`NetReplay`,
`LayerReplay`: the same methods), `p`/`P` and `b` move between stages and passes; a subclass adds
what is its own (the net lesson's loss curve, its training steps) through `compose_extra` and
`redraw_extra`. Moving, playing, going to, skipping and the checks come from `SteppingScreen`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Header, Static

from cnn_tui.lessons.replay import GridSpec
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus
from cnn_tui.ui.lessons.stepping import SteppingScreen

# at least this terminal size (columns, rows) shows every filter / image of the stage at once
WIDE_BOARD = (110, 34)


class NetPipeline(Static):
    """One line: the network's layers in the order of the pass, the current one marked."""

    DEFAULT_CSS = """
    NetPipeline {
        height: 1;
        padding: 0 1;
    }
    """

    def show(self, direction: str, layers: list[tuple[str, bool]]) -> None:
        self._shown = (direction, layers)
        self._draw()

    def on_resize(self) -> None:
        if hasattr(self, "_shown"):
            self._draw()

    def _draw(self) -> None:
        """The whole line, spaced, where it fits; else (80 columns) without the training step
        (the status line says it) and with tight arrows, so the last layer, L, is never cut."""
        direction, layers = self._shown
        width = self.size.width - 2 if self.size.width else self.app.size.width - 2
        text = self._text(direction, layers, " → ")
        if text.cell_len > width:
            text = self._text(direction.rsplit(" ", 1)[-1], layers, "→")
        self.update(text, layout=False)

    @staticmethod
    def _text(direction: str, layers: list[tuple[str, bool]], arrow: str) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{direction}: ", style="bold")
        for index, (name, current) in enumerate(layers):
            if index:
                text.append(arrow, style="dim")
            if current:
                text.append(f"[{name}]", style="bold reverse")
            else:
                text.append(name)
        return text


class RulePanel(Static):
    """What the current stage computes in general (the chain rule, going backward)."""

    DEFAULT_CSS = """
    RulePanel {
        height: auto;
        padding: 0 1;
        border-top: solid $accent 50%;
    }
    """

    def show(self, rule: str) -> None:
        self.update(Text.assemble(("rule ", "dim"), (rule, "bold")))


class StagedScreen(SteppingScreen):
    """A lesson replayed stage by stage; `prefix` names its widgets (`net-board`, `layer-rule`)."""

    prefix: ClassVar[str]

    def compose(self) -> ComposeResult:
        prefix = self.prefix
        yield Header()
        yield StepStatus(id=f"{prefix}-status")
        yield NetPipeline(id=f"{prefix}-pipeline")
        yield from self.compose_extra()
        with VerticalScroll(id=self.scroll_id, can_focus=False):
            yield ArrayBoard(id=self.board_id, fit_height=True)
        yield RulePanel(id=f"{prefix}-rule")
        yield StepPanel(id=f"{prefix}-step")
        yield CheckPanel(id=self.check_id)
        yield WrappingFooter()

    def compose_extra(self) -> Iterable[Widget]:
        """Widgets between the pipeline line and the board (none)."""
        return ()

    def on_mount(self) -> None:
        self._redraw()
        self._start_checks()

    @property
    def wide(self) -> bool:
        """Whether the board has room for every filter / image of the stage side by side."""
        width, height = self.app.size
        return width >= WIDE_BOARD[0] and height >= WIDE_BOARD[1]

    def grid_specs(self) -> list[GridSpec]:
        """The stage's arrays for the board."""
        raise NotImplementedError

    def redraw_extra(self) -> None:
        """Redraw what `compose_extra` added."""

    def _redraw(self) -> None:
        model, prefix = self.model, self.prefix
        self.query_one(f"#{self.board_id}", ArrayBoard).show(self.grid_specs())
        self.query_one(f"#{prefix}-status", StepStatus).show(
            model.status_parts(self.speed), self.playing
        )
        self.query_one(f"#{prefix}-pipeline", NetPipeline).show(*model.pipeline())
        self.redraw_extra()
        rule, source = model.rule_lines()
        self.query_one(f"#{prefix}-rule", RulePanel).show(rule)
        self.query_one(f"#{prefix}-step", StepPanel).show(
            model.step_lines(), self.info_line(source)
        )
        self._follow_step()

    def on_resize(self) -> None:
        self.refresh_bindings()  # the filter / image key only matters when one is shown
        self._redraw()

    def action_prev_phase(self) -> None:
        self._move(self.model.prev_phase)

    def action_next_pass(self) -> None:
        self._move(self.model.next_pass)
