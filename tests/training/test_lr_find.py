"""The learning-rate range test: the suggestion rules on synthetic curves, the curve a real test
records (exponential lrs, divergence stop), that it leaves a later run untouched, and
`cnn-tui lr-find` (its one line, the JSON file, bad flags)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from cnn_tui import cli
from cnn_tui.commands import lr_find as lr_find_command
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.tools import lr_find

# fp32: the curves below are fp32's (bf16 autocast, where the CPU has it, diverges a few steps later)
TINY = dict(dataset="shapes", limit=120, batch_size=32, device="cpu", hidden_units=4, amp=False)
FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip


def synthetic(fn, steps: int = 100) -> tuple[list[float], list[float]]:
    lrs = lr_find.exponential_lrs(1e-7, 10.0, steps)
    return lrs, [fn(math.log10(lr)) for lr in lrs]


# --- the pieces, torch-free --------------------------------------------------------------------


def test_exponential_lrs_are_evenly_spaced_on_a_log_scale():
    lrs = lr_find.exponential_lrs(1e-7, 10.0, 100)
    assert len(lrs) == 100 and lrs[0] == 1e-7 and lrs[-1] == pytest.approx(10.0)
    ratios = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert all(r == pytest.approx(ratios[0]) for r in ratios) and ratios[0] > 1
    assert ratios[0] == pytest.approx(1e8 ** (1 / 99))


def test_smoothing_is_a_debiased_ema_with_fastai_beta():
    assert lr_find.BETA == 0.98
    assert lr_find.smooth([5.0, 5.0, 5.0]) == pytest.approx([5.0, 5.0, 5.0])  # debiased: no lag
    smoothed = lr_find.smooth([1.0, 3.0])
    assert smoothed[0] == 1.0
    assert smoothed[1] == pytest.approx((0.98 * 0.02 * 1 + 0.02 * 3) / (1 - 0.98**2))


def test_suggestion_on_a_clean_valley_is_the_steepest_point_well_before_the_minimum():
    # flat at 2.3, falls around lr 1e-3 (steepest there), lowest near 1e-1, then rises
    lrs, losses = synthetic(
        lambda x: 2.3 - 1.5 / (1 + math.exp(-3 * (x + 3))) + 0.6 * max(0, x + 1) ** 2
    )
    suggestion = lr_find.suggest(lrs, losses)
    assert suggestion is not None and suggestion.rule == "steepest"
    assert suggestion.lr == suggestion.steepest
    assert 3e-4 < suggestion.steepest < 3e-3  # the inflection at 1e-3
    low = min(range(len(losses)), key=losses.__getitem__)
    assert suggestion.minimum_lr == lrs[low]
    assert suggestion.minimum_div_10 == pytest.approx(lrs[low] / 10)
    assert suggestion.steepest < suggestion.minimum_div_10 < suggestion.minimum_lr


def test_suggestion_is_minimum_over_ten_when_the_steepest_point_is_close_to_the_minimum():
    # the fall is steepest at lr 0.05, the lowest point at 0.1: the steepest would be too bold
    lrs, losses = synthetic(
        lambda x: 2.3 - 1.5 / (1 + math.exp(-6 * (x + 1.3))) + 3 * max(0, x + 1) ** 2
    )
    suggestion = lr_find.suggest(lrs, losses)
    assert 0.02 < suggestion.steepest < suggestion.minimum_lr
    assert suggestion.rule == "minimum/10" and suggestion.lr == suggestion.minimum_div_10
    assert suggestion.lr < suggestion.steepest


def test_suggestion_falls_back_to_minimum_over_ten_without_a_descent():
    # the loss only rises: the steepest "descent" does not exist
    lrs, losses = synthetic(lambda x: 2.0 + 0.1 * (x + 7))
    suggestion = lr_find.suggest(lrs, losses)
    assert suggestion.rule == "minimum/10" and suggestion.steepest is None
    assert suggestion.lr == suggestion.minimum_div_10
    # the first tenth of the steps is left out: the minimum is the first point after it
    assert suggestion.minimum_lr == lrs[10]


def test_suggestion_falls_back_when_the_steepest_point_is_past_the_minimum():
    # lowest early (lr 1e-5), then a plateau, then a steeper fall late that never gets as low
    def fn(x: float) -> float:
        return 1.0 + 0.05 * (x + 5) ** 2 if x < -1 else 1.8 - 0.6 / (1 + math.exp(-8 * (x - 0)))

    lrs, losses = synthetic(fn)
    suggestion = lr_find.suggest(lrs, losses)
    assert suggestion.steepest is not None and suggestion.steepest > suggestion.minimum_lr
    assert suggestion.rule == "minimum/10" and suggestion.lr == suggestion.minimum_div_10


def test_suggestion_leaves_out_the_exploding_end_and_needs_three_points():
    lrs, losses = synthetic(lambda x: 2.0 - 0.1 * (x + 7), steps=60)
    losses[-5:] = [0.1, 0.1, 0.1, 0.1, 0.1]  # the last 5 points do not count
    suggestion = lr_find.suggest(lrs, losses)
    assert suggestion.minimum_lr == lrs[-6]
    assert lr_find.suggest([1e-3, 1e-2], [1.0, 0.5]) is None
    short = lr_find.suggest([1e-3, 1e-2, 1e-1], [1.0, 0.5, 0.9])  # too short to trim: all of it
    assert short is not None and short.minimum_lr == 1e-2


def test_summary_line_names_both_suggestions_and_which_one():
    curve = lr_find.Curve(50, 1e-7, 10.0)
    curve.lrs, curve.smoothed = synthetic(lambda x: 2.3 - 1.5 / (1 + math.exp(-3 * (x + 3))), 50)
    curve.losses = list(curve.smoothed)
    line = lr_find_command.summary_line(curve)
    assert "\n" not in line
    assert line.startswith("suggested lr ") and "(steepest descent;" in line
    assert "minimum ÷ 10:" in line and "50 of 50 steps" in line
    text = lr_find.plot_text(curve, 70, 15)
    assert "learning rate" in text and len(text.splitlines()) >= 10


# --- a real test -----------------------------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_range_test_records_an_exponential_curve_and_stops_on_divergence():
    seen = []
    curve = lr_find.range_test(
        TrainConfig(**TINY, optimizer="adam"),
        steps=60,
        start_lr=1e-4,
        end_lr=100.0,  # Adam at lr 100 blows up
        on_step=lambda *values: seen.append(values),
    )
    n = len(curve.lrs)
    assert 3 <= n < 60 and curve.stopped in ("diverged", "nan")
    planned = lr_find.exponential_lrs(1e-4, 100.0, 60)
    assert curve.lrs == planned[:n]  # the planned lrs in order, increasing
    assert all(b > a for a, b in zip(curve.lrs, curve.lrs[1:], strict=False))
    assert curve.smoothed == pytest.approx(lr_find.smooth(curve.losses))
    if curve.stopped == "diverged":  # the first point above 4x the minimum so far ends it
        assert curve.smoothed[-1] > lr_find.DIVERGE_FACTOR * min(curve.smoothed)
        for i, value in enumerate(curve.smoothed[:-1]):
            assert value <= lr_find.DIVERGE_FACTOR * min(curve.smoothed[: i + 1])
    assert [step for step, *_ in seen] == list(range(1, n + 1))
    assert curve.suggestion is not None and 1e-4 <= curve.suggestion.lr <= 100.0


@pytest.mark.usefixtures("one_torch_thread")
def test_range_test_can_be_cancelled_and_a_run_after_it_is_bit_identical(tmp_path):
    import threading

    import torch

    from cnn_tui.training.loop import engine
    from cnn_tui.training.runs import store as runs

    config = TrainConfig(**TINY, epochs=2, model="custom-cnn", augment="flip-crop")  # dropout
    engine.train(config, tmp_path / "before")
    stop = threading.Event()
    curve = lr_find.range_test(
        config, steps=30, on_step=lambda step, *_: step == 12 and stop.set(), stop=stop
    )
    assert curve.stopped == "cancelled" and len(curve.lrs) == 12
    lr_find.range_test(config, steps=10)  # and one that ran to the end
    engine.train(config, tmp_path / "after")
    before = torch.load(tmp_path / "before" / runs.CHECKPOINT_FILE, weights_only=True)
    after = torch.load(tmp_path / "after" / runs.CHECKPOINT_FILE, weights_only=True)
    assert before["model"].keys() == after["model"].keys()
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key

    def timeless(rows):
        return [
            {k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in rows
        ]

    assert timeless(before["history"]) == timeless(after["history"])
    assert before["optimizer"]["state"].keys() == after["optimizer"]["state"].keys()


# --- `cnn-tui lr-find` -------------------------------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_headless_prints_one_line_and_writes_the_curve(tmp_path, capsys):
    out = tmp_path / "curve.json"
    code = cli.main(["lr-find", *FAST, "--steps", "20", "--optimizer", "sgd", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("suggested lr "), captured.out
    assert f"curve written to {out}" in captured.err
    data = json.loads(out.read_text())
    n = data["steps_done"]
    assert data["steps"] == 20 and 3 <= n <= 20
    assert len(data["lrs"]) == len(data["losses"]) == len(data["smoothed"]) == n
    assert data["suggestion"]["rule"] in ("steepest", "minimum/10")
    assert set(data["suggestions"]) == {"steepest", "minimum_div_10"}
    assert (
        data["suggestion"]["lr"]
        == data["suggestions"][
            "steepest" if data["suggestion"]["rule"] == "steepest" else "minimum_div_10"
        ]
    )
    assert f"{data['suggestion']['lr']:.2e}" in lines[0]
    assert data["config"]["optimizer"] == "sgd" and data["device"] == "cpu"
    assert not list(tmp_path.glob("runs*"))  # nothing of a run is written


def test_headless_on_a_terminal_draws_the_plot(tmp_path, monkeypatch, capsys):
    curve = lr_find.Curve(30, 1e-7, 10.0)
    curve.lrs, curve.smoothed = synthetic(lambda x: 2.3 - 1.5 / (1 + math.exp(-3 * (x + 3))), 30)
    curve.losses = list(curve.smoothed)
    monkeypatch.setattr(lr_find, "range_test", lambda *a, **k: curve)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(lr_find_command, "_TerminalProgress", lambda: None)  # (no live bar)
    assert cli.main(["lr-find", *FAST, "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "smoothed loss vs learning rate" in out and out.splitlines()[-1].startswith("suggested")
    assert json.loads((tmp_path / "c.json").read_text())["lrs"] == curve.lrs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr must be below --end-lr"),
        (["--start-lr", "0.1", "--end-lr", "0.1"], "--start-lr must be below --end-lr"),
        (["--steps", "0"], "argument --steps: expected 5 to 10000, got 0"),
        (["--steps", "many"], "argument --steps: expected a whole number"),
        (["--start-lr", "-1"], "argument --start-lr: expected a learning rate in (0, 100]"),
        (["--end-lr", "nan"], "argument --end-lr: expected a learning rate"),
        (["--lr", "0"], "--lr must be greater than 0"),
        (["--json", "/no/such/folder/c.json"], "the folder /no/such/folder does not exist"),
        (["--json", "."], "--json . is a folder: give a file name"),
        (["--early-stop", "-1"], "--early-stop must be at least 0"),
        (["--run-dir", "x"], "unrecognized arguments: --run-dir"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    try:
        code = cli.main(["lr-find", *FAST, *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_lr_find_help_loads_no_torch():
    probe = (
        "import sys, contextlib, io\nfrom cnn_tui import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['lr-find', '--help'])\nprint('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
