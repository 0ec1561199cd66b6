"""Lesson examples for the naive conv/pool engine: from flags or a lesson file to arrays.

The lesson screen and the `--no-ui` trace both go through here, so they show the same numbers:

    example = build_example("conv", height=6, kernel=(3, 3), stride=(2, 2), seed=1)
    out, cache = example.forward(on_step=...)        # naive.conv2d_forward with its arrays
    grads = example.backward(cache, on_step=...)     # {"dx": ..., "dw": ..., "db": ...}
    example.gradient_check().summary()               # "max relative error 2.1e-10 (...)"

`build_example` takes the settings of `cnn_tui.lessons.settings` (`FIELDS[op]`, checked by
`SETTINGS[name].parse` against `LIMITS`; `example_from_settings` takes a command's
`LessonSettings`) and raises `UsageError` (a ValueError) with a one-line reason. Random values come from one seeded generator in a fixed
order (x, w, b, dout) as one-decimal numbers in [-2, 2], so a trace is easy to follow by hand.

Named examples are TOML files (shipped under `assets/lessons/`, the user's in their lessons
folder, or any path: `cnn_tui.lessons.library`; see `list_examples`); their format:

    op = "conv"                      # or "pool"
    title = "Vertical edge detector"
    description = "..."
    x = [[0, 0, 1, 1], ...]          # (H, W), (C, H, W) or (N, C, H, W) (pool: N = 1)
    w = [[-1, 0, 1], ...]            # conv: (KH, KW), (C, KH, KW) or (F, C, KH, KW)
    b = [0]                          # conv, optional (zeros): (F,)
    stride = 1                       # optional, an int or [h, w]
    padding = 0                      # conv, optional: a number, [h, w], "same" or "valid"
    dilation = 1                     # conv, optional
    mode = "cross-correlation"       # conv, optional, or "convolution" (kernel rotated 180°)
    kernel = 2                       # pool, optional
    type = "max"                     # pool, optional: "max" or "avg"
    seed = 0                         # optional: draws dout when the file gives none
    dout = [[...]]                   # optional upstream gradient shaped like the output

A setting the file leaves out has its default (`settings.DEFAULTS`); the keys are the flag names
(`file_keys`), any other key is an error. Sizes and values keep to `settings.LIMITS`.
`example_file_values` turns an example (a random one, an edited one) back into these keys, so
the edit form can save the board as a file that reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.fileio import read_toml_file
from cnn_tui.lessons import library, naive
from cnn_tui.lessons.naive import GradCheck, StepEvent
from cnn_tui.lessons.settings import (
    CONV_MODES,
    DEFAULTS,
    FIELDS,
    FIXED_BY_EXAMPLE,
    LIMITS,
    SETTINGS,
    LessonSettings,
    free_with_example,
)

Pair = tuple[int, int]

__all__ = [
    "DEFAULTS",
    "LIMITS",
    "ExampleInfo",
    "LessonExample",
    "build_example",
    "example_file_values",
    "example_from_settings",
    "file_keys",
    "list_examples",
    "load_example",
]


@dataclass(frozen=True)
class ExampleInfo:
    """A named example file: `name` is what `--example` and `build_example(example=...)` take;
    `source` is "shipped" or "yours" (the user's lessons folder)."""

    name: str
    op: str  # "conv" | "pool"
    title: str
    description: str
    source: str = "shipped"


@dataclass(frozen=True, eq=False)
class LessonExample:
    """Everything one lesson shows: the arrays, the settings and a seeded upstream gradient.

    x is (N, C, H, W). For conv, w is (F, C, KH, KW) and b is (F,); for pool both are None and
    padding is (0, 0). dout has the output's shape (the gradient the backward pass starts from).
    Conv only: dilation (PyTorch's), flip (True: a true convolution, the kernel rotated by 180°)
    and padding_rule ("same" or "valid" when padding was asked for by name, else "").
    """

    op: str  # "conv" | "pool"
    name: str  # the example's name, or "random" for one drawn from the seed
    title: str
    description: str
    x: np.ndarray
    w: np.ndarray | None
    b: np.ndarray | None
    dout: np.ndarray
    kernel: Pair
    stride: Pair
    padding: Pair
    pool_type: str | None  # "max" | "avg" for pool, None for conv
    seed: int
    dilation: Pair = (1, 1)
    flip: bool = False
    padding_rule: str = ""  # "same" | "valid" | "" (a number)
    dout_from: str = ""  # "seed" | "file" | "edited": where dout came from ("" not said)
    edited: bool = False  # the edit form changed some of its arrays

    @property
    def status_label(self) -> str:
        """What the status line calls it: "edge-detect", "seed 3", "edited", ..."""
        return library.example_label(
            self.name, self.seed, edited=self.edited, seeded=self.dout_from == "seed"
        )

    @property
    def naive_op(self) -> str:
        """The engine's name for the operation: "conv2d", "maxpool2d" or "avgpool2d"."""
        return "conv2d" if self.op == "conv" else f"{self.pool_type}pool2d"

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return _output_shape(
            self.op, self.x.shape, self.w, self.kernel, self.stride, self.padding, self.dilation
        )

    @property
    def conv_mode(self) -> str:
        """ "convolution" (kernel rotated by 180°) or "cross-correlation" (PyTorch's conv2d)."""
        return CONV_MODES[1] if self.flip else CONV_MODES[0]

    def settings(self) -> dict[str, Any]:
        """This example's value of each setting of its op (`settings.FIELDS`): height, kernel, ..."""
        n, c, h, w = self.x.shape
        values = {
            "height": h,
            "width": w,
            "channels": c,
            "filters": None if self.w is None else int(self.w.shape[0]),
            "batch": n,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding_rule or self.padding,
            "dilation": self.dilation,
            "conv_mode": self.conv_mode,
            "pool_type": self.pool_type,
            "seed": self.seed,
        }
        return {name: values[name] for name in FIELDS[self.op]}

    @property
    def x_pad(self) -> np.ndarray:
        """x with its zero padding, the array the conv loops read."""
        (ph, pw) = self.padding
        return np.pad(self.x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))

    def forward(self, on_step: Callable[[StepEvent], None] | None = None) -> tuple[np.ndarray, Any]:
        """Run the naive forward pass on this example: (out, cache)."""
        if self.op == "conv":
            return naive.conv2d_forward(
                self.x, self.w, self.b, self.stride, self.padding, on_step,
                dilation=self.dilation, flip=self.flip,
            )  # fmt: skip
        forward = naive.maxpool2d_forward if self.pool_type == "max" else naive.avgpool2d_forward
        return forward(self.x, self.kernel, self.stride, on_step)

    def backward(
        self, cache: Any, on_step: Callable[[StepEvent], None] | None = None
    ) -> dict[str, np.ndarray]:
        """Run the naive backward pass from `self.dout`: {"dx", "dw", "db"} (pool: {"dx"})."""
        if self.op == "conv":
            dx, dw, db = naive.conv2d_backward(self.dout, cache, on_step)
            return {"dx": dx, "dw": dw, "db": db}
        backward = naive.maxpool2d_backward if self.pool_type == "max" else naive.avgpool2d_backward
        return {"dx": backward(self.dout, cache, on_step)}

    def transposed_backward(
        self, cache: Any, on_step: Callable[[StepEvent], None] | None = None
    ) -> np.ndarray:
        """Conv only: dx again, as a transposed convolution of dout with the kernel
        (`naive.conv2d_input_grad_transposed`)."""
        return naive.conv2d_input_grad_transposed(self.dout, cache, on_step)

    @property
    def transposed_steps(self) -> int:
        """Steps of the transposed-convolution view of dx (0 for pooling)."""
        if self.op != "conv":
            return 0
        return naive.count_steps(
            "conv2d", self.x.shape, self.w.shape, stride=self.stride, padding=self.padding,
            dilation=self.dilation, transposed=True,
        )["grad_input_transposed"]  # fmt: skip

    def step_counts(self) -> dict[str, int]:
        """Events per phase, from the shapes alone (e.g. for "step 12 of 90")."""
        return naive.count_steps(
            self.naive_op,
            self.x.shape,
            None if self.w is None else self.w.shape,
            kernel_size=self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )

    def gradient_check(self) -> GradCheck:
        """Central differences against the backward pass, with this example's dout."""
        return naive.gradient_check(
            self.naive_op,
            self.x,
            self.w,
            self.b,
            stride=self.stride,
            padding=self.padding,
            kernel_size=self.kernel,
            dout=self.dout,
            seed=self.seed,
            dilation=self.dilation,
            flip=self.flip,
        )


