"""Go to and skip zero products on the lessons' UI-free models (`lessons.navigation`, used by
`OpReplay` for conv / pool and `NetReplay` for the network): what a typed query resolves to,
that a bad one changes nothing, and where a skip over zero products lands and what it counts."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from cnn_tui.lessons import layer_lesson, network
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.layer_replay import LayerReplay
from cnn_tui.lessons.navigation import (
    GotoError,
    GotoQuery,
    is_zero_product,
    parse_goto,
    skip_zero_products,
)
from cnn_tui.lessons.net_replay import NetReplay
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import make_example

VIEW = {"n": 0, "c": 0, "f": 0}


def conv_8x8() -> OpReplay:
    """The issue's example: an 8×8 input, padding 1, a 3×3 kernel (640 forward steps)."""
    return OpReplay(build_example("conv", height=8, width=8, padding=1))


def net() -> NetReplay:
    return NetReplay(network.run_network(network.make_net_example({}, {})))


def product_is_zero(event) -> bool:
    """A multiply-accumulate whose product is 0, computed from the operands here."""
    return event.kind == "mac" and math.prod(o.value for o in event.operands) == 0


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("120", GotoQuery("step", number=120)),
        (" 7 ", GotoQuery("step", number=7)),
        ("6,1", GotoQuery("cell", index=(6, 1))),
        ("(6, 1)", GotoQuery("cell", index=(6, 1))),
        ("[6,1]", GotoQuery("cell", index=(6, 1))),
        ("out[6,1]", GotoQuery("cell", name="out", index=(6, 1))),
        ("dx_pad[c=1, 2,8]", GotoQuery("cell", name="dx_pad", index=(2, 8), named=(("c", 1),))),
        ("(1)", GotoQuery("cell", index=(1,))),
        ("dw", GotoQuery("phase", name="dw")),
        ("dW 12", GotoQuery("phase", number=12, name="dW")),
        ("sgd.w1", GotoQuery("phase", name="sgd.w1")),
        # with the words the prompt's help writes them with
        ("step 120", GotoQuery("step", number=120)),
        ("cell 6,1", GotoQuery("cell", index=(6, 1))),
        ("Cell out[6,1]", GotoQuery("cell", name="out", index=(6, 1))),
        ("phase dw", GotoQuery("phase", name="dw")),
        ("phase dW 12", GotoQuery("phase", number=12, name="dW")),
        ("step\t5", GotoQuery("step", number=5)),  # (any white space after the word)
    ],
)
def test_parse_goto_reads_steps_cells_and_phases(text: str, query: GotoQuery) -> None:
    assert parse_goto(text) == query


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "type a step number"),
        ("6,x", "not a cell: '6,x'"),
        ("(f=1)", "give its row and column"),
        ("out[6,1", "not a cell: 'out[6,1'"),
        ("dw twelve", "not a step, a cell or a phase"),
        ("cell 5", "give its row and column, e.g. cell 2,3"),
        ("step five", "not a step: 'five'"),
        ("phase 3", "not a phase: '3'"),  # (not step 3: a phase is a name)
    ],
)
def test_parse_goto_says_in_one_line_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(GotoError, match=re.escape(message)) as info:
        parse_goto(text)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- go to: conv, pool


def test_a_cell_goes_to_the_first_step_writing_it() -> None:
    model = conv_8x8()
    for text in ("6,1", "(6,1)", "out[6,1]", "out[n=0, f=0, 6,1]", "0,0,6,1"):
        target = model.resolve_goto(text, VIEW)
        assert (target.mode, target.label) == ("forward", "out[6,1]")
        first = next(k for k, e in enumerate(model.replay.events) if e.target_index == (0, 0, 6, 1))
        assert target.position == first + 1  # the step on screen is that event
    model.go_to(model.resolve_goto("6,1", VIEW))
    assert model.replay.current.target_index == (0, 0, 6, 1)
    assert model.replay.current.kind == "bias"  # out[6,1] starts from the bias
    assert model.step_lines()[0].startswith("out[6,1] = b[0]")
    assert "cell 50 / 64" in model.status_parts(5)  # the "cell 50/64"


