"""The learning-rate range test: `cnn-tui lr-find [train flags]` and the form's Find LR button.

Smith's range test (2015), as fastai's `lr_find` runs it: train up to `--steps` batches (100 on the
CPU, 200 on a GPU) while the learning rate grows exponentially from `--start-lr` (1e-7) to
`--end-lr` (10), and record the loss of every batch. The loss is smoothed by a debiased
exponential moving average (β = 0.98, as fastai's Recorder); the test stops early once the
smoothed loss is more than 4× its minimum or the loss is not finite (divergence).

Two suggestions are read off the smoothed curve (fastai's `steep` and `minimum`), both without the
first tenth of the steps and the last 5 points (the start is flat and the end explodes):

- **steepest**: the learning rate where the smoothed loss falls fastest per decade of lr;
- **minimum ÷ 10**: a tenth of the learning rate at the lowest smoothed loss.

The suggested one is the smaller, more cautious of the two: the steepest point when it lies below
the minimum ÷ 10, else the minimum ÷ 10 (also when the curve never falls). The smoothed curve lags
the raw loss, so over a hundred steps its steepest point comes late, close to the minimum, where
SGD with momentum already diverges (the3-task2 on Fashion-MNIST: steepest 0.17 diverges, the
minimum ÷ 10, 0.02, trains better than the preset's 0.01; see README). Both are shown and written.

The test trains a Setup of its own, built by `setup.prepare` from the run's settings, on the same
data (`setup.load_data`), batch order, batch preparation and training step (`engine.train_step`)
as the loop, and throws it away: a run started afterwards builds its own model and optimizer from
the seed and trains exactly as it would have without the test.

`range_test` takes the run's settings as a `TrainConfig` (the command builds it from the train
flags, the form from its fields). Torch loads only when a test runs: the suggestion rule and the
plot are torch-free. No textual import: the plot is drawn on any plotext-like object (`draw_curve`),
the `plotext` module for a terminal, a PlotextPlot's `plt` in the TUI.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig

START_LR, END_LR = 1e-7, 10.0
CPU_STEPS, GPU_STEPS = 100, 200  # fastai's default is 100
MAX_STEPS = 10_000
MIN_STEPS = 5
MAX_LR = 100.0
BETA = 0.98  # the smoothing of the loss (fastai's Recorder)
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss exceeds this many times its minimum
SKIP_END = 5  # points left out at the end for the suggestions (fastai: 5)

# on_step(step, steps, lr, loss, smoothed): called after every batch of the test
StepCallback = Callable[[int, int, float, float, float], None]

RULES = {"steepest": "steepest descent", "minimum/10": "minimum ÷ 10"}


# --- the curve and its suggestions (torch-free) -------------------------------------------------


def exponential_lrs(start: float, end: float, steps: int) -> list[float]:
    """`steps` learning rates from `start` to `end`, evenly spaced on a log scale."""
    if steps == 1:
        return [start]
    ratio = end / start
    return [start * ratio ** (i / (steps - 1)) for i in range(steps)]


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """The debiased exponential moving average of `losses` (the first value is the first loss)."""
    smoothed, average = [], 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (i + 1)))
    return smoothed


@dataclass(frozen=True)
class Suggestion:
    """The learning rate to use and how it was found, with the other candidate."""

    lr: float
    rule: str  # "steepest" or "minimum/10"
    steepest: float | None  # None: the smoothed curve never falls
    minimum_div_10: float
    minimum_lr: float  # where the smoothed loss is lowest
    minimum_loss: float

    @property
    def other_rule(self) -> str:
        """The rule that did not give the suggestion."""
        return "minimum/10" if self.rule == "steepest" else "steepest"

    @property
    def other_lr(self) -> float | None:
        """The other rule's learning rate (None: the smoothed curve never falls)."""
        return self.minimum_div_10 if self.rule == "steepest" else self.steepest


