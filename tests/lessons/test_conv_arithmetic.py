"""Dilation, padding same/valid, the true convolution and the transposed-convolution view of
dX (issue 14, part 3), each against PyTorch's autograd and conv_transpose2d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_tui.errors import UsageError
from cnn_tui.lessons import naive
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.replay import build_replays, compare_with_torch, transposed_replay
from cnn_tui.lessons.trace import trace_text

# (H, W, K, stride, padding, dilation, flip): strides that do not divide, dilations, rectangles
CASES = [
    (7, 6, 3, 2, 1, 2, False),
    (7, 7, 3, 2, 0, 1, True),
    (8, 5, 2, 3, 1, 2, True),
    (6, 7, (3, 2), (1, 2), (1, 0), (2, 1), False),
]


@pytest.mark.parametrize("case", CASES)
def test_dilated_and_flipped_conv_match_autograd_and_conv_transpose2d(case) -> None:
    height, width, kernel, stride, padding, dilation, flip = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(1)
    x, w, b = (
        rng.standard_normal((2, 2, height, width)),
        rng.standard_normal((3, 2, kh, kw)),
        rng.standard_normal(3),
    )
    out, cache = naive.conv2d_forward(x, w, b, stride, padding, dilation=dilation, flip=flip)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = naive.conv2d_backward(dout, cache)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    kernel_t = torch.flip(wt, (2, 3)) if flip else wt
    ref = F.conv2d(xt, kernel_t, bt, stride=stride, padding=padding, dilation=dilation)
    ref.backward(torch.tensor(dout))
    for mine, theirs in ((out, ref.detach()), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-12, atol=1e-12)
    # dX as one convolution of the stuffed dout with the rotated kernel: conv_transpose2d
    gathered = naive.conv2d_input_grad_transposed(dout, cache)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    reached = [
        (o - 1) * s - 2 * p + d * (k - 1) + 1
        for o, s, p, d, k in zip(
            out.shape[2:], pair(stride), pair(padding), pair(dilation), (kh, kw), strict=True
        )
    ]
    extra = tuple(n - r for n, r in zip((height, width), reached, strict=True))
    transposed = F.conv_transpose2d(
        torch.tensor(dout), kernel_t.detach(), stride=stride, padding=padding,
        output_padding=extra, dilation=dilation,
    )  # fmt: skip
    np.testing.assert_allclose(gathered, transposed.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gathered, dx, rtol=1e-12, atol=1e-12)
    counts = naive.count_steps(
        "conv2d", x.shape, w.shape, stride=stride, padding=padding, dilation=dilation,
        transposed=True,
    )  # fmt: skip
    _, events = naive.collect_steps(naive.conv2d_input_grad_transposed, dout, cache)
    assert len(events) == counts["grad_input_transposed"]
    check = naive.gradient_check(
        "conv2d", x, w, b, stride=stride, padding=padding, dilation=dilation, flip=flip
    )
    assert check.passed(), check.summary()


def test_the_lesson_example_checks_its_new_settings_against_pytorch() -> None:
    example = build_example(
        "conv", height=7, width=7, stride=2, dilation=2, conv_mode="convolution", channels=2
    )
    assert example.flip and example.dilation == (2, 2) and example.output_shape[2:] == (2, 2)
    assert compare_with_torch(example) < 1e-12
    assert example.gradient_check().passed()
    assert example.settings()["conv_mode"] == "convolution"
    assert build_example("conv", **example.settings()).output_shape == example.output_shape


def test_padding_same_and_valid_follow_pytorch() -> None:
    same = build_example("conv", height=6, width=5, kernel=3, dilation=2, padding="same")
    assert same.padding == (2, 2) and same.padding_rule == "same"
    assert same.output_shape[2:] == (6, 5)  # the output keeps the input's size
    x = torch.tensor(same.x)
    ref = F.conv2d(x, torch.tensor(same.w), torch.tensor(same.b), padding="same", dilation=2)
    np.testing.assert_allclose(same.forward()[0], ref.numpy(), atol=1e-12)
    assert build_example("conv", padding="valid").padding == (0, 0)
    assert same.settings()["padding"] == "same"
    with pytest.raises(UsageError, match="padding same needs an odd kernel"):
        build_example("conv", kernel=2, padding="same")
    with pytest.raises(UsageError, match="padding same needs stride 1"):
        build_example("conv", stride=2, padding="same")
    with pytest.raises(UsageError, match="padding must be same, valid, a number"):
        build_example("conv", padding="half")


def test_a_dilated_kernel_larger_than_the_input_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="with dilation 4x4 spans 9x9"):
        build_example("conv", height=5, width=5, kernel=3, dilation=4)


def test_the_transposed_view_replays_dout_up_into_dx_pad() -> None:
    example = build_example("conv", stride=2, padding=1, seed=4)
    replay = transposed_replay(example)
    assert replay is not None and replay.total == example.transposed_steps
    replay.seek(replay.total)
    dx = example.backward(example.forward()[1])["dx"]
    np.testing.assert_allclose(replay.values("dx_pad")[:, :, 1:-1, 1:-1], dx, atol=1e-12)
    assert transposed_replay(build_example("pool")) is None
    rules = replay.rule_lines()
    assert rules[0].startswith("dx_pad[r,s] = Σ_ki,kj dout_up[r+ki,s+kj]·w[2−ki,2−kj]")
    assert "S−1 = 1 zeros between cells" in rules[1]


def test_the_trace_shows_dilation_mode_and_the_transposed_view() -> None:
    example = build_example("conv", height=7, width=7, dilation=2, conv_mode="convolution")
    text = trace_text(example, backward=True)
    assert "kernel 3×3, stride 1, padding 0, dilation 2" in text
    assert "computes: convolution (the kernel rotated by 180°, a true convolution" in text
    assert "⌊(7 + 2·0 − 2·(3 − 1) − 1)/1⌋ + 1 = 3" in text
    assert "forward: out[i,j] = b + Σ_ki,kj x_pad[i+2ki,j+2kj]·w[2−ki,2−kj]" in text
    assert "grad input as a transposed convolution: dx_pad[r,s] =" in text
    assert "dx as a transposed convolution equals the dX pass: max |Δ| 0.0e+00" in text


def test_max_pool_cells_without_gradient_end_as_zero() -> None:
    example = build_example("pool", kernel=2, seed=1)
    _, backward = build_replays(example)
    backward.seek(backward.total - 1)
    assert np.isnan(backward.values("dx")).any()  # not every cell written yet: "·"
    backward.seek(backward.total)
    values = backward.values("dx")
    assert not np.isnan(values).any() and (values == 0).sum() == 12  # 4 windows of 4: 3 zeros each
