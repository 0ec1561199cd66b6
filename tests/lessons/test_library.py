"""Lesson files (cnn_tui.lessons.library, examples, network): the user's folder, a file given by its
path, every kind of bad file, the TOML writer and saving a board so that it opens again the same.

XDG_CONFIG_HOME is a fresh temporary folder in every test (tests/conftest.py), so nothing here
reads or writes the real ~/.config.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_tui.errors import UsageError
from cnn_tui.fileio import toml_text
from cnn_tui.lessons import examples, layer_lesson, library, network
from cnn_tui.lessons.replay import make_example

EDGE = """op = "conv"
title = "My edge"
description = "two lines\\nof text"
x = [[0, 0, 1], [0, 0, 1], [0, 0, 1]]
w = [[-1, 1]]
"""


def user_file(name: str, text: str) -> Path:
    folder = library.user_lessons_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_user_folder_follows_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert library.user_lessons_dir() == tmp_path / "cfg" / "cnn-tui" / "lessons"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/path"):  # the XDG spec: ignore a relative value
        monkeypatch.setenv("XDG_CONFIG_HOME", unset)
        assert library.user_lessons_dir() == tmp_path / "home" / ".config" / "cnn-tui" / "lessons"


def test_a_user_example_opens_by_name_and_is_listed_as_yours():
    user_file("my-edge", EDGE)
    example = examples.build_example("conv", example="my-edge")
    assert example.name == "my-edge" and example.title == "My edge"
    assert example.description == "two lines\nof text"
    assert example.forward()[0][0, 0].tolist() == [[0, 1]] * 3
    assert example.status_label == "my-edge, seed 0"  # its dout was drawn from the seed
    listed = {info.name: info.source for info in examples.list_examples("conv")}
    assert listed["my-edge"] == "yours" and listed["edge-detect"] == "shipped"
    assert "my-edge" not in {info.name for info in examples.list_examples("pool")}
    with pytest.raises(
        UsageError, match="my-edge.toml is a conv example; open it with cnn-tui conv"
    ):
        examples.build_example("pool", example="my-edge")


def test_a_shipped_name_wins_and_the_user_file_is_listed_as_hidden():
    user_file("edge-detect", EDGE)
    assert examples.build_example("conv", example="edge-detect").title == "Vertical edge detector"
    infos = [info for info in library.list_lessons("conv") if info.name == "edge-detect"]
    assert [(info.source, info.problem) for info in infos] == [
        ("shipped", ""),
        ("yours", "hidden by the shipped example of that name: rename the file"),
    ]
    assert [info.source for info in examples.list_examples("conv")].count("yours") == 0


def test_a_path_opens_from_any_folder(tmp_path, monkeypatch):
    lecture = tmp_path / "lecture"
    lecture.mkdir()
    (lecture / "week3.toml").write_text(EDGE)
    monkeypatch.chdir(lecture)
    assert examples.build_example("conv", example="week3.toml").name == "week3.toml"
    monkeypatch.chdir(tmp_path)
    example = examples.load_example("lecture/week3.toml")
    assert example.name == "week3.toml" and example.x.shape == (1, 1, 3, 3)
    with pytest.raises(UsageError, match=r"lesson file nope.toml: no such file"):
        examples.build_example("conv", example="nope.toml")


BAD = [
    (
        'op = "pool"\nx = [[1, 2], [3, 4]]\n',
        "bad.toml is a pool example; open it with cnn-tui pool",
    ),
    ("x = [[1]]\nw = [[1]]\n", 'has no op = "conv" line'),
    (EDGE + "colour = 1\n", "unknown key 'colour'"),
    (EDGE + "kernel = 2\n", "unknown key 'kernel'"),  # a pool key in a conv file
    (EDGE.replace("[0, 0, 1], [0, 0, 1]]", "[0, 0, 1], [0, 1]]"), "x is not rectangular"),
    (EDGE.replace("[[-1, 1]]", '[[-1, "1"]]'), "w must hold numbers, found the text '1'"),
    (EDGE.replace("[[-1, 1]]", "[[-1, true]]"), "w must hold numbers, found true/false"),
    (EDGE.replace("[[-1, 1]]", "[[-1, nan]]"), "w: values must be finite and at most 1000"),
    (EDGE.replace("[[-1, 1]]", "[[-1, inf]]"), "w: values must be finite"),
    (EDGE.replace("[[-1, 1]]", "[[-1, 1e6]]"), "w: values must be finite and at most 1000"),
    (EDGE.replace("[[-1, 1]]", "[[[[[1]]]]]"), "w has too many axes"),
    (EDGE.replace("[[-1, 1]]", "[]"), "w holds an empty list"),
    (EDGE + "stride = 1.5\n", "stride must be a whole number or [height, width], got float"),
    (EDGE + "stride = true\n", "stride must be a whole number or [height, width], got true"),
    (EDGE + "stride = [1, 2, 3]\n", "stride must be a whole number or [height, width]"),
    (EDGE + "stride = 9\n", "stride must be between 1 and 8, got 9"),
    (EDGE + "padding = 5\n", "padding must be between 0 and 4"),
    (EDGE + 'padding = "full"\n', "padding must be same, valid"),
    (EDGE + 'mode = "conv"\n', 'mode must be one of "cross-correlation", "convolution"'),
    (EDGE + "seed = -1\n", "seed must be between 0"),
    (EDGE + "dout = [[1, 2, 3]]\n", "dout has shape (1, 1, 1, 3), but the output is (1, 1, 3, 2)"),
    (EDGE + "b = [1, 2]\n", "do not fit"),
    (EDGE.replace('title = "My edge"', "title = 3"), "title must be a string in quotes"),
    (EDGE.replace('title = "My edge"', f'title = "{"t" * 121}"'), "title is longer than 120"),
    ("op = 'conv'\nx = [[" + ", ".join(["1"] * 17) + "]]\nw = [[1]]\n", "width must be"),
    ("op = 'conv'\nx = [[1, 2]]\nw = " + str([[[[1]]]] * 5) + "\n", "filters must be"),
    ('op = "conv"\nx = [[1, 2]\n', "is not valid TOML"),
    ("op = 'conv'\nx = " + "[" * 3000 + "]" * 3000 + "\n", "is not a usable TOML file"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_each_kind_of_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        examples.build_example("conv", example=str(path))
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"lesson file {path}")
    assert "\n" not in str(caught.value)


def test_big_files_fifos_and_bad_bytes_are_refused_unread(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * library.MAX_LESSON_BYTES + "\n")
    with pytest.raises(UsageError, match=r"big.toml is over 256 KiB"):
        examples.build_example("conv", example=str(big))
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'op = "conv"\ntitle = "\xff"\n')
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        examples.build_example("conv", example=str(binary))
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"pipe.toml is a named pipe \(FIFO\), not a file"):
        examples.build_example("conv", example=str(fifo))
    with pytest.raises(UsageError, match=r"is a folder, not a file"):
        examples.build_example("conv", example=str(tmp_path) + "/")


def test_titles_and_descriptions_are_made_safe_to_print(tmp_path):
    path = tmp_path / "evil.toml"
    text = EDGE.replace('"My edge"', '"\\u001b]0;owned\\u0007\\u202eTitle"')
    path.write_text(text.replace('"two lines\\nof text"', '"line\\u001b[2J\\nnext"'))
    example = examples.build_example("conv", example=str(path))
    assert example.title == "\\x1b]0;owned\\x07\\u202eTitle"
    assert example.description.splitlines() == ["line\\x1b[2J", "next"]
    user_file("evil", path.read_text())
    info = next(info for info in library.list_lessons("conv") if info.name == "evil")
    assert "\x1b" not in info.title and "\u202e" not in info.title


def test_a_broken_user_file_is_listed_with_its_reason_and_names_are_checked():
    user_file("broken", 'op = "conv"\nx = [[1,\n')
    user_file("has space", EDGE)
    problems = {info.name: info.problem for info in library.list_lessons("conv")}
    assert problems["broken"].startswith("broken: is not valid TOML")
    assert problems["has space"] == "--example cannot take this name: rename the file"
    with pytest.raises(UsageError, match=r"no conv example named 'has space'"):
        examples.build_example("conv", example="has space")
    for bad in ("", "a b", ".hidden", "a..b", "random", "x" * 65, "tab\there", "ü/x"):
        with pytest.raises(UsageError):
            library.check_name(bad)
    for good in ("week3", "week-3.edge", "kanten_übung", "A1"):
        assert library.check_name(good) == good


def test_the_net_lesson_reads_user_files_with_its_own_keys(tmp_path):
    shipped = network.build_net_example("net-vertical-edge")
    values = network.net_file_values(shipped, "Mine", "")
    user_file("my-net", toml_text(values))
    mine = network.build_net_example("my-net")
    for key in network.EDITABLE:
        np.testing.assert_array_equal(getattr(mine, key), getattr(shipped, key))
    assert (mine.label, mine.lr, mine.class_names) == (0, 0.1, shipped.class_names)
    assert {"name": "my-net", "title": "Mine", "description": "", "source": "yours"} in (
        network.list_net_examples()
    )
    bad = tmp_path / "n.toml"
    for text, message in [
        (toml_text({**values, "stride": 2}), "unknown key 'stride'"),
        (toml_text({**values, "label": "a"}), "label must be a whole number"),
        (toml_text({**values, "lr": True}), "lr must be a number"),
        (toml_text({**values, "classes": [1, 2]}), "classes must be a list of names"),
        (toml_text({**values, "x": [[200.0] * 6] * 6}), "x: values must be finite and at most 100"),
        (
            toml_text({**values, "op": "pool"}),
            "n.toml is a pool example; open it with cnn-tui pool",
        ),
    ]:
        bad.write_text(text)
        with pytest.raises(UsageError, match=message):
            network.build_net_example(str(bad))


# ------------------------------------------------------------------------------ saving


def saved_and_reopened(example, name="saved"):
    values = examples.example_file_values(example, "Saved", "from a test")
    path = library.save_lesson(name, values)
    assert path == library.user_lessons_dir() / f"{name}.toml"
    return examples.build_example(example.op, example=name)


ARRAYS = ("x", "w", "b", "dout")


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("conv", {}),
        ("conv", {"channels": 2, "filters": 2, "batch": 2, "kernel": (3, 2), "padding": (1, 0)}),
        ("conv", {"height": 6, "stride": (2, 1), "dilation": 2, "conv_mode": "convolution"}),
        ("conv", {"padding": "same", "channels": 3, "seed": 9}),
        ("pool", {}),
        ("pool", {"channels": 2, "kernel": 3, "stride": 1, "height": 5, "seed": 2}),
        ("pool", {"pool_type": "avg", "kernel": (3, 2), "stride": (1, 2), "height": 5}),
    ],
)
def test_a_saved_board_opens_again_with_the_same_arrays_and_settings(op, params):
    board = examples.build_example(op, **params)
    again = saved_and_reopened(board)
    for key in ARRAYS:
        expected = getattr(board, key)
        if expected is None:
            assert getattr(again, key) is None
        else:
            np.testing.assert_array_equal(getattr(again, key), expected)
    assert again.settings() | {"seed": 0} == board.settings() | {"seed": 0}
    assert (again.title, again.description, again.dout_from) == ("Saved", "from a test", "file")
    assert again.status_label == "saved"
    np.testing.assert_array_equal(again.forward()[0], board.forward()[0])


def test_an_edited_board_is_labelled_edited_and_saves_its_edits():
    edited = make_example("conv", {}, {"w": np.full((1, 1, 3, 3), 0.25)})
    assert edited.edited and edited.status_label == "edited"
    assert examples.build_example("conv").status_label == "seed 0"
    named = make_example("conv", {"example": "edge-detect"}, {"b": np.array([1.5])})
    assert named.status_label == "edge-detect (edited)"
    again = saved_and_reopened(edited, "quarter")
    np.testing.assert_array_equal(again.w, edited.w)
    with pytest.raises(UsageError, match="w: values must be finite and at most 1000"):
        make_example("conv", {}, {"w": np.full((1, 1, 3, 3), 1e4)})


def test_saving_refuses_bad_and_shipped_names_and_asks_before_replacing():
    example = examples.build_example("conv")
    values = examples.example_file_values(example, "t", "")
    with pytest.raises(UsageError, match="'edge-detect' is the name of a shipped example"):
        library.save_lesson("edge-detect", values)
    with pytest.raises(UsageError, match="is not a usable name"):
        library.save_lesson("../escape", values)
    assert not (library.user_lessons_dir().parent / "escape.toml").exists()
    library.save_lesson("once", values)
    with pytest.raises(FileExistsError):
        library.save_lesson("once", {**values, "title": "twice"})
    assert tomllib.loads((library.user_lessons_dir() / "once.toml").read_text())["title"] == "t"
    library.save_lesson("once", {**values, "title": "twice"}, overwrite=True)
    assert examples.build_example("conv", example="once").title == "twice"
    assert not list(library.user_lessons_dir().glob(".*.tmp"))  # written atomically


# ------------------------------------------------------------------------------ the writer

floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
numbers = st.one_of(st.integers(-(2**53), 2**53), floats)
matrices = st.integers(1, 4).flatmap(
    lambda cols: st.lists(st.lists(numbers, min_size=cols, max_size=cols), min_size=1, max_size=4)
)
values = st.one_of(
    st.text(max_size=40), st.booleans(), numbers, matrices, st.lists(st.text(max_size=8))
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True), values))
def test_the_toml_writer_round_trips(data):
    read = tomllib.loads(toml_text(data))
    assert read.keys() == data.keys()
    for key, value in data.items():
        assert same(read[key], value), (key, value, read[key])


def same(read, written) -> bool:
    if isinstance(written, list):
        return len(read) == len(written) and all(map(same, read, written))
    if isinstance(written, float) and not isinstance(written, bool):
        return read == written and math.copysign(1, read) in (1, math.copysign(1, written))
    return read == written and type(read) is type(written)


def test_the_toml_writer_refuses_what_toml_cannot_hold():
    for bad in ({"x": float("nan")}, {"x": [1, float("inf")]}, {"a b": 1}, {"x": object()}):
        with pytest.raises(ValueError):
            toml_text(bad)
    assert toml_text({"x": 1.0, "y": -0.0, "z": None}) == "x = 1\ny = 0\n"


def test_the_example_in_the_docs_opens(tmp_path, repo_root):
    page = (repo_root / "docs" / "lessons" / "examples.md").read_text(encoding="utf-8")
    block = page.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "doc.toml").write_text(block)
    example = examples.build_example("conv", example=str(tmp_path / "doc.toml"))
    assert example.x.shape == (1, 2, 3, 3) and example.w.shape == (1, 2, 3, 3)
    assert example.dout_from == "file" and example.padding == (1, 1)
    assert toml_text(examples.example_file_values(example, example.title, example.description)) == (
        block
    )


# ------------------------------------------------------------------------------ batch norm, dropout


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("batchnorm", {}),
        ("batchnorm", {"batch": 1, "channels": 3, "height": 2, "width": 4, "eps": 0.5, "seed": 4}),
        ("batchnorm", {"batch": 3, "channels": 1, "momentum": 0.9}),
        ("dropout", {}),
        ("dropout", {"batch": 2, "channels": 2, "p": 0.2, "seed": 7}),
    ],
)
def test_a_saved_layer_lesson_opens_again_with_the_same_arrays_and_numbers(op, params):
    board = layer_lesson.build_layer_example(op, **params)
    library.save_lesson("saved", layer_lesson.layer_file_values(board, "Saved", "from a test"))
    again = layer_lesson.build_layer_example(op, example="saved")
    names = ("x", "dy", "gamma", "beta") if op == "batchnorm" else ("x", "dy", "u", "mask")
    for name in names:
        np.testing.assert_array_equal(getattr(again, name), getattr(board, name))
    assert again.settings() | {"seed": 0} == board.settings() | {"seed": 0}
    assert (again.name, again.title, again.description) == ("saved", "Saved", "from a test")
    assert again.status_label == "saved" and not again.seeded
    ran, reran = layer_lesson.run_layer(board), layer_lesson.run_layer(again)
    for name in ("y", "dx"):
        np.testing.assert_array_equal(reran.values[name], ran.values[name])
    info = next(i for i in library.list_lessons(op) if i.name == "saved")
    assert (info.op, info.source, info.problem) == (op, "yours", "")


def test_the_shipped_layer_examples_teach_what_they_say():
    """bn-constant-channel: σ² = 0 in channel 1, so x̂ = 0, y = β and dx = γ(dy − mean dy)/√ε;
    dropout-half: 8 of 16 kept, y = 2 where kept, mean(y) = mean(x) = 1."""
    example = layer_lesson.build_layer_example("batchnorm", example="bn-constant-channel")
    run = layer_lesson.run_layer(example)
    assert run.values["var"][1] == 0 and np.all(run.values["xhat"][:, 1] == 0)
    np.testing.assert_allclose(run.values["y"][:, 1], example.beta[1])
    dy = example.dy[:, 1]
    expected = example.gamma[1] * (dy - dy.mean()) / np.sqrt(example.eps)
    np.testing.assert_allclose(run.values["dx"][:, 1], expected, atol=1e-12)
    assert layer_lesson.gradient_check(example, run).passed()
    assert layer_lesson.compare_with_torch(example, run) < 1e-9  # PyTorch's autograd agrees
    assert example.status_label == "bn-constant-channel"
    dropout = layer_lesson.build_layer_example("dropout", example="dropout-half")
    run = layer_lesson.run_layer(dropout)
    assert dropout.mask.sum() == 8 and run.values["y"].mean() == 1.0
    assert set(np.unique(run.values["y"])) == {0.0, 2.0}
    np.testing.assert_array_equal(run.values["dx"], dropout.dy * dropout.mask * 2)
    assert layer_lesson.compare_with_torch(dropout, run) < 1e-12
    assert layer_lesson.gradient_check(dropout, run).passed()


def test_a_layer_file_fixes_the_sizes_and_its_seed_draws_what_it_leaves_out(tmp_path):
    path = tmp_path / "bn.toml"
    path.write_text('op = "batchnorm"\nx = [[1, 2], [3, 5]]\n')
    example = layer_lesson.build_layer_example("batchnorm", example=str(path))
    assert example.x.shape == (1, 1, 2, 2) and example.seeded
    np.testing.assert_array_equal(example.gamma, [1.0])  # BatchNorm2d's start: γ = 1, β = 0
    np.testing.assert_array_equal(example.beta, [0.0])
    assert example.status_label == "bn.toml, seed 0"
    again = layer_lesson.build_layer_example("batchnorm", example=str(path), seed=5)
    assert again.status_label == "bn.toml, seed 5" and not np.array_equal(again.dy, example.dy)
    with pytest.raises(UsageError, match="--height cannot be combined with --example"):
        layer_lesson.build_layer_example("batchnorm", example=str(path), height=3)


@pytest.mark.parametrize(
    ("op", "text", "message"),
    [
        ("batchnorm", 'op = "batchnorm"\nx = [[1, 2]]\np = 0.5\n', "unknown key 'p'"),
        ("dropout", 'op = "dropout"\nx = [[1, 2]]\ngamma = [1]\n', "unknown key 'gamma'"),
        ("batchnorm", 'op = "batchnorm"\nx = [[1, 2]]\ngamma = [1, 2]\n', "one per channel (1)"),
        ("batchnorm", 'op = "batchnorm"\nx = [[3]]\n', "at least 2 values per channel"),
        ("batchnorm", 'op = "batchnorm"\nx = [[1, 2]]\neps = 0\n', "eps must be above 0"),
        ("batchnorm", 'op = "batchnorm"\nx = [[1, 2]]\neps = "small"\n', "eps must be a number"),
        ("dropout", 'op = "dropout"\nx = [[1, 2]]\nu = [[0.5, 1.0]]\n', "u: values must be in"),
        ("dropout", 'op = "dropout"\nx = [[1, 2]]\ndout = [[1], [2]]\n', "must have x's shape"),
        ("dropout", 'op = "dropout"\nx = [[1, 2]]\nseed = 1.5\n', "seed must be a whole number"),
        ("dropout", 'op = "dropout"\nx = [[1, 2, 3, 4, 5, 6, 7]]\n', "x: width"),
        ("dropout", 'op = "batchnorm"\nx = [[1, 2]]\n', "open it with cnn-tui batchnorm"),
    ],
)
def test_a_bad_layer_file_is_one_line_naming_the_file_and_the_key(tmp_path, op, text, message):
    path = tmp_path / "l.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        layer_lesson.build_layer_example(op, example=str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