def suggest(lrs: list[float], smoothed: list[float], steps: int | None = None) -> Suggestion | None:
    """The suggestions of a smoothed loss curve (None: fewer than 3 points): the steepest
    descent and the minimum ÷ 10; the suggested one is the smaller.

    `steps` is how many steps were planned (default: as many as there are points); the first
    tenth of them and the last `SKIP_END` points are left out when enough remain.
    """
    n = len(smoothed)
    if n < 3 or len(lrs) != n:
        return None
    start, end = (steps or n) // 10, n - SKIP_END
    if end - start < 3:
        start, end = 0, n
    xs, ys = lrs[start:end], smoothed[start:end]
    low = min(range(len(ys)), key=ys.__getitem__)
    slopes = [
        (ys[i + 1] - ys[i]) / (math.log(xs[i + 1]) - math.log(xs[i])) for i in range(len(ys) - 1)
    ]
    steep = min(range(len(slopes)), key=slopes.__getitem__)
    steepest = xs[steep] if slopes[steep] < 0 else None
    minimum_div_10 = xs[low] / 10
    if steepest is not None and steepest < minimum_div_10:  # the more cautious of the two
        return Suggestion(steepest, "steepest", steepest, minimum_div_10, xs[low], ys[low])
    return Suggestion(minimum_div_10, "minimum/10", steepest, minimum_div_10, xs[low], ys[low])


@dataclass
class Curve:
    """What a range test recorded: one point per batch trained."""

    steps: int  # planned
    start_lr: float
    end_lr: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stopped: str = "steps"  # steps (all done) | diverged | nan | cancelled
    message: str = ""
    device: str = ""
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def suggestion(self) -> Suggestion | None:
        return suggest(self.lrs, self.smoothed, self.steps)

    def to_dict(self) -> dict[str, Any]:
        suggestion = self.suggestion
        return {
            "lrs": self.lrs,
            "losses": self.losses,
            "smoothed": self.smoothed,
            "suggestion": (
                {"lr": suggestion.lr, "rule": suggestion.rule} if suggestion is not None else None
            ),
            "suggestions": (
                {"steepest": suggestion.steepest, "minimum_div_10": suggestion.minimum_div_10}
                if suggestion is not None
                else None
            ),
            "minimum": (
                {"lr": suggestion.minimum_lr, "smoothed_loss": suggestion.minimum_loss}
                if suggestion is not None
                else None
            ),
            "stopped": self.stopped,
            "message": self.message,
            "steps": self.steps,
            "steps_done": len(self.lrs),
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "beta": BETA,
            "diverge_factor": DIVERGE_FACTOR,
            "device": self.device,
            "seconds": self.seconds,
            "config": self.config,
        }


