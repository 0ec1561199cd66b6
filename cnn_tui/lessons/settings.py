"""The settings of the lessons: limits, defaults, checks, and the typed settings a command passes.

One table says which settings each op of the conv / pool lesson has (`DEFAULTS`, `FIELDS`), how
each is checked (`SETTINGS`) and what a named example fixes (`FIXED_BY_EXAMPLE`). The flags of
`cnn-tui conv` / `cnn-tui pool` (`cnn_tui.commands.lesson_flags`), the lesson screen's edit form
and `cnn_tui.lessons.examples.build_example` all read it, so they offer, accept and reject the
same values. The network lesson (`cnn-tui net`) has its own small table at the end
(`NET_LIMITS`, `NET_SETTINGS`). `LessonSettings` and `NetSettings` are what a command made of
its flags: the screens and the traces take them. This module only uses the standard library:
the CLI imports it to build its parser.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from cnn_tui.assets import assets_dir
from cnn_tui.fileio import is_regular_file

Pair = tuple[int, int]


@dataclass(frozen=True)
class LessonLimits:
    """Largest lesson examples. Every step is kept and redrawn, so the arrays stay small."""

    max_size: int = 16  # input height and width
    max_channels: int = 4
    max_filters: int = 4
    max_batch: int = 2
    max_kernel: int = 16
    max_stride: int = 8
    max_padding: int = 4
    max_dilation: int = 4
    max_seed: int = 2**32 - 1
    max_steps: int = 20_000  # scalar steps in one phase (forward, grad weight, ...)
    max_abs: float = 1000.0  # largest |value| of an array from a lesson file or the edit form


LIMITS = LessonLimits()

POOL_TYPES = ("max", "avg")
PADDING_WORDS = ("same", "valid")  # --padding same|valid (as PyTorch's padding="same"/"valid")
# --mode: what the conv lesson computes, said once (the flag's help, the edit form, the trace's
# header): mode -> (how it reads the kernel, where it comes from). The lecture's layer formula,
# PyTorch's conv2d and most libraries compute a cross-correlation; the true convolution first
# rotates the kernel by 180°, the signal-processing definition the lecture starts from.
CONV_MODES = ("cross-correlation", "convolution")
CONV_MODE_TEXT: dict[str, tuple[str, str]] = {
    CONV_MODES[0]: (
        "the kernel as it is, like PyTorch's conv2d",
        "the lecture's layer formula X[m,n] = Σ o[m+i,n+j]·w[i,j] + b",
    ),
    CONV_MODES[1]: (
        "the kernel rotated by 180°, a true convolution",
        "the mathematical (f*g)(s) = Σ f(t)·g(s−t), not the lecture's layer formula",
    ),
}


def conv_mode_text(mode: str) -> str:
    """What `--mode MODE` computes, in one phrase: "cross-correlation (the kernel as it is,
    like PyTorch's conv2d: the lecture's layer formula X[m,n] = Σ o[m+i,n+j]·w[i,j] + b)"."""
    kernel, source = CONV_MODE_TEXT[mode]
    return f"{mode} ({kernel}: {source})"