# --------------------------------------------------------------------------- building


def build_example(op: str, *, example: str | None = None, **settings: Any) -> LessonExample:
    """The example for op "conv" or "pool" from its settings (`settings.FIELDS[op]`; None: the default).

    Without `example`, x (batch, channels, height, width), w (filters, channels, *kernel), b and
    dout are drawn from `seed`. With `example` (a name from `list_examples(op)`) the arrays come
    from its file, which fixes the settings in `settings.FIXED_BY_EXAMPLE[op]`; the others (and seed,
    for a dout the file does not give) may still be set. Raises UsageError naming the setting
    and the reason.
    """
    if op not in DEFAULTS:
        raise UsageError(f"op must be 'conv' or 'pool', got {op!r}")
    given = {name: value for name, value in settings.items() if value is not None}
    for name in given:
        if name not in DEFAULTS[op]:
            raise UsageError(f"{name} is not a setting of the {op} lesson")
    try:
        seed = SETTINGS["seed"].parse(given.get("seed", DEFAULTS[op]["seed"]))
        rng = np.random.default_rng(seed)
        if example is not None:
            fixed = [name for name in FIXED_BY_EXAMPLE[op] if name in given]
            if fixed:
                raise UsageError(
                    f"{', '.join(fixed)} cannot be combined with example {example!r}: the "
                    "example fixes the input (drop one or the other)"
                )
            return _from_file(op, example, given, rng, seed)
        return _random_example(op, {**DEFAULTS[op], **given}, rng, seed)
    except ValueError as exc:  # Setting.parse / the engine's own checks
        if isinstance(exc, UsageError):
            raise
        raise UsageError(str(exc)) from None


