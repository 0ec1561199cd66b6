"""One number format per array: the chooser, and the same digits in the grid, the step text
and the trace for the conv, pool and network lessons."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.naive import Operand, StepEvent
from cnn_tui.lessons.net_replay import NetReplay, net_formats
from cnn_tui.lessons.net_trace import net_trace_text
from cnn_tui.lessons.network import build_net_example, run_network
from cnn_tui.lessons.number_format import (
    MAX_DECIMALS,
    NumberFormat,
    array_formats,
    choose_format,
)
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import WRITE, lesson_formats
from cnn_tui.lessons.trace import trace_text

_ARROW = re.compile(r"→ (\S+)")


def texts(values, number_format: NumberFormat | None = None) -> list[str]:
    number_format = number_format or choose_format(values)
    return [number_format(v) for v in values]


# --------------------------------------------------------------------------- the chooser


def test_integers_are_written_as_integers_and_one_decimal_inputs_with_one() -> None:
    assert texts([3.0, -2.0, 0.0, 12.0]) == ["3", "-2", "0", "12"]
    assert texts([0.5, -1.3, 2.0, 0.0]) == ["0.5", "-1.3", "2.0", "0"]
    assert texts([0.25, 1.0]) == ["0.25", "1.00"]
    # rounding noise of floating point does not cost a decimal: 0.1 + 0.2 is 0.3
    assert texts([0.1 + 0.2, 1.0]) == ["0.3", "1.0"]


def test_computed_values_get_three_decimals_the_same_in_every_place() -> None:
    z2 = [0.66, 0.855]  # the z2: the grid wrote 0.86, the formula 0.855
    assert texts(z2) == ["0.660", "0.855"]
    assert texts([2 / 9, 1 / 3, 1.5]) == ["0.222", "0.333", "1.500"]  # an average of nine
    loss = 0.7954
    assert choose_format(loss)(loss) == "0.795"  # L: one format, never 0.80 nor 0.7954


def test_a_nonzero_value_is_never_written_as_zero() -> None:
    # the dW1: "0.00" beside "0.8·0 = 0"; an exact zero is "0", a small value shows
    dw = [0.0, 0.0004, -0.099, 0.011]
    assert texts(dw) == ["0", "0.0004", "-0.0990", "0.0110"]
    tiny = [3.1e-9, 0.5, -2e-7, 0.0]
    written = texts(tiny)
    assert written == ["3.1e-09", "0.500", "-2.0e-07", "0"]
    # an array of small values: three significant digits for its largest (Adam's v̂)
    assert texts([0.002444, 0.0001, 0.0]) == ["0.00244", "0.00010", "0"]
    assert texts([2.5e-5, 1.2e-6]) == ["2.5e-05", "1.2e-06"]  # small: scientific, all
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.normal(size=12) * 10.0 ** rng.integers(-9, 2, size=12)
        values[rng.integers(0, 12)] = 0.0
        number_format = choose_format(values)
        assert number_format.decimals <= MAX_DECIMALS
        for value, text in zip(values, texts(values, number_format), strict=True):
            noise = abs(value) <= number_format.zero_below  # below 1e-12 of the scale
            assert (float(text) == 0) == noise, (value, text)
            if "e" in text:  # too small for the decimals: two significant digits
                assert float(text) == pytest.approx(value, rel=0.05)
            elif not noise:  # fixed decimals: off by half the last digit at most
                assert abs(float(text) - value) <= 0.5 * 10.0**-number_format.decimals + 1e-15


def test_rounding_noise_is_zero_and_the_width_covers_every_value() -> None:
    number_format = choose_format([0.15, -0.15 + 0.1 + 0.05, -2.75])
    assert number_format(-0.15 + 0.1 + 0.05) == "0"  # 1.4e-17: zero, not 1.4e-17
    assert number_format.width == len("-2.75")
    assert number_format(float("nan")) == "·" and number_format(float("-inf")) == "-∞"
    assert choose_format([np.nan, np.nan]).decimals == 0  # nothing computed yet: any will do


def test_arrays_a_step_moves_a_value_between_share_one_format() -> None:
    # a ReLU copies z1 into a1: a1 alone would be one-decimal, but z1's 0.15 needs two
    relu = StepEvent(
        op="relu", phase="forward", kind="relu", step=0, loops=(), target="a1",
        target_index=(0,), operands=(Operand("z1", (0,), 0.5),), before=0.0, after=0.5,
    )  # fmt: skip
    formats = array_formats({"z1": np.array([0.5, -0.15]), "a1": np.array([0.5, 0.0])}, [relu])
    assert formats["a1"] is formats["z1"] and formats["a1"](0.5) == "0.50"
    same = array_formats(
        {"x": np.array([1.0]), "x_pad": np.array([0.0, 1.5])}, (), [("x", "x_pad")]
    )
    assert same["x"](1.0) == same["x_pad"](1.0) == "1.0"


# --------------------------------------------------------------------------- the lessons


def grid_format(specs, name: str) -> NumberFormat | None:
    return next((spec.number_format for spec in specs if spec.name == name), None)


def assert_steps_print_as_their_grids(model, positions) -> None:
    """At each position: the step's result and operands read as the grids write those arrays,
    and the written cell is the value the formula arrives at."""
    for position in positions:
        model.seek(position)
        event = model.current if isinstance(model, NetReplay) else model.replay.current
        if event is None:
            continue
        specs = model.grid_specs(model.view_indices())
        _, numbers, *_ = model.step_lines()
        target = grid_format(specs, event.target)
        assert target is not None
        written = target(event.after)
        arrows = _ARROW.findall(numbers)
        if arrows:  # "= 0.2·(-1) = -0.20   0.05 + (-0.20) → -0.15"
            assert arrows[-1] == written, numbers
        else:  # a bias or a copy, "= 0.05": the value read, as its array writes it
            first = event.operands[0]
            read = grid_format(specs, first.name) or target
            assert numbers.split()[-1] in (written, read(first.value)), numbers
        cell = next(spec for spec in specs if spec.name == event.target)
        (where,) = [rc for rc, role in cell.marks.items() if role == WRITE]
        value = np.atleast_2d(cell.values)[where]
        assert target(value) == written  # the grid's cell, the same digits
        for operand in event.operands:
            shown = grid_format(specs, operand.name)
            if shown is not None:
                assert shown(operand.value) in numbers, (operand, numbers)


def test_conv_grid_and_step_text_print_the_same_digits() -> None:
    model = OpReplay(build_example("conv", padding=1, channels=2, filters=2))
    for mode in model.replays:
        model.mode = mode
        assert_steps_print_as_their_grids(model, range(1, model.total + 1, 7))


def test_average_pooling_writes_its_means_alike_everywhere() -> None:
    # the avg-pool: 0.22 in the grid, 0.222 in the formula
    example = build_example(
        "pool", pool_type="avg", kernel=(3, 3), stride=(2, 2), height=5, width=5
    )
    model = OpReplay(example)
    out = model.replays["forward"].number_format("out")
    assert out.decimals == 3
    for mode in ("forward", "backward"):
        model.mode = mode
        assert_steps_print_as_their_grids(model, range(1, model.total + 1))
    # the trace prints the same numbers: each step's result and the out grid
    text = trace_text(example, backward=True)
    model.mode = "forward"
    model.jump("end")
    final = model.replay.values("out")[0, 0]
    grid = text.split("out[n=0, c=0]  (2×2)\n", 1)[1].splitlines()[:2]
    assert [row.split() for row in grid] == [[out(v) for v in row] for row in final]


def test_the_network_writes_z2_and_l_alike_on_screen_and_in_the_trace() -> None:
    model = NetReplay(run_network(build_net_example()))
    assert_steps_print_as_their_grids(model, range(1, model.total + 1, 3))
    z2, loss = model.formats["z2"], model.formats["L"]
    assert [z2(v) for v in model.run.values["z2"][0]] == ["0.660", "0.855"]
    assert loss(model.run.loss) == "0.795"
    model.first_of("softmax.forward")
    model.stage_end()
    assert model.step_lines()[1].endswith("→ 0.795")
    model.seek(model.total)
    assert model.step_lines()[1].startswith("L = 0.795 → L′ = ")
    text = net_trace_text(build_net_example())
    assert "z2 = [0.660, 0.855]" in text and "loss L = −log p[0] = 0.795" in text
    assert "L = 0.795\n" in text and "0.7954" not in text and "0.80" not in text.split()


def test_the_network_never_writes_a_nonzero_gradient_as_zero() -> None:
    run = run_network(build_net_example())
    formats = net_formats(run)
    for name in ("dw1", "db1", "dz1", "dw2", "dh"):
        values = np.ravel(run.values[name])
        for value in values:
            text = formats[name](value)
            assert (float(text) == 0) == (abs(value) <= formats[name].zero_below), (name, value)


def test_the_trace_and_the_screen_choose_the_same_formats() -> None:
    for example in (
        build_example("conv", padding=1, stride=(2, 1)),
        build_example("pool", example="overlap"),
        build_example("conv", conv_mode="convolution"),
    ):
        model = OpReplay(example)
        assert model.replay.formats == lesson_formats(example)