@dataclass(frozen=True)
class Setting:
    """One setting of a lesson example: a flag, a row of the edit form, a `build_example` keyword.

    `name` is the keyword, the flag's dest and the form field; `parse` checks a value the way
    the flag does, so the flags, the form and `build_example` accept and reject the same values.
    """

    name: str
    label: str  # the edit form's label
    help: str  # the flag's help; "{default}" stands for the op's default
    # "int", "pair" (3 or 3x2: height x width), "padding" (a pair, or one of PADDING_WORDS),
    # "float" (> 0) or "choice"
    kind: str = "int"
    low: int = 1
    high: int = 0
    choices: tuple[str, ...] = ()
    flag: str = ""  # the flag when it is not --name; its bare name is also the example file's key
    metavar: str | None = None

    @property
    def flag_name(self) -> str:
        """The flag without its dashes ("type" for pool_type): the word help texts use."""
        return (self.flag or f"--{self.name}").removeprefix("--")

    def parse(self, value: Any) -> Any:
        """The checked value (an int, an (h, w) pair or one of the choices); ValueError saying why."""
        if self.kind == "int":
            return parse_int(value, self.name, self.low, self.high)
        if self.kind == "pair":
            return parse_pair(value, self.name, self.low, self.high)
        if self.kind == "padding":
            if isinstance(value, str) and value.strip().lower() in PADDING_WORDS:
                return value.strip().lower()
            if not isinstance(value, (int, tuple)) and _PAIR_RE.match(str(value)) is None:
                raise ValueError(
                    f"{self.name} must be same, valid, a number or HxW like 1x0, got {value!r}"
                )
            return parse_pair(value, self.name, self.low, self.high)
        if self.kind == "float":
            return parse_positive_float(value, self.name, self.high)
        if value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        return value

    def format(self, value: Any) -> str:
        """A value as the flag or the form takes it back: 3, 3x2, max."""
        if isinstance(value, tuple):
            return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
        return str(value)


# Every setting of a lesson example, whichever op has it (DEFAULTS says which op has which).
SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("height", "height H", "input height (default {default})", high=LIMITS.max_size),
        Setting("width", "width W", "input width (default {default})", high=LIMITS.max_size),
        Setting(
            "channels",
            "channels C",
            "input channels C (default {default})",
            high=LIMITS.max_channels,
        ),
        Setting(
            "filters",
            "filters F",
            "filters F, the output channels (default {default})",
            high=LIMITS.max_filters,
        ),
        Setting(
            "batch", "batch N", "images in the batch N (default {default})", high=LIMITS.max_batch
        ),
        Setting(
            "kernel",
            "kernel K",
            "kernel size, e.g. 3 or 3x2 (height x width; default {default})",
            "pair",
            high=LIMITS.max_kernel,
            metavar="K|HxW",
        ),
        Setting(
            "stride",
            "stride S",
            "step between windows, e.g. 2 or 2x1 (default {default})",
            "pair",
            high=LIMITS.max_stride,
            metavar="S|HxW",
        ),
        Setting(
            "padding",
            "padding P",
            "zeros added on each side, e.g. 1 or 1x0, or same (P = D·(K−1)/2: the output keeps "
            "the input's size; needs an odd kernel and stride 1) or valid (no padding); "
            "default {default}",
            "padding",
            low=0,
            high=LIMITS.max_padding,
            metavar="P|HxW|same|valid",
        ),
        Setting(
            "dilation",
            "dilation D",
            "gaps between the kernel's taps: D − 1 skipped cells, e.g. 2 or 2x1 (default "
            "{default})",
            "pair",
            high=LIMITS.max_dilation,
            metavar="D|HxW",
        ),
        Setting(
            "conv_mode",
            "computes",
            f"{conv_mode_text(CONV_MODES[0])} or {conv_mode_text(CONV_MODES[1])}; "
            "default {default}",
            "choice",
            choices=CONV_MODES,
            flag="--mode",
        ),
        Setting(
            "pool_type",
            "type",
            "max or average pooling (default {default})",
            "choice",
            choices=POOL_TYPES,
            flag="--type",
        ),
        Setting(
            "seed",
            "seed",
            f"seed of the random values and of the upstream gradient (0 to {LIMITS.max_seed}; "
            "default {default}; an example's own upstream gradient is used unless --seed is "
            "given)",
            low=0,
            high=LIMITS.max_seed,
        ),
    )
}