def test_a_cell_takes_the_filter_and_image_on_screen() -> None:
    model = OpReplay(build_example("conv", filters=2, batch=2))
    target = model.resolve_goto("1,2", {"n": 1, "c": 0, "f": 1})
    model.go_to(target)
    assert model.replay.current.target_index == (1, 1, 1, 2)
    assert target.label == "out[n=1, f=1, 1,2]"
    # the way the step panel writes the cell works too, whatever the view
    model.seek(0)
    model.go_to(model.resolve_goto("out[n=1, f=1, 1,2]", VIEW))
    assert model.replay.current.target_index == (1, 1, 1, 2)


def test_in_a_backward_phase_a_cell_is_one_of_the_array_it_writes() -> None:
    model = conv_8x8()
    model.go_to(model.resolve_goto("dw", VIEW))
    assert (model.mode, model.replay.phase_at().phase) == ("backward", "grad_weight")
    model.go_to(model.resolve_goto("2,1", VIEW))
    event = model.replay.current
    assert (event.target, event.target_index) == ("dw", (0, 0, 2, 1))
    # a named array of another phase, or another pass, goes there
    model.go_to(model.resolve_goto("dx_pad[2,8]", VIEW))
    event = model.replay.current
    assert (model.replay.phase_at().phase, event.target, event.target_index) == (
        "grad_input",
        "dx_pad",
        (0, 0, 2, 8),
    )
    model.go_to(model.resolve_goto("out[6,1]", VIEW))
    assert model.mode == "forward" and model.replay.current.target_index == (0, 0, 6, 1)
    # db has one cell per filter
    model.go_to(model.resolve_goto("db", VIEW))
    model.go_to(model.resolve_goto("(0)", VIEW))
    assert model.replay.current.target == "db"


def test_a_step_number_counts_as_the_status_line_does_and_phases_go_to_their_first_step() -> None:
    model = conv_8x8()
    model.go_to(model.resolve_goto("120", VIEW))
    assert "step 120 / 640" in model.status_parts(5)
    backward = model.replays["backward"]
    spans = {span.phase: span for span in backward.phases}
    for text, phase, number in (("dw", "grad_weight", 1), ("dW 12", "grad_weight", 12)):
        target = model.resolve_goto(text, VIEW)
        assert target.position == spans[phase].start + number and target.mode == "backward"
    assert model.resolve_goto("backward", VIEW).position == 1
    assert model.resolve_goto("transposed", VIEW).mode == "transposed"
    model.go_to(model.resolve_goto("dx 3", VIEW))
    assert model.replay.phase_at().phase == "grad_input"
    assert model.position == spans["grad_input"].start + 3
    assert model.goto_names() == ["forward", "backward", "db", "dw", "dx", "transposed"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("641", "step 641 is out of range: 0 to 640"),
        ("-3", "step -3 is out of range: 0 to 640"),
        ("9,9", "out: row 9 is out of range: 0 to 7"),
        ("6,8", "out: column 8 is out of range: 0 to 7"),
        ("1,2,3", "out needs 2 numbers for a cell, got 3"),
        ("out[f=1, 1,1]", "out: f 1 is out of range: 0 to 0"),
        ("out[k=1, 1,1]", "out has no axis k"),
        ("x_pad[1,1]", "no step writes x_pad: name one of db, dw, dx_pad, out"),
        ("sideways", "no phase 'sideways' here: the phases are forward, backward, db, dw, dx"),
        ("dw 999", "step 999 is out of range in backward · dW: 1 to 576"),
    ],
)
def test_a_bad_query_is_one_line_and_moves_nothing(text: str, message: str) -> None:
    model = conv_8x8()
    model.step(5)
    with pytest.raises(GotoError) as info:
        model.resolve_goto(text, VIEW)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert (model.mode, model.position) == ("forward", 5)


