"""How the lessons write numbers, array cells and one step of the naive loops, as text.

One writer for the conv, pool and network lessons, on screen and in the `--no-ui` traces: each
array's values are written by its `number_format.NumberFormat` (the grids, the step panel, the
trace), `fmt_num` writes a number that belongs to no array, `array_ref` names a cell
(`x_pad[c=1, 2,3]`: the sample, channel and filter axes only where they have more than one
entry), and `step_text` writes one `StepEvent` as its formula and its numbers; a `StepStyle`
says only how the values are written (the trace's terse ASCII, the screen's explained steps).
Nothing here imports Textual or torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_tui.lessons.number_format import NumberFormat

# What the leading axes of each array mean, per op family; the last two axes are rows, columns.
_AXES_CONV = {
    "x": ("n", "c"),
    "x_pad": ("n", "c"),
    "dx": ("n", "c"),
    "dx_pad": ("n", "c"),
    "w": ("f", "c"),
    "dw": ("f", "c"),
    "out": ("n", "f"),
    "dout": ("n", "f"),
    "dout_up": ("n", "f"),
    "b": ("f",),
    "db": ("f",),
}
_AXES_POOL = {name: ("n", "c") for name in ("x", "dx", "out", "dout")}


def axes_of(op: str, name: str, ndim: int) -> tuple[str | None, ...]:
    """Names of the leading axes of array `name` (e.g. ("n", "c") for x_pad); None if unknown."""
    table = _AXES_CONV if op == "conv2d" else _AXES_POOL
    axes = table.get(name, ())
    lead = max(ndim - 2, 0) if ndim != 1 else 0
    if ndim == 1:
        return axes if len(axes) == 1 else (None,)
    return tuple(axes[k] if k < len(axes) else None for k in range(lead))


# --------------------------------------------------------------------------- number text


def fmt_num(value: float) -> str:
    """A number that belongs to no array (a step count, a setting): up to 3 decimals, trailing
    zeros dropped. The values of an array are written by the array's `NumberFormat`
    (`number_format.array_formats`), in its grid, the step text and the trace alike.

    "·" is a cell not computed yet; the minus sign is ASCII "-", as in the arrays.
    """
    if math.isnan(value):
        return "·"
    if math.isinf(value):
        return "-∞" if value < 0 else "∞"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text or "0"


def fmt_factor(value: float, first: bool = False, text: str | None = None) -> str:
    """A factor of a product, negative values in parentheses unless first: -0.4·(-1.3).

    `text` is the value already written (by its array's format)."""
    text = fmt_num(value) if text is None else text
    return f"({text})" if text.startswith("-") and not first else text


# --------------------------------------------------------------------------- step text


def array_ref(
    op: str, shapes: Mapping[str, tuple[int, ...]], name: str, index: tuple[int, ...]
) -> str:
    """An array reference as the lesson screen and the trace write it: `x_pad[c=1, 2,3]`.

    The leading axes (sample, channel, filter) are named, and left out when that axis has
    size 1, so the common single-image single-channel lesson reads `x_pad[2,3]`.
    """
    if not index:
        return name
    shape = shapes.get(name)
    axes = axes_of(op, name, len(index))
    if len(index) == 1:
        return f"{name}[{index[0]}]"
    lead = [
        f"{axis}={value}"
        for axis, value, size in zip(axes, index, shape or (), strict=False)
        if axis is not None and size > 1
    ]
    spatial = ",".join(str(v) for v in index[len(axes) :])
    return f"{name}[{', '.join([*lead, spatial])}]" if lead else f"{name}[{spatial}]"


def plane_header(
    shown: str, axes: Sequence[str | None], lead: Sequence[int], rows: int, cols: int
) -> str:
    """The heading of one whole 2-D plane of an array, as the trace writes it above its grid:
    `x_pad[n=0, c=0]  (10×10)`, `w[f=0, c=0]  (3×3)`. Every leading axis is named, even one of
    size 1, so the heading never reads as a single cell (`w[0,0]` is one tap of the kernel);
    an axis of no known name is written as its bare index."""
    named = [
        f"{axis}={value}" if axis else str(value)
        for axis, value in zip(list(axes) + [None] * len(lead), lead, strict=False)
    ]
    index = f"[{', '.join(named)}]" if named else ""
    return f"{shown}{index}  ({rows}×{cols})"


def format_cell(formats: Mapping[str, NumberFormat]) -> Callable[[str, float], str]:
    """A `StepStyle.cell`: a value of array `name` in that array's format (`fmt_num` for a
    number of no array)."""

    def cell(name: str, value: float) -> str:
        number_format = formats.get(name)
        return fmt_num(value) if number_format is None else number_format(value)

    return cell


def scale_text(value: float) -> str:
    """The 1/(kh·kw) factor of average pooling as a fraction: 1/4."""
    return f"1/{round(1 / value)}" if value else "0"


@dataclass(frozen=True)
class StepStyle:
    """How `step_text` writes the values of a step; the sentence itself is `step_text`'s alone.

    The trace writes every cell with its full index (one line per step, so the old value is on
    the line before); the lesson screen names the leading axes, and with `explain` spells out
    the old value, the product and a note in brackets, because it shows one step at a time.
    Both write each value with its array's format (`cell`), so they print the same digits.
    """

    ref: Callable[[str, tuple[int, ...]], str]  # an array cell: "x_pad[1,2]"
    num: Callable[[float], str]  # a number of no array: "-0.52"
    factor: Callable[..., str]  # a factor of a product (`fmt_factor`): "(-1.3)"
    scale: Callable[[float], str] = scale_text  # average pooling's 1/(kh·kw)
    explain: bool = False
    route_source: str = "x"  # the array whose max a route step sends the gradient to
    # a value of array `name` as that array's format writes it (`array_formats`); None: `num`
    cell: Callable[[str, float], str] | None = None


def step_text(e: Any, style: StepStyle) -> tuple[str, str]:
    """One step of the naive loops as (formula, numbers), e.g.
    ("dw[0,0] += x_pad[1,0]·dout[1,0]", "= 0.4·(−1.3) → −0.83").

    Both the `--no-ui` trace (`trace.step_line`: the two joined) and the lesson screen's step
    panel (`Replay.step_lines`: one per line) write a step with this function.
    """
    ref, num, factor = style.ref, style.num, style.factor
    cell = style.cell or (lambda name, value: num(value))
    target = ref(e.target, e.target_index)
    before, after = cell(e.target, e.before), cell(e.target, e.after)
    names = [
        style.scale(o.value) if o.name == "scale" else ref(o.name, o.index) for o in e.operands
    ]
    values = [o.value for o in e.operands]
    shown = [cell(o.name, o.value) for o in e.operands]
    note = ""
    if e.kind == "bias":
        formula, numbers = f"{target} = {names[0]}", f"= {shown[0]}"
        formula_note = "(start from the bias)"
    elif e.kind == "mac":
        terms = "·".join(
            names[k] if o.name == "scale" else factor(o.value, k == 0, shown[k])
            for k, o in enumerate(e.operands)
        )
        formula, numbers = f"{target} += {'·'.join(names)}", f"= {terms}"
        if style.explain:
            product = math.prod(values)
            added = factor(product, False, cell(e.target, product))
            numbers += f" = {cell(e.target, product)}   {before} + {added}"
        numbers += f" → {after}"
        formula_note = ""
    elif e.kind in ("add", "route"):
        formula = f"{target} += {names[0]}"
        added = f"{before} + {factor(values[0], False, shown[0])}" if style.explain else shown[0]
        numbers = f"= {added} → {after}"
        source = ref(style.route_source, e.target_index)
        formula_note = f"({source} was the max)" if e.kind == "route" else ""
    elif e.kind == "compare":
        running = target if math.isfinite(e.before) else before  # the first: max(−∞, x)
        formula = f"{target} = max({running}, {names[0]})"
        numbers = f"= max({before}, {shown[0]}) → {after}"
        formula_note = ""
        note = "(new max)" if e.after != e.before else "(max unchanged)"
    elif e.kind in _LAYER_KINDS:
        formula, numbers, formula_note, note = _layer_step_text(e, style, target, names, shown)
    elif e.kind in _ADAM_KINDS:
        formula, numbers, formula_note, note = _adam_step_text(e, style, target, names, shown)
    else:  # a kind this text does not know: still show what changed
        formula, numbers = f"{target}: {e.kind} with {', '.join(names)}", f"{before} → {after}"
        formula_note = ""
    if style.explain:
        formula += f"   {formula_note}" if formula_note else ""
        numbers += f"   {note}" if note else ""
    return formula, numbers


_LAYER_KINDS = ("relu", "mask", "copy", "exp", "div", "nll", "sub", "sgd")
_ADAM_KINDS = ("adam_m", "adam_v", "adam_mhat", "adam_vhat", "adam")


def _layer_step_text(
    e: Any, style: StepStyle, target: str, names: list[str], shown: list[str]
) -> tuple[str, str, str, str]:
    """(formula, numbers, formula note, numbers note) of a network layer's step (`step_text`).

    `shown` are the operands as their arrays write them; a number worked out on the way (a
    difference, a product) is written as the array it belongs to writes its values."""
    factor = style.factor
    cell = style.cell or (lambda name, value: style.num(value))
    values = [o.value for o in e.operands]
    after = cell(e.target, e.after)
    scaled = bool(e.operands) and e.operands[-1].name == "scale"  # a batch of N: the mean
    scale_name = names[-1] if scaled else ""
    formula_note = note = ""
    if e.kind == "relu":
        formula = f"{target} = max(0, {names[0]})"
        numbers = f"= max(0, {shown[0]}) → {after}"
        note = "(positive: passes)" if values[0] > 0 else "(not positive: set to 0)"
    elif e.kind == "mask":
        passes = values[1] > 0
        formula = f"{target} = {names[0]} where {names[1]} > 0, else 0"
        numbers = f"{names[1]} = {shown[1]} {'>' if passes else '≤'} 0 → {after}"
        note = f"(passes {names[0]} = {shown[0]})" if passes else "(blocked)"
    elif e.kind == "copy":
        formula, numbers = f"{target} = {names[0]}", f"= {after}"
        formula_note = "(the same number, moved: no arithmetic)"
    elif e.kind == "exp":
        formula = f"{target} = exp({names[0]} − {names[1]})"
        numbers = f"= exp({shown[0]} − {factor(values[1], False, shown[1])})"
        if style.explain:
            numbers += f" = exp({cell(e.operands[0].name, values[0] - values[1])})"
        numbers += f" → {after}"
        formula_note = "(minus the row's max: same probabilities, no overflow)"
    elif e.kind == "div":
        formula = f"{target} = {names[0]} / {names[1]}"
        numbers = f"= {shown[0]} / {shown[1]} → {after}"
    elif e.kind == "nll":
        if scaled:
            formula = f"{target} += −log({names[0]})·{scale_name}"
            before = cell(e.target, e.before)
            numbers = f"= {before} + (−log({shown[0]}))·{scale_name} → {after}"
        else:
            formula = f"{target} = −log({names[0]})"
            numbers = f"= −log({shown[0]}) → {after}"
        formula_note = "(the probability of the true class)"
    elif e.kind == "sub":
        if scaled:
            formula = f"{target} = ({names[0]} − {names[1]})·{scale_name}"
            numbers = f"= ({shown[0]} − {shown[1]})·{scale_name} → {after}"
        else:
            formula = f"{target} = {names[0]} − {names[1]}"
            numbers = f"= {shown[0]} − {shown[1]} → {after}"
        note = "(the true class: y = 1)" if values[1] else "(another class: y = 0)"
    else:  # sgd
        formula = f"{target} = {names[0]} − {names[2]}·{names[1]}"
        numbers = f"= {shown[0]} − {shown[2]}·{factor(values[1], False, shown[1])}"
        if style.explain:
            step = values[2] * values[1]
            numbers += f" = {shown[0]} − {factor(step, False, cell(e.target, step))}"
        numbers += f" → {after}"
    return formula, numbers, formula_note, note


def _adam_step_text(
    e: Any, style: StepStyle, target: str, names: list[str], shown: list[str]
) -> tuple[str, str, str, str]:
    """(formula, numbers, formula note, numbers note) of one step of Adam (`naive.adam_update`).

    `shown` are the operands as their arrays write them (v and v̂, far below 0.001, in their
    own formats: more decimals or scientific notation, never 0.000)."""
    factor = style.factor
    cell = style.cell or (lambda name, value: style.num(value))
    values = [o.value for o in e.operands]
    after = cell(e.target, e.after)
    formula_note = note = ""
    if e.kind in ("adam_m", "adam_v"):
        old, grad, beta = names
        square = "²" if e.kind == "adam_v" else ""
        g = factor(values[1], False, shown[1]) + square
        formula = f"{target} = {beta}·{old} + (1 − {beta})·{grad}{square}"
        old_value = factor(values[0], False, shown[0])
        numbers = f"= {shown[2]}·{old_value} + {style.num(1 - values[2])}·{g}"
        formula_note = (
            "(the running mean of the gradient)"
            if e.kind == "adam_m"
            else "(the running mean of the squared gradient)"
        )
    elif e.kind in ("adam_mhat", "adam_vhat"):
        running, beta, t = names
        formula = f"{target} = {running} / (1 − {beta}^{t})"
        numbers = f"= {shown[0]} / (1 − {shown[1]}^{shown[2]})"
        if style.explain:
            numbers += f" = {shown[0]} / {style.num(1 - values[1] ** values[2])}"
        formula_note = "(bias correction: the means started at 0)"
    else:  # adam: the parameter's step
        param, m_hat, v_hat, lr, eps = names
        formula = f"{target} = {param} − {lr}·{m_hat} / (√{v_hat} + {eps})"
        numbers = (
            f"= {shown[0]} − {shown[3]}·{factor(values[1], False, shown[1])} / "
            f"(√{shown[2]} + {values[4]:g})"
        )
        if style.explain:
            step = values[0] - e.after
            numbers += f" = {shown[0]} − {factor(step, False, cell(e.target, step))}"
        if values[2] > 0:
            size = values[3] * abs(values[1]) / (math.sqrt(values[2]) + values[4])
            note = f"(step size {cell(e.target, size)} = α·|m̂|/(√v̂ + ε))"
    return formula, f"{numbers} → {after}", formula_note, note