# The settings of each op, in the order of its flags and of the edit form's rows, with the example
# a bare `cnn-tui conv` / `cnn-tui pool` shows. An op has exactly these settings: the flags, the
# form, `build_example` and the trace all read them from here. Pool stride None = the kernel size
# (`naive.pool_stride`); a pool example always has one image.
DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {
        "height": 5,
        "width": 5,
        "channels": 1,
        "filters": 1,
        "batch": 1,
        "kernel": (3, 3),
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "conv_mode": "cross-correlation",
        "seed": 0,
    },
    "pool": {
        "height": 4,
        "width": 4,
        "channels": 1,
        "kernel": (2, 2),
        "stride": None,
        "pool_type": "max",
        "seed": 0,
    },
}

# The setting names of each op (the keys of its defaults).
FIELDS: dict[str, tuple[str, ...]] = {op: tuple(defaults) for op, defaults in DEFAULTS.items()}

# What a named example (--example, a file under assets/lessons/) fixes: its arrays decide these,
# so they cannot be set with it. Every other setting of the op overrides the file's own value.
FIXED_BY_EXAMPLE: dict[str, tuple[str, ...]] = {
    "conv": ("height", "width", "channels", "filters", "batch", "kernel"),
    "pool": ("height", "width", "channels"),
}


def free_with_example(op: str) -> tuple[str, ...]:
    """The settings of op that may still be set with a named example (stride, seed, ...)."""
    return tuple(name for name in FIELDS[op] if name not in FIXED_BY_EXAMPLE[op])


@dataclass(frozen=True)
class LessonSettings:
    """What `cnn-tui conv|pool` asks for: the op, a named example or none, the settings given
    (`FIELDS[op]` names; the others keep their defaults or the example's values) and, for the
    trace, whether it runs the backward pass and counts the steps instead of printing them."""

    op: str  # "conv" | "pool"
    example: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    backward: bool = False
    summary: bool = False

    def params(self) -> dict[str, Any]:
        """The `build_example` keywords (besides op) these settings give: no Nones."""
        given = {"example": self.example, **self.values}
        return {name: value for name, value in given.items() if value is not None}


def default_text(op: str, name: str) -> str:
    """The default of a setting of op as the help says it: 3, max, the kernel size, ..."""
    value = DEFAULTS[op][name]
    if value is None:  # pool stride
        return "the kernel size: windows do not overlap"
    return SETTINGS[name].format(value)


def parse_int(text: str | int, name: str, low: int, high: int) -> int:
    """A whole number in [low, high]; ValueError with a one-line reason otherwise."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_positive_float(text: str | float, name: str, high: float) -> float:
    """A number in (0, high]; ValueError with a one-line reason otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not 0 < value <= high:  # also rejects nan
        raise ValueError(f"{name} must be above 0 and at most {high:g}, got {text}")
    return value


_PAIR_RE = re.compile(r"^\s*(-?\d+)\s*(?:[x×,]\s*(-?\d+)\s*)?$")


def parse_pair(text: str | int | Pair, name: str, low: int, high: int) -> Pair:
    """`3` -> (3, 3), `3x2` -> (3, 2) (height × width), each in [low, high]."""
    if isinstance(text, tuple):
        return (parse_int(text[0], name, low, high), parse_int(text[1], name, low, high))
    match = _PAIR_RE.match(str(text))
    if match is None:
        raise ValueError(f"{name} must be a number or HxW like 3x2, got {text!r}")
    height = parse_int(match.group(1), name, low, high)
    width = parse_int(match.group(2), name, low, high) if match.group(2) else height
    return height, width