def test_a_cell_no_step_writes_is_said() -> None:
    # stride 2 over a 6-wide input: the last row and column are no window's (a stride leftover)
    model = OpReplay(build_example("conv", height=6, width=6, stride=2))
    model.go_to(model.resolve_goto("dx", VIEW))
    with pytest.raises(GotoError, match=r"dx_pad\[5,5\] is written by no step of backward · dX"):
        model.resolve_goto("5,5", VIEW)


def test_pooling_goes_to_cells_and_its_one_backward_phase() -> None:
    model = OpReplay(build_example("pool"))
    assert model.goto_names() == ["forward", "backward", "dx"]
    model.go_to(model.resolve_goto("1,1", VIEW))
    assert model.replay.current.target == "out" and model.replay.current.target_index[2:] == (1, 1)
    model.go_to(model.resolve_goto("dx", VIEW))
    assert model.mode == "backward"
    with pytest.raises(GotoError, match="no phase 'dw' here"):
        model.resolve_goto("dw", VIEW)


# --------------------------------------------------------------------------- skip zeros


def test_is_zero_product_only_for_products() -> None:
    model = conv_8x8()
    events = model.replay.events + model.replays["backward"].events
    kinds = {e.kind for e in events if is_zero_product(e)}
    assert kinds == {"mac"}
    assert all(is_zero_product(e) == product_is_zero(e) for e in events)
    # the padded border of x_pad makes zero products in the forward pass
    assert sum(is_zero_product(e) for e in model.replay.events) > 0


def walk_skips(model, direction: int) -> list:
    """Skip to the end (start) of the pass on screen, checking each landing."""
    skips = []
    for _ in range(model.total + 1):
        before = model.position
        skip = model.skip_zeros(direction)
        skips.append((before, skip))
        if skip.position == before:
            break
    return skips


@pytest.mark.parametrize("mode", ["forward", "backward", "transposed"])
def test_skipping_zeros_on_conv_lands_on_products_that_are_not_zero(mode: str) -> None:
    model = conv_8x8()
    model.mode = mode
    replay = model.replay
    events = replay.events
    phase_ends = {span.end for span in replay.phases}
    phase_starts = {span.start + 1 for span in replay.phases}
    skipped = 0
    for before, skip in walk_skips(model, 1)[:-1]:
        passed = events[before : skip.position - 1]
        assert all(product_is_zero(e) for e in passed)  # only zero products were passed over
        assert skip.skipped == len(passed)
        landed = events[skip.position - 1]
        # on a step that is no zero product, or at the end of its phase when all the rest are
        assert not product_is_zero(landed) or skip.position in phase_ends
        assert skip.phase_end == product_is_zero(landed)
        # never across a phase's end
        assert not any(before < end < skip.position for end in phase_ends)
        skipped += skip.skipped
    assert model.position == replay.total
    zeros = sum(product_is_zero(e) for e in events)
    landed_zeros = sum(product_is_zero(events[end - 1]) for end in phase_ends)
    assert skipped == zeros - landed_zeros
    # and back again
    for before, skip in walk_skips(model, -1)[:-1]:
        passed = events[skip.position : before - 1]
        assert all(product_is_zero(e) for e in passed)
        assert skip.skipped == len(passed)
        landed = events[skip.position - 1] if skip.position else None
        assert landed is None or not product_is_zero(landed) or skip.position in phase_starts
    assert model.position == 0


