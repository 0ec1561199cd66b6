"""The batch-normalisation and dropout lessons, replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.layer_lesson.run_layer` once per example (every step
recorded) and replays it with `cnn_tui.lessons.layer_replay.LayerReplay`: the stage line marks
the stage at work (μ, σ², x̂, y, the running statistics, then dβ, dγ, dx̂, dσ², dμ, dx; or the
mask, y, dx), the board shows that stage's arrays (`ArrayBoard`: x, μ, σ², x̂, y, γ, β and the
gradients, the current step's cells highlighted), the rule panel what the stage computes (the
chain rule, going backward), the step panel the current step with its numbers and where the
stage's input came from. Moving, playing, going to a stage, a step or a cell (`:`), skipping
zero products (`z` / `Z`: in dropout, the dropped values) and the checks against PyTorch and
finite differences (in a worker thread: torch is imported there) come from `SteppingScreen`,
the screen's frame from `cnn_tui.ui.lessons.staged.StagedScreen`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Region

from cnn_tui.lessons import layer_lesson
from cnn_tui.lessons.layer_replay import LayerReplay
from cnn_tui.lessons.replay import READ, WRITE, GridSpec
from cnn_tui.lessons.settings import LIMITS, LayerSettings
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.layer_form import LayerFormScreen, LayerRequest
from cnn_tui.ui.lessons.staged import StagedScreen
from cnn_tui.ui.lessons.stepping import (
    LEAVE_BINDINGS,
    MOVE_BINDINGS,
    PLAY_BINDINGS,
    Check,
    jump_bindings,
)

_phase = Binding.Group("stage", compact=True)


class LayerScreen(StagedScreen):
    """Step through batch normalisation or dropout: forward (training mode) and backward."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("P", "prev_phase", "previous stage", key_display="P", group=_phase),
        Binding("p", "next_phase", "next stage", key_display="p", group=_phase),
        Binding("b", "next_pass", "fwd/bwd"),
        *PLAY_BINDINGS,
        *jump_bindings("stage start", "stage end"),
        Binding("n", "cycle('n')", "image"),
        Binding("c", "cycle('c')", "channel"),
        Binding("r", "reseed", "new seed"),
        Binding("e", "edit", "edit"),
        *LEAVE_BINDINGS,
    ]

    # at 80 columns the footer keeps two lines: these keys (in `?`) go first
    footer_optional: ClassVar[tuple[str, ...]] = ("jump", "app.quit", "speed", "reseed")

    prefix = "layer"
    board_id = "layer-board"
    scroll_id = "layer-board-scroll"
    check_id = "layer-check"

    model: LayerReplay

    def __init__(
        self,
        settings: LayerSettings,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(run_checks=run_checks, name=name, id=id)
        self.settings = settings
        self.example = layer_lesson.layer_example_from_settings(settings)
        self.view = {"n": 0, "c": 0}
        self._compute()

    @classmethod
    def from_settings(cls, settings: LayerSettings) -> LayerScreen:
        """The lesson of `cnn-tui batchnorm|dropout` with the settings its flags gave."""
        return cls(settings)

    # ----------------------------------------------------------------- state

    def _compute(self) -> None:
        """Run the layer once for the example, recording every stage."""
        self.run = layer_lesson.run_layer(self.example)
        self.model = LayerReplay(self.run)

    def grid_specs(self) -> list[GridSpec]:
        return self.model.grid_specs(self.view, every_image=self.wide)

    @property
    def op(self) -> str:  # type: ignore[override]
        """The lesson, "batchnorm" or "dropout" (the legend of the `?` page)."""
        return self.example.op

    def _scroll_to_step(self) -> None:
        """Scroll the step into view: its operands and the written cell when they fit the view
        together, else the written cell (its array comes first on the board, the arrays read
        after it; the step panel says what was read)."""
        board = self.query_one("#layer-board", ArrayBoard)
        scroll = self.query_one("#layer-board-scroll", VerticalScroll)
        self._fit_board(board, scroll)
        region = board.highlight_region((READ, WRITE))
        view = scroll.scrollable_content_region
        if region is not None and (region.height > view.height or region.width > view.width):
            region = board.highlight_region((WRITE,)) or region
            if region.bottom <= view.height:  # with its grid's title and column indices
                region = Region(region.x, 0, region.width, region.bottom)
        if region is not None:
            scroll.scroll_to_region(region, animate=False, immediate=True)

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle" and parameters and parameters[0] == "n" and self.wide:
            return False  # every image is on the board already
        return super().check_action(action, parameters)

    def action_reseed(self) -> None:
        """The same sizes and settings with the next seed: new numbers, the same lesson (an
        example file keeps its x; the seed draws a new dy and, in dropout, a new mask)."""
        seed = (self.example.seed + 1) % (LIMITS.max_seed + 1)
        values = {**self.settings.values, "seed": seed}
        self.settings = dataclasses.replace(self.settings, values=values)
        self._restart(layer_lesson.layer_example_from_settings(self.settings))

    def action_edit(self) -> None:
        self._stop()
        form = LayerFormScreen(self.example, self.settings)
        self.app.push_screen(form, self._edited)

    def _edited(self, request: LayerRequest | None) -> None:
        if request is None:
            return
        self.settings = request.settings
        self._restart(request.example)

    # ----------------------------------------------------------------- checks

    def checks(self) -> list[Check]:
        example, run = self.example, self.run

        def gradient() -> str:
            check = layer_lesson.gradient_check(example, run)
            verdict = "✓" if check.passed() else "✗ too large"
            return f"finite differences: {check.max_error:.1e} {verdict}"

        def torch() -> str:
            difference = layer_lesson.compare_with_torch(example, run)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            return f"PyTorch (autograd): |Δ| {difference:.1e} {verdict}"

        return [("grad", gradient), ("torch", torch)]
