"""`cnn-tui batchnorm --no-ui` and `cnn-tui dropout --no-ui`: the printed traces, and their errors."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from cnn_tui import cli
from cnn_tui.commands import COMMANDS
from cnn_tui.lessons.layer_lesson import build_layer_example, run_layer
from cnn_tui.lessons.layer_replay import layer_formats
from cnn_tui.lessons.layer_trace import HEADINGS, layer_trace_style, step_line
from cnn_tui.lessons.settings import LAYER_DEFAULTS, LAYER_SETTINGS

# a step line: a cell, = or +=, the arithmetic, → and the value written
STEP = re.compile(r"^\S+\[[\d,]+\] (\+=|=) .* → -?[\d.]+( \((kept|dropped)\))?$")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_batchnorm_trace_prints_every_forward_stage_with_its_rule_and_steps(capsys):
    code, out, err = run_cli(capsys, "batchnorm", "--no-ui")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "batch normalisation (training): x (2, 2, 3, 3), M = 18 values per channel, ε = 1e-05, "
        "momentum 0.1"
    )
    assert "x[n=1, c=1]  (3×3)" in lines and any(line.startswith("γ = [") for line in lines)
    assert HEADINGS["forward"] in lines and HEADINGS["backward"] not in lines
    run = run_layer(build_layer_example("batchnorm"))
    style = layer_trace_style(layer_formats(run))  # the screen's number formats
    for stage in (s for s in run.stages if s.direction == "forward"):
        k = lines.index(f"{stage.title}: {stage.rule}   ({len(stage.events):,} steps)")
        assert lines[k + 1] == f"  {stage.source}"
        printed = lines[k + 2 : k + 2 + len(stage.events)]
        assert printed == [step_line(e, style) for e in stage.events]
        assert all(STEP.match(line) for line in printed), printed[:2]
    assert "running_var′ = [" in out
    assert lines[-1].startswith("(add --backward for the backward pass: dβ, dγ")


def test_batchnorm_backward_trace_ends_with_the_gradient_check(capsys):
    code, out, _ = run_cli(capsys, "batchnorm", "--no-ui", "--backward", "--batch", "1",
                           "--channels", "1", "--height", "2", "--width", "2", "--eps", "0.01")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert HEADINGS["backward"] in lines
    for part in ("dβ", "dγ", "dx̂", "dσ²", "dμ", "dx"):
        assert any(line.startswith(f"backward · batch norm · {part}: ") for line in lines), part
    assert "with ∂y/∂x̂ = γ[c]: dx̂ = dy·γ" in out and "\ndx̂[0,0,0,0] = dy[0,0,0,0]·γ[0] = " in out
    assert lines[-1].startswith("gradient check (central differences, eps 1e-06): max relative")
    error = float(re.search(r"max relative error (\S+)", lines[-1]).group(1))
    assert error < 1e-6


def test_dropout_trace_the_mask_the_scaling_and_eval_mode(capsys):
    code, out, _ = run_cli(capsys, "dropout", "--no-ui", "--backward", "--p", "0.25",
                           "--seed", "4")  # fmt: skip
    assert code == 0
    assert out.splitlines()[0] == "dropout (training): x (1, 1, 4, 4), p = 0.25, keep 1 − p = 0.75"
    assert "y = x·mask/(1 − p) = x·mask·1.333" in out
    assert "in eval mode (model.eval()) dropout is the identity: y = x" in out
    steps = [line for line in out.splitlines() if line.startswith("mask[") and " = 1 if " in line]
    assert len(steps) == 16 and all(STEP.match(line) for line in steps)
    example = build_layer_example("dropout", p=0.25, seed=4)
    kept = [line.endswith("(kept)") for line in steps]
    assert kept == [bool(v) for v in example.mask.reshape(-1)]
    assert "gradient check (central differences" in out.splitlines()[-1]


def test_summary_counts_instead_of_printing_steps(capsys):
    code, out, _ = run_cli(capsys, "batchnorm", "--no-ui", "--summary", "--backward")
    assert code == 0
    assert not any(STEP.match(line) for line in out.splitlines())
    assert "  36 steps (36 multiply-adds) into 2 cells of μ" in out
    assert "  36 steps (36 dx sums) into 36 cells of dx" in out
    assert "  4 steps (4 running averages) into 4 cells of running_mean′, running_var′" in out


def test_the_commands_are_registered_with_screens():
    for name in ("batchnorm", "dropout"):
        assert COMMANDS[name].screen and COMMANDS[name].load().run is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["batchnorm", "--eps", "0"], "eps must be above 0 and at most 1, got 0"),
        (["batchnorm", "--momentum", "2"], "momentum must be above 0 and at most 1"),
        (["batchnorm", "--batch", "5"], "batch must be between 1 and 4, got 5"),
        (["batchnorm", "--height", "x"], "height must be a whole number"),
        (["dropout", "--p", "1"], "p must be above 0 and at most 0.9, got 1"),
        (["dropout", "--p", "nan"], "p must be above 0 and at most 0.9"),
        (["dropout", "--eps", "0.1"], "unrecognized arguments: --eps"),
        (["dropout", "--seed", "-1"], "seed must be between 0 and"),
    ],
)
def test_bad_flag_values_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--no-ui"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and err.count("\n") == 1


def test_too_few_values_per_channel_is_a_usage_error(capsys):
    code, out, err = run_cli(capsys, "batchnorm", "--no-ui", "--batch", "1", "--height", "1",
                             "--width", "1")  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("cnn-tui: error: batch normalisation needs at least 2 values")
    assert err.count("\n") == 1


def test_an_ascii_stdout_gets_an_ascii_trace_with_no_escapes():
    """x̂, σ², μ, √, ½ are spelled out (`streams.SPELLINGS`): xhat, sigma^2, u, sqrt, 1/2."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    for op in ("batchnorm", "dropout"):
        proc = subprocess.run(
            [sys.executable, "-m", "cnn_tui", op, "--no-ui", "--backward", "--height", "2"],
            capture_output=True, env=env, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.decode("ascii")
        assert "\\u" not in out and "\\x" not in out
        if op == "batchnorm":
            assert "\ndxhat[0,0,0,0] = dy[0,0,0,0]*gamma[0] = " in out
            assert "(-1/2)(sigma^2[0] + eps)^(-3/2)" in out


def test_the_flags_are_the_settings_table():
    """Each lesson has one flag per setting of `LAYER_DEFAULTS[op]`, with its default in its help
    (after --example and --list-examples, the lesson files' flags)."""
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for op, defaults in LAYER_DEFAULTS.items():
        child = subparsers.choices[op]
        group = next(g for g in child._action_groups if g.title == "example")
        dests = [action.dest for action in group._group_actions]
        assert dests == ["example", "list_examples", *defaults]
        for action in group._group_actions[2:]:
            setting = LAYER_SETTINGS[action.dest]
            assert f"default {setting.format(defaults[action.dest])}" in action.help
