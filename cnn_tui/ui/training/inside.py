"""Inside a trained network: the Inside tab of a finished run and `cnn-tui inspect RUN`.

`InsideView` shows one image through the run's model (`cnn_tui.training.tools.inspect`): the image and
Grad-CAM for the predicted class and for the true (or a chosen) class over it, the class
probabilities as bars, the feature maps of one stage as half-block heatmaps on one colour scale
for the whole stage, and the first layer's filters as small images. Its workers load the run's
model and test split once, inspect the first image, then order the test images the way the
Samples tab does (the most confident mistakes first).

From the first layer's filters, `o` opens the conv lesson on the real thing: the chosen filter's
weights and the real input patch under an output cell (`inspect.filter_patch`); the lesson's
result at that cell is the network's activation there. The patch keeps every input channel (the
lesson takes up to 4), so the lesson's arithmetic is the layer's own, not a one-channel stand-in;
a first layer the lesson cannot repeat exactly (grouped, dilated, too many channels) is refused
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich_pixels import Pixels
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Header, Input, Label, Static
from textual.worker import Worker, WorkerState

from cnn_tui.errors import UsageError
from cnn_tui.lessons.replay import make_example
from cnn_tui.text import clip, confidence, markup, one_line, percent
from cnn_tui.training.runs.state import RunState
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.training.samples import to_pil

if TYPE_CHECKING:
    from cnn_tui.training.tools.inspect import InspectRequest

# viridis at five stops (non-negative maps) and a blue-white-red scale (maps with both signs)
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]])
DIVERGING = np.array(
    [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]]
)
INFERNO = np.array([[0, 0, 4], [120, 28, 109], [237, 105, 37], [252, 255, 164]])
CAM_ALPHA = 0.65  # how strongly Grad-CAM tints the image where it is strongest


def _interpolate(stops: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Colours for values t in [0, 1] along `stops`, as uint8 (..., 3)."""
    t = np.clip(np.nan_to_num(t), 0.0, 1.0) * (len(stops) - 1)
    low = np.minimum(t.astype(int), len(stops) - 2)
    frac = (t - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).round().astype(np.uint8)


@dataclass(frozen=True)
class Scale:
    """One colour scale for all the maps of a stage: a diverging one around 0 when the stage has
    both signs (conv outputs before a ReLU), else viridis from its minimum to its maximum."""

    low: float
    high: float

    @property
    def signed(self) -> bool:
        return self.low < 0 < self.high

    def colours(self, values: np.ndarray) -> np.ndarray:
        if self.signed:
            bound = max(-self.low, self.high)
            return _interpolate(DIVERGING, (values / bound + 1) / 2)
        span = self.high - self.low
        return _interpolate(VIRIDIS, (values - self.low) / span if span > 0 else values * 0)

    def legend(self) -> Text:
        stops = DIVERGING if self.signed else VIRIDIS
        text = Text(f"{self._low_label()} ")
        for t in np.linspace(0, 1, 12):
            r, g, b = _interpolate(stops, np.array(t))
            text.append("█", style=f"rgb({r},{g},{b})")
        text.append(f" {self.high:.3g}")
        return text

    def _low_label(self) -> str:
        return f"{-max(-self.low, self.high):.3g}" if self.signed else f"{self.low:.3g}"


def pixels(rgb: np.ndarray, width: int) -> Pixels:
    """An (H, W, 3) uint8 array drawn `width` cells wide (nearest-neighbour, so each unit of a
    small map stays a crisp block)."""
    picture = Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8)))
    height = max(2, round(picture.height * width / max(picture.width, 1)))
    return Pixels.from_image(picture.resize((width, height), Image.Resampling.NEAREST))


def image_rgb(image: np.ndarray) -> np.ndarray:
    return np.asarray(to_pil(image))


