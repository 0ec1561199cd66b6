"""One number format per array: how every value of a lesson array is written, wherever it is.

A lesson writes the same value in several places: the array's grid, the step's formula (as an
operand or as the result), the running sum, the rules' "here" line and the `--no-ui` trace.
`choose_format` looks at every value an array takes during the lesson (its inputs, each step's
result and its final values) and picks one `NumberFormat` for it, so `0.855` is `0.855` in the
grid and in the formula, and a grid's column width never changes while stepping.

The rule, in order:

- an exact zero is written `0` (rounding noise below 1e-12 of the array's scale counts as zero),
  so `0` always means zero, and a blocked ReLU cell or a padding zero stands out;
- the fewest decimals, 0 to 3, that show every value exactly: integers as integers (`3`), the
  one-decimal random inputs with one decimal (`-1.3`), hand-written quarters with two (`0.25`);
- otherwise (computed values: a softmax, an average of nine) 3 decimals (`0.222`, `0.795`), or
  as many as give the largest value three significant digits (`0.00244`), and more, up to
  `MAX_DECIMALS`, when the array holds a value that those would round to zero;
- a nonzero value still too small for that is written with two significant digits in scientific
  notation (`3.1e-07`): a value that is not zero is never written `0.000`; an array of small
  values (every one below 1e-3, `SMALL`) is written so as a whole (`-4.8e-07` next to
  `-3.0e-06`, not next to `-0.000003`): one array, one notation. (A lone tiny value among
  large ones, a weight an Adam step brings to 5e-09, stays `5.2e-09` beside `0.400`.)
- a probability (`probability_format`) gets decimals enough that a value below 1 is never
  written `1.000` (`0.9995`);
- a value that spans orders of magnitude over a run, the loss, is written with three
  significant digits, in scientific notation below 1e-3 (`significant_format`: `0.795`,
  `0.0542`, `1.70e-07`), so a loss of 1.7e-07 is neither `0` nor `0.000000`.
- then the operands: an array read by a step whose printed result it must reproduce gets more
  decimals where its rounding would move that result by more than half a unit of its last
  digit (`operand_decimals`): Adam's `m′ = 0.9·m + 0.1·dw1 → 0.00987` needs dw1 `0.0987`, not
  `0.099`, so dw1's grid and every formula write `0.0987`. A value written exactly (`0.9`)
  needs nothing; products, sums, p − y, SGD's step and Adam's running means are checked
  (`sensitivities`), not a max, exp, a division or a logarithm.

Fixed decimals within an array keep its columns aligned (`0.660` above `0.855`). The minus is
ASCII "-" (U+2212 is ambiguous-width and breaks grid columns on some terminals). Nothing here
imports Textual or torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

EXACT_DECIMALS = 3  # the most decimals an array is written with exactly (0.855)
COMPUTED_DECIMALS = 3  # an array no decimals show exactly: 0.222 for 2/9
MAX_DECIMALS = 6  # more, for small values (Adam's v̂): three significant digits, not 0.000
PROBABILITY_DECIMALS = 9  # a probability below 1 is never written 1.000 (0.99999983)
SMALL = 1e-3  # an array whose values are all below this may be written in scientific notation
NOISE = 1e-12  # |v| at most this (times the array's scale, at least 1) is rounding noise: 0

# Steps that move a value without arithmetic: the array written and the array read hold the
# same numbers, so they share one format (ReLU, a mask, flatten, a max, a routed gradient).
MOVES = ("copy", "relu", "mask", "compare", "route")


@dataclass(frozen=True)
class NumberFormat:
    """How one array writes its values: fixed `decimals`; `zero_below` is its rounding noise;
    `width` the widest value it writes (its grid's column width)."""

    decimals: int = COMPUTED_DECIMALS
    zero_below: float = NOISE
    width: int = 1
    scientific: bool = False  # every nonzero value as `-4.8e-07`: two significant digits, more
    # where the decimals ask for them (`3.01e-04` at 6 decimals), never less precise than them
    significant: int = 0  # > 0: that many significant digits, scientific below 1e-3

    def __call__(self, value: float) -> str:
        """`value` as this array writes it: `0.855`, `-1.3`, `0`, `3.1e-07`; NaN (not computed
        yet) as `·`, infinities as `∞` / `-∞`."""
        value = float(value)
        if math.isnan(value):
            return "·"
        if math.isinf(value):
            return "-∞" if value < 0 else "∞"
        if abs(value) <= self.zero_below:
            return "0"
        if self.significant:
            return _significant(value, self.significant)
        if self.scientific:  # as precise as the decimals: 3.01e-04 at 6, -4.8e-07 (two digits)
            exponent = math.floor(math.log10(abs(value)))
            return f"{value:.{max(1, self.decimals + exponent)}e}"
        text = f"{value:.{self.decimals}f}"
        if float(text) == 0:  # too small for the decimals: still not zero
            text = f"{value:.1e}"
        return text

    @property
    def unit(self) -> float:
        """One unit of the last decimal this array writes: 0.001 for `0.855`. A value written
        in scientific notation (`3.1e-07`, below these decimals: a sum's cancellation residue,
        Adam's tiny v) says "not zero" and is held to this unit too (`operand_decimals`)."""
        return 10.0**-self.decimals


def choose_format(*arrays: object, min_decimals: int = 0) -> NumberFormat:
    """The format of an array that takes the values of `arrays` (scalars, lists or arrays;
    NaN and infinities are ignored): see the module's docstring for the rule. `min_decimals`
    (at most `MAX_DECIMALS`): at least that many, for an operand (`operand_decimals`)."""
    values = [np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays]
    flat = np.concatenate(values) if values else np.zeros(0)
    finite = flat[np.isfinite(flat)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    zero_below = NOISE * max(1.0, scale)
    nonzero = finite[np.abs(finite) > zero_below]
    tolerance = 1e-9 * max(1.0, scale)
    exact = [d for d in range(EXACT_DECIMALS + 1) if _shows(nonzero, d, tolerance)]
    if exact:
        decimals = exact[0]
    else:
        # three significant digits for the largest value (0.00244 for 0.002445), at least 3
        # decimals; more for a small value that would read 0, when the cap allows it
        decimals = min(max(COMPUTED_DECIMALS, 2 - math.floor(math.log10(scale))), MAX_DECIMALS)
        # the smallest value these decimals can show at all (a smaller one is written 3.1e-09)
        visible = np.abs(nonzero)[np.abs(nonzero) >= 0.5 * 10.0**-MAX_DECIMALS]
        smallest = float(np.min(visible)) if visible.size else scale
        while decimals < MAX_DECIMALS and round(smallest, decimals) == 0:
            decimals += 1
    # an array of small values (all below 1e-3): the whole array in scientific notation, two
    # significant digits each, not `-4.8e-07` next to `-0.000003`
    scientific = not exact and scale < SMALL
    decimals = max(decimals, min(min_decimals, MAX_DECIMALS))
    return _sized(NumberFormat(decimals, zero_below, 1, scientific), finite, flat)


def probability_format(*arrays: object, min_decimals: int = 0) -> NumberFormat:
    """`choose_format` for probabilities, with decimals enough (up to `MAX_DECIMALS`) that a
    value below 1 is not written `1.000` (p = 0.99954 reads `0.9995`; up to
    `PROBABILITY_DECIMALS`). `min_decimals`: at least that many (an operand raised by
    `operand_decimals`)."""
    chosen = choose_format(*arrays, min_decimals=min_decimals)
    values = [np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays]
    flat = np.concatenate(values) if values else np.zeros(0)
    finite = flat[np.isfinite(flat)]
    below = finite[(finite < 1) & (finite > chosen.zero_below)]
    decimals = chosen.decimals
    if chosen.scientific or not below.size:
        return chosen
    while decimals < PROBABILITY_DECIMALS and np.any(np.round(below, decimals) >= 1):
        decimals += 1
    if decimals == chosen.decimals:
        return chosen
    return _sized(NumberFormat(decimals, chosen.zero_below), finite, flat)


def significant_format(*arrays: object, digits: int = 3) -> NumberFormat:
    """Values written with `digits` significant digits, in scientific notation below 1e-3:
    for a value that falls by orders of magnitude, the loss over a training run."""
    values = [np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays]
    flat = np.concatenate(values) if values else np.zeros(0)
    finite = flat[np.isfinite(flat)]
    return _sized(NumberFormat(zero_below=0.0, significant=digits), finite, flat)


def _significant(value: float, digits: int) -> str:
    """`value` with `digits` significant digits: `0.795`, `0.0542`, `12.3`, `1.70e-07`."""
    if abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if decimals and abs(float(text)) >= 10.0 ** (digits - decimals):  # 9.996 -> 10.00
        text = f"{value:.{decimals - 1}f}"
    return text


def _sized(draft: NumberFormat, finite: np.ndarray, flat: np.ndarray) -> NumberFormat:
    """`draft` with its width: the widest value it writes (every distinct value, so a long
    array costs little; an infinity takes two)."""
    width = max((len(draft(v)) for v in np.unique(finite)), default=1)
    if np.any(np.isinf(flat)):
        width = max(width, 2)
    return NumberFormat(
        draft.decimals, draft.zero_below, width, draft.scientific, draft.significant
    )


def _shows(values: np.ndarray, decimals: int, tolerance: float) -> bool:
    """Whether `decimals` decimals write every one of `values` exactly (up to rounding noise)."""
    return bool(np.all(np.abs(values - np.round(values, decimals)) <= tolerance))


def array_formats(
    values: Mapping[str, object],
    events: Iterable[object] = (),
    same: Iterable[tuple[str, str]] = (),
) -> dict[str, NumberFormat]:
    """name -> format for every array of a lesson.

    `values` are the arrays as the lesson gives or ends them; `events` the recorded steps
    (`naive.StepEvent`): each step's result is a value its target array takes on the way
    (a running sum), each operand one of the array it reads. Arrays that hold the same numbers
    share one format: the pairs in `same` (x and x_pad) and the arrays a step moves a value
    between (`MOVES`).
    """
    taken: dict[str, list[object]] = {name: [array] for name, array in values.items()}
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    def join(a: str, b: str) -> None:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)

    for a, b in same:
        join(a, b)
    events = list(events)
    afters: dict[str, list[float]] = {}
    for e in events:
        afters.setdefault(e.target, []).append(e.after)  # type: ignore[attr-defined]
        for o in e.operands:  # type: ignore[attr-defined]
            if o.name != "scale":
                afters.setdefault(o.name, []).append(o.value)
        if e.kind in MOVES and e.operands:  # type: ignore[attr-defined]
            join(e.target, e.operands[0].name)  # type: ignore[attr-defined]
    for name, found in afters.items():
        taken.setdefault(name, []).append(found)
    groups: dict[str, list[object]] = {}
    for name, found in taken.items():
        groups.setdefault(root(name), []).extend(found)
    chosen = {group: choose_format(*found) for group, found in groups.items()}
    for _ in range(MAX_DECIMALS):  # an operand raised may be the result of an earlier step
        formats = {name: chosen[root(name)] for name in taken}
        raised = False
        for name, decimals in operand_decimals(formats, events).items():
            group = root(name)
            if decimals > chosen[group].decimals and chosen[group].decimals < MAX_DECIMALS:
                chosen[group] = choose_format(*groups[group], min_decimals=decimals)
                raised = True
        if not raised:
            break
    return {name: chosen[root(name)] for name in taken}


def sensitivities(e: object) -> tuple[float, ...] | None:
    """How much step `e`'s printed result moves per unit of each operand (|∂result/∂operand|)
    for the steps whose arithmetic is printed as a product or a sum: "mac" (target += a·b),
    "add" and "route" (target += a), "sub" (p − y), Adam's "adam_m" (m′ = β1·m + (1 − β1)·g)
    and "adam_v" (with g²), "sgd" (w − α·g). None for the others (a max, exp, a division, a
    logarithm: their results are not checked against their printed operands)."""
    kind = e.kind  # type: ignore[attr-defined]
    values = [abs(o.value) for o in e.operands]  # type: ignore[attr-defined]
    if kind == "mac":
        return tuple(math.prod(values[:k] + values[k + 1 :]) for k in range(len(values)))
    if kind == "adam_m":
        beta = values[2]
        return (beta, 1.0 - beta, 0.0)
    if kind == "adam_v":
        beta = values[2]
        return (beta, 2.0 * (1.0 - beta) * values[1], 0.0)
    if kind == "sgd":
        return (1.0, values[2], values[1])
    if kind in ("add", "route"):
        return (1.0,)
    if kind == "sub":  # p − y, times the batch's 1/N when a scale follows
        scale = values[2] if len(values) > 2 else 1.0
        return (scale, scale, 0.0)
    return None


def operand_decimals(
    formats: Mapping[str, NumberFormat], events: Iterable[object]
) -> dict[str, int]:
    """name -> the decimals an operand array needs so that every step's printed arithmetic
    gives its printed result: an operand not written exactly may move the result by at most
    half a unit of the result's last digit (`sensitivities` × its rounding); only the arrays
    that need more than they have are listed."""
    needed: dict[str, int] = {}
    for e in events:
        weights = sensitivities(e)
        target = formats.get(e.target)  # type: ignore[attr-defined]
        if weights is None or target is None:
            continue
        unit = target.unit
        for o, weight in zip(e.operands, weights, strict=False):  # type: ignore[attr-defined]
            own = formats.get(o.name)
            if own is None or weight == 0 or not math.isfinite(o.value):
                continue
            decimals = _enough(o.value, weight, 0.5 * unit, own)
            if decimals > own.decimals:
                needed[o.name] = max(needed.get(o.name, 0), decimals)
    return needed


def _enough(value: float, weight: float, allowed: float, own: NumberFormat) -> int:
    """The fewest decimals (from `own`'s, at most `MAX_DECIMALS`) that write `value` close
    enough: its rounding times `weight` within `allowed`."""
    allowed *= 1 + 1e-9
    if weight * abs(float(own(value)) - value) <= allowed:
        return own.decimals
    for decimals in range(own.decimals + 1, MAX_DECIMALS + 1):
        if weight * abs(round(value, decimals) - value) <= allowed:
            return decimals
    return MAX_DECIMALS