def example_from_settings(settings: LessonSettings) -> LessonExample:
    """`build_example` with a command's settings (`cnn-tui conv` / `cnn-tui pool`)."""
    return build_example(settings.op, **settings.params())


def _random_example(op: str, p: dict[str, Any], rng: np.random.Generator, seed: int):
    height, width, channels = (
        SETTINGS[name].parse(p[name]) for name in ("height", "width", "channels")
    )
    batch = SETTINGS["batch"].parse(p["batch"]) if "batch" in p else 1
    kernel = SETTINGS["kernel"].parse(p["kernel"])
    x = _draw(rng, (batch, channels, height, width))
    if op == "conv":
        filters = SETTINGS["filters"].parse(p["filters"])
        w = _draw(rng, (filters, channels, *kernel))
        b = _draw(rng, (filters,))
        return _finish(op, "random", x, w, b, p, rng, seed)
    return _finish(op, "random", x, None, None, p, rng, seed)


def _finish(
    op: str,
    name: str,
    x: np.ndarray,
    w: np.ndarray | None,
    b: np.ndarray | None,
    p: dict[str, Any],
    rng: np.random.Generator,
    seed: int,
    dout: np.ndarray | None = None,
    title: str = "",
    description: str = "",
    strict_dout: str = "",
) -> LessonExample:
    """Check the settings `p` (every setting of op but the sizes the arrays give) against the
    arrays and the limits, draw dout, build the example. `strict_dout` (the file, as messages
    name it): a dout that does not fit the output is an error (a file's own dout with the
    file's own settings), else it is drawn."""
    lim = LIMITS
    pool_type = None
    dilation, flip, rule = (1, 1), False, ""
    if op == "conv":
        kernel = (int(w.shape[2]), int(w.shape[3]))
        stride = SETTINGS["stride"].parse(p["stride"])
        dilation = SETTINGS["dilation"].parse(p["dilation"])
        flip = SETTINGS["conv_mode"].parse(p["conv_mode"]) == CONV_MODES[1]
        padding = SETTINGS["padding"].parse(p["padding"])
        if isinstance(padding, str):
            rule, padding = padding, resolve_padding(padding, kernel, stride, dilation)
    else:
        kernel = SETTINGS["kernel"].parse(p["kernel"])
        stride = naive.pool_stride(kernel, _parsed("stride", p["stride"]))
        padding = (0, 0)
        pool_type = SETTINGS["pool_type"].parse(p["pool_type"])
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    span = (naive.dilated_size(kernel[0], dilation[0]), naive.dilated_size(kernel[1], dilation[1]))
    if span[0] > padded[0] or span[1] > padded[1]:
        where = "padded input" if op == "conv" else "input"
        fix = "a smaller kernel or more padding" if op == "conv" else "a smaller kernel"
        what = f"kernel {_hw(kernel)}"
        if span != kernel:
            what = f"kernel {_hw(kernel)} with dilation {_hw(dilation)} spans {_hw(span)}: it"
            fix = "a smaller kernel or dilation, or more padding"
        raise UsageError(f"{what} is larger than the {where} {_hw(padded)}: use {fix}")
    out_shape = _output_shape(op, x.shape, w, kernel, stride, padding, dilation)
    candidate = LessonExample(
        op, name, title, description, x, w, b, np.zeros(out_shape), kernel, stride, padding,
        pool_type, seed, dilation, flip, rule,
    )  # fmt: skip
    worst = max(candidate.step_counts().items(), key=lambda item: item[1])
    if worst[1] > lim.max_steps:
        raise UsageError(
            f"this example takes {worst[1]:,} {worst[0].replace('_', ' ')} steps; lessons allow "
            f"at most {lim.max_steps:,}: use a smaller input or kernel, fewer channels or "
            "filters, or a larger stride"
        )
    dout_from = "file"
    if strict_dout and dout is not None and dout.shape != out_shape:
        raise UsageError(
            f"{strict_dout}: dout has shape {dout.shape}, but the output is "
            f"{out_shape}: give dout the output's shape, or leave it out to draw one"
        )
    if dout is None or dout.shape != out_shape:
        # a file's dout fits its own settings; with another stride or kernel, draw one
        dout, dout_from = _draw(rng, out_shape), "seed"
    return LessonExample(
        op, name, title, description, x, w, b, dout, kernel, stride, padding, pool_type, seed,
        dilation, flip, rule, dout_from,
    )  # fmt: skip


