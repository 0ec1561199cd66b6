"""A whole tiny network, step by step: conv → ReLU → max-pool → flatten → linear → softmax-CE.

One image x (1, 1, H, W) goes through

    z1 = conv(x, w1) + b1      F filters, stride 1, no padding     (1, F, OH, OW)
    a1 = ReLU(z1)                                                  (1, F, OH, OW)
    m1 = max-pool 2×2 (a1)     stride 2                            (1, F, PH, PW)
    h  = flatten(m1)                                               (1, D), D = F·PH·PW
    z2 = h·w2ᵀ + b2            a linear layer, K classes           (1, K)
    L  = −log softmax(z2)[y]   softmax cross-entropy with label y

then backward layer by layer (the chain rule: each layer turns the gradient of its output,
`dout`, into the gradients of its input and of its weights), one optimizer step for w1, b1,
w2, b2 (SGD, w ← w − α·dw, or Adam: running means m and v of the gradient and of its square,
bias-corrected, w ← w − α·m̂/(√v̂ + ε)), and a second forward pass with the new weights. A
training run (`run_training`) repeats that for N steps on the same image, each step recorded
in full and the optimizer's state carried from one step to the next; its losses are the curve
the lesson draws.

Every layer is a naive op of `cnn_tui.lessons.naive` (nested scalar loops); this module only
chains them, recording each op's steps under the network's names (the conv's "out" is z1 here,
its "x_pad" is x, ...). `run_network` returns the arrays and the `Stage`s a lesson replays: one
per layer and pass (and per gradient of a layer with weights, and per quantity of Adam).
Nothing here imports Textual; torch is imported only by `compare_with_torch` (the screen's
check, in a worker thread).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.lessons import library, naive
from cnn_tui.lessons.naive import Operand, StepEvent
from cnn_tui.lessons.number_format import significant_format
from cnn_tui.lessons.rules import ADAM_RULES, MAX_SUBTRACTION, SOFTMAX_CE_GRADIENT, adam_note
from cnn_tui.lessons.settings import (
    ADAM_BETAS,
    ADAM_EPS,
    DEFAULT_LR,
    NET_DEFAULT_EXAMPLE,
    NET_LIMITS,
    NET_SETTINGS,
    NetSettings,
)
from cnn_tui.text import one_line

__all__ = [
    "ARRAYS",
    "EDITABLE",
    "NetExample",
    "NetRun",
    "Stage",
    "TrainRun",
    "build_net_example",
    "compare_with_torch",
    "forward_loss",
    "central_differences",
    "gradient_check",
    "make_net_example",
    "net_example_from_settings",
    "net_file_values",
    "run_network",
    "run_training",
]

# The parameters the optimizer updates, in the order of the update and of the edit form, after
# the image.
PARAMS = ("w1", "b1", "w2", "b2")
EDITABLE = ("x", *PARAMS)

# Every array of the network: its axes (the last two of a feature map are rows and columns),
# the name the lesson writes (a prime for the updated weights) and what it is.
ARRAYS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "x": (("n", "c", "i", "j"), "x", "input image"),
    "w1": (("f", "c", "ki", "kj"), "w1", "conv filters"),
    "b1": (("f",), "b1", "conv bias"),
    "z1": (("n", "f", "i", "j"), "z1", "conv output"),
    "a1": (("n", "f", "i", "j"), "a1", "after ReLU"),
    "m1": (("n", "f", "i", "j"), "m1", "max-pooled"),
    "h": (("n", "d"), "h", "flattened"),
    "w2": (("k", "d"), "w2", "linear weights"),
    "b2": (("k",), "b2", "linear bias"),
    "z2": (("n", "k"), "z2", "scores (logits)"),
    "zmax": (("n",), "zmax", "largest score"),
    "e": (("n", "k"), "e", "exp(z2 − zmax)"),
    "s": (("n",), "s", "Σ e"),
    "p": (("n", "k"), "p", "probabilities"),
    "y": (("n", "k"), "y", "label, one-hot"),
    "L": ((), "L", "loss"),
    "dz2": (("n", "k"), "dz2", "∂L/∂z2"),
    "db2": (("k",), "db2", "∂L/∂b2"),
    "dw2": (("k", "d"), "dw2", "∂L/∂w2"),
    "dh": (("n", "d"), "dh", "∂L/∂h"),
    "dm1": (("n", "f", "i", "j"), "dm1", "∂L/∂m1"),
    "da1": (("n", "f", "i", "j"), "da1", "∂L/∂a1"),
    "dz1": (("n", "f", "i", "j"), "dz1", "∂L/∂z1"),
    "db1": (("f",), "db1", "∂L/∂b1"),
    "dw1": (("f", "c", "ki", "kj"), "dw1", "∂L/∂w1"),
    "dx": (("n", "c", "i", "j"), "dx", "∂L/∂x"),
    "lr": ((), "α", "learning rate"),
    "w1_new": (("f", "c", "ki", "kj"), "w1′", "conv filters after the step"),
    "b1_new": (("f",), "b1′", "conv bias after the step"),
    "w2_new": (("k", "d"), "w2′", "linear weights after the step"),
    "b2_new": (("k",), "b2′", "linear bias after the step"),
    "z2_after": (("n", "k"), "z2′", "scores after the step"),
    "p_after": (("n", "k"), "p′", "probabilities after the step"),
    "L_after": ((), "L′", "loss after the step"),
    "beta1": ((), "β1", "Adam: decay of m"),
    "beta2": ((), "β2", "Adam: decay of v"),
    "eps": ((), "ε", "Adam: keeps the division finite"),
    "t": ((), "t", "Adam: the step number"),
}
# Adam's arrays for each parameter p: the running means m, v before and after the step
# (m_p, m_p_new), their bias-corrected values (mhat_p, vhat_p)
for _p in PARAMS:
    _axes = ARRAYS[_p][0]
    ARRAYS.update(
        {
            f"m_{_p}": (_axes, f"m_{_p}", f"mean of d{_p}, before"),
            f"m_{_p}_new": (_axes, f"m_{_p}′", f"mean of d{_p}: β1·m + (1−β1)·g"),
            f"v_{_p}": (_axes, f"v_{_p}", f"mean of d{_p}², before"),
            f"v_{_p}_new": (_axes, f"v_{_p}′", f"mean of d{_p}²: β2·v + (1−β2)·g²"),
            f"mhat_{_p}": (_axes, f"m̂_{_p}", "m′ bias-corrected"),
            f"vhat_{_p}": (_axes, f"v̂_{_p}", "v′ bias-corrected"),
        }
    )
del _p, _axes

# leading axes of a feature map or weight: named in a cell reference when they have size > 1
LEAD_AXES = ("n", "c", "f")


# --------------------------------------------------------------------------- the example


@dataclass(frozen=True, eq=False)
class NetExample:
    """The image, the weights, the label and the learning rate of one network lesson."""

    name: str
    title: str
    description: str
    x: np.ndarray  # (1, 1, H, W)
    w1: np.ndarray  # (F, 1, KH, KW)
    b1: np.ndarray  # (F,)
    w2: np.ndarray  # (K, D)
    b2: np.ndarray  # (K,)
    label: int
    lr: float
    class_names: tuple[str, ...] = ()
    steps: int = 1  # training steps
    optimizer: str = "sgd"  # "sgd" | "adam"
    edited: bool = False  # the edit form changed some of its arrays

    @property
    def status_label(self) -> str:
        """What the status line calls it: "net-vertical-edge", "my-net (edited)"."""
        return library.example_label(self.name, 0, edited=self.edited)

    @property
    def classes(self) -> int:
        return int(self.w2.shape[0])

    @property
    def y(self) -> np.ndarray:
        """The label as the loss takes it: one class index per image, (1,)."""
        return np.array([self.label], dtype=np.int64)

    def class_name(self, k: int) -> str:
        return self.class_names[k] if k < len(self.class_names) else f"class {k}"

    def settings(self) -> dict[str, Any]:
        """The values of the lesson's settings (`settings.NET_SETTINGS`)."""
        return {
            "label": self.label,
            "lr": self.lr,
            "steps": self.steps,
            "optimizer": self.optimizer,
        }

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every layer's output: z1, m1, h, z2."""
        f, _, kh, kw = self.w1.shape
        oh, ow = self.x.shape[2] - kh + 1, self.x.shape[3] - kw + 1
        pool = NET_LIMITS.pool
        ph, pw = naive.output_size(oh, pool, pool), naive.output_size(ow, pool, pool)
        return {
            "z1": (1, f, oh, ow),
            "m1": (1, f, ph, pw),
            "h": (1, f * ph * pw),
            "z2": (1, self.classes),
        }


