"""A step's printed arithmetic gives its printed result (`number_format.operand_decimals`).

For every step line of the default conv (forward and backward), max and average pool, network
(SGD and Adam, two training steps) and batch-norm lessons, as the step panel writes it:

- each operand is written with enough digits: its rounding moves the step's result by at most
  half a unit of the result's last printed digit (a value written exactly needs nothing);
- the numbers read off the line give the line's result: products, Adam's running means, SGD's
  step and p − y within half a unit of the result's last digit per rounded number on the line
  (the result's own and each operand's that is not exact), running sums likewise with the
  earlier sum written as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.layer_lesson import build_layer_example, run_layer
from cnn_tui.lessons.layer_replay import LayerReplay
from cnn_tui.lessons.net_replay import NetReplay
from cnn_tui.lessons.network import build_net_example, run_training
from cnn_tui.lessons.number_format import NumberFormat, array_formats, sensitivities
from cnn_tui.lessons.op_replay import OpReplay

CHECKED = ("mac", "add", "route", "sub", "sgd", "adam_m", "adam_v")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def unit_of(text: str, fallback: float) -> float:
    """One unit of the last digit of a printed number; `fallback` (the array's decimals) for a
    bare 0 and for scientific notation (`-5.7e-08`: a value below the array's decimals, "not
    zero", held to those decimals)."""
    if "e" in text:
        return fallback
    if "." in text:
        return 10.0 ** -len(text.partition(".")[2])
    return fallback if float(text) == 0 else 1.0


def op_steps(op: str, **settings: Any) -> Iterator[tuple[Any, str, dict[str, NumberFormat]]]:
    model = OpReplay(build_example(op, **settings))
    for mode, replay in model.replays.items():
        model.mode = mode
        for position in range(1, replay.total + 1):
            replay.seek(position)
            yield replay.current, replay.step_lines()[1], replay.formats


def staged_steps(model: Any) -> Iterator[tuple[Any, str, dict[str, NumberFormat]]]:
    for position in range(1, model.total + 1):
        model.seek(position)
        if model.current is not None and model.stage.direction != "after":
            yield model.current, model.step_lines()[1], model.formats


LESSONS = {
    "conv": lambda: op_steps("conv"),
    "conv padded": lambda: op_steps("conv", height=6, width=6, padding=1),
    "max pool": lambda: op_steps("pool"),
    "average pool": lambda: op_steps("pool", pool_type="avg"),
    "net sgd": lambda: staged_steps(NetReplay(run_training(build_net_example(steps=2)))),
    "net adam": lambda: staged_steps(
        NetReplay(run_training(build_net_example(steps=2, optimizer="adam")))
    ),
    "batchnorm": lambda: staged_steps(LayerReplay(run_layer(build_layer_example("batchnorm")))),
}


def operands_read(e: Any, numbers: str) -> tuple[list[str], str]:
    """The numbers before "→" and the result after it, as printed."""
    left, _, right = numbers.partition("→")
    return NUMBER.findall(left), NUMBER.findall(right)[0]


@pytest.mark.parametrize("lesson", list(LESSONS))
def test_every_operand_has_the_digits_its_result_needs(lesson: str) -> None:
    checked = 0
    for e, _, formats in LESSONS[lesson]():
        weights = sensitivities(e)
        target = formats.get(e.target)
        if weights is None or target is None:
            continue
        half = 0.5 * target.unit * (1 + 1e-9)
        for o, weight in zip(e.operands, weights, strict=False):
            own = formats.get(o.name)
            if own is None:
                continue
            moved = weight * abs(float(own(o.value)) - o.value)
            assert moved <= half, (lesson, e.kind, e.target, o.name, own(o.value), o.value)
            checked += 1
    assert checked > 0


def recompute(e: Any, read: list[float]) -> list[tuple[float, int]]:
    """(a value the line's numbers give for its result, how many of them are needed) pairs;
    [] for a line this test does not read."""
    names = [o.name for o in e.operands]
    if "scale" in names:
        return []  # x/M, x·(1/4): checked by the digits test above
    if e.kind == "mac" and len(read) == 2 * len(names) + 1 and len(names) == 2:
        a, b, product, before, _ = read
        return [(before + a * b, 4)]
    if e.kind in ("adam_m", "adam_v") and len(read) == 4:
        beta, old, rest, grad = read
        return [(beta * old + rest * grad ** (2 if e.kind == "adam_v" else 1), 2)]
    if e.kind == "sgd" and len(read) == 5:
        weight, rate, grad, _, _ = read
        return [(weight - rate * grad, 3)]
    if e.kind == "sub" and len(read) == 2:
        return [(read[0] - read[1], 2)]
    if e.kind in ("add", "route") and len(read) == 2:
        return [(read[0] + read[1], 2)]
    return []


@pytest.mark.parametrize("lesson", list(LESSONS))
def test_the_printed_numbers_give_the_printed_result(lesson: str) -> None:
    checked = 0
    for e, numbers, formats in LESSONS[lesson]():
        target = formats.get(e.target)
        if target is None or e.kind not in CHECKED:
            continue
        texts, result = operands_read(e, numbers)
        unit = unit_of(result, target.unit)
        for value, used in recompute(e, [float(t) for t in texts]):
            # every printed number is off by at most half a unit of the result: the result by
            # its rounding, each operand by the digits test above (an exact one by nothing)
            rounded = 1 + sum(
                abs(float(formats[o.name](o.value)) - o.value) > 1e-12
                for o in e.operands
                if o.name in formats
            )
            if e.kind in ("mac", "add", "route", "sgd"):
                rounded += 1  # the running value before the step, written as it is
            bound = 0.5 * unit * min(rounded, used) * (1 + 1e-9) + 1e-15
            assert abs(value - float(result)) <= bound, (lesson, numbers, value)
            checked += 1
    assert checked > 0 or lesson in ("batchnorm", "average pool")  # their x/M, x·(1/4)


def test_adams_running_mean_reads_right_the_walks_example() -> None:
    """`net --steps 2 --optimizer adam`: m_w1′ = 0.9·0 + 0.1·dw1 → 0.00987 writes dw1 as 0.0987,
    in its grid and in the formula alike."""
    model = NetReplay(run_training(build_net_example(steps=2, optimizer="adam")))
    for e, numbers, formats in staged_steps(model):
        if e.kind == "adam_m" and e.target == "m_w1_new" and e.target_index == (0, 0, 0, 1):
            assert numbers.startswith("= 0.9·0 + 0.1·0.0987 → 0.00987")
            assert formats["dw1"](e.operands[1].value) == "0.0987"
            return
    raise AssertionError("no m_w1′[0,0,0,1] step")


def test_an_exact_operand_keeps_its_format() -> None:
    """The one-decimal inputs of a conv lesson stay one-decimal: operand_decimals raises only
    what rounding would make wrong."""
    example = build_example("conv")
    model = OpReplay(example)
    formats = model.replay.formats
    assert formats["x_pad"].decimals == 1 and formats["w"].decimals == 1
    events = list(model.replay.events)
    again = array_formats({**model.replay.arrays, **model.replay.final}, events)
    assert {n: f.decimals for n, f in again.items()} == {
        n: f.decimals for n, f in formats.items() if n in again
    }
    assert math.isclose(formats["out"].unit, 0.01)
