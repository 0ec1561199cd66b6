"""Every lesson fact lives once: the places that show a fact all read it from its one definition.

- which settings each op has: `settings.DEFAULTS` / `settings.FIELDS` (the flags, the edit form's
  rows, `build_example`, `LessonExample.settings`);
- what a named example fixes: `settings.FIXED_BY_EXAMPLE` (the --example help, the greyed-out
  form fields, `build_example`'s check);
- the pool stride default (None = the kernel size): `naive.pool_stride`;
- the text of one step: `step_text.step_text` (the trace's step line and the step panel);
- the output size: `naive.output_size` / `output_size_formula` / `output_size_rule`.
"""

from __future__ import annotations

import argparse
import asyncio
import re

import pytest
from textual.widgets import Input, Select

from cnn_tui.commands import lesson_flags
from cnn_tui.errors import UsageError
from cnn_tui.lessons import naive
from cnn_tui.lessons.examples import build_example, list_examples, load_example
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import build_replays, size_formula
from cnn_tui.lessons.settings import (
    DEFAULTS,
    FIELDS,
    FIXED_BY_EXAMPLE,
    SETTINGS,
    default_text,
    free_with_example,
)
from cnn_tui.lessons.step_text import step_text
from cnn_tui.lessons.trace import step_line, trace_style, trace_text
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.form import LessonFormScreen
from cnn_tui.ui.lessons.screen import LessonScreen

OPS = tuple(DEFAULTS)

# a few random examples beside the files: padding, strides, several channels/filters/images
RANDOM = [
    ("conv", {}),
    ("conv", {"channels": 2, "filters": 2, "batch": 2, "kernel": (3, 2), "padding": (1, 0)}),
    ("conv", {"height": 6, "width": 5, "stride": (2, 1), "padding": 1, "seed": 3}),
    ("pool", {}),
    ("pool", {"channels": 2, "kernel": 3, "stride": 1, "height": 5, "width": 5, "seed": 2}),
    ("pool", {"pool_type": "avg", "kernel": (3, 2), "stride": (1, 2), "height": 5}),
]


def every_example():
    for op, params in RANDOM:
        yield build_example(op, **params)
    for info in list_examples():
        yield load_example(info.name)


def flag_dests(op: str) -> list[str]:
    parser = argparse.ArgumentParser()
    lesson_flags.add_arguments(parser, op)
    skipped = ("help", "backward", "summary", "list_examples")
    return [a.dest for a in parser._actions if a.dest not in skipped]


# --------------------------------------------------------------------------- settings


def test_the_fields_of_each_op_are_the_keys_of_its_defaults_and_all_have_a_setting() -> None:
    assert FIELDS == {op: tuple(defaults) for op, defaults in DEFAULTS.items()}
    for op in OPS:
        assert set(FIELDS[op]) <= set(SETTINGS)
        assert set(FIXED_BY_EXAMPLE[op]) <= set(FIELDS[op])
    assert set(SETTINGS) == {name for fields in FIELDS.values() for name in fields}


@pytest.mark.parametrize("op", OPS)
def test_the_flags_are_exactly_the_fields_of_the_op(op: str) -> None:
    assert flag_dests(op) == ["example", *FIELDS[op]]


@pytest.mark.parametrize("op", OPS)
def test_the_flags_accept_and_reject_what_the_settings_do(op: str) -> None:
    parser = argparse.ArgumentParser()
    lesson_flags.add_arguments(parser, op)
    for name in FIELDS[op]:
        setting = SETTINGS[name]
        flag = setting.flag or f"--{name}"
        good = setting.choices[-1] if setting.kind == "choice" else str(setting.high)
        assert getattr(parser.parse_args([flag, good]), name) == setting.parse(good)
        with pytest.raises(ValueError):
            setting.parse(str(setting.high + 1) if setting.kind != "choice" else "nope")


@pytest.mark.parametrize("op", OPS)
def test_build_example_takes_exactly_the_fields_of_the_op(op: str) -> None:
    example = build_example(op, **DEFAULTS[op])
    assert list(example.settings()) == list(FIELDS[op])
    for name in SETTINGS.keys() - set(FIELDS[op]):
        with pytest.raises(UsageError, match=f"{name} is not a setting of the {op} lesson"):
            build_example(op, **{name: DEFAULTS["conv" if op == "pool" else "pool"][name]})


def test_an_example_rebuilds_from_its_own_settings() -> None:
    for op, params in RANDOM:
        example = build_example(op, **params)
        again = build_example(op, **example.settings())
        assert again.settings() == example.settings()
        assert (again.x == example.x).all() and (again.dout == example.dout).all()


def test_a_named_example_fixes_exactly_fixed_by_example() -> None:
    for info in list_examples():
        example = load_example(info.name)
        settings = example.settings()
        for name in FIXED_BY_EXAMPLE[info.op]:
            with pytest.raises(UsageError, match=f"{name} cannot be combined with example"):
                build_example(info.op, example=info.name, **{name: settings[name]})
        free = {name: settings[name] for name in free_with_example(info.op)}
        assert build_example(info.op, example=info.name, **free).settings() == settings