def cam_overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The image tinted by a Grad-CAM map in [0, 1] (inferno colours where the class is seen)."""
    rgb = image_rgb(image).astype(np.float64)
    weight = (CAM_ALPHA * cam)[..., None]
    return (rgb * (1 - weight) + _interpolate(INFERNO, cam) * weight).round().astype(np.uint8)


def probability_bars(
    probabilities: np.ndarray, classes: list[str], marks: dict[int, str], width: int = 12
) -> Table:
    """The classes' probabilities as bars, the most likely first (at most 10 rows)."""
    table = Table.grid(padding=(0, 1))
    order = np.argsort(-probabilities, kind="stable")[:10]
    for i in order:
        p = float(probabilities[i])
        full = p * width
        bar = "█" * int(full) + (" ▏▎▍▌▋▊▉"[int((full % 1) * 8)] if full < width else "")
        name = one_line(classes[i]) if i < len(classes) else str(i)
        style = "bold" if i == order[0] else ""
        table.add_row(
            Text(clip(name, 14 if width > 6 else 9), style=style), Text(bar.ljust(width), style="cyan"),
            confidence(p, 1).rjust(6),
            Text(marks.get(int(i), ""), style="bold"),
        )  # fmt: skip
    return table


def tile_height(height: int, width: int, cells: int) -> int:
    """The rows a `tile` of an image height × width drawn `cells` wide takes (caption included)."""
    pixel_rows = max(2, round(height * cells / max(width, 1)))
    return (pixel_rows + 1) // 2 + 1


def tile(rgb: np.ndarray, width: int, caption: str, selected: bool) -> Group:
    label = Text(clip(caption, width).center(width), style="reverse bold" if selected else "dim")
    return Group(pixels(rgb, width), label)


def tiles_grid(items: list[Group], per_row: int, width: int) -> Table:
    """Tiles `width` cells wide in rows of `per_row` (fixed columns: a picture does not stretch)."""
    table = Table.grid(padding=(0, 1))
    for _ in range(min(per_row, len(items))):
        table.add_column(width=width, no_wrap=True)
    for start in range(0, len(items), per_row):
        table.add_row(*items[start : start + per_row])
    return table


# --- messages of the workers ------------------------------------------------------------------


@dataclass
class InsideLoaded(Message):
    """The run's model and its test split (or one image file) are loaded."""

    run: Any  # run_model.RunModel
    images: np.ndarray  # uint8 (N, C, H, W): the test split, or the one file
    labels: np.ndarray | None  # None for a file of one's own
    start: int
    source: str


@dataclass
class InsideOrdered(Message):
    """The test images in review order (the most confident mistakes first) and their predictions."""

    order: np.ndarray
    wrong: int


@dataclass
class Inspected(Message):
    index: int
    inspection: Any  # inspect.Inspection


@dataclass
class InsideFailed(Message):
    text: str


# --- the view ---------------------------------------------------------------------------------


_VIEW_ACTIONS = {"image", "layer", "channel", "cam_class", "cam_layer", "filter", "open_lesson"}