def _decade_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    step = max(1, (last - first) // 8 + (1 if (last - first) % 8 else 0))
    ticks = [10.0**e for e in range(first, last + 1, step)]
    return ticks, [f"{t:g}" for t in ticks]


def draw_curve(
    plt: Any,
    curve: Curve,
    *,
    colors: dict[str, Any] | None = None,
    size: tuple[int, int] | None = None,
    suggestions: bool = True,
) -> None:
    """Draw the smoothed loss against the learning rate (log scale) on a plotext-like `plt`,
    with the suggestions as vertical lines (`suggestions`: a test still running has none yet);
    `colors` maps "curve", "suggested" and "other" to plotext colours."""
    colors = colors or {}
    plt.clear_figure()
    if size is not None:
        plt.plotsize(*size)
    plt.title("smoothed loss vs learning rate")
    plt.xlabel("learning rate (log scale)")
    if not curve.lrs:
        plt.title("learning-rate range test (no steps yet)")
        return
    plt.xscale("log")
    plt.plot(
        curve.lrs,
        curve.smoothed,
        label="smoothed loss",
        marker="braille",
        color=colors.get("curve"),
    )
    ys = curve.smoothed
    low, high = min(ys), max(ys)
    if curve.stopped == "diverged" and len(ys) > 2 * SKIP_END:  # its explosion would squash
        high = max(ys[:-SKIP_END])  # the rest: the last points run off the top, as in fastai
    margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    low, high = low - margin, high + margin
    plt.ylim(low, high)
    suggestion = curve.suggestion if suggestions else None
    if suggestion is not None:  # vertical lines, each with its own marker and legend entry
        lines = [("suggested", suggestion.rule, suggestion.lr, "┃")]
        other = suggestion.other_lr
        if other is not None and other != suggestion.lr:
            lines.append(("other", suggestion.other_rule, other, "┆"))
        for role, rule, lr, marker in lines:
            label = f"{'suggested: ' if role == 'suggested' else ''}{RULES[rule]} {lr:.1e}"
            plt.plot([lr, lr], [low, high], label=label, marker=marker, color=colors.get(role))
    ticks, labels = _decade_ticks(min(curve.lrs), max(curve.lrs))
    plt.xticks(ticks, labels)


def plot_text(curve: Curve, width: int = 80, height: int = 20) -> str:
    """The curve as a text plot for a terminal (plotext)."""
    import plotext

    draw_curve(plotext, curve, size=(width, height))
    return plotext.build()


# --- running a test (torch loads here) ---------------------------------------------------------


def check_range(start_lr: float, end_lr: float, steps: int | None) -> None:
    """The rules between the test's own flags (each flag was checked by its parser)."""
    if not start_lr < end_lr:
        raise UsageError(
            f"--start-lr must be below --end-lr, got {start_lr:g} and {end_lr:g}: the learning "
            "rate grows from one to the other"
        )
    if steps is not None and not MIN_STEPS <= steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between {MIN_STEPS} and {MAX_STEPS}, got {steps}")


def default_steps(device_type: str) -> int:
    return GPU_STEPS if device_type == "cuda" else CPU_STEPS


def range_test(
    config: TrainConfig,
    *,
    steps: int | None = None,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
    on_status: Callable[[str], None] | None = None,
) -> Curve:
    """Run the range test for `config` on a fresh Setup of its own (see the module docstring)."""
    check_range(start_lr, end_lr, steps)
    from cnn_tui.training.loop import engine, setup
    from cnn_tui.training.models import feature_cache
    from cnn_tui.training.models import registry as models

    started = time.perf_counter()
    say = on_status or (lambda text: None)
    device = setup.training_device(config)
    say(f"loading data set {config.dataset}")
    data = setup.load_data(config)
    say(f"building {config.model}")
    s = setup.prepare(config, device, data, weights=config.resolved_weights)
    if feature_cache.applies(s):  # a frozen backbone: train the head on its features, as a run
        say("computing the frozen backbone's features")
        s = feature_cache.cache_features(s)
    steps = steps or default_steps(device.type)
    curve = Curve(steps, start_lr, end_lr, device=str(device), config=config.to_dict())
    models.set_train_mode(s.model, True)
    trainable = models.trainable_parameters(s.model)
    n = len(s.train_y)
    order = None
    average, best = 0.0, math.inf
    say("training")
    for i, lr in enumerate(exponential_lrs(start_lr, end_lr, steps)):
        if stop is not None and stop.is_set():
            curve.stopped, curve.message = "cancelled", f"cancelled at lr {lr:.2e}"
            break
        epoch, b = divmod(i, s.batches)
        if b == 0:  # a new pass over the training set: its order and seeds, as in the loop
            engine.seed_epoch(s, epoch)
            order = engine.epoch_order(config.seed, epoch, n).to(s.train_x.device)
        assert order is not None
        images, labels = engine.batch_rows(s, order, b)
        loss, _ = engine.train_step(s, images, labels, lr, trainable)
        if not math.isfinite(loss):
            curve.stopped, curve.message = "nan", f"the loss became {loss} at lr {lr:.2e}"
            break
        average = BETA * average + (1 - BETA) * loss
        smoothed = average / (1 - BETA ** (i + 1))
        curve.lrs.append(lr)
        curve.losses.append(loss)
        curve.smoothed.append(smoothed)
        best = min(best, smoothed)
        if on_step is not None:
            on_step(i + 1, steps, lr, loss, smoothed)
        if smoothed > DIVERGE_FACTOR * best:
            curve.stopped = "diverged"
            curve.message = (
                f"diverged at lr {lr:.2e} (smoothed loss {smoothed:.3g} > "
                f"{DIVERGE_FACTOR:g}× its minimum {best:.3g})"
            )
            break
    curve.seconds = time.perf_counter() - started
    return curve