def test_skip_stops_at_the_phase_end_and_says_so() -> None:
    # steps 1..4 of phase A are products (0 = zero), then phase B
    zero = np.array([False, True, True, True, True, False])
    spans = [(0, 4), (4, 6)]
    skip = skip_zero_products(zero, spans, 1, 1)
    assert (skip.position, skip.skipped, skip.phase_end) == (4, 2, True)
    assert skip.message() == "skipped 2 zero products, stopped at the last step of the phase"
    skip = skip_zero_products(zero, spans, 4, 1)  # from the end of A: into B, over its zero
    assert (skip.position, skip.skipped, skip.phase_end) == (6, 1, False)
    assert skip.message() == "skipped 1 zero product"
    skip = skip_zero_products(zero, spans, 6, -1)  # back: B's first step is a zero, so stop
    assert (skip.position, skip.skipped, skip.phase_end) == (5, 0, True)
    skip = skip_zero_products(zero, spans, 5, -1)  # from B's first step: back over A's zeros
    assert (skip.position, skip.skipped) == (1, 3)
    assert skip_zero_products(zero, spans, 6, 1).position == 6  # at the end: nothing
    assert skip_zero_products(zero, spans, 1, -1).position == 0  # before the first step
    # finding 13d: a skip with no zero product ahead says it moved as → does, or that it did
    # not move at all
    skip = skip_zero_products(zero, spans, 0, 1)
    assert (skip.position, skip.message()) == (1, "no zero product to skip: one step on")
    skip = skip_zero_products(zero, spans, 6, 1)
    assert (skip.position, skip.message()) == (6, "no zero product to skip: at the end")
    skip = skip_zero_products(zero, spans, 0, -1)
    assert (skip.position, skip.message()) == (0, "no zero product to skip: at the start")
    skip = dataclasses.replace(skip_zero_products(zero, spans, 6, -1), phase="B")
    assert skip.message() == "no zero product to skip: one step back, the first step of B"


def test_pooling_max_never_skips_average_skips_zero_inputs() -> None:
    model = OpReplay(build_example("pool"))  # max pooling: comparisons, no products
    skip = model.skip_zeros(1)
    assert (skip.position, skip.skipped) == (1, 0)
    example = build_example("pool", pool_type="avg")
    x = example.x.copy()
    x[0, 0, :2, :2] = 0.0  # the first window's four cells
    model = OpReplay(make_example("pool", {"pool_type": "avg"}, {"x": x}))
    skip = model.skip_zeros(1)
    assert skip.skipped == 4 and skip.position == 5
    assert skip.message() == "skipped 4 zero products"
    assert "forward" in skip.phase


# --------------------------------------------------------------------------- the network


def test_net_goto_stages_steps_and_cells() -> None:
    model = net()
    names = model.goto_names()
    assert names[:3] == ["forward", "backward", "update"] and "dw1" in names and "w1" in names
    model.go_to(model.resolve_goto("dw1", VIEW))  # entered as `p` enters it: none run yet
    assert model.stage.key == "conv.grad_weight" and model.local == 0
    assert model.current is None and model.entered_lines()[0].startswith("backward · conv · dw1")
    model.go_to(model.resolve_goto("12", VIEW))
    assert model.stage.key == "conv.grad_weight" and model.local == 12
    model.go_to(model.resolve_goto("backward 3", VIEW))
    assert model.stage.direction == "backward" and model.position == model.starts[6] + 3
    model.go_to(model.resolve_goto("sgd.w1", VIEW))
    assert model.stage.key == "sgd.w1"
    model.go_to(model.resolve_goto("all 120", VIEW))
    assert model.position == 120
    model.go_to(model.resolve_goto("conv.forward", VIEW))
    model.go_to(model.resolve_goto("2,3", {"f": 1}))
    assert (model.current.target, model.current.target_index) == ("z1", (0, 1, 2, 3))
    model.go_to(model.resolve_goto("dz1[f=0, 1,2]", {"f": 1}))
    assert (model.current.target, model.current.target_index) == ("dz1", (0, 0, 1, 2))
    with pytest.raises(
        GotoError, match=r"step 99 is out of range in backward · ReLU · dz1: 1 to 32"
    ):
        model.resolve_goto("99", VIEW)
    assert model.current.target == "dz1"  # unchanged
    with pytest.raises(GotoError, match="no stage 'zz' here: try forward, backward"):
        model.resolve_goto("zz", VIEW)