class InsideView(VerticalScroll):
    """One image through the network; keys step through images, stages, channels and classes."""

    DEFAULT_CSS = """
    InsideView { padding: 0 1; }
    InsideView #inside-top { height: auto; }
    InsideView #inside-images { width: auto; margin-right: 2; }
    InsideView #inside-probs { width: auto; }
    InsideView #inside-status, InsideView #inside-layer-title { height: auto; }
    InsideView #inside-cam-note { height: auto; color: $text-warning; }
    InsideView #inside-maps { height: auto; margin-top: 1; }
    InsideView #inside-filters { height: auto; margin: 1 0; }
    """

    BINDINGS = [
        Binding("right", "image(1)", "Next image", key_display="→"),
        Binding("left", "image(-1)", "Prev image", key_display="←"),
        Binding("down", "layer(1)", "Next layer", key_display="↓"),
        Binding("up", "layer(-1)", "Prev layer", key_display="↑"),
        Binding("c", "channel(1)", "Channel"),
        Binding("C", "channel(-1)", "Prev channel", show=False),
        Binding("k", "cam_class(1)", "CAM class"),
        Binding("K", "cam_class(-1)", "Prev CAM class", show=False),
        Binding("g", "cam_layer(1)", "CAM layer"),
        Binding("G", "cam_layer(-1)", "Prev CAM layer", show=False),
        Binding("f", "filter(1)", "Filter"),
        Binding("F", "filter(-1)", "Prev filter", show=False),
        Binding("o", "open_lesson", "Open in lesson"),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.run: Any = None
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.order: np.ndarray | None = None
        self.position = 0
        self.source = ""
        self.inspection: Any = None
        self.index: int | None = None
        self.stage_at = 0
        self.channel = 0
        self.filter = 0
        self.cam_class: int | None = None  # the second Grad-CAM's class; None: the true class
        self.cam_layer: str | None = None  # the stage Grad-CAM reads; None: the default one
        self.wrong: int | None = None
        self.started = False

    def compose(self) -> ComposeResult:
        yield Static("[dim]the Inside view opens when the run is over[/dim]", id="inside-status")
        with Horizontal(id="inside-top"):
            yield Static(id="inside-images")
            yield Static(id="inside-probs")
        yield Static(id="inside-cam-note")
        # the first layer's filters (a few rows) before the stage's maps (many), so they stay
        # in view on a 120×40 terminal, in the run screen's tab too
        yield Static(id="inside-filters")
        yield Static(id="inside-layer-title")
        yield Static(id="inside-maps")

    # --- loading --------------------------------------------------------------------------------

    def start(
        self,
        run_dir: str | Path,
        *,
        test_index: int | None = None,
        image: str | None = None,
        device: str = "auto",
        cam_layer: str | None = None,
    ) -> None:
        """Load the run (once) and show test image `test_index` (default: the worst mistake),
        with Grad-CAM at `cam_layer` (default: `inspect.default_cam_layer`). A run of your own
        class runs its code only once trusted (`trust.ask_trust`: asked here, where the model
        would be built; not trusted, the view says so and asks again next time)."""
        from cnn_tui.ui.training import trust

        if self.started:
            return
        self.started = True
        self.cam_layer = cam_layer

        def go(trusted: bool) -> None:
            if not trusted:
                self.started = False
                why = trust.refused(run_dir, "open this tab again to be asked again")
                self._status(f"[b $text-warning]⚠ {markup(why)}[/]")
                return
            self._status("[dim]loading the model and the test split…[/dim]")
            self._load(Path(run_dir), test_index, image, device, trusted)

        question = trust.run_question(run_dir, "Looking inside it")
        self._status("[dim]waiting for your answer: run this run's model code?[/dim]")
        trust.ask_trust(self, run_dir, question, go)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inside-load")
    def _load(
        self,
        run_dir: Path,
        test_index: int | None,
        image: str | None,
        device: str,
        trusted: bool = False,
    ) -> None:
        from cnn_tui.training.tools import inspect
        from cnn_tui.training.tools.run_model import load_run_model, load_test_split, review_order

        try:
            run = load_run_model(run_dir, device, trust_model_code=trusted)
            if image is not None:
                chosen = inspect.subject(run, None, image)
                self.post_message(InsideLoaded(run, chosen.image[None], None, 0, chosen.source))
                return
            images, labels = load_test_split(run)
            if test_index is not None and not 0 <= test_index < len(labels):
                raise UsageError(
                    f"--test-index {test_index} is out of range: the test split has "
                    f"{len(labels)} images"
                )
            if test_index is not None:  # show it at once; the order follows
                self.post_message(InsideLoaded(run, images, labels, test_index, "test"))
            probabilities = run.probabilities(images)
            order = review_order(labels, probabilities)
            wrong = int(np.sum(probabilities.argmax(1) != labels))
            if test_index is None:  # start at the worst mistake, as the Samples tab does
                self.post_message(InsideLoaded(run, images, labels, int(order[0]), "test"))
            self.post_message(InsideOrdered(order, wrong))
        except UsageError as exc:
            self.post_message(InsideFailed(str(exc)))

    @on(InsideLoaded)
    def _loaded(self, message: InsideLoaded) -> None:
        self.run, self.images, self.labels = message.run, message.images, message.labels
        self.source = message.source
        self.order = np.arange(len(message.images))
        self.position = message.start  # (test index = position until the order arrives)
        self._inspect_current()

    @on(InsideOrdered)
    def _ordered(self, message: InsideOrdered) -> None:
        keep = int(self.order[self.position]) if self.order is not None else None
        self.order, self.wrong = message.order, message.wrong
        if keep is not None:
            self.position = int(np.flatnonzero(self.order == keep)[0])
        self._show_status()

    @on(InsideFailed)
    def _failed(self, message: InsideFailed) -> None:
        self._status(f"[b $text-error]✗ {markup(message.text)}[/]")

    def _inspect_current(self) -> None:
        if self.order is None or self.images is None:
            return
        index = int(self.order[self.position])
        true = None if self.labels is None else int(self.labels[index])
        extra = () if self.cam_class is None else (self.cam_class,)
        self._inspect(index, true, extra)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inside-inspect")
    def _inspect(self, index: int, true: int | None, extra: tuple[int, ...]) -> None:
        from cnn_tui.training.tools.inspect import inspect_image

        result = inspect_image(
            self.run, self.images[index], true, cam_classes=extra, cam_layer=self.cam_layer
        )
        self.post_message(Inspected(index, result))

    @on(Inspected)
    def _inspected(self, message: Inspected) -> None:
        self.index, self.inspection = message.index, message.inspection
        self.stage_at = min(self.stage_at, len(self.inspection.stages) - 1)
        self._show()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group.startswith("inside") and event.state == WorkerState.ERROR:
            self._status(
                f"[b $text-error]✗ cannot inspect the run: {markup(event.worker.error)}[/]"
            )

    def on_resize(self) -> None:
        if self.inspection is not None:
            self._show()

    # --- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.inspection is None:
            return None if action in _VIEW_ACTIONS else True
        if action == "image":
            return self.order is not None and len(self.order) > 1
        if action in ("filter", "open_lesson"):
            return self.inspection.first_conv is not None
        return True

    def action_image(self, delta: int) -> None:
        self.position = (self.position + delta) % len(self.order)
        self._inspect_current()

    def action_layer(self, delta: int) -> None:
        self.stage_at = (self.stage_at + delta) % len(self.inspection.stages)
        self.channel = 0
        self._show()

    def action_channel(self, delta: int) -> None:
        channels = self.inspection.stages[self.stage_at].shape[0]
        self.channel = (self.channel + delta) % channels
        self._show()

    def action_cam_class(self, delta: int) -> None:
        k = len(self.inspection.probabilities)
        current = self._second_class()
        self.cam_class = (current + delta) % k
        if self.cam_class in self.inspection.cams:
            self._show()
        else:
            self._inspect_current()

    def action_cam_layer(self, delta: int) -> None:
        names = [stage.name for stage in self.inspection.stages]
        at = names.index(self.inspection.cam_layer)
        self.cam_layer = names[(at + delta) % len(names)]
        self._inspect_current()

    def action_filter(self, delta: int) -> None:
        filters = self.inspection.first_conv.weight.shape[0]
        self.filter = (self.filter + delta) % filters
        self._show()

    def action_open_lesson(self) -> None:
        conv = self.inspection.first_conv
        output = conv.output[self.filter]
        row, col = np.unravel_index(int(np.argmax(output)), output.shape)

        def opened(patch: Any) -> None:
            if patch is not None:
                self.app.push_screen(RealFilterLesson(patch))

        self.app.push_screen(FilterCellDialog(conv, self.filter, (int(row), int(col))), opened)

    # --- drawing --------------------------------------------------------------------------------

    def _second_class(self) -> int:
        if self.cam_class is not None:
            return self.cam_class
        true = self.inspection.true
        return true if true is not None else self.inspection.predicted

    def _status(self, markup: str) -> None:
        self.query_one("#inside-status", Static).update(markup)

    def _class_name(self, index: int | None) -> str:
        if index is None:
            return "?"
        classes = self.run.classes  # (a stranger's folder names: through one_line)
        return one_line(classes[index]) if 0 <= index < len(classes) else str(index)

    def _show_status(self) -> None:
        ins = self.inspection
        if ins is None:
            return
        pred, p = ins.predicted, float(ins.probabilities[ins.predicted])
        if self.labels is None:
            where, truth, mark = markup(self.source), "", ""
        else:
            where = f"image {self.position + 1}/{len(self.order)} · test #{self.index}"
            truth = f" · true [b]{markup(self._class_name(ins.true))}[/b]"
            mark = " [b $text-success]✓[/]" if pred == ins.true else " [b $text-error]✗[/]"
        order = ""
        if self.labels is not None:
            order = (
                " · [dim]ordering…[/dim]"
                if self.wrong is None
                else f" · [dim]{self.wrong} mistakes first[/dim]"
            )
        self._status(
            f"{where}{truth} · predicted [b]{markup(self._class_name(pred))}[/b] "
            f"{confidence(p, 1)}{mark}{order} · [dim]{markup(self.run.weights_file)}, epoch "
            f"{markup(self.run.epoch)}[/dim]"
        )

    def _picture_width(self) -> int:
        return 24 if self.size.width >= 110 else 16

    def _show(self) -> None:
        ins = self.inspection
        self._show_status()
        width = self._picture_width()
        pred, other = ins.predicted, self._second_class()
        which = "true" if self.cam_class is None and ins.true is not None else "class"
        pictures = tiles_grid(
            [
                tile(image_rgb(ins.image), width, "input", False),
                tile(cam_overlay(ins.image, ins.cam_image(pred)), width, f"CAM pred {self._class_name(pred)}", False),
                tile(cam_overlay(ins.image, ins.cam_image(other)), width, f"CAM {which} {self._class_name(other)}", False),
            ],
            3,
            width,
        )  # fmt: skip
        heading = Text.assemble(
            ("Grad-CAM at ", "dim"), (ins.cam_layer, "bold"), (" · g: layer", "dim")
        )
        self.query_one("#inside-images", Static).update(Group(heading, pictures))
        self._show_cam_note(pred, other)
        marks = {pred: "◀ pred"}
        if ins.true is not None:
            marks[ins.true] = "◀ true" if ins.true != pred else "◀ pred = true"
        self.query_one("#inside-probs", Static).update(
            Group(
                Text("class probabilities", style="dim"),
                probability_bars(
                    ins.probabilities, self.run.classes, marks, 12 if width > 16 else 5
                ),
            )
        )
        self._show_layer()
        self._show_filters()

    def _show_cam_note(self, pred: int, other: int) -> None:
        """Why a Grad-CAM map above is empty or flat, and what to try (nothing when both show)."""
        by_reason: dict[Any, list[str]] = {}
        for cls in dict.fromkeys((pred, other)):
            problem = self.inspection.cam_problems.get(cls)
            if problem is not None:
                by_reason.setdefault(problem, []).append(self._class_name(cls))
        notes = []
        for problem, names in by_reason.items():
            try_layer = "" if problem.alternative is None else f", e.g. {problem.alternative}"
            notes.append(
                f"⚠ Grad-CAM of {' and '.join(names)} is empty: {problem.reason} · g: another "
                f"layer{try_layer}"
            )
        note = self.query_one("#inside-cam-note", Static)
        note.update(Text("\n".join(notes)))
        note.display = bool(notes)

    def _show_layer(self) -> None:
        ins = self.inspection
        stage = ins.stages[self.stage_at]
        stats = stage.stats()
        scale = Scale(stats["min"], stats["max"])
        c, h, w = stage.shape
        title = Text.assemble(
            (f"layer {self.stage_at + 1}/{len(ins.stages)} ", "dim"),
            (f"{stage.name}", "bold"),
            f" · {stage.kind} · {c}×{h}×{w} · mean {stats['mean']:.3g} · zeros "
            f"{percent(stats['zeros'], 0)} · scale ",
        )
        title.append_text(scale.legend())
        self.query_one("#inside-layer-title", Static).update(title)
        tile_width = 16 if self.size.width >= 110 and h >= 16 else max(8, min(16, w * 2))
        per_row = max(1, (self.size.width - 3) // (tile_width + 1))
        rows = 2 if self._fits_two_rows(tile_height(h, w, tile_width)) else 1
        shown = per_row * rows
        first = (self.channel // shown) * shown
        items = [
            tile(scale.colours(stage.activation[k]), tile_width, f"c{k}", k == self.channel)
            for k in range(first, min(c, first + shown))
        ]
        more = f"channels {first}–{min(c, first + shown) - 1} of {c} · c: next channel"
        self.query_one("#inside-maps", Static).update(
            Group(tiles_grid(items, per_row, tile_width), Text(more, style="dim"))
        )

    def _fits_two_rows(self, map_height: int) -> bool:
        """Whether two rows of feature maps leave the first-layer filters in view (else one)."""
        ins = self.inspection
        _, h, w = ins.image.shape
        top = max(1 + tile_height(h, w, self._picture_width()), 1 + min(10, len(ins.probabilities)))
        note = len(ins.cam_problems) and 2  # (at most two lines)
        filters = 0
        if ins.first_conv is not None:
            kh, kw = ins.first_conv.weight.shape[2:]
            filters = 2 + tile_height(kh, kw, max(kw * 2, 6))
        # status, images, note, layer title, the maps with their line and margin, the filters
        used = 1 + top + note + 1 + (2 * map_height + 2) + filters
        return used <= self.size.height

    def _show_filters(self) -> None:
        conv = self.inspection.first_conv
        target = self.query_one("#inside-filters", Static)
        if conv is None:
            target.update("[dim]no convolution layer[/dim]")
            return
        weight = conv.weight
        f_count, channels, kh, kw = weight.shape
        size = max(kw * 2, 6)
        per_row = max(1, (self.size.width - 3) // (size + 1))
        first = (self.filter // per_row) * per_row  # one row, paged to the selected filter
        items = []
        for k in range(first, min(f_count, first + per_row)):
            items.append(tile(_filter_rgb(weight[k]), size, f"{k}", k == self.filter))
        head = Text.assemble(
            ("first-layer filters ", "dim"),
            (conv.name, "bold"),
            f" {f_count}×{channels}×{kh}×{kw} · filter {self.filter} · f: next filter, "
            "o: open it in the conv lesson",
        )
        target.update(Group(head, tiles_grid(items, per_row, size)))


def _filter_rgb(weights: np.ndarray) -> np.ndarray:
    """A filter (C, KH, KW) as a small image: RGB for 3 channels, else its channel mean in grey,
    scaled symmetrically around 0 (mid-grey = 0) so positive and negative weights show."""
    bound = float(np.abs(weights).max()) or 1.0
    scaled = (weights / bound + 1) / 2 * 255
    if weights.shape[0] == 3:
        return scaled.transpose(1, 2, 0).round().astype(np.uint8)
    grey = scaled.mean(axis=0).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


# --- "open a real filter in the lesson" -------------------------------------------------------


class FilterCellDialog(ModalScreen[Any]):
    """Pick the output cell of a first-layer filter; dismisses with its `FilterPatch` (or None)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    FilterCellDialog { align: center middle; }
    FilterCellDialog #cell-fields { height: auto; }
    FilterCellDialog #cell-fields Label { width: auto; padding: 1 1 0 0; }
    FilterCellDialog #cell-fields Input { width: 1fr; margin-right: 1; }
    """

    def __init__(self, conv: Any, filter_index: int, cell: tuple[int, int]) -> None:
        super().__init__(classes="train-modal")
        self.conv, self.filter_index, self.cell = conv, filter_index, cell

    def compose(self) -> ComposeResult:
        out_h, out_w = self.conv.output.shape[1:]
        with Vertical(classes="train-dialog"):
            yield Label(
                f"Open filter {self.filter_index} of {self.conv.name} in the conv lesson",
                classes="train-dialog-title",
            )
            yield Static(
                f"Output cell (row 0–{out_h - 1}, column 0–{out_w - 1}); the strongest one is "
                "filled in. The lesson gets the filter's real weights and the real input patch "
                "around that cell, every input channel.",
                classes="train-dialog-text",
            )
            with Horizontal(id="cell-fields"):  # (both fields side by side, each half the row)
                yield Label("row")
                yield Input(str(self.cell[0]), id="cell-row", placeholder="row")
                yield Label("column")
                yield Input(str(self.cell[1]), id="cell-col", placeholder="column")
            yield Static(id="cell-error")
            with Horizontal(classes="train-dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Open lesson", id="open", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cell-row", Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._open()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "open":
            self._open()
        else:
            self.dismiss(None)

    def _open(self) -> None:
        from cnn_tui.lessons.settings import LIMITS
        from cnn_tui.training.tools.inspect import filter_patch

        try:
            row, col = (int(self.query_one(f"#cell-{k}", Input).value) for k in ("row", "col"))
        except ValueError:
            self.query_one("#cell-error", Static).update(
                "[b $text-error]row and column are whole numbers[/]"
            )
            return
        try:
            patch = filter_patch(
                self.conv,
                self.filter_index,
                (row, col),
                max_size=LIMITS.max_size,
                max_channels=LIMITS.max_channels,
                max_kernel=LIMITS.max_kernel,
                max_stride=LIMITS.max_stride,
            )
        except UsageError as exc:
            self.query_one("#cell-error", Static).update(f"[b $text-error]{markup(exc)}[/]")
            return
        self.dismiss(patch)


def lesson_arrays(patch: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The conv lesson's settings and arrays for a `FilterPatch`: one image, one filter, no
    padding (the layer's padding is in the patch's values), the layer's stride."""
    channels, height, width = patch.x.shape
    params = {
        "height": height,
        "width": width,
        "channels": channels,
        "filters": 1,
        "batch": 1,
        "kernel": tuple(patch.w.shape[1:]),
        "stride": patch.stride,
        "padding": (0, 0),
    }
    overrides = {"x": patch.x[None], "w": patch.w[None], "b": np.array([patch.b])}
    return params, overrides


class RealFilterLesson(LessonScreen):
    """The conv lesson on a real first-layer filter and the real image patch under it; esc goes
    back to the Inside view it came from (not home, as a lesson from the menu says)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "back to Inside")]

    def __init__(self, patch: Any) -> None:
        params, overrides = lesson_arrays(patch)
        super().__init__("conv", params)
        # the lesson's edited-arrays hook (what its edit form sets): the real values
        self.patch = patch
        self.overrides = overrides
        self.example = make_example("conv", self.params, self.overrides)
        self._compute()

    def on_mount(self) -> None:
        # (LessonScreen's on_mount, which draws the lesson, runs after this one: Textual calls
        # every class's handler, so no super() call)
        p = self.patch
        i, j = p.lesson_cell
        out = self.example.forward()[0][0, 0, i, j]
        padding = " (the layer's padding is in x as its values)" if p.padded else ""
        self.sub_title = f"{p.layer} filter {p.filter} at cell {p.cell}"
        self.notify(
            f"{p.layer} filter {p.filter}, output cell {p.cell}: the network computed "
            f"{p.activation:.6g}; this lesson's out[0,0,{i},{j}] = {out:.6g}{padding}",
            title="A real filter",
            timeout=12,
            markup=False,
        )


# --- cnn-tui inspect RUN ----------------------------------------------------------------------


class InspectScreen(Screen):
    """`cnn-tui inspect RUN [--test-index N | --image FILE]`: the Inside view on its own."""

    HELP_TITLE = "keys of the inside view"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, request: InspectRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        yield Header()
        yield InsideView(id="inside-view")
        yield WrappingFooter()  # (Inside's keys wrap at 80 columns)

    def on_mount(self) -> None:
        from cnn_tui.ui.training import trust

        request = self.request
        self.sub_title = f"inside {one_line(request.run_dir.name)}"
        if request.trust_model_code:  # (without it the command refused before the app opened)
            trust.trust(self.app, request.run_dir)
        view = self.query_one(InsideView)
        view.focus()
        view.start(
            request.run_dir,
            test_index=request.test_index,
            image=request.image,
            device=request.device,
            cam_layer=request.cam_layer,
        )


def inside_available(run_dir: Path, status: RunState) -> bool:
    """The Inside tab is for runs that are over and kept their weights (finished or stopped)."""
    from cnn_tui.training.runs.store import CHECKPOINT_FILE

    over = (RunState.FINISHED, RunState.STOPPED)
    return status in over and (Path(run_dir) / CHECKPOINT_FILE).is_file()