def resolve_padding(rule: str, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    """The padding `--padding same|valid` stands for, as PyTorch's padding="same"/"valid".

    valid is no padding. same is P = D·(K − 1)/2 on each side, the lecture's (F − 1)/2 for an
    undilated kernel: with stride 1 the output keeps the input's size. Like PyTorch, same needs
    stride 1; for an even kernel span PyTorch pads one zero more at the bottom/right, which
    the lesson's symmetric padding cannot show, so that is a UsageError too.
    """
    if rule == "valid":
        return (0, 0)
    if stride != (1, 1):
        raise UsageError(
            f"padding same needs stride 1, got stride {_hw(stride)} (PyTorch refuses it too): "
            "use --stride 1 or a number for --padding"
        )
    spans = [naive.dilated_size(k, d) for k, d in zip(kernel, dilation, strict=True)]
    if any(span % 2 == 0 for span in spans):
        raise UsageError(
            f"padding same needs an odd kernel (P = (K−1)/2), got kernel {_hw(kernel)}"
            + (f" with dilation {_hw(dilation)}" if dilation != (1, 1) else "")
            + ": PyTorch pads one zero more at the bottom and right there, which this lesson "
            "does not show; use an odd kernel or a number for --padding"
        )
    padding = ((spans[0] - 1) // 2, (spans[1] - 1) // 2)
    if max(padding) > LIMITS.max_padding:
        raise UsageError(
            f"padding same is {_hw(padding)} here, above the lessons' {LIMITS.max_padding}: "
            "use a smaller kernel or dilation"
        )
    return padding


def _output_shape(
    op, x_shape, w, kernel, stride, padding, dilation=(1, 1)
) -> tuple[int, int, int, int]:
    channels = w.shape[0] if op == "conv" else x_shape[1]
    oh = naive.output_size(x_shape[2], kernel[0], stride[0], padding[0], dilation[0])
    ow = naive.output_size(x_shape[3], kernel[1], stride[1], padding[1], dilation[1])
    return (x_shape[0], channels, oh, ow)


def _draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # one decimal in [-2, 2]; "+ 0.0" turns -0.0 into 0.0 so traces never print "-0"
    return np.round(rng.uniform(-2.0, 2.0, size=shape), 1) + 0.0


def _parsed(name: str, value: Any) -> Any:
    return None if value is None else SETTINGS[name].parse(value)


def _hw(pair: Pair) -> str:
    return f"{pair[0]}x{pair[1]}"


# --------------------------------------------------------------------------- example files

# The arrays of each op's examples: the keys of its files and the edit form's arrays.
ARRAYS: dict[str, tuple[str, ...]] = {"conv": ("x", "w", "b", "dout"), "pool": ("x", "dout")}


def file_keys(op: str) -> tuple[str, ...]:
    """The keys a lesson file of op may hold besides op, title and description: its arrays and
    the settings an example does not fix, under their flag names (stride, mode, type, seed...)."""
    return (*ARRAYS[op], *(SETTINGS[name].flag_name for name in free_with_example(op)))


def list_examples(op: str | None = None) -> list[ExampleInfo]:
    """The conv and pool examples `load_example` loads by name: the shipped ones (assets/lessons/),
    then the user's (`library.user_lessons_dir()`), each sorted by name; only op's when op is
    given. A user file that cannot be opened by name is left out (`cnn-tui conv --list-examples`
    says why). The network lesson's files (op = "net") are listed by
    `cnn_tui.lessons.network.list_net_examples`."""
    return [
        ExampleInfo(info.name, info.op, info.title, info.description, info.source)
        for info in library.list_lessons(op)
        if not info.problem and (info.op == op or (op is None and info.op in DEFAULTS))
    ]


def load_example(name: str, *, seed: int | None = None) -> LessonExample:
    """The example `name` (a name or a path, as `--example` takes it) with its own settings;
    dout from the file unless `seed` is given."""
    path = library.find_lesson(name, None)
    op = read_toml_file(path, "lesson file", library.MAX_LESSON_BYTES).get("op")
    if op not in DEFAULTS:
        op = "conv"  # (build_example says what the file is instead)
    return build_example(str(op), example=name, seed=seed)


def _file_setting(name: str, value: Any, where: str) -> Any:
    """A setting from a lesson file: the type TOML gives it checked first (3 or [3, 2], "same",
    "max": never true, 1.5 or "3"), then its value as the flag's (`Setting.parse`)."""
    setting = SETTINGS[name]
    key = setting.flag_name
    pair = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    whole = isinstance(value, int) and not isinstance(value, bool)
    if setting.kind == "choice":
        ok = isinstance(value, str) and value in setting.choices
        wanted = "one of " + ", ".join(f'"{c}"' for c in setting.choices)
    elif setting.kind == "int":
        ok, wanted = whole, "a whole number"
    else:
        ok = whole or pair or (setting.kind == "padding" and isinstance(value, str))
        wanted = "a whole number or [height, width]" + (
            ' or "same" / "valid"' if setting.kind == "padding" else ""
        )
    if not ok:
        raise UsageError(f"{where}: {key} must be {wanted}, got {library._kind(value)}")
    try:
        return setting.parse(tuple(value) if pair else value)
    except ValueError as exc:
        prefix = "" if str(exc).startswith(key) else f"{key}: "
        raise UsageError(f"{where}: {prefix}{exc}") from None


def _size(name: str, value: int, where: str, what: str) -> None:
    """A size an array gives (x's height, w's filters...) within the setting's limit."""
    try:
        SETTINGS[name].parse(value)
    except ValueError as exc:
        raise UsageError(f"{where}: {what}: {exc}") from None


def _from_file(
    op: str, spec: str, given: dict[str, Any], rng: np.random.Generator, seed: int
) -> LessonExample:
    lesson = library.read_lesson(spec, op, file_keys(op))
    data, where = lesson.data, lesson.where
    # the file's settings under their flag names ("type" for pool_type), then the flags given
    p = {**DEFAULTS[op]}
    for key in free_with_example(op):
        if SETTINGS[key].flag_name in data:
            p[key] = _file_setting(key, data[SETTINGS[key].flag_name], where)
    if "seed" in data and "seed" not in given:  # the file's seed draws what it does not give
        seed = p["seed"]
        rng = np.random.default_rng(seed)
    p.update(given)

    def array(key: str, ndim: int = 4) -> np.ndarray:
        return library.number_array(data, key, where, LIMITS.max_abs, ndim)

    x = library.to_4d(array("x"), "x", where, "(H, W), (C, H, W) or (N, C, H, W)")
    n, c, h, w_ = x.shape
    _size("height", h, where, "x")
    _size("width", w_, where, "x")
    _size("channels", c, where, "x")
    if op == "conv":
        _size("batch", n, where, "x")
    elif n != 1:
        raise UsageError(f"{where}: x holds {n} images; a pool example has one: (C, H, W)")
    dout = array("dout") if "dout" in data else None
    if dout is not None and "seed" in given:
        dout = None  # an explicit seed asks for a fresh upstream gradient
    if dout is not None:
        dout = library.to_4d(dout, "dout", where, "the output's shape")
    # a file's dout must fit the file's own settings; with another stride or kernel, draw one
    own = "" if any(name in given for name in free_with_example(op) if name != "seed") else where
    text = {"title": lesson.title, "description": lesson.description}
    if op == "conv":
        w = library.to_4d(array("w"), "w", where, "(KH, KW), (C, KH, KW) or (F, C, KH, KW)")
        _size("filters", w.shape[0], where, "w")
        _size("kernel", (int(w.shape[2]), int(w.shape[3])), where, "w")
        b = array("b", 1) if "b" in data else np.zeros(w.shape[0])
        if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],):
            raise UsageError(
                f"{where}: x {x.shape}, w {w.shape} and b {b.shape} do not fit: w needs x's "
                "channels C, b one value per filter F"
            )
        return _finish(op, lesson.name, x, w, b, p, rng, seed, dout, **text, strict_dout=own)
    return _finish(op, lesson.name, x, None, None, p, rng, seed, dout, **text, strict_dout=own)


def example_file_values(example: LessonExample, title: str, description: str) -> dict[str, Any]:
    """The keys of a lesson file that reproduces `example` exactly: its arrays (a seed-drawn x,
    w or dout made explicit, in the fewest axes the file format allows) and its settings, under
    the flag names `_from_file` reads. `cnn_tui.fileio.toml_text` writes them."""
    values: dict[str, Any] = {"op": example.op, "title": title, "description": description}
    settings = example.settings()
    for name in free_with_example(example.op):
        if name == "seed":
            continue  # every array is in the file: the seed draws nothing
        value = settings[name]
        if isinstance(value, tuple):
            value = value[0] if value[0] == value[1] else list(value)
        values[SETTINGS[name].flag_name] = value
    for key in ARRAYS[example.op]:
        values[key] = library.fewest_axes(getattr(example, key), 1 if key == "b" else 2)
    return values
