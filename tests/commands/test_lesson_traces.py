"""`cnn-tui conv --no-ui` / `cnn-tui pool --no-ui`: the printed trace and its errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cnn_tui import cli
from cnn_tui.lessons import examples
from cnn_tui.lessons.naive import collect_steps
from cnn_tui.lessons.replay import leftovers_text
from cnn_tui.lessons.trace import step_line, trace_style, trace_text

STEP = re.compile(r"^(out|db|dw|dx_pad|dx)\[[\d,]+\] (\+=|=) .* (→|=) -?[\d.]+$")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_conv_trace_prints_header_arrays_every_step_and_the_result(capsys):
    code, out, err = run_cli(capsys, "conv", "--no-ui")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "conv2d: x (1, 1, 5, 5) * w (1, 1, 3, 3) + b (1,) → out (1, 1, 3, 3)"
    assert "  height: ⌊(5 + 2·0 − 3)/1⌋ + 1 = 3" in lines
    assert "x_pad[n=0, c=0]  (5×5) (= x, no padding)" in lines and "w[f=0, c=0]  (3×3)" in lines
    steps = [line for line in lines if STEP.match(line)]
    assert len(steps) == 90  # 9 output cells × (1 bias + 9 multiply-adds)

    example = examples.build_example("conv")
    x, w, b = example.x[0, 0], example.w[0, 0], example.b
    # every value in its array's format: the one-decimal inputs with one decimal (2 is "2.0",
    # zero is "0"), the output's sums with two
    one = lambda v: "0" if v == 0 else f"{v:.1f}"  # noqa: E731
    assert steps[0] == f"out[0,0] = b[0] = {one(b[0])}"
    product = f"{one(x[0, 1])}·" + (f"({one(w[0, 1])})" if w[0, 1] < 0 else one(w[0, 1]))
    running = b[0] + x[0, 0] * w[0, 0] + x[0, 1] * w[0, 1]
    assert steps[2] == f"out[0,0] += x_pad[0,1]·w[0,1] = {product} → {running:.2f}"
    out_values, _ = example.forward()
    grid = lines[lines.index("out[n=0, f=0]  (3×3)") + 1 :][:3]
    printed = np.array([[float(v) for v in row.split()] for row in grid])
    np.testing.assert_allclose(printed, out_values[0, 0], atol=5e-5)
    assert "backward:" not in out and "\x1b" not in out
    assert lines[-1].startswith("(add --backward for the backward pass")  # what to do next


def test_backward_trace_has_three_gradient_phases_in_order_and_a_passing_check(capsys):
    code, out, _ = run_cli(
        capsys, "conv", "--no-ui", "--backward", "--stride", "2x1", "--padding", "1"
    )
    assert code == 0
    titles = [line for line in out.splitlines() if line.startswith(("grad ", "backward:"))]
    assert [t.split(":")[0] for t in titles] == [
        "backward",
        "grad bias",
        "grad weight",
        "grad input",
        "grad input as a transposed convolution",
    ]
    assert "∂out/∂w = x_pad[2i+ki,j+kj]" in titles[2]
    lines = out.splitlines()
    assert sum(line.startswith("db[0] += dout[") for line in lines) == 15
    assert sum(line.startswith("dw[") and " += " in line for line in lines) == 135
    assert sum(line.startswith("dx_pad[") and "+= w[" in line for line in lines) == 135
    # dX again, gathered: every covered dx_pad cell reads F·KH·KW cells of the stuffed dout
    transposed = examples.build_example("conv", stride=(2, 1), padding=1).transposed_steps
    assert sum(line.startswith("dx_pad[") and "+= dout_up[" in line for line in lines) == (
        transposed
    )
    assert "dx as a transposed convolution equals the dX pass: max |Δ| 0.0e+00" in lines
    assert "dx = dx_pad without its padding (1):" in lines
    check = next(line for line in lines if line.startswith("gradient check"))
    assert float(re.search(r"max relative error (\S+)", check).group(1)) < 1e-6


def test_summary_counts_steps_instead_of_printing_them(capsys):
    code, out, _ = run_cli(capsys, "conv", "--no-ui", "--summary", "--backward")
    assert code == 0
    assert not any(STEP.match(line) for line in out.splitlines())
    assert "  90 steps (9 bias, 81 multiply-adds) into 9 out cells: 10 per cell" in out
    assert "  9 steps (9 adds) into 1 db cells: 9 per cell" in out
    assert "  81 steps (81 multiply-adds) into 9 dw cells: 9 per cell" in out
    assert "  81 steps (81 multiply-adds) into 25 dx_pad cells: 1 to 9 per cell" in out


def test_pool_traces_show_comparisons_routes_and_shares(capsys):
    code, out, _ = run_cli(capsys, "pool", "--no-ui", "--example", "overlap", "--backward")
    assert code == 0
    assert "out[0,0] = max(-∞, x[0,0]) = max(-∞, 1) → 1" in out
    assert "out[0,0] = max(out[0,0], x[2,2]) = max(4, 9) → 9" in out
    assert "dx[2,2] += dout[1,1] = 4 → 10" in out  # four windows share the 9
    code, out, _ = run_cli(capsys, "pool", "--no-ui", "--example", "avg-4x4", "--backward")
    assert "out[0,0] += x[0,1]·1/4 = 1·1/4 → 0.5" in out
    assert "dx[0,0] += dout[0,0]·1/4 = 1·1/4 → 0.25" in out
    code, out, _ = run_cli(
        capsys, "pool", "--no-ui", "--type", "avg", "--kernel", "3x2", "--summary"
    )
    assert "avgpool2d: x (1, 1, 4, 4) → out (1, 1, 1, 2)" in out
    assert "kernel 3×2, stride 3×2, average pooling" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv", "--kernel", "7"], "kernel 7x7 is larger than the padded input 5x5"),
        (["pool", "--kernel", "5"], "kernel 5x5 is larger than the input 4x4"),
        (["conv", "--example", "nope"], "no conv example named 'nope'"),
        (["conv", "--example", "basic-5x5", "--channels", "2"], "channels cannot be combined"),
        (["conv", "--height", "16", "--width", "16", "--channels", "4", "--filters", "4"], "steps"),
    ],
)
def test_semantic_errors_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv, "--no-ui")
    assert code == 2 and out == ""
    assert err.startswith("cnn-tui: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv", "--kernel", "0"], "kernel must be between 1 and 16, got 0"),
        (["conv", "--stride", "2y"], "stride must be a number or HxW like 3x2"),
        (["conv", "--height", "17"], "height must be between 1 and 16"),
        (["conv", "--padding", "5"], "padding must be between 0 and 4"),
        (["conv", "--batch", "3"], "batch must be between 1 and 2"),
        (["pool", "--type", "min"], "invalid choice"),
        (["pool", "--channels", "x"], "channels must be a whole number"),
    ],
)
def test_bad_flag_values_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--no-ui"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and err.count("\n") == 1


def test_every_example_traces(capsys):
    for info in examples.list_examples():
        code, out, _ = run_cli(capsys, info.op, "--no-ui", "--example", info.name, "--backward")
        assert code == 0 and f"example: {info.name}: {info.title}" in out


def test_step_line_formats_and_trace_text():
    example = examples.build_example("conv", padding=1)
    _, events = collect_steps(example.forward)
    style = trace_style(example)
    # one image, one channel, one filter: the cells are named as on the screen, by row, column
    assert step_line(events[0], style) == f"out[0,0] = b[0] = {example.b[0]:.1f}"
    assert step_line(events[1], style).startswith("out[0,0] += x_pad[0,0]·w[0,0] = 0·")
    text = trace_text(example, backward=True)
    assert "x_pad = x with padding 1 (zeros around it):" in text
    assert text.count("\n") > 90 + 9 + 81 + 81


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "cnn_tui", *argv]


def test_plain_ascii_output_when_the_encoding_has_no_symbols():
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        _cli("conv", "--no-ui", "--backward"), capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("ascii")  # raises if anything is not ASCII
    assert "floor((5 + 2*0 - 3)/1) + 1 = 3" in text and " -> " in text


def test_a_closed_pipe_ends_the_trace_quietly():
    proc = subprocess.Popen(
        _cli("conv", "--no-ui", "--backward", "--height", "16", "--width", "16"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"conv2d:")
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


@pytest.mark.parametrize("summary", [False, True])
def test_the_dx_header_names_the_stride_leftovers(capsys, summary):
    argv = ["conv", "--no-ui", "--backward", "--height", "8", "--width", "8", "--stride", "2"]
    code, out, _ = run_cli(capsys, *argv, *(["--summary"] if summary else []))
    assert code == 0
    lines = out.splitlines()
    title = next(k for k, line in enumerate(lines) if line.startswith("grad input: "))
    left = leftovers_text(examples.build_example("conv", height=8, width=8, stride=2))
    assert lines[title + 1] == f"  {left}"
    assert left.startswith("stride 2: x_pad row 7, col 7 (15 cells) in no window")
    assert sum(left in line for line in lines) == 1  # dX's header only
    # no leftovers (stride 1): the header as before
    code, out, _ = run_cli(capsys, "conv", "--no-ui", "--backward")
    assert "in no window" not in out


# the heading of a whole plane in any trace: every leading axis named, then its size
PLANE = re.compile(r"^(\S+)\[([a-z]=\d+(?:, [a-z]=\d+)*)\]  \((\d+)×(\d+)\)")


@pytest.mark.parametrize(
    "argv",
    [
        ("conv", "--backward", "--no-ui", "--padding", "1"),
        ("conv", "--backward", "--no-ui", "--channels", "2", "--filters", "2"),
        ("pool", "--backward", "--no-ui"),
        ("net", "--no-ui"),
        ("batchnorm", "--no-ui"),
        ("dropout", "--no-ui"),
    ],
)
def test_every_trace_heads_a_whole_plane_with_its_axes_named(capsys, argv):
    """`x_pad[n=0, c=0]  (7×7)`, never `x_pad[0,0]  (7×7)`, which reads as one cell
    (`step_text.plane_header`, shared by the three traces)."""
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    lines = out.splitlines()
    headings = [PLANE.match(line) for line in lines]
    assert sum(m is not None for m in headings) >= 2
    bare = re.compile(r"^\S+\[\d+(,\d+)*\]  \(\d+×\d+\)")
    assert not [line for line in lines if bare.match(line)]
    for k, match in enumerate(headings):
        if match is None:
            continue
        rows, cols = int(match.group(3)), int(match.group(4))
        grid = lines[k + 1 : k + 1 + rows]  # the plane's rows follow, `cols` values each
        assert all(len(row.split()) == cols for row in grid), (lines[k], grid)
    if argv[:2] == ("conv", "--backward") and "--channels" in argv:
        assert "w[f=1, c=1]  (3×3)" in lines and "dout[n=0, f=1]  (3×3)" in lines