def example_names(op: str) -> list[str]:
    """Names of the lesson files under assets/lessons/ for op ("conv", "pool", "batchnorm", ...), sorted.

    Reads only each file's `op` key; `cnn_tui.lessons.examples.list_examples` gives titles as well.
    """
    try:
        folder = assets_dir() / "lessons"
    except FileNotFoundError:
        return []
    names = []
    for path in sorted(folder.glob("*.toml")):
        if not is_regular_file(path):  # a FIFO would wait for ever
            continue
        try:
            with path.open("rb") as handle:
                if tomllib.load(handle).get("op") == op:
                    names.append(path.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue  # a broken file is reported when it is used, not in --help
    return names


# --------------------------------------------------------------------------- the network lesson
#
# `cnn-tui net`: one image through conv → ReLU → max-pool → flatten → linear → softmax
# cross-entropy, backward, and an optimizer step (SGD or Adam), for a few training steps. Its
# arrays come from a named example file (assets/lessons/net-*.toml, `op = "net"`); the label, the
# learning rate, the number of training steps and the optimizer can be changed.


@dataclass(frozen=True)
class NetLimits:
    """Sizes of the network lesson: small, so each layer's arrays fit an 80×24 screen."""

    min_size: int = 4  # image height and width
    max_size: int = 8
    max_filters: int = 3  # conv filters F
    kernel_sizes: tuple[int, ...] = (2, 3)  # conv kernel height and width
    pool: int = 2  # max-pool window and stride
    min_classes: int = 2
    max_classes: int = 4
    max_lr: float = 10.0
    max_abs: float = 100.0  # largest |value| of an array
    # training steps: each is recorded in full (about 1,200 scalar steps) so it can be replayed
    max_train_steps: int = 50


NET_LIMITS = NetLimits()
NET_DEFAULT_EXAMPLE = "net-vertical-edge"
NET_OPTIMIZERS = ("sgd", "adam")
# The learning rate α when neither a flag, the form nor an example written for that optimizer
# gives one. An example's `lr` is its own optimizer's (SGD unless the file says `optimizer`):
# SGD's 0.1 would make Adam, whose every weight moves by about α a step, take the loss of the
# shipped examples near 0 in two steps; 0.01 shows it falling step by step (Adam's usual α,
# 1e-3, is for networks of many steps, not a five-step lesson).
DEFAULT_LR = {"sgd": 0.1, "adam": 0.01}
# Adam's constants, PyTorch's defaults: β1 (the gradient's running mean), β2 (its square's), ε
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# The settings of the network lesson beside its example: flags, form rows, `build_net_example`.
NET_SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "label",
            "label y",
            "the true class of the image, 0 to K-1 (default: the example's)",
            low=0,
            high=NET_LIMITS.max_classes - 1,
            metavar="K",
        ),
        Setting(
            "lr",
            "learning rate α",
            "the learning rate α of the optimizer, above 0 (default: the example's for its own "
            "optimizer; else 0.1 for SGD, 0.01 for Adam)",
            "float",
            high=int(NET_LIMITS.max_lr),
            metavar="ALPHA",
        ),
        Setting(
            "steps",
            "training steps",
            f"training steps on the image, 1 to {NET_LIMITS.max_train_steps}, each stepped "
            "through and its loss drawn (default: the example's, else 1)",
            high=NET_LIMITS.max_train_steps,
            metavar="N",
        ),
        Setting(
            "optimizer",
            "optimizer",
            "sgd (w ← w − α·dw) or adam (running means m, v of the gradient and its square, "
            "bias-corrected; β1 = 0.9, β2 = 0.999, ε = 1e-8); default: the example's, else sgd",
            "choice",
            choices=NET_OPTIMIZERS,
        ),
    )
}


@dataclass(frozen=True)
class NetSettings:
    """What `cnn-tui net` asks for: a named example (None: `NET_DEFAULT_EXAMPLE`), its label,
    learning rate, training steps and optimizer when given (None: the example's), and whether
    the trace counts steps."""

    example: str | None = None
    label: int | None = None
    lr: float | None = None
    summary: bool = False
    steps: int | None = None
    optimizer: str | None = None

    def params(self) -> dict[str, Any]:
        """The `build_net_example` keywords these settings give: no Nones."""
        given = {"example": self.example, "label": self.label, "lr": self.lr,
                 "steps": self.steps, "optimizer": self.optimizer}  # fmt: skip
        return {name: value for name, value in given.items() if value is not None}