@pytest.mark.parametrize("op", OPS)
def test_the_example_help_names_the_settings_an_example_leaves_free(op: str) -> None:
    parser = argparse.ArgumentParser()
    lesson_flags.add_arguments(parser, op)
    action = next(a for a in parser._actions if a.dest == "example")
    free = re.search(r"so only (.*) can be changed", action.help).group(1)
    assert re.split(r", | and ", free) == [SETTINGS[n].flag_name for n in free_with_example(op)]


def test_the_edit_form_rows_are_the_fields_and_an_example_greys_out_what_it_fixes(
    monkeypatch,
) -> None:
    monkeypatch.setattr(LessonScreen, "run_checks_default", False)

    async def run() -> None:
        for op in OPS:
            app = CnnTuiApp()
            async with app.run_test(size=(120, 40)) as pilot:
                screen = LessonScreen(op, {})
                await app.push_screen(screen)
                await pilot.pause()
                await pilot.press("e")
                form = app.screen
                assert isinstance(form, LessonFormScreen)
                ids = [
                    widget.id.removeprefix("form-")
                    for widget in form.query("Input, Select")
                    if widget.id not in ("form-example", "form-array")
                ]
                assert sorted(ids) == sorted(FIELDS[op])
                labels = [label.content for label in form.query(".lesson-form-label")]
                for name in FIELDS[op]:
                    assert SETTINGS[name].label in labels
                for name in ids:
                    widget = form.query_one(f"#form-{name}")
                    assert isinstance(widget, Select if SETTINGS[name].kind == "choice" else Input)
                form.query_one("#form-example", Select).value = list_examples(op)[0].name
                await pilot.pause()
                disabled = [name for name in ids if form.query_one(f"#form-{name}").disabled]
                assert sorted(disabled) == sorted(FIXED_BY_EXAMPLE[op])

    asyncio.run(run())


# --------------------------------------------------------------------------- pool stride


def test_the_pool_stride_default_is_the_kernel_everywhere() -> None:
    assert DEFAULTS["pool"]["stride"] is None
    assert naive.pool_stride((3, 2), None) == (3, 2) and naive.pool_stride((3, 2), 1) == (1, 1)
    example = build_example("pool", height=6, width=6, kernel=(3, 2))
    assert example.stride == (3, 2)
    counts = naive.count_steps("maxpool2d", example.x.shape, kernel_size=(3, 2))
    assert counts == example.step_counts()
    out, _ = naive.maxpool2d_forward(example.x, (3, 2))
    assert out.shape == example.output_shape == (1, 1, 2, 3)
    assert "(default the kernel size" in SETTINGS["stride"].help.format(
        default=default_text("pool", "stride")
    )


# --------------------------------------------------------------------------- step text


_ARROW_VALUE = re.compile(r"→ (\S+)")


def test_the_trace_and_the_step_panel_write_every_step_with_step_text() -> None:
    for example in every_example():
        style = trace_style(example)  # the lesson's number formats, as the screen's
        for replay in OpReplay(example).replays.values():
            for position in range(1, replay.total + 1):
                replay.seek(position)
                event = replay.current
                panel = replay.step_lines()
                assert panel[:2] == list(step_text(event, replay.text_style))
                line = step_line(event, style)
                assert line == " ".join(step_text(event, style))
                # the same step in the same words: the same cell names and operator (the panel
                # adds a note in brackets), the same result
                formula, _ = step_text(event, style)
                assert panel[0].startswith(formula)
                assert "−" not in line + panel[1]  # one minus sign for numbers: ASCII "-"
                trace_values = _ARROW_VALUE.findall(line)
                panel_values = _ARROW_VALUE.findall(panel[1])
                assert len(trace_values) == len(panel_values) <= 1
                # one format per array: the trace and the panel print the same digits
                assert trace_values == panel_values


def test_the_trace_prints_the_step_lines_it_formats() -> None:
    example = build_example("pool", example="overlap")
    text = trace_text(example, backward=True)
    style = trace_style(example)
    for replay in build_replays(example):
        for event in replay.events:
            assert step_line(event, style) in text


# --------------------------------------------------------------------------- output size


def test_every_output_size_comes_from_naive_output_size() -> None:
    for example in every_example():
        height, width = example.x.shape[2:]
        (kh, kw), (sh, sw), (ph, pw) = example.kernel, example.stride, example.padding
        oh, ow = naive.output_size(height, kh, sh, ph), naive.output_size(width, kw, sw, pw)
        assert example.output_shape[2:] == (oh, ow) == example.forward()[0].shape[2:]
        pooling = example.op == "pool"
        rows = naive.output_size_formula(height, kh, sh, ph, pooling=pooling)
        cols = naive.output_size_formula(width, kw, sw, pw, pooling=pooling)
        assert rows.endswith(f"= {oh}") and cols.endswith(f"= {ow}")
        assert rows in size_formula(example) and cols in size_formula(example)
        lines = trace_text(example, summary=True).splitlines()
        assert f"  height: {rows}" in lines and f"  width:  {cols}" in lines
        rule = naive.output_size_rule(twice_padding=None if pooling else "2P")
        assert rule in size_formula(example)
        assert ("2P" in rule) == ("+ 2·" in rows) == (not pooling)
