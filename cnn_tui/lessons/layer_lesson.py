"""The batch-normalisation and dropout lessons: their example, their stages, their checks.

A `LayerExample` is a small random batch drawn from a seed (`settings.LAYER_SETTINGS`: sizes, ε,
the momentum, p) with γ, β, the upstream gradient dy and, for dropout, the uniform numbers its
mask is drawn from; or a lesson file's (`--example NAME|PATH.toml`, read by
`cnn_tui.lessons.library.read_lesson`), whose arrays fix the sizes:

    op = "batchnorm"                 # or "dropout"
    title = "..."
    description = "..."
    x = [[...]]                      # (H, W), (C, H, W) or (N, C, H, W)
    gamma = [1.0, 1.0]               # batchnorm, optional (ones): (C,)
    beta = [0.0, 0.0]                # batchnorm, optional (zeros): (C,)
    eps = 1e-5                       # batchnorm, optional
    momentum = 0.1                   # batchnorm, optional
    p = 0.5                          # dropout, optional
    u = [[...]]                      # dropout, optional: x's shape, in [0, 1); mask = u ≥ p
    dout = [[...]]                   # optional: ∂L/∂y (the lesson's dy), x's shape
    seed = 0                         # optional: draws what the file does not give (dout, u)

`layer_file_values` writes an example back as these keys (the edit form's Save as…). `run_layer` runs the naive loops of `cnn_tui.lessons.norm` once, recording
every step, and cuts them into `network.Stage`s the way the network lesson does: for batch
normalisation μ, σ², x̂, y and the running statistics forward, then dβ, dγ, dx̂, dσ², dμ and dx
backward; for dropout the mask, y and dx. Each stage says its rule (the chain rule, going
backward) and where its input came from. `gradient_check` compares the gradients with central
differences of L = Σ y·dy, `compare_with_torch` with PyTorch's autograd (torch imported there
only). Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.lessons import library, norm
from cnn_tui.lessons.naive import StepEvent
from cnn_tui.lessons.network import NetGradCheck, Stage, central_differences
from cnn_tui.lessons.settings import (
    LAYER_DEFAULTS,
    LAYER_FREE_WITH_EXAMPLE,
    LAYER_SETTINGS,
    LIMITS,
    LayerSettings,
)
from cnn_tui.text import one_line

__all__ = [
    "LAYER_ARRAYS",
    "LayerExample",
    "LayerRun",
    "build_layer_example",
    "compare_with_torch",
    "file_keys",
    "gradient_check",
    "layer_example_from_settings",
    "layer_file_values",
    "run_layer",
]

OPS = ("batchnorm", "dropout")

# Every array of the two lessons: its axes (a 4-D array's last two are rows and columns), the
# name the lesson writes and what it is.
_MAP = ("n", "c", "i", "j")
LAYER_ARRAYS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "x": (_MAP, "x", "input"),
    "gamma": (("c",), "γ", "scale, per channel"),
    "beta": (("c",), "β", "shift, per channel"),
    "mu": (("c",), "μ", "mean, per channel"),
    "var": (("c",), "σ²", "variance (biased)"),
    "xhat": (_MAP, "x̂", "normalised"),
    "y": (_MAP, "y", "output"),
    "running_mean_old": (("c",), "running_mean", "before this batch"),
    "running_var_old": (("c",), "running_var", "before this batch"),
    "running_mean": (("c",), "running_mean′", "after this batch"),
    "running_var": (("c",), "running_var′", "after this batch (unbiased σ²)"),
    "dy": (_MAP, "dy", "= ∂L/∂y, upstream"),
    "dbeta": (("c",), "dβ", "∂L/∂β"),
    "dgamma": (("c",), "dγ", "∂L/∂γ"),
    "dxhat": (_MAP, "dx̂", "∂L/∂x̂"),
    "dvar": (("c",), "dσ²", "∂L/∂σ²"),
    "dmu": (("c",), "dμ", "∂L/∂μ"),
    "dx": (_MAP, "dx", "∂L/∂x"),
    "u": (_MAP, "u", "uniform in [0, 1): kept where u ≥ p"),
    "mask": (_MAP, "mask", "1 kept, 0 dropped"),
}

TITLES = {"batchnorm": "batch normalisation", "dropout": "dropout"}

# A lesson file's arrays and the settings it may give (the others are fixed by its arrays).
FILE_ARRAYS = {"batchnorm": ("x", "gamma", "beta", "dout"), "dropout": ("x", "u", "dout")}
FREE_WITH_EXAMPLE = LAYER_FREE_WITH_EXAMPLE
SIZES = ("batch", "channels", "height", "width")


# --------------------------------------------------------------------------- the example


@dataclass(frozen=True, eq=False)
class LayerExample:
    """One lesson's batch and settings. `op` is "batchnorm" or "dropout"."""

    op: str
    seed: int
    x: np.ndarray  # (N, C, H, W)
    dy: np.ndarray  # the upstream gradient ∂L/∂y, the shape of x
    gamma: np.ndarray  # (C,) batch norm
    beta: np.ndarray  # (C,)
    eps: float = 1e-5
    momentum: float = 0.1
    p: float = 0.5
    u: np.ndarray | None = None  # dropout: the uniform numbers of the mask
    name: str = "random"  # the example's name (a lesson file's), "random" for one from the seed
    title: str = ""
    description: str = ""
    seeded: bool = False  # a named example's dy (or u) was drawn from the seed

    @property
    def status_label(self) -> str:
        """What the status line calls it: "seed 3", "const-channel", "mine, seed 4"."""
        return library.example_label(self.name, self.seed, edited=False, seeded=self.seeded)

    @property
    def count(self) -> int:
        """M = N·H·W: the values of one channel, which its mean and variance are taken over."""
        n, _, h, w = self.x.shape
        return int(n * h * w)

    def settings(self) -> dict[str, Any]:
        """The values of the lesson's settings (`settings.LAYER_DEFAULTS[op]`)."""
        n, c, h, w = self.x.shape
        every = {"batch": n, "channels": c, "height": h, "width": w, "eps": self.eps,
                 "momentum": self.momentum, "p": self.p, "seed": self.seed}  # fmt: skip
        return {name: every[name] for name in LAYER_DEFAULTS[self.op]}

    @property
    def mask(self) -> np.ndarray:
        """Dropout's mask: 1 where u ≥ p."""
        assert self.u is not None
        return (self.u >= self.p).astype(np.float64)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    """One-decimal random values in [low, high], so the arithmetic can be followed by hand."""
    return np.round(rng.uniform(low, high, size=shape), 1) + 0.0


