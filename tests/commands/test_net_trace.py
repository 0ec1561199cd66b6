"""`cnn-tui net --no-ui`: the printed trace of the whole tiny network, and its errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from cnn_tui import cli
from cnn_tui.lessons.net_replay import loss_format, net_formats
from cnn_tui.lessons.net_trace import HEADINGS, net_trace_style, net_trace_text, step_line
from cnn_tui.lessons.network import build_net_example, run_network, run_training

STEP = re.compile(r"^[a-zA-Z0-9_′]+(\[[\d,]+\])? (\+=|=) .*(→ |= )-?[\d.]+")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_trace_prints_every_stage_in_order_with_its_rule_source_and_steps(capsys):
    code, out, err = run_cli(capsys, "net", "--no-ui")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "network: x 6×6 → conv 2×3×3 → ReLU → max-pool 2×2 → flatten 8 → linear 8→2 → softmax-CE"
    )
    example = build_net_example()
    assert lines[1] == f"example: net-vertical-edge: {example.title}"
    assert "label y = 0 (vertical edge), learning rate α = 0.1" in lines
    assert (
        "x[n=0, c=0]  (6×6)" in lines
        and "w1[f=1, c=0]  (3×3)" in lines
        and "b1 = [0.05, 0.05]" in lines
    )
    # the passes in order, each stage once, in the order of the lesson screen
    headings = [line for line in lines if line.startswith("== ")]
    assert headings == [heading.format(optimizer="SGD") for heading in HEADINGS.values()]
    run = run_network(example)
    style = net_trace_style(net_formats(run))
    titles = [line.split(":")[0] for line in lines if line.startswith(tuple(HEADINGS))]
    assert titles == [stage.title for stage in run.stages]
    for stage in run.stages:
        title_line = next(k for k, line in enumerate(lines) if line.startswith(f"{stage.title}:"))
        assert stage.rule in lines[title_line] and lines[title_line + 1] == f"  {stage.source}"
        if stage.events:
            assert lines[title_line].endswith(f"({len(stage.events):,} steps)")
            printed = lines[title_line + 2 : title_line + 2 + len(stage.events)]
            assert printed == [step_line(e, style) for e in stage.events]
            assert all(STEP.match(line) for line in printed), printed[:3]
    events = sum(len(stage.events) for stage in run.stages)
    assert sum(1 for line in lines if STEP.match(line)) == events == 1149
    assert "loss L = −log p[0] = 0.795" in lines
    assert "  L = 0.795 → L′ = 0.0542 (-0.741: lower)" in lines  # L as everywhere
    assert "p′ = [0.9473, 0.0527]" in lines and "L′ = 0.0542" in lines
    check = lines[-1]
    assert check.startswith("gradient check (central differences, eps 1e-06): max relative")
    assert float(re.search(r"error (\S+) \(", check).group(1)) < 1e-6
    assert "\x1b" not in out


def test_the_steps_read_as_the_layers_compute(capsys):
    _, out, _ = run_cli(capsys, "net", "--no-ui")
    lines = out.splitlines()
    assert "z1[0,0,0,0] = b1[0] = 0.05" in lines
    assert "z1[0,0,0,0] += x[0,0,0,0]·w1[0,0,0,0] = 0.2·(-1) → -0.15" in lines
    assert "a1[0,0,0,0] = max(0, z1[0,0,0,0]) = max(0, -0.15) → 0" in lines
    assert "h[0,1] = m1[0,0,0,1] = 2.45" in lines
    assert "L = −log(p[0,0]) = −log(0.4514) → 0.795" in lines
    assert "dz2[0,0] = p[0,0] − y[0,0] = 0.4514 − 1 → -0.5486" in lines
    assert any(line.startswith("da1[0,0,0,1] += dm1[0,0,0,0] = ") for line in lines)
    assert any(
        line.startswith("dz1[0,0,0,0] = da1[0,0,0,0] where z1[0,0,0,0] > 0") for line in lines
    )
    assert "b2′[0] = b2[0] − α·db2[0] = 0 − 0.1·(-0.549) → 0.0549" in lines


def test_summary_counts_the_steps_of_each_stage(capsys):
    code, out, _ = run_cli(capsys, "net", "--no-ui", "--summary")
    assert code == 0
    lines = out.splitlines()
    assert "  320 steps (32 bias, 288 multiply-adds) into 32 z1 cells" in lines
    softmax = "  9 steps (2 comparisons, 2 exps, 2 adds, 2 divisions, 1 log) into 7 cells of "
    assert softmax + "zmax, e, s, p, L" in lines
    assert "  32 steps (32 masks) into 32 dz1 cells" in lines
    assert "  8 steps (8 routes) into 8 da1 cells" in lines
    assert "  18 steps (18 updates) into 18 w1′ cells" in lines
    assert not any(line.startswith("z1[0,0,0,0] +=") for line in lines)
    assert lines[-1].startswith("gradient check")


def test_flags_set_the_example_label_and_learning_rate(capsys):
    code, out, _ = run_cli(
        capsys, "net", "--no-ui", "--example", "net-horizontal-edge", "--label", "0", "--lr", "0.5"
    )
    assert code == 0
    assert "example: net-horizontal-edge: " in out
    assert "label y = 0 (vertical edge), learning rate α = 0.5" in out
    assert "α = 0.5: each weight takes a small step" in out


def test_net_trace_text_is_what_the_cli_prints(capsys):
    _, out, _ = run_cli(capsys, "net", "--no-ui", "--summary")
    assert out == net_trace_text(build_net_example(), summary=True)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--label", "3"], "label must be a class of the example, 0 to 1, got 3"),
        (["--label", "x"], "argument --label: label must be a whole number"),
        (["--lr", "-1"], "argument --lr: lr must be above 0 and at most 10, got -1"),
        (["--example", "nope"], "no net example named 'nope'"),
        (["--example", "basic-5x5"], "basic-5x5.toml is a conv example; open it with cnn-tui conv"),
        (["--steps", "0"], "argument --steps: steps must be between 1 and 50, got 0"),
        (["--steps", "51"], "argument --steps: steps must be between 1 and 50, got 51"),
        (["--steps", "two"], "argument --steps: steps must be a whole number, got 'two'"),
        (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, argv, message):
    try:
        code = cli.main(["net", "--no-ui", *argv])
    except SystemExit as exited:
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_without_a_utf8_terminal_the_trace_is_ascii():
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_tui", "net", "--no-ui", "--summary"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.isascii()
    assert "update * SGD * w1: w1' = w1 - alpha*dw1 with alpha = 0.1" in proc.stdout


def test_the_trace_runs_without_textual_or_torch():
    code = (
        "import contextlib, io, sys\n"
        "from cnn_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['net', '--no-ui']) == 0\n"
        "print(sorted(m for m in ('textual', 'torch') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


def test_steps_and_optimizer_print_each_step_s_loss_and_the_summary(capsys):
    code, out, err = run_cli(capsys, "net", "--no-ui", "--steps", "3", "--optimizer", "adam")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "3 training steps, optimizer Adam (β1 = 0.9, β2 = 0.999, ε = 1e-08)" in lines
    assert [line for line in lines if line.startswith("==== ")] == [
        f"==== training step {step} of 3 ====" for step in (1, 2, 3)
    ]
    assert lines.count("== update: one Adam step ==") == 3
    training = run_training(build_net_example(steps=3, optimizer="adam"))
    loss = loss_format(training)  # L's one format over the run: 3 significant digits
    losses = [loss(value) for value in training.losses]
    assert losses == ["0.795", "0.658", "0.540", "0.438"]  # Adam's default α, 0.01
    for step in (1, 2, 3):
        assert f"step {step}: loss {losses[step - 1]} → {losses[step]}" in lines
    assert f"loss per step (before step 1, then after each): {', '.join(losses)}" in lines
    p = training.true_probabilities()
    assert (
        "summary: after 3 Adam steps, loss 0.795 → 0.438, p[0] (the true class, vertical edge) "
        f"0.451 → {p[-1]:.3f}"
    ) in lines
    # dw1 with the digits m′ needs: 0.1·0.0987 gives 0.00987 (not 0.1·0.099)
    assert (
        "m_w1′[0,0,0,0] = β1·m_w1[0,0,0,0] + (1 − β1)·dw1[0,0,0,0] = 0.9·0 + 0.1·0.0110 → 0.00110"
        in lines
    )
    assert (
        "m_w1′[0,0,0,1] = β1·m_w1[0,0,0,1] + (1 − β1)·dw1[0,0,0,1] = 0.9·0 + 0.1·0.0987 → 0.00987"
        in lines
    )
    # every step of every training step is printed
    expected = []
    for run in training.runs:  # (the formats are the run's: made once per run)
        style = net_trace_style(net_formats(run, loss))
        expected += [step_line(e, style) for stage in run.stages for e in stage.events]
    known = set(expected)
    assert [line for line in lines if line in known] == expected
    assert lines[-1].startswith("gradient check")


def test_one_sgd_step_ends_with_the_summary(capsys):
    _, out, _ = run_cli(capsys, "net", "--no-ui", "--summary")
    lines = out.splitlines()
    assert "1 training step, optimizer SGD" in lines
    assert "loss per step (before step 1, then after each): 0.795, 0.0542" in lines
    assert (
        "summary: after 1 SGD step, loss 0.795 → 0.0542, p[0] (the true class, vertical edge) 0.451 → 0.947"
    ) in lines
    assert not any(line.startswith("==== training step") for line in lines)
