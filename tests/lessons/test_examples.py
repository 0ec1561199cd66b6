"""Lesson examples (cnn_tui.lessons.examples): building from parameters, the example files, the limits."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_tui.errors import UsageError
from cnn_tui.lessons import examples, naive
from cnn_tui.lessons.settings import LIMITS, example_names


def test_default_examples_are_small_seeded_one_decimal_arrays():
    conv = examples.build_example("conv")
    assert conv.x.shape == (1, 1, 5, 5) and conv.w.shape == (1, 1, 3, 3) and conv.b.shape == (1,)
    assert conv.kernel == (3, 3) and conv.stride == (1, 1) and conv.padding == (0, 0)
    assert conv.output_shape == conv.dout.shape == (1, 1, 3, 3)
    for array in (conv.x, conv.w, conv.b, conv.dout):
        assert np.all(np.abs(array) <= 2) and np.allclose(array * 10, np.round(array * 10))
        assert not np.any(np.signbit(array) & (array == 0))  # no "-0" in a trace
    again = examples.build_example("conv")
    assert np.array_equal(conv.x, again.x) and np.array_equal(conv.dout, again.dout)
    other = examples.build_example("conv", seed=1)
    assert not np.array_equal(conv.x, other.x)

    pool = examples.build_example("pool")
    assert pool.x.shape == (1, 1, 4, 4) and pool.w is None and pool.b is None
    assert pool.kernel == pool.stride == (2, 2) and pool.pool_type == "max"
    assert pool.naive_op == "maxpool2d" and pool.dout.shape == (1, 1, 2, 2)


def test_parameters_shape_the_example_and_its_engine_call():
    example = examples.build_example(
        "conv", height=6, width=4, channels=2, filters=3, batch=2, kernel=(3, 2),
        stride=(2, 1), padding=(1, 0), seed=7,
    )  # fmt: skip
    assert example.x.shape == (2, 2, 6, 4) and example.w.shape == (3, 2, 3, 2)
    assert example.output_shape == (2, 3, 3, 3)
    assert example.x_pad.shape == (2, 2, 8, 4)
    (out, cache), events = naive.collect_steps(example.forward)
    expected, _ = naive.conv2d_forward(example.x, example.w, example.b, (2, 1), (1, 0))
    np.testing.assert_array_equal(out, expected)
    assert len(events) == example.step_counts()["forward"]
    grads = example.backward(cache)
    assert list(grads) == ["dx", "dw", "db"] and grads["dx"].shape == example.x.shape
    assert example.gradient_check().passed()

    avg = examples.build_example("pool", kernel=3, stride=2, height=5, width=5, pool_type="avg")
    assert avg.naive_op == "avgpool2d" and avg.output_shape == (1, 1, 2, 2)
    out, cache = avg.forward()
    assert list(avg.backward(cache)) == ["dx"]


def test_example_files_load_and_compute_what_their_descriptions_say():
    conv_names = {info.name for info in examples.list_examples("conv")}
    pool_names = {info.name for info in examples.list_examples("pool")}
    assert {"edge-detect", "basic-5x5", "multi-channel"} <= conv_names
    assert {"max-4x4", "avg-4x4", "overlap"} <= pool_names
    assert sorted(conv_names) == example_names("conv")  # the --help list agrees
    assert all(info.title and info.description for info in examples.list_examples())

    edge = examples.load_example("edge-detect")
    out, _ = edge.forward()
    assert out[0, 0].tolist() == [[0, 4, 4, 0]] * 4
    basic = examples.load_example("basic-5x5")  # Dumoulin & Visin's figure
    assert basic.forward()[0][0, 0].tolist() == [[12, 12, 17], [10, 17, 19], [9, 6, 14]]
    multi = examples.load_example("multi-channel")
    assert multi.x.shape[1] in (2, 3) and multi.w.shape[0] == 2
    assert multi.stride == (2, 2) and multi.padding == (1, 1)
    overlap = examples.load_example("overlap")
    _, cache = overlap.forward()
    dx = overlap.backward(cache)["dx"]
    assert dx[0, 0, 2, 2] == overlap.dout.sum() and np.count_nonzero(dx) == 1
    assert examples.load_example("max-4x4").forward()[0][0, 0].tolist() == [[6, 8], [3, 4]]
    for info in examples.list_examples():
        assert examples.load_example(info.name).gradient_check().passed()


def test_example_settings_can_be_overridden_but_not_its_sizes():
    wider = examples.build_example("conv", example="basic-5x5", padding=1, stride=2)
    assert wider.padding == (1, 1) and wider.output_shape == (1, 1, 3, 3)
    assert wider.dout.shape == wider.output_shape
    avg = examples.build_example("pool", example="max-4x4", pool_type="avg")
    assert avg.naive_op == "avgpool2d"
    file_dout = examples.load_example("max-4x4").dout
    assert file_dout.tolist() == [[[[1, 2], [3, 4]]]]
    seeded = examples.build_example("pool", example="max-4x4", seed=3)
    assert not np.array_equal(seeded.dout, file_dout)
    with pytest.raises(UsageError, match="height cannot be combined with example 'basic-5x5'"):
        examples.build_example("conv", example="basic-5x5", height=4)
    with pytest.raises(UsageError, match="kernel cannot be combined"):
        examples.build_example("conv", example="basic-5x5", kernel=2)


@pytest.mark.parametrize(
    ("op", "params", "message"),
    [
        ("conv", {"kernel": 6}, r"kernel 6x6 is larger than the padded input 5x5"),
        ("conv", {"kernel": 6, "padding": 1}, None),
        ("pool", {"kernel": (5, 2)}, r"kernel 5x2 is larger than the input 4x4"),
        ("conv", {"height": LIMITS.max_size + 1}, r"height must be between 1 and 16"),
        ("conv", {"channels": 0}, r"channels must be between 1 and 4"),
        ("conv", {"filters": 5}, r"filters must be between 1 and 4"),
        ("conv", {"batch": 3}, r"batch must be between 1 and 2"),
        ("conv", {"stride": 0}, r"stride must be between 1 and 8"),
        ("conv", {"padding": -1}, r"padding must be between 0 and 4"),
        ("conv", {"kernel": "3y"}, r"kernel must be a number or HxW"),
        ("conv", {"seed": -1}, r"seed must be between 0"),
        ("conv", {"pool_type": "max"}, r"pool_type is not a setting of the conv lesson"),
        ("pool", {"padding": 1}, r"padding is not a setting of the pool lesson"),
        ("pool", {"pool_type": "min"}, r"pool_type must be one of max, avg"),
        (
            "conv",
            {"example": "nope"},
            r"no conv example named 'nope'; the conv examples are: .*edge",
        ),
        (
            "conv",
            {"example": "max-4x4"},
            r"max-4x4.toml is a pool example; open it with cnn-tui pool",
        ),
        ("conv", {"example": "../pyproject"}, r"lesson file ../pyproject: no such file"),
        ("conv", {"example": "..\\pyproject"}, r"no conv example named"),
        (
            "conv",
            {"height": 16, "width": 16, "channels": 4, "filters": 4},
            r"takes 29,008 forward steps; lessons allow at most 20,000",
        ),
        ("sobel", {}, r"op must be 'conv' or 'pool'"),
    ],
)
def test_bad_parameters_raise_usage_error_naming_them(op, params, message):
    if message is None:
        examples.build_example(op, **params)  # the same kernel fits once padded
        return
    with pytest.raises(UsageError, match=message):
        examples.build_example(op, **params)


def test_the_largest_allowed_defaults_stay_within_the_step_budget():
    example = examples.build_example("conv", height=16, width=16, channels=2, filters=2)
    assert max(example.step_counts().values()) <= LIMITS.max_steps