# --------------------------------------------------------------------------- batch norm, dropout
#
# `cnn-tui batchnorm` and `cnn-tui dropout`: the lecture's other layers on a small random batch
# (`cnn_tui.lessons.layer_lesson`). Their own small table: sizes, ε, the momentum, p, the seed.


@dataclass(frozen=True)
class LayerLimits:
    """Sizes of the batch-norm and dropout lessons: every value of a channel on one screen."""

    max_batch: int = 4
    max_channels: int = 3
    max_size: int = 6  # height and width
    max_eps: float = 1.0
    max_momentum: float = 1.0
    max_p: float = 0.9  # dropout probability (p = 1 would drop everything and divide by 0)


LAYER_LIMITS = LayerLimits()

# Every setting of the two lessons (LAYER_DEFAULTS says which lesson has which).
LAYER_SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "batch",
            "batch N",
            "images in the batch N (default {default})",
            high=LAYER_LIMITS.max_batch,
        ),
        Setting(
            "channels",
            "channels C",
            "channels C (default {default})",
            high=LAYER_LIMITS.max_channels,
        ),
        Setting("height", "height H", "height H (default {default})", high=LAYER_LIMITS.max_size),
        Setting("width", "width W", "width W (default {default})", high=LAYER_LIMITS.max_size),
        Setting(
            "eps",
            "ε epsilon",
            "ε added to the variance before the square root: above 0, up to 1 (default "
            "{default}, PyTorch's)",
            "float",
            high=LAYER_LIMITS.max_eps,  # type: ignore[arg-type]
            metavar="EPS",
        ),
        Setting(
            "momentum",
            "momentum m",
            "weight of this batch in the running statistics: above 0, up to 1 (default "
            "{default}, PyTorch's)",
            "float",
            high=LAYER_LIMITS.max_momentum,  # type: ignore[arg-type]
            metavar="MOMENTUM",
        ),
        Setting(
            "p",
            "drop probability p",
            f"probability that a value is dropped, above 0 and at most {LAYER_LIMITS.max_p:g} "
            "(default {default})",
            "float",
            high=LAYER_LIMITS.max_p,  # type: ignore[arg-type]
            metavar="P",
        ),
        Setting(
            "seed",
            "seed",
            f"seed of the random values, the upstream gradient and the dropout mask (0 to "
            f"{LIMITS.max_seed}; default {{default}})",
            low=0,
            high=LIMITS.max_seed,
        ),
    )
}

# The settings of each lesson, in the order of its flags, with the example a bare command shows.
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "batchnorm": {
        "batch": 2,
        "channels": 2,
        "height": 3,
        "width": 3,
        "eps": 1e-5,
        "momentum": 0.1,
        "seed": 0,
    },
    "dropout": {"batch": 1, "channels": 1, "height": 4, "width": 4, "p": 0.5, "seed": 0},
}


# The settings a lesson file of each lesson may give; its arrays fix the others (the sizes).
LAYER_FREE_WITH_EXAMPLE: dict[str, tuple[str, ...]] = {
    "batchnorm": ("eps", "momentum", "seed"),
    "dropout": ("p", "seed"),
}


@dataclass(frozen=True)
class LayerSettings:
    """What `cnn-tui batchnorm|dropout` asks for: the lesson, the settings given (the others keep
    `LAYER_DEFAULTS`, or a lesson file's), the example file (`--example`: a name or a path; it
    fixes the sizes) and, for the trace, the backward pass and the summary."""

    op: str  # "batchnorm" | "dropout"
    values: dict[str, Any] = field(default_factory=dict)
    backward: bool = False
    summary: bool = False
    example: str | None = None

    def params(self) -> dict[str, Any]:
        """Every setting of the lesson: the defaults with the given values over them."""
        given = {name: value for name, value in self.values.items() if value is not None}
        return {**LAYER_DEFAULTS[self.op], **given}