def draw_uniform(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The uniform numbers in [0, 1) a dropout mask is drawn from: two decimals, so the lesson
    can show them, from their own stream of the seed (not the one x is drawn from)."""
    rng = np.random.default_rng([seed, 1])
    return np.floor(rng.random(shape) * 100) / 100


def build_layer_example(op: str, *, example: str | None = None, **settings: Any) -> LayerExample:
    """The example of lesson `op` with these settings (the others: `LAYER_DEFAULTS`): drawn from
    the seed, or with `example` (a name or a path, as `--example` takes it) the lesson file's
    arrays, which fix the sizes (`FREE_WITH_EXAMPLE`: the settings that may still be given).
    UsageError (one line) for a setting out of its range or a bad file."""
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    unknown = sorted(set(settings) - set(LAYER_DEFAULTS[op]))
    if unknown:
        raise UsageError(f"{op} has no setting {unknown[0]!r}")
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        p = {name: LAYER_SETTINGS[name].parse(value)
             for name, value in {**LAYER_DEFAULTS[op], **given}.items()}  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if example is not None:
        fixed = [name for name in SIZES if name in given]
        if fixed:
            raise UsageError(
                f"--{fixed[0]} cannot be combined with --example {one_line(example)}: "
                "the example's arrays fix the sizes (drop one or the other)"
            )
        return _from_file(op, example, {name: p[name] for name in given})
    shape = (p["batch"], p["channels"], p["height"], p["width"])
    _check_count(op, shape, "")
    rng = np.random.default_rng(p["seed"])
    x = _draw(rng, shape, -2.0, 2.0)
    channels = shape[1]
    gamma = _draw(rng, (channels,), 0.5, 1.5)
    beta = _draw(rng, (channels,), -1.0, 1.0)
    dy = _draw(rng, shape, -2.0, 2.0)
    if op == "batchnorm":
        return LayerExample(op, p["seed"], x, dy, gamma, beta, eps=p["eps"],
                            momentum=p["momentum"])  # fmt: skip
    u = draw_uniform(p["seed"], shape)
    return LayerExample(op, p["seed"], x, dy, gamma, beta, p=p["p"], u=u)


def _check_count(op: str, shape: tuple[int, ...], where: str) -> None:
    n, _, h, w = shape
    if op == "batchnorm" and n * h * w < 2:
        fix = "give x more values per channel" if where else "raise --batch, --height or --width"
        raise UsageError(
            f"{where}{': ' if where else ''}batch normalisation needs at least 2 values per "
            f"channel (batch·height·width ≥ 2): {fix}"
        )


def file_keys(op: str) -> tuple[str, ...]:
    """The keys a lesson file of `op` may hold besides op, title and description."""
    return (*FILE_ARRAYS[op], *FREE_WITH_EXAMPLE[op])


def _file_setting(name: str, value: Any, where: str) -> Any:
    """A setting from a lesson file: a number of the right type (a seed whole), then checked
    as its flag is (`LAYER_SETTINGS[name].parse`)."""
    data = {name: value}
    number = (library.int_value if name == "seed" else library.float_value)(data, name, where)
    try:
        return LAYER_SETTINGS[name].parse(number)
    except ValueError as exc:
        prefix = "" if str(exc).startswith(name) else f"{name}: "
        raise UsageError(f"{where}: {prefix}{exc}") from None


def _from_file(op: str, spec: str, given: dict[str, Any]) -> LayerExample:
    lesson = library.read_lesson(spec, op, file_keys(op), command=op)
    data, where = lesson.data, lesson.where
    p = {name: LAYER_SETTINGS[name].parse(LAYER_DEFAULTS[op][name])
         for name in FREE_WITH_EXAMPLE[op]}  # fmt: skip
    for name in FREE_WITH_EXAMPLE[op]:
        if name in data:
            p[name] = _file_setting(name, data[name], where)
    p.update(given)

    def array(key: str, ndim: int = 4) -> np.ndarray:
        return library.number_array(data, key, where, LIMITS.max_abs, ndim)

    x = library.to_4d(array("x"), "x", where, "(H, W), (C, H, W) or (N, C, H, W)")
    for name, size in zip(SIZES, x.shape, strict=True):
        try:
            LAYER_SETTINGS[name].parse(size)
        except ValueError as exc:
            raise UsageError(f"{where}: x: {exc}") from None
    _check_count(op, x.shape, where)
    channels = x.shape[1]

    def like_x(key: str) -> np.ndarray | None:
        """An array of x's shape from the file; None when it gives none or the seed was given
        (an explicit seed draws a fresh one)."""
        if key not in data or "seed" in given:
            return None
        value = library.to_4d(array(key), key, where, "x's shape")
        if value.shape != x.shape:
            raise UsageError(f"{where}: {key} {value.shape} must have x's shape {x.shape}")
        return value

    def per_channel(key: str, default: float) -> np.ndarray:
        if key not in data:
            return np.full(channels, default)
        value = array(key, 1)
        if value.shape != (channels,):
            raise UsageError(
                f"{where}: {key} holds {value.size} values; it needs one per channel ({channels})"
            )
        return value

    seed = p["seed"]
    dy = like_x("dout")
    seeded = dy is None
    if dy is None:
        dy = _draw(np.random.default_rng(seed), x.shape, -2.0, 2.0)
    text = {"name": lesson.name, "title": lesson.title, "description": lesson.description}
    if op == "batchnorm":
        gamma, beta = per_channel("gamma", 1.0), per_channel("beta", 0.0)
        return LayerExample(op, seed, x, dy, gamma, beta, eps=p["eps"], momentum=p["momentum"],
                            seeded=seeded, **text)  # fmt: skip
    u = like_x("u")
    if u is not None and (np.any(u < 0) or np.any(u >= 1)):
        raise UsageError(f"{where}: u: values must be in [0, 1) (the mask keeps u ≥ p)")
    if u is None:
        seeded = True
        u = draw_uniform(seed, x.shape)
    ones, zeros = np.ones(channels), np.zeros(channels)
    return LayerExample(op, seed, x, dy, ones, zeros, p=p["p"], u=u, seeded=seeded, **text)


def layer_file_values(example: LayerExample, title: str, description: str) -> dict[str, Any]:
    """The keys of a lesson file that reproduces `example` exactly: its arrays (seed-drawn ones
    made explicit, in the fewest axes the format allows) and its settings; `fileio.toml_text`
    writes them."""
    values: dict[str, Any] = {"op": example.op, "title": title, "description": description}
    settings = example.settings()
    for name in FREE_WITH_EXAMPLE[example.op]:
        if name != "seed":  # every array is in the file: the seed draws nothing
            values[name] = settings[name]
    arrays = {"x": example.x, "gamma": example.gamma, "beta": example.beta, "u": example.u,
              "dout": example.dy}  # fmt: skip
    for key in FILE_ARRAYS[example.op]:
        values[key] = library.fewest_axes(
            np.asarray(arrays[key]), 1 if key in ("gamma", "beta") else 2
        )
    return values


def layer_example_from_settings(settings: LayerSettings) -> LayerExample:
    """`build_layer_example` with the settings of `cnn-tui batchnorm|dropout` (and its
    `--example`)."""
    return build_layer_example(settings.op, example=settings.example, **settings.values)


# --------------------------------------------------------------------------- the run


@dataclass
class LayerRun:
    """Everything one lesson shows: every array by name (`LAYER_ARRAYS`) and the stages."""

    example: LayerExample
    values: dict[str, np.ndarray]
    stages: list[Stage]


def _collect(sink: list[StepEvent]) -> Callable[[StepEvent], None]:
    return sink.append


def _by_phase(events: list[StepEvent]) -> dict[str, list[StepEvent]]:
    phases: dict[str, list[StepEvent]] = {}
    for e in events:
        phases.setdefault(e.phase, []).append(e)
    return phases


def _num(value: float) -> str:
    """A number in a sentence: 4 significant digits, ASCII "-" as the minus like the grids'."""
    text = f"{value:.4g}"
    return text if text != "-0" else "0"


def run_layer(example: LayerExample) -> LayerRun:
    """Run the lesson's naive loops once, recording every step, cut into stages."""
    if example.op == "batchnorm":
        return _run_batchnorm(example)
    return _run_dropout(example)


def _run_batchnorm(example: LayerExample) -> LayerRun:
    channels = example.x.shape[1]
    v: dict[str, np.ndarray] = {"x": example.x, "gamma": example.gamma, "beta": example.beta,
                                "dy": example.dy}  # fmt: skip
    v["running_mean_old"] = np.zeros(channels)  # BatchNorm2d's start: mean 0, variance 1
    v["running_var_old"] = np.ones(channels)
    m, eps, mom = example.count, example.eps, example.momentum
    stages: list[Stage] = []

    def stage(key: str, direction: str, part: str, rule: str, source: str,
              reads: tuple[str, ...], writes: tuple[str, ...], events: list[StepEvent],
              running: str = "", note: str = "") -> None:  # fmt: skip
        stages.append(Stage(key, direction, "batch norm", part, rule, source, reads, writes,
                            events, running, note))  # fmt: skip

    events: list[StepEvent] = []
    v["y"], cache = norm.batchnorm2d_forward(example.x, example.gamma, example.beta, eps,
                                             _collect(events))  # fmt: skip
    v["mu"], v["var"], v["xhat"] = cache.mu, cache.var, cache.xhat
    phases = _by_phase(events)
    n, _, h, w = example.x.shape
    count = f"M = N·H·W = {n}·{h}·{w} = {m}"
    stage("bn.mean", "forward", "μ",
          f"μ[c] = (1/M) Σ_n,i,j x[n,c,i,j]: the channel's mean over the batch, {count}",
          f"input: the batch x {_dims(example.x)}, training mode (the batch's own statistics)",
          ("x",), ("mu",), phases["mean"], running="Σ x/M",
          note="one mean per channel, over every image and position")  # fmt: skip
    stage("bn.variance", "forward", "σ²",
          "σ²[c] = (1/M) Σ_n,i,j (x[n,c,i,j] − μ[c])²: biased (divided by M), as BatchNorm2d "
          "normalises", "input: x and μ from the step before",
          ("x", "mu"), ("var",), phases["variance"], running="Σ (x − μ)²/M")  # fmt: skip
    stage("bn.normalise", "forward", "x̂",
          f"x̂ = (x − μ[c]) / √(σ²[c] + ε), ε = {eps:g}: every channel now has mean 0 and "
          "variance 1 (ε keeps the division safe)",
          "input: x, μ and σ²", ("x", "mu", "var"), ("xhat",), phases["normalise"],
          note="each value alone, with its channel's μ and σ²")  # fmt: skip
    stage("bn.scale_shift", "forward", "y",
          "y = γ[c]·x̂ + β[c]: the learned scale and shift (γ = 1, β = 0 would keep x̂)",
          "input: x̂; γ and β are the layer's weights", ("gamma", "xhat", "beta"), ("y",),
          phases["scale_shift"], note="each value alone, with its channel's γ and β")  # fmt: skip
    events = []
    v["running_mean"], v["running_var"] = norm.batchnorm2d_running_update(
        v["running_mean_old"], v["running_var_old"], cache, mom, _collect(events)
    )
    stage("bn.running", "forward", "running stats",
          f"running_mean ← (1−m)·running_mean + m·μ; running_var ← (1−m)·running_var + "
          f"m·σ²·M/(M−1), m = {mom:g}: the unbiased variance, M/(M−1) = {m}/{m - 1}",
          "not used in training: eval mode (model.eval()) normalises with these instead of the "
          "batch's μ and σ²", ("running_mean_old", "running_var_old", "mu", "var"),
          ("running_mean", "running_var"), events)  # fmt: skip

    events = []
    v["dx"], v["dgamma"], v["dbeta"] = norm.batchnorm2d_backward(example.dy, cache,
                                                                 _collect(events))  # fmt: skip
    phases = _by_phase(events)
    shapes = {"dxhat": example.x.shape, "dvar": (channels,), "dmu": (channels,)}
    for name, shape in shapes.items():  # the chain rule's intermediate gradients, from the steps
        v[name] = np.zeros(shape)
    for e in events:
        if e.target in shapes:
            v[e.target][e.target_index] = e.after
    came = _upstream(example)
    stage("bn.grad_beta", "backward", "dβ",
          "∂L/∂β[c] = Σ_n,i,j ∂L/∂y·∂y/∂β, with ∂y/∂β = 1: the sum of dy over the channel",
          came, ("dy",), ("dbeta",), phases["grad_beta"], running="Σ dy")  # fmt: skip
    stage("bn.grad_gamma", "backward", "dγ",
          "∂L/∂γ[c] = Σ_n,i,j ∂L/∂y·∂y/∂γ, with ∂y/∂γ = x̂: Σ dy·x̂",
          came, ("dy", "xhat"), ("dgamma",), phases["grad_gamma"], running="Σ dy·x̂")  # fmt: skip
    stage("bn.grad_xhat", "backward", "dx̂",
          "∂L/∂x̂ = ∂L/∂y·∂y/∂x̂, with ∂y/∂x̂ = γ[c]: dx̂ = dy·γ, value by value",
          came, ("dy", "gamma"), ("dxhat",), phases["grad_xhat"])  # fmt: skip
    stage("bn.grad_var", "backward", "dσ²",
          "∂L/∂σ²[c] = Σ ∂L/∂x̂·∂x̂/∂σ², with ∂x̂/∂σ² = (x − μ)·(−½)(σ² + ε)^(−3/2): σ² divides "
          "every x̂ of the channel", "dx̂ from the step before; x, μ, σ² from the forward pass",
          ("dxhat", "x", "mu", "var"), ("dvar",), phases["grad_var"],
          running="Σ dx̂·(x − μ)·(−½)(σ²+ε)^(−3/2)")  # fmt: skip
    stage("bn.grad_mean", "backward", "dμ",
          "∂L/∂μ[c] = Σ ∂L/∂x̂·∂x̂/∂μ + ∂L/∂σ²·∂σ²/∂μ, with ∂x̂/∂μ = −1/√(σ² + ε) and "
          "∂σ²/∂μ = −(2/M)·Σ (x − μ), which is 0: μ is the mean",
          "dx̂ and dσ² from the steps before", ("dxhat", "var", "dvar", "x", "mu"), ("dmu",),
          phases["grad_mean"], running="Σ −dx̂/√(σ²+ε) + dσ²·(−2)(x − μ)/M")  # fmt: skip
    stage("bn.grad_input", "backward", "dx",
          "∂L/∂x = ∂L/∂x̂·∂x̂/∂x + ∂L/∂σ²·∂σ²/∂x + ∂L/∂μ·∂μ/∂x, with ∂x̂/∂x = 1/√(σ² + ε), "
          "∂σ²/∂x = 2(x − μ)/M, ∂μ/∂x = 1/M: x reaches L three ways",
          "dx̂, dσ² and dμ from the steps before; dx goes on to the layer below",
          ("dxhat", "var", "dvar", "x", "mu", "dmu"), ("dx",), phases["grad_input"],
          note="three paths from x to L, added")  # fmt: skip
    return LayerRun(example, v, stages)


def _run_dropout(example: LayerExample) -> LayerRun:
    assert example.u is not None
    p = example.p
    keep = 1 / (1 - p)
    v: dict[str, np.ndarray] = {"x": example.x, "dy": example.dy, "u": example.u}
    stages: list[Stage] = []
    events: list[StepEvent] = []
    v["mask"] = norm.dropout_mask(example.u, p, _collect(events))
    kept = int(v["mask"].sum())
    stages.append(Stage(
        "dropout.mask", "forward", "dropout", "mask",
        f"mask = 1 where u ≥ p, else 0, p = {p:g}: each value is kept with probability "
        f"1 − p = {_num(1 - p)}",
        f"u: uniform numbers {_origin(example, 'u')}; kept {kept} of "
        f"{v['mask'].size} here", ("u",), ("mask",), events,
        note="a new mask for every batch in training"))  # fmt: skip
    events = []
    v["y"], cache = norm.dropout_forward(example.x, v["mask"], p, _collect(events))
    stages.append(Stage(
        "dropout.forward", "forward", "dropout", "y",
        f"y = x·mask/(1 − p) = x·mask·{_num(keep)}: kept values are scaled up so y has x's "
        "expected value",
        "training mode; in eval mode (model.eval()) dropout is the identity: y = x, nothing "
        "dropped or scaled", ("x", "mask"), ("y",), events,
        note="each value alone: kept and scaled up, or dropped to 0"))  # fmt: skip
    events = []
    v["dx"] = norm.dropout_backward(example.dy, cache, _collect(events))
    stages.append(Stage(
        "dropout.grad_input", "backward", "dropout", "dx",
        f"∂L/∂x = ∂L/∂y·∂y/∂x, with ∂y/∂x = mask/(1 − p): dx = dy·mask·{_num(keep)}; a dropped "
        "value gets no gradient",
        _upstream(example),
        ("dy", "mask"), ("dx",), events,
        note="the gradient flows back only where the value was kept"))  # fmt: skip
    return LayerRun(example, v, stages)


def _origin(example: LayerExample, what: str) -> str:
    """Where an array the lesson does not compute came from: the seed or the lesson file."""
    if example.name == "random" or (example.seeded and what in ("dy", "u")):
        return f"drawn from the seed ({example.seed})"
    return "from the lesson file"


def _upstream(example: LayerExample) -> str:
    return f"dy = ∂L/∂y, the upstream gradient, {_origin(example, 'dy')}: L = Σ y·dy"


def _dims(array: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in array.shape) + ")"


# --------------------------------------------------------------------------- checks


def _loss(example: LayerExample, arrays: Mapping[str, np.ndarray]) -> float:
    """L = Σ y·dy, the loss whose gradient with respect to y is dy (no steps recorded)."""
    if example.op == "batchnorm":
        y, _ = norm.batchnorm2d_forward(arrays["x"], arrays["gamma"], arrays["beta"], example.eps)
    else:
        y, _ = norm.dropout_forward(arrays["x"], example.mask, example.p)
    return float(np.sum(y * example.dy))


def gradient_check(
    example: LayerExample, run: LayerRun | None = None, eps: float = 1e-6
) -> NetGradCheck:
    """dx (and dγ, dβ) against (L(v + eps) − L(v − eps)) / (2·eps) for every entry v, with
    L = Σ y·dy; each array's error relative to its largest gradient (`naive.GradCheck`'s
    measure). Dropout keeps its mask fixed: the mask is drawn, not differentiated."""
    run = run if run is not None else run_layer(example)
    names = ("x", "gamma", "beta") if example.op == "batchnorm" else ("x",)
    arrays = {name: np.array(getattr(example, name), dtype=np.float64) for name in names}
    gradients = {name: run.values[f"d{name}"] for name in names}
    return central_differences(arrays, gradients, lambda: _loss(example, arrays), eps)


def compare_with_torch(example: LayerExample, run: LayerRun | None = None) -> float:
    """Largest |naive − PyTorch| over y, every gradient and (batch norm) the running statistics:
    `F.batch_norm(training=True)` with autograd; dropout's mask applied by hand with autograd
    (PyTorch draws its own masks from its own generator). Imports torch: call it from a worker
    thread."""
    import torch
    import torch.nn.functional as F

    run = run if run is not None else run_layer(example)
    v = run.values
    x = torch.tensor(example.x, dtype=torch.float64, requires_grad=True)
    dy = torch.tensor(example.dy, dtype=torch.float64)
    pairs: list[tuple[Any, Any]] = []
    if example.op == "batchnorm":
        gamma = torch.tensor(example.gamma, dtype=torch.float64, requires_grad=True)
        beta = torch.tensor(example.beta, dtype=torch.float64, requires_grad=True)
        running_mean = torch.tensor(v["running_mean_old"], dtype=torch.float64)
        running_var = torch.tensor(v["running_var_old"], dtype=torch.float64)
        y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True,
                         momentum=example.momentum, eps=example.eps)  # fmt: skip
        (y * dy).sum().backward()
        pairs += [(v["dgamma"], gamma.grad.numpy()), (v["dbeta"], beta.grad.numpy())]
        pairs += [(v["running_mean"], running_mean.numpy()),
                  (v["running_var"], running_var.numpy())]  # fmt: skip
    else:
        mask = torch.tensor(example.mask, dtype=torch.float64)
        y = x * mask / (1 - example.p)
        (y * dy).sum().backward()
    pairs += [(v["y"], y.detach().numpy()), (v["dx"], x.grad.numpy())]
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)


def describe(example: LayerExample) -> str:
    """One line: the lesson and its sizes."""
    n, c, h, w = example.x.shape
    shape = f"x ({n}, {c}, {h}, {w})"
    if example.op == "batchnorm":
        return (
            f"batch normalisation (training): {shape}, M = {example.count} values per channel, "
            f"ε = {example.eps:g}, momentum {example.momentum:g}"
        )
    return f"dropout (training): {shape}, p = {example.p:g}, keep 1 − p = {_num(1 - example.p)}"
