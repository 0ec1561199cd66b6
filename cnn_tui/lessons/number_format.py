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
    scientific: bool = False  # every nonzero value as `-4.8e-07` (two significant digits)
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
        if self.scientific:
            return f"{value:.1e}"
        text = f"{value:.{self.decimals}f}"
        if float(text) == 0:  # too small for the decimals: still not zero
            text = f"{value:.1e}"
        return text


def choose_format(*arrays: object) -> NumberFormat:
    """The format of an array that takes the values of `arrays` (scalars, lists or arrays;
    NaN and infinities are ignored): see the module's docstring for the rule."""
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
    return _sized(NumberFormat(decimals, zero_below, 1, scientific), finite, flat)


def probability_format(*arrays: object) -> NumberFormat:
    """`choose_format` for probabilities, with decimals enough (up to `MAX_DECIMALS`) that a
    value below 1 is not written `1.000` (p = 0.99954 reads `0.9995`; up to
    `PROBABILITY_DECIMALS`)."""
    chosen = choose_format(*arrays)
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
    return {name: chosen[root(name)] for name in taken}