# The keys of a network lesson file besides op, title and description (`library.TEXT_KEYS`).
FILE_KEYS = ("classes", "label", "lr", "steps", "optimizer", *EDITABLE)
MAX_CLASS_NAME = 40  # characters


def list_net_examples() -> list[dict[str, str]]:
    """The network examples (op = "net") `--example NAME` opens: the shipped ones, then the
    user's (`library.user_lessons_dir()`): name, title, description and source ("shipped" or
    "yours"). A user file that cannot be opened by name is left out (`--list-examples` says why)."""
    return [
        {
            "name": info.name,
            "title": info.title,
            "description": info.description,
            "source": info.source,
        }
        for info in library.list_lessons("net")
        if info.op == "net" and not info.problem
    ]


def _class_names(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    names = data.get("classes", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f'{where}: classes must be a list of names in quotes, ["cat", "dog"]')
    if len(names) > NET_LIMITS.max_classes or any(len(n) > MAX_CLASS_NAME for n in names):
        raise UsageError(
            f"{where}: classes holds at most {NET_LIMITS.max_classes} names of at most "
            f"{MAX_CLASS_NAME} characters"
        )
    return tuple(one_line(n) for n in names)


def _image(x: np.ndarray) -> np.ndarray:
    return x.reshape((1,) * (4 - x.ndim) + x.shape) if 2 <= x.ndim <= 4 else x


def _filters(w1: np.ndarray) -> np.ndarray:
    return w1[:, None] if w1.ndim == 3 else w1


def build_net_example(
    example: str | None = None,
    *,
    label: Any = None,
    lr: Any = None,
    steps: Any = None,
    optimizer: Any = None,
) -> NetExample:
    """The network example `example` (default `settings.NET_DEFAULT_EXAMPLE`), with its own label,
    learning rate, training steps (default 1) and optimizer (default sgd) unless given.
    UsageError (one line, naming the problem) otherwise."""
    lesson = library.read_lesson(example or NET_DEFAULT_EXAMPLE, "net", FILE_KEYS)
    data, where = lesson.data, lesson.where
    arrays = {key: library.number_array(data, key, where, NET_LIMITS.max_abs) for key in EDITABLE}
    arrays["x"] = _image(arrays["x"])
    arrays["w1"] = _filters(arrays["w1"])
    given = {
        name
        for name, value in (
            ("label", label),
            ("lr", lr),
            ("steps", steps),
            ("optimizer", optimizer),
        )
        if value is not None
    }
    if label is None:
        label = library.int_value(data, "label", where) if "label" in data else 0
    own = library.text_value(data, "optimizer", where, 16, "sgd")  # the file's optimizer
    if optimizer is None:
        optimizer = own
    if lr is None:  # the file's α is its own optimizer's; else the optimizer's default
        mine = "lr" in data and optimizer == own
        lr = library.float_value(data, "lr", where) if mine else DEFAULT_LR.get(optimizer, 0.1)
    if steps is None:
        steps = library.int_value(data, "steps", where) if "steps" in data else 1
    base = NetExample(
        lesson.name,
        lesson.title,
        lesson.description,
        label=label,
        lr=lr,
        class_names=_class_names(data, where),
        steps=steps,
        optimizer=optimizer,
        **arrays,
    )
    try:
        return _checked(base)
    except UsageError as exc:  # a message about the file's values names the file
        message = str(exc)
        if message.split()[0] in given:  # the label or rate given (a flag, the form): not the file
            raise
        if message.startswith(f"network example {base.name!r}: "):
            message = message.removeprefix(f"network example {base.name!r}: ")
        raise UsageError(f"{where}: {message}") from None


def make_net_example(params: Mapping[str, Any], overrides: Mapping[str, np.ndarray]) -> NetExample:
    """`build_net_example(**params)` with some arrays (x, w1, b1, w2, b2) replaced by edited
    values of the same shape. UsageError naming the array or setting otherwise."""
    example = build_net_example(**params)
    changes = {}
    for key, array in overrides.items():
        current = getattr(example, key)
        array = np.asarray(array, dtype=np.float64)
        if array.shape != current.shape:
            raise UsageError(
                f"{key}: the edited values have shape {array.shape}, expected {current.shape}"
            )
        changes[key] = array
    if not changes:
        return example
    return _checked(dataclasses.replace(example, **changes, edited=True))


def net_example_from_settings(settings: NetSettings) -> NetExample:
    """`build_net_example` with the settings of `cnn-tui net`."""
    return build_net_example(**settings.params())


def net_file_values(example: NetExample, title: str, description: str) -> dict[str, Any]:
    """The keys of a network lesson file that reproduces `example` exactly (`FILE_KEYS`: the
    class names, the label, the learning rate, the image (H, W), the filters (F, KH, KW) and
    the linear layer). `cnn_tui.fileio.toml_text` writes them."""
    values: dict[str, Any] = {"op": "net", "title": title, "description": description}
    if example.class_names:
        values["classes"] = list(example.class_names)
    values.update(
        label=example.label, lr=example.lr, steps=example.steps, optimizer=example.optimizer
    )
    values.update(
        x=example.x[0, 0].tolist(),
        w1=example.w1[:, 0].tolist(),
        b1=example.b1.tolist(),
        w2=example.w2.tolist(),
        b2=example.b2.tolist(),
    )
    return values


def _checked(example: NetExample) -> NetExample:
    """Check the shapes, values and settings against `settings.NET_LIMITS`; UsageError if not."""
    lim = NET_LIMITS
    where = f"network example {example.name!r}"
    x, w1, b1, w2, b2 = (getattr(example, key) for key in EDITABLE)
    if x.ndim != 4 or x.shape[:2] != (1, 1):
        raise UsageError(f"{where}: x must be one grey image (H, W), got shape {x.shape}")
    height, width = x.shape[2:]
    if not (lim.min_size <= height <= lim.max_size and lim.min_size <= width <= lim.max_size):
        raise UsageError(
            f"{where}: the image is {height}x{width}; the lesson takes {lim.min_size}x"
            f"{lim.min_size} to {lim.max_size}x{lim.max_size}"
        )
    if w1.ndim != 4 or w1.shape[1] != 1:
        raise UsageError(f"{where}: w1 must be (F, KH, KW), got shape {w1.shape}")
    filters, _, kh, kw = w1.shape
    if not 1 <= filters <= lim.max_filters:
        raise UsageError(f"{where}: {filters} filters; the lesson takes 1 to {lim.max_filters}")
    if kh not in lim.kernel_sizes or kw not in lim.kernel_sizes:
        sizes = " or ".join(str(k) for k in lim.kernel_sizes)
        raise UsageError(f"{where}: filters of {kh}x{kw}; the lesson takes {sizes} on a side")
    if height - kh + 1 < lim.pool or width - kw + 1 < lim.pool:
        raise UsageError(f"{where}: the conv output is smaller than the {lim.pool}x2 pool")
    if b1.shape != (filters,):
        raise UsageError(f"b1 must have one bias per filter, shape ({filters},), got {b1.shape}")
    features = example.shapes()["h"][1]
    if w2.ndim != 2 or w2.shape[1] != features:
        raise UsageError(
            f"{where}: w2 must be (K, {features}): one row of {features} weights (the flattened "
            f"features) per class, got shape {w2.shape}"
        )
    if not lim.min_classes <= w2.shape[0] <= lim.max_classes:
        raise UsageError(
            f"{where}: {w2.shape[0]} classes; the lesson takes {lim.min_classes} to "
            f"{lim.max_classes}"
        )
    if b2.shape != (w2.shape[0],):
        raise UsageError(f"b2 must have one bias per class, shape ({w2.shape[0]},), got {b2.shape}")
    for key in EDITABLE:
        values = getattr(example, key)
        if not np.all(np.isfinite(values)) or np.any(np.abs(values) > lim.max_abs):
            raise UsageError(f"{key}: values must be finite and at most {lim.max_abs:g} in size")
    try:
        label = NET_SETTINGS["label"].parse(example.label)
        lr = NET_SETTINGS["lr"].parse(example.lr)
        if isinstance(example.steps, (bool, float)):  # a TOML 2.5 or true is not a count
            raise ValueError(f"steps must be a whole number, got {example.steps!r}")
        steps = NET_SETTINGS["steps"].parse(example.steps)
        optimizer = NET_SETTINGS["optimizer"].parse(example.optimizer)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if label >= example.classes:
        raise UsageError(
            f"label must be a class of the example, 0 to {example.classes - 1}, got {label}"
        )
    return dataclasses.replace(example, label=label, lr=lr, steps=steps, optimizer=optimizer)


# --------------------------------------------------------------------------- plain passes


def forward_loss(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The network's forward pass without steps: (loss L, scores z2, probabilities p)."""
    pool = NET_LIMITS.pool
    z1, _ = naive.conv2d_forward(x, w1, b1)
    a1, _ = naive.relu_forward(z1)
    m1, _ = naive.maxpool2d_forward(a1, pool, pool)
    h, _ = naive.flatten_forward(m1)
    z2, _ = naive.linear_forward(h, w2, b2)
    loss, cache = naive.softmax_cross_entropy_forward(z2, y)
    return loss, z2, cache.p


# --------------------------------------------------------------------------- stages


@dataclass
class Stage:
    """One layer's pass (or one gradient of it) as the lesson steps through it.

    `reads` are the arrays its steps read (shown first), `writes` the arrays they fill in;
    `rule` is what it computes in general, `source` where its input (for a backward stage, the
    upstream gradient) came from, `running` the sum a cell accumulates ("" when a cell is one
    step), `note` what a cell of it means. An "after" stage has no steps of its own.
    """

    key: str  # "conv.forward", "linear.grad_weight", "sgd.w1", "adam.w1.m", "adam.w1", "after"
    direction: str  # "forward" | "backward" | "update" | "after"
    # "conv" | "ReLU" | "max-pool" | "flatten" | "linear" | "softmax-CE" | "SGD" | "Adam"
    layer: str
    part: str  # "forward", "db2", "w1 ← w1 − α·dw1", ...
    rule: str
    source: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    events: list[StepEvent] = field(default_factory=list)
    running: str = ""
    note: str = ""
    # the max-pool backward stage: each output cell's forward window (for the highlight)
    windows: dict[tuple[int, ...], list[tuple[str, tuple[int, ...]]]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return " · ".join(part for part in (self.direction, self.layer, self.part) if part)

    @property
    def steps(self) -> int:
        """Steps on screen: the events, or one for the summary of the "after" stage."""
        return len(self.events) or 1


@dataclass
class NetRun:
    """One training step as the lesson shows it: every array by name (`ARRAYS`) and the stages
    in order. `step` counts from 1; `state` is the optimizer's after the step (Adam's m_p and
    v_p, none for SGD), which the next step starts from."""

    example: NetExample
    values: dict[str, np.ndarray]
    stages: list[Stage]
    step: int = 1
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def new_params(self) -> dict[str, np.ndarray]:
        """The parameters after the step (the next step's)."""
        return {key: self.values[f"{key}_new"] for key in PARAMS}

    @property
    def loss(self) -> float:
        return float(self.values["L"])

    @property
    def loss_after(self) -> float:
        return float(self.values["L_after"])

    def stage(self, key: str) -> Stage:
        return next(stage for stage in self.stages if stage.key == key)


def _renamer(names: Mapping[str, str], sink: list[StepEvent]) -> Callable[[StepEvent], None]:
    """An on_step that stores each event with its arrays under the network's names."""

    def on_step(e: StepEvent) -> None:
        operands = tuple(Operand(names.get(o.name, o.name), o.index, o.value) for o in e.operands)
        sink.append(dataclasses.replace(e, target=names.get(e.target, e.target), operands=operands))

    return on_step


def _split(events: list[StepEvent]) -> dict[str, list[StepEvent]]:
    """A backward op's events by phase (grad_bias, grad_weight, grad_input), in order."""
    phases: dict[str, list[StepEvent]] = {}
    for e in events:
        phases.setdefault(e.phase, []).append(e)
    return phases


def run_network(
    example: NetExample,
    params: Mapping[str, np.ndarray] | None = None,
    state: Mapping[str, np.ndarray] | None = None,
    step: int = 1,
) -> NetRun:
    """Training step `step` (from 1): forward, loss, backward, the optimizer's update and a
    second forward, recording every scalar step. `params` are the weights the step starts
    from (default: the example's), `state` the optimizer's state after the previous step
    (Adam's m_p, v_p; default zeros)."""
    pool = NET_LIMITS.pool
    v: dict[str, np.ndarray] = {key: getattr(example, key) for key in EDITABLE}
    v.update({key: np.asarray(value, dtype=np.float64) for key, value in (params or {}).items()})
    y = example.y
    onehot = np.zeros((1, example.classes))
    onehot[0, example.label] = 1.0
    v["y"] = onehot
    v["lr"] = np.array(example.lr)
    kh = example.w1.shape[2]
    shapes = example.shapes()
    _, _, oh, ow = shapes["z1"]
    _, _, ph, pw = shapes["m1"]
    features, classes = shapes["h"][1], example.classes
    pool_size = naive.output_size_formula(oh, pool, pool, pooling=True)
    stages: list[Stage] = []

    def stage(key: str, direction: str, layer: str, part: str, rule: str, source: str,
              reads: tuple[str, ...], writes: tuple[str, ...], events: list[StepEvent],
              running: str = "", note: str = "") -> Stage:  # fmt: skip
        made = Stage(key, direction, layer, part, rule, source, reads, writes, events, running,
                     note)  # fmt: skip
        stages.append(made)
        return made

    # ----------------------------------------------------------------- forward
    events: list[StepEvent] = []
    rename = {"x_pad": "x", "w": "w1", "b": "b1", "out": "z1"}
    v["z1"], conv_cache = naive.conv2d_forward(v["x"], v["w1"], v["b1"], 1, 0,
                                               _renamer(rename, events))  # fmt: skip
    size = naive.output_size_formula(example.x.shape[2], kh)
    stage(
        "conv.forward", "forward", "conv", "",
        "z1[f,i,j] = b1[f] + Σ_ki,kj x[i+ki, j+kj]·w1[f,ki,kj]: each filter slides over x",
        f"input: the image x {_dims(v['x'])}; output {_dims(v['z1'])}, size {size}",
        ("x", "w1", "b1"), ("z1",), events,
        running="b1 + Σ_ki,kj x·w1", note="one output cell: a bias and a window of products",
    )  # fmt: skip

    events = []
    v["a1"], relu_cache = naive.relu_forward(v["z1"], _renamer({"x": "z1", "out": "a1"}, events))
    stage(
        "relu.forward", "forward", "ReLU", "",
        "a1 = ReLU(z1) = max(0, z1), cell by cell: negative values become 0",
        "input: z1 from the conv layer",
        ("z1",), ("a1",), events, note="ReLU works on each cell alone",
    )  # fmt: skip

    events = []
    pool_rename = {"x": "a1", "out": "m1"}
    v["m1"], pool_cache = naive.maxpool2d_forward(v["a1"], pool, pool,
                                                  _renamer(pool_rename, events))  # fmt: skip
    pool_events = events
    stage(
        "pool.forward", "forward", "max-pool", "",
        f"m1[f,i,j] = max of the {pool}×{pool} window a1[f, {pool}i.., {pool}j..] (stride {pool})",
        f"input: a1 from ReLU; output {_dims(v['m1'])}, size {pool_size}; the max's place is "
        "kept for the backward pass",
        ("a1",), ("m1",), events, note="the window's max so far",
    )  # fmt: skip

    events = []
    v["h"], flat_cache = naive.flatten_forward(v["m1"], _renamer({"x": "m1", "out": "h"}, events))
    stage(
        "flatten.forward", "forward", "flatten", "",
        f"h[d] = m1[f,i,j] with d = (f·{ph} + i)·{pw} + j: the pooled maps as one row",
        f"input: m1 from max-pool {_dims(v['m1'])}; output h {_dims(v['h'])}",
        ("m1",), ("h",), events, note="flatten moves numbers, it computes nothing",
    )  # fmt: skip

    events = []
    rename = {"x": "h", "w": "w2", "b": "b2", "out": "z2"}
    v["z2"], linear_cache = naive.linear_forward(v["h"], v["w2"], v["b2"],
                                                 _renamer(rename, events))  # fmt: skip
    stage(
        "linear.forward", "forward", "linear", "",
        f"z2[k] = b2[k] + Σ_d w2[k,d]·h[d]: one score per class ({features} → {classes})",
        "input: h from flatten",
        ("h", "w2", "b2"), ("z2",), events, running="b2 + Σ_d h·w2",
        note="one score: a bias and a row of products",
    )  # fmt: skip

    events = []
    loss, ce_cache = naive.softmax_cross_entropy_forward(
        v["z2"], y, _renamer({"z": "z2", "loss": "L"}, events)
    )
    v["p"] = ce_cache.p
    v["L"] = np.array(loss)
    for name, target in (("zmax", (1,)), ("e", (1, classes)), ("s", (1,))):
        v[name] = np.full(target, np.nan)
    for e in events:  # the softmax's intermediate arrays, for the trace and the board
        if e.target in ("zmax", "e", "s"):
            v[e.target][e.target_index] = e.after
    stage(
        "softmax.forward", "forward", "softmax-CE", "loss",
        "p[k] = exp(z2[k] − zmax) / Σ_j exp(z2[j] − zmax);  L = −log p[y].  Why − zmax: "
        + MAX_SUBTRACTION,
        f"input: the scores z2; the label y = {example.label} ({example.class_name(example.label)})",
        ("z2", "y"), ("zmax", "e", "s", "p", "L"), events, running="Σ_k e",
        note="softmax turns scores into probabilities that sum to 1",
    )  # fmt: skip

    # ----------------------------------------------------------------- backward
    events = []
    v["dz2"] = naive.softmax_cross_entropy_backward(ce_cache, _renamer({"dz": "dz2"}, events))
    stage(
        "softmax.backward", "backward", "softmax-CE", "dz2",
        "∂L/∂z2 = p − y, by the chain rule through p: " + SOFTMAX_CE_GRADIENT,
        "the start of the backward pass: ∂L/∂L = 1; y is the label one-hot",
        ("p", "y"), ("dz2",), events, note="too much probability on a class: a positive gradient",
    )  # fmt: skip

    events = []
    rename = {"dout": "dz2", "x": "h", "w": "w2", "db": "db2", "dw": "dw2", "dx": "dh"}
    v["dh"], v["dw2"], v["db2"] = naive.linear_backward(v["dz2"], linear_cache,
                                                        _renamer(rename, events))  # fmt: skip
    phases = _split(events)
    came = "dout = dz2 = ∂L/∂z2 came from softmax-CE above (p − y)"
    stage(
        "linear.grad_bias", "backward", "linear", "db2",
        "∂L/∂b2 = ∂L/∂z2: db2[k] = dz2[k] (each bias adds to one score)",
        came, ("dz2",), ("db2",), phases["grad_bias"], running="Σ_n dz2",
        note="one image: each db2 is its dz2",
    )  # fmt: skip
    stage(
        "linear.grad_weight", "backward", "linear", "dw2",
        "∂L/∂w2 = ∂L/∂z2 · hᵀ: dw2[k,d] = dz2[k]·h[d]",
        came, ("h", "dz2"), ("dw2",), phases["grad_weight"], running="Σ_n h·dz2",
        note="one image: each dw2 is one product, feature times score gradient",
    )  # fmt: skip
    stage(
        "linear.grad_input", "backward", "linear", "dh",
        "∂L/∂h = w2ᵀ · ∂L/∂z2: dh[d] = Σ_k w2[k,d]·dz2[k]",
        came, ("w2", "dz2"), ("dh",), phases["grad_input"], running="Σ_k w2·dz2",
    )  # fmt: skip

    events = []
    v["dm1"] = naive.flatten_backward(v["dh"], flat_cache,
                                      _renamer({"dout": "dh", "dx": "dm1"}, events))  # fmt: skip
    stage(
        "flatten.backward", "backward", "flatten", "dm1",
        f"dm1 = dh reshaped back to m1's shape {_dims(v['m1'])}: flatten has no arithmetic",
        "dout = dh = ∂L/∂h came from the linear layer above (w2ᵀ·dz2)",
        ("dh",), ("dm1",), events, note="the same number, moved back",
    )  # fmt: skip

    events = []
    v["da1"] = naive.maxpool2d_backward(v["dm1"], pool_cache,
                                        _renamer({"dout": "dm1", "dx": "da1"}, events))  # fmt: skip
    routing = stage(
        "pool.backward", "backward", "max-pool", "da1",
        "max-pool routes ∂L/∂m1 to the argmax of each window: da1[argmax] += dm1[f,i,j]; "
        "every other da1 is 0",
        "dout = dm1 = ∂L/∂m1 came from flatten above (dh reshaped)",
        ("a1", "dm1"), ("da1",), events,
        note="only the max changed the output, so only the max gets gradient",
    )  # fmt: skip
    for e in pool_events:  # each output cell's window, as the forward pass read it
        key = tuple(value for _, value in e.loops[:4])
        routing.windows.setdefault(key, []).extend((o.name, o.index) for o in e.operands)

    events = []
    rename = {"dout": "da1", "x": "z1", "dx": "dz1"}
    v["dz1"] = naive.relu_backward(v["da1"], relu_cache, _renamer(rename, events))
    stage(
        "relu.backward", "backward", "ReLU", "dz1",
        "ReLU passes the gradient where z1 > 0 and blocks it elsewhere: dz1 = da1·[z1 > 0]",
        "dout = da1 = ∂L/∂a1 came from max-pool above (routed to the maxima)",
        ("z1", "da1"), ("dz1",), events, note="ReLU's slope is 1 where z1 > 0, else 0",
    )  # fmt: skip

    events = []
    rename = {"dout": "dz1", "x_pad": "x", "w": "w1", "db": "db1", "dw": "dw1", "dx_pad": "dx"}
    v["dx"], v["dw1"], v["db1"] = naive.conv2d_backward(v["dz1"], conv_cache,
                                                        _renamer(rename, events))  # fmt: skip
    phases = _split(events)
    came = "dout = dz1 = ∂L/∂z1 came from ReLU above (da1 where z1 > 0)"
    stage(
        "conv.grad_bias", "backward", "conv", "db1",
        "∂L/∂b1 = Σ_i,j ∂L/∂z1: db1[f] = Σ_i,j dz1[f,i,j] (the bias adds to every cell)",
        came, ("dz1",), ("db1",), phases["grad_bias"], running="Σ_i,j dz1",
    )  # fmt: skip
    stage(
        "conv.grad_weight", "backward", "conv", "dw1",
        "∂L/∂w1 = Σ dout · x (no padding here): dw1[f,ki,kj] = Σ_i,j dz1[f,i,j]·x[i+ki, j+kj]",
        came, ("x", "dz1"), ("dw1",), phases["grad_weight"], running="Σ_i,j x·dz1",
    )  # fmt: skip
    stage(
        "conv.grad_input", "backward", "conv", "dx",
        "∂L/∂x = Σ dout · w1, spread over each window: dx[i+ki, j+kj] += w1[f,ki,kj]·dz1[f,i,j]",
        came + "; dx is what a layer below x would get (the image itself is not learned)",
        ("w1", "dz1"), ("dx",), phases["grad_input"],
        note="each dz1 cell spreads back over its window",
    )  # fmt: skip

    # ----------------------------------------------------------------- update
    new_state: dict[str, np.ndarray] = {}
    layers = {"w1": "conv", "b1": "conv", "w2": "linear", "b2": "linear"}
    for name in PARAMS if example.optimizer == "sgd" else ():
        events = []
        rename = {"param": name, "grad": f"d{name}", "new": f"{name}_new"}
        v[f"{name}_new"] = naive.sgd_update(v[name], v[f"d{name}"], example.lr,
                                            _renamer(rename, events))  # fmt: skip
        stage(
            f"sgd.{name}", "update", "SGD", name,
            f"{name}′ = {name} − α·d{name} with α = {_short(example.lr)}: each weight takes a "
            "small step against its gradient",
            f"d{name} = ∂L/∂{name} from the {layers[name]} layer's backward pass",
            (name, f"d{name}"), (f"{name}_new",), events, note="downhill for this weight",
        )  # fmt: skip
    if example.optimizer == "adam":
        (beta1, beta2), eps = ADAM_BETAS, ADAM_EPS
        v.update(beta1=np.array(beta1), beta2=np.array(beta2), eps=np.array(eps),
                 t=np.array(float(step)))  # fmt: skip
        for name in PARAMS:
            for moment in ("m", "v"):
                before = (state or {}).get(f"{moment}_{name}")
                v[f"{moment}_{name}"] = (
                    np.zeros_like(v[name]) if before is None else np.asarray(before)
                )
            events = []
            rename = {"param": name, "grad": f"d{name}", "new": f"{name}_new",
                      "m": f"m_{name}", "v": f"v_{name}", "m_new": f"m_{name}_new",
                      "v_new": f"v_{name}_new", "m_hat": f"mhat_{name}",
                      "v_hat": f"vhat_{name}"}  # fmt: skip
            result = naive.adam_update(v[name], v[f"d{name}"], v[f"m_{name}"], v[f"v_{name}"],
                                       step, example.lr, ADAM_BETAS, ADAM_EPS,
                                       _renamer(rename, events))  # fmt: skip
            v[f"m_{name}_new"], v[f"v_{name}_new"] = result.m, result.v
            v[f"mhat_{name}"], v[f"vhat_{name}"], v[f"{name}_new"] = (
                result.m_hat,
                result.v_hat,
                result.new,
            )
            new_state[f"m_{name}"], new_state[f"v_{name}"] = result.m, result.v
            kinds = {"m": "adam_m", "v": "adam_v", "mhat": "adam_mhat", "vhat": "adam_vhat",
                     "update": "adam"}  # fmt: skip
            reads = {
                "m": (f"m_{name}", f"d{name}"),
                "v": (f"v_{name}", f"d{name}"),
                "mhat": (f"m_{name}_new",),
                "vhat": (f"v_{name}_new",),
                "update": (name, f"mhat_{name}", f"vhat_{name}"),
            }
            writes = {"m": f"m_{name}_new", "v": f"v_{name}_new", "mhat": f"mhat_{name}",
                      "vhat": f"vhat_{name}", "update": f"{name}_new"}  # fmt: skip
            sources = {
                "m": f"d{name} = ∂L/∂{name} from the {layers[name]} layer's backward pass; "
                f"m_{name} from step {step - 1}",
                "v": f"the same d{name}, squared; v_{name} from the step before",
                "mhat": f"m_{name}′ from above; t = {step}: 1 − β1^t = {_short(1 - beta1**step)}",
                "vhat": f"v_{name}′ from above; t = {step}: 1 − β2^t = {_short(1 - beta2**step)}",
                "update": f"α = {_short(example.lr)}, ε = {eps:g}; " + adam_note(step),
            }
            if step == 1:
                sources["m"] = (
                    f"d{name} = ∂L/∂{name} from the {layers[name]} layer's backward pass; "
                    "m and v start at 0"
                )
                sources["v"] = f"the same d{name}, squared; v starts at 0"
            for quantity, kind in kinds.items():
                part, rule = ADAM_RULES[quantity]
                key = f"adam.{name}" if quantity == "update" else f"adam.{name}.{quantity}"
                stage(
                    key, "update", "Adam", part.format(p=name), rule.format(p=name),
                    sources[quantity], reads[quantity], (writes[quantity],),
                    [e for e in events if e.kind == kind],
                    note="Adam works on each weight alone",
                )  # fmt: skip

    # ----------------------------------------------------------------- a second forward
    after, z2_after, p_after = forward_loss(
        v["x"], v["w1_new"], v["b1_new"], v["w2_new"], v["b2_new"], y
    )
    v["z2_after"], v["p_after"], v["L_after"] = z2_after, p_after, np.array(after)
    stage(
        "after", "after", "second forward", "",
        "a second forward pass with w1′, b1′, w2′, b2′ (the same loops, not stepped here)",
        after_source(loss, after, significant_format(loss, after)),
        ("z2", "p", "L"), ("z2_after", "p_after", "L_after"), [],
    )  # fmt: skip
    return NetRun(example, v, stages, step, new_state)


def after_source(loss: float, after: float, number: Callable[[float], str]) -> str:
    """The "after" stage's line: L → L′ and the change, the losses written by `number` (the
    loss's format: `net_replay.loss_format` over the whole training run, which a run of one
    step cannot know yet and the lesson writes again with it)."""
    change = after - loss
    verdict = "lower" if change < 0 else "not lower: try a smaller α"
    sign = "+" if change >= 0 else ""  # the minus is the format's own ASCII "-"
    return f"L = {number(loss)} → L′ = {number(after)} ({sign}{number(change)}: {verdict})"


def _dims(array: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in array.shape) + ")"


def _short(value: float) -> str:
    """A number in a sentence: 4 significant digits, ASCII "-" as the minus like the grids'."""
    text = f"{value:.4g}"
    return text if text != "-0" else "0"


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class NetGradCheck:
    """The backward pass's gradients against central differences of the loss, per array."""

    errors: dict[str, float]  # dx, dw1, db1, dw2, db2 -> relative error
    eps: float
    checked: int

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.max_error < tolerance

    def summary(self) -> str:
        parts = ", ".join(f"{name} {value:.1e}" for name, value in self.errors.items())
        return f"max relative error {self.max_error:.1e} ({parts})"


def central_differences(
    arrays: dict[str, np.ndarray],
    gradients: Mapping[str, np.ndarray],
    loss: Callable[[], float],
    eps: float = 1e-6,
) -> NetGradCheck:
    """Each gradient `gradients[name]` against (L(v + eps) − L(v − eps)) / (2·eps) for every
    entry v of `arrays[name]`, changed in place and put back; `loss()` reads `arrays`. Each
    array's error is its largest difference relative to its largest gradient (`naive.GradCheck`'s
    measure), named `d<name>`. The network and the batch-norm / dropout lessons share it."""
    errors: dict[str, float] = {}
    checked = 0
    for name, array in arrays.items():
        analytic = gradients[name]
        worst, scale = 0.0, 0.0
        for index in np.ndindex(*array.shape):
            original = array[index]
            array[index] = original + eps
            plus = loss()
            array[index] = original - eps
            minus = loss()
            array[index] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic[index])
            worst = max(worst, abs(exact - numeric))
            scale = max(scale, abs(exact), abs(numeric))
            checked += 1
        errors[f"d{name}"] = worst / scale if scale > 0 else worst
    return NetGradCheck(errors, eps, checked)


def gradient_check(example: NetExample, run: NetRun | None = None, eps: float = 1e-6):
    """Every gradient of the backward pass against (L(v + eps) − L(v − eps)) / (2·eps), with
    v each entry of x, w1, b1, w2, b2 in turn (`central_differences`)."""
    run = run if run is not None else run_network(example)
    arrays = {key: np.array(getattr(example, key), dtype=np.float64) for key in EDITABLE}
    gradients = {key: run.values[f"d{key}"] for key in EDITABLE}
    return central_differences(
        arrays, gradients, lambda: float(forward_loss(*arrays.values(), example.y)[0]), eps
    )


def compare_with_torch(example: NetExample, run: NetRun | TrainRun | None = None) -> float:
    """Largest |naive − PyTorch| over every training step of `run` (default: the example's
    run): the loss, every gradient, the weights after the torch.optim.SGD or torch.optim.Adam
    step, and the loss after the last step. Imports torch: call it from a worker thread."""
    import torch
    import torch.nn.functional as F

    if run is None:
        run = run_training(example)
    runs = list(run.runs) if isinstance(run, TrainRun) else [run]  # the screen may append
    tensors = {
        key: torch.tensor(getattr(example, key), dtype=torch.float64, requires_grad=True)
        for key in EDITABLE
    }
    labels = torch.tensor(example.y)
    pool = NET_LIMITS.pool

    def loss_of(t: dict[str, Any]) -> Any:
        z1 = F.conv2d(t["x"], t["w1"], t["b1"])
        m1 = F.max_pool2d(F.relu(z1), pool, pool)
        return F.cross_entropy(F.linear(torch.flatten(m1, 1), t["w2"], t["b2"]), labels)

    weights = [tensors[key] for key in PARAMS]
    if example.optimizer == "adam":
        optimizer = torch.optim.Adam(weights, lr=example.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    else:
        optimizer = torch.optim.SGD(weights, lr=example.lr)
    pairs: list[tuple[Any, Any]] = []
    for step in runs:
        optimizer.zero_grad()
        if tensors["x"].grad is not None:
            tensors["x"].grad = None
        loss = loss_of(tensors)
        loss.backward()
        pairs.append((step.loss, loss.item()))
        pairs += [(step.values[f"d{key}"], tensors[key].grad.numpy().copy()) for key in EDITABLE]
        optimizer.step()
        pairs += [(step.values[f"{key}_new"], tensors[key].detach().numpy().copy())
                  for key in PARAMS]  # fmt: skip
    with torch.no_grad():
        pairs.append((runs[-1].loss_after, loss_of(tensors).item()))
    differences = (np.ravel(np.asarray(a) - np.asarray(b)) for a, b in pairs)
    return max(abs(float(d)) for difference in differences for d in difference)


@dataclass
class TrainRun:
    """A short training run on the example's one image: one `NetRun` per step, each starting
    from the weights (and the optimizer's state) the step before left."""

    example: NetExample
    runs: list[NetRun]

    @property
    def steps(self) -> int:
        return len(self.runs)

    @property
    def losses(self) -> list[float]:
        """The loss before each step and after the last: steps + 1 values (the curve)."""
        return [self.runs[0].loss, *(run.loss_after for run in self.runs)]

    def true_probabilities(self) -> list[float]:
        """p[y] before each step and after the last."""
        label = self.example.label
        first = float(self.runs[0].values["p"][0, label])
        return [first, *(float(run.values["p_after"][0, label]) for run in self.runs)]

    def can_extend(self) -> bool:
        return self.steps < NET_LIMITS.max_train_steps

    def extend(self) -> NetRun:
        """One more training step from where the last left the weights; UsageError at the
        limit (`NET_LIMITS.max_train_steps`)."""
        if not self.can_extend():
            raise UsageError(
                f"the lesson keeps at most {NET_LIMITS.max_train_steps} training steps"
            )
        last = self.runs[-1]
        run = run_network(self.example, last.new_params(), last.state, last.step + 1)
        self.runs.append(run)
        return run


def run_training(example: NetExample, steps: int | None = None) -> TrainRun:
    """`steps` training steps (default the example's), each recorded as `run_network` does."""
    training = TrainRun(example, [run_network(example)])
    for _ in range((example.steps if steps is None else steps) - 1):
        training.extend()
    return training


def describe(example: NetExample) -> str:
    """One line: the network's layers with their sizes."""
    shapes = example.shapes()
    f_count, _, kh, kw = example.w1.shape
    height, width = example.x.shape[2:]
    pool = NET_LIMITS.pool
    return (
        f"x {height}×{width} → conv {f_count}×{kh}×{kw} → ReLU → max-pool {pool}×{pool} → "
        f"flatten {shapes['h'][1]} → linear {shapes['h'][1]}→{example.classes} → softmax-CE"
    )