def test_net_skips_zero_products_within_a_stage() -> None:
    model = net()
    model.go_to(model.resolve_goto("dw1", VIEW))
    stage_events = model.stage.events
    start = model.starts[model.stage_index]
    total, messages = 0, []
    while True:
        before = model.position
        skip = model.skip_zeros(1)
        if model.stage.key != "conv.grad_weight" or skip.position == before:
            break
        passed = stage_events[before - start : skip.position - start - 1]
        assert all(product_is_zero(e) for e in passed) and skip.skipped == len(passed)
        assert not product_is_zero(model.current) or skip.phase_end
        total += skip.skipped
        messages.append(skip.message())
        if model.local == model.stage.steps:
            break
    assert model.stage.key == "conv.grad_weight" and model.local == model.stage.steps
    zeros = sum(product_is_zero(e) for e in stage_events)  # from before the first step
    assert total == zeros - product_is_zero(stage_events[-1])
    assert total > 100  # the issue: dW1 is mostly products with 0
    assert skip.phase == model.stage.title == "backward · conv · dw1"
    assert messages[0].startswith("skipped ") and messages[0].endswith(" zero products")
    assert messages[-1].endswith("the last step of backward · conv · dw1")


# --------------------------------------------------------------------------- batch norm, dropout


def layer(op: str, **settings) -> LayerReplay:
    return LayerReplay(layer_lesson.run_layer(layer_lesson.build_layer_example(op, **settings)))


def test_batchnorm_goes_to_its_stages_and_cells() -> None:
    model = layer("batchnorm", batch=2, channels=2)
    names = model.goto_names()
    assert names[:2] == ["forward", "backward"]
    assert {"mu", "var", "xhat", "y", "dgamma", "dvar", "dmu", "dx"} <= set(names)
    model.go_to(model.resolve_goto("dvar", VIEW))
    assert model.stage.key == "bn.grad_var" and model.local == 0 and model.current is None
    model.go_to(model.resolve_goto("dvar 1", VIEW))  # with a number: that step, run
    assert model.stage.key == "bn.grad_var" and model.local == 1
    model.go_to(model.resolve_goto("5", VIEW))
    assert model.stage.key == "bn.grad_var" and model.local == 5
    model.go_to(model.resolve_goto("mu[1]", VIEW))  # a per-channel vector: one index
    assert (model.current.target, model.current.target_index) == ("mu", (1,))
    model.go_to(model.resolve_goto("xhat", VIEW))
    model.go_to(model.resolve_goto("2,1", {"n": 1, "c": 1}))  # the image and channel on screen
    assert (model.current.target, model.current.target_index) == ("xhat", (1, 1, 2, 1))
    target = model.resolve_goto("dx[n=0, c=1, 0,2]", VIEW)
    assert target.label == "dx[n=0, c=1, 0,2]"
    model.go_to(target)
    assert (model.current.target, model.current.target_index) == ("dx", (0, 1, 0, 2))
    before = model.position
    with pytest.raises(GotoError, match="mu: c 2 is out of range: 0 to 1"):
        model.resolve_goto("mu[2]", VIEW)
    with pytest.raises(GotoError, match="no stage 'gamma2' here: try forward, backward, mu"):
        model.resolve_goto("gamma2", VIEW)
    assert model.position == before  # a bad query moves nothing


def test_dropout_skips_the_dropped_values() -> None:
    """In dropout the zero products are the dropped values (y = x·0·2): z passes over them."""
    model = layer("dropout", p=0.5)
    for phase in ("y", "dx"):
        model.go_to(model.resolve_goto(phase, VIEW))
        events = model.stage.events
        start = model.starts[model.stage_index]
        dropped = [e.operands[1].value == 0 for e in events]  # the mask operand
        assert 0 < sum(dropped) < len(events)
        model.seek(start + 1)
        total = 0
        while model.local < model.stage.steps:
            before = model.position
            skip = model.skip_zeros(1)
            passed = dropped[before - start : skip.position - start - 1]
            assert all(passed) and skip.skipped == len(passed)
            assert not dropped[model.local - 1] or skip.phase_end
            total += skip.skipped
        assert total == sum(dropped[1:]) - dropped[-1]
    # the mask stage compares, it multiplies nothing: no step of it is a zero product
    model.go_to(model.resolve_goto("mask", VIEW))
    assert not any(is_zero_product(e) for e in model.stage.events)
