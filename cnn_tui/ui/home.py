"""The home screen: the lessons and training, reached by keyboard or mouse."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static
from textual.widgets.option_list import Option

from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training.runs_banner import RunsInProgress

# (subcommand, title, one-line description)
ENTRIES = (
    (
        "conv",
        "Convolution lesson",
        "conv2d forward and backward, one multiply-add at a time",
    ),
    ("pool", "Pooling lesson", "max and average pooling, forward and gradient routing"),
    (
        "net",
        "A whole tiny network",
        "conv, ReLU, pool, linear, softmax: a few steps of SGD or Adam",
    ),
    (
        "batchnorm",
        "Batch normalisation lesson",
        "per-channel mean and variance, normalise, γ and β, and backward",
    ),
    ("dropout", "Dropout lesson", "the mask, the 1/(1 − p) scaling, backward through the mask"),
    (
        "picture",
        "A real picture",
        "a kernel's feature map of a picture, and a crop step by step",
    ),
    ("train", "Train a model", "pick hyperparameters, train on the GPU, watch live charts"),
    ("runs", "Runs", "compare, inspect, resume and delete training runs"),
)


# below this many rows the menu leaves no room for the runs in progress: while it shows, the title
# (the header says it too) and the tagline make room for it (a user back after a dropped SSH
# connection needs that line at a projector's 80×24)
ROOMY_HEIGHT = 28


class HomeScreen(Screen):
    """Entry point of `cnn-tui` with no subcommand."""

    HELP_TITLE = "keys of the home screen"
    HELP_NOTE = (
        "↑/↓ and Enter (or a click) open an entry too. Every screen has its own ? page; in a "
        "text field, where ? is typed, F1 opens it."
    )

    # (short descriptions: the footer's keys take two lines at 80×24, the menu says the rest)
    BINDINGS = [
        Binding("c", "open('conv')", "Conv"),
        Binding("p", "open('pool')", "Pool"),
        Binding("n", "open('net')", "Network"),
        Binding("b", "open('batchnorm')", "Batch norm"),
        Binding("d", "open('dropout')", "Dropout"),
        Binding("i", "open('picture')", "Picture"),
        Binding("t", "open('train')", "Train"),
        Binding("r", "open('runs')", "Runs"),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home"):
            yield Static("cnn-tui", id="home-title")
            yield Static(
                "Learn how convolutions compute and learn, then train real networks on your GPU.",
                id="home-tagline",
            )
            yield OptionList(
                *(
                    Option(f"[b]{title}[/b]\n  [dim]{text}[/dim]", id=command)
                    for command, title, text in ENTRIES
                ),
                id="home-menu",
            )
            # --- training: runs still training, e.g. after a dropped SSH connection
            yield RunsInProgress(id="home-runs")
        yield WrappingFooter()  # (wraps at 80 columns: ^q Quit is never cut off)

    def on_resize(self) -> None:
        self.set_class(self.size.height < ROOMY_HEIGHT, "-short")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.action_open(event.option.id)

    def action_open(self, command: str) -> None:
        self.app.open_screen(command, None)
