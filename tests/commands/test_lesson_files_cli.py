"""`--example PATH.toml` and `--list-examples` of `cnn-tui conv|pool|net`: exit codes and output.

XDG_CONFIG_HOME is a fresh temporary folder in every test (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from cli_process import run_cnn_tui

from cnn_tui import cli
from cnn_tui.fileio import toml_text
from cnn_tui.lessons import examples, layer_lesson, library, network


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save(name: str, example) -> None:
    library.save_lesson(name, examples.example_file_values(example, f"title of {name}", ""))


def test_list_examples_shows_shipped_and_yours_with_the_folder(capsys):
    save("mine", examples.build_example("conv", seed=2))
    save("pooled", examples.build_example("pool"))
    folder = library.user_lessons_dir()
    (folder / "broken.toml").write_text('op = "conv"\nx = [[1,\n')
    (folder / "edge-detect.toml").write_text('op = "conv"\nx = [[1]]\nw = [[1]]\n')
    code, out, err = run_cli(capsys, "conv", "--list-examples")
    assert code == 0 and err == ""
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    assert ["basic-5x5", "shipped", "A 3x3 kernel over a 5x5 image"] in rows
    assert ["mine", "yours", "title of mine"] in rows
    assert [
        "edge-detect",
        "yours",
        "hidden by the shipped example of that name: rename the file",
    ] in rows
    assert any(row[:2] == ["broken", "yours"] and row[2].startswith("broken: ") for row in rows)
    assert "pooled" not in out  # a pool example
    assert f"yours: {folder} " in out
    code, out, _ = run_cli(capsys, "pool", "--list-examples")
    assert code == 0 and "pooled" in out and "mine" not in out and "max-4x4" in out
    code, out, _ = run_cli(capsys, "net", "--list-examples")
    assert code == 0 and "net-vertical-edge" in out and "basic-5x5" not in out


def test_a_user_example_by_name_and_a_file_by_path_print_their_trace(capsys, tmp_path):
    save("mine", examples.build_example("conv", seed=2))
    code, out, err = run_cli(capsys, "conv", "--no-ui", "--example", "mine")
    assert code == 0 and err == "" and "example: mine: title of mine" in out
    path = tmp_path / "week 3.toml"
    path.write_text(
        toml_text(network.net_file_values(network.build_net_example(), "Net of week 3", ""))
    )
    code, out, err = run_cli(capsys, "net", "--no-ui", "--summary", "--example", str(path))
    assert code == 0 and err == "" and "example: week 3.toml: Net of week 3" in out


@pytest.mark.parametrize(
    ("argv", "text", "message"),
    [
        (
            ["pool"],
            'op = "conv"\nx = [[1]]\nw = [[1]]\n',
            "is a conv example; open it with cnn-tui conv",
        ),
        (["conv"], 'op = "conv"\nx = [[1]]\nw = [[1]]\nsize = 3\n', "unknown key 'size'"),
        (["conv"], 'op = "conv"\nx = [[1, nan]]\nw = [[1]]\n', "x: values must be finite"),
        (["conv"], 'op = "conv"\nx = [[1]\n', "is not valid TOML"),
        (["net"], 'op = "net"\nx = [[1]]\n', "has no w1 array"),
        (
            ["conv"],
            'op = "conv"\ntitle = "\\u001b[2J"\nx = [[1]]\nw = [[1]]\nstride = 0\n',
            "stride",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it_exit_2(capsys, tmp_path, argv, text, message):
    path = tmp_path / "my.toml"
    path.write_text(text)
    code, out, err = run_cli(capsys, *argv, "--no-ui", "--example", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(path) in err
    assert "\x1b" not in err


def test_a_missing_file_or_name_exit_2(capsys):
    code, _, err = run_cli(capsys, "conv", "--no-ui", "--example", "nothing.toml")
    assert code == 2 and "lesson file nothing.toml: no such file" in err
    code, _, err = run_cli(capsys, "conv", "--no-ui", "--example", "nothing")
    assert code == 2 and "no conv example named 'nothing'" in err and "--list-examples" in err


def test_a_lecture_folder_works_from_anywhere(tmp_path):
    """`cnn-tui conv --example lecture/a.toml` in a child process, from another folder."""
    lecture = tmp_path / "lecture"
    lecture.mkdir()
    (lecture / "a.toml").write_text(
        toml_text(examples.example_file_values(examples.build_example("pool"), "A", ""))
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cnn_tui(
        "pool", "--no-ui", "--example", "../lecture/a.toml", cwd=elsewhere, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "example: a.toml: A" in proc.stdout


def test_batchnorm_and_dropout_list_and_open_their_examples(capsys, tmp_path):
    library.save_lesson(
        "my-bn",
        layer_lesson.layer_file_values(
            layer_lesson.build_layer_example("batchnorm", seed=2), "title of my-bn", ""
        ),
    )
    code, out, err = run_cli(capsys, "batchnorm", "--list-examples")
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    assert code == 0 and err == ""
    assert ["bn-constant-channel", "shipped", "A constant channel: what ε is for"] in rows
    assert ["my-bn", "yours", "title of my-bn"] in rows and "dropout-half" not in out
    code, out, _ = run_cli(capsys, "dropout", "--list-examples")
    assert code == 0 and "dropout-half" in out and "my-bn" not in out
    assert "cnn-tui dropout --example NAME" in out
    code, out, err = run_cli(capsys, "batchnorm", "--no-ui", "--example", "my-bn", "--backward")
    assert code == 0 and err == "" and "example: my-bn: title of my-bn" in out
    assert "the upstream gradient, from the lesson file" in out
    code, out, err = run_cli(
        capsys, "dropout", "--no-ui", "--example", "dropout-half", "--seed", "3"
    )
    assert code == 0 and "(dy and u drawn from seed 3)" in out
    assert "u: uniform numbers drawn from the seed (3)" in out


@pytest.mark.parametrize(
    ("argv", "text", "message"),
    [
        (["dropout"], 'op = "batchnorm"\nx = [[1, 2]]\n', "open it with cnn-tui batchnorm"),
        (["batchnorm"], 'op = "batchnorm"\nx = [[1, 2]]\nmask = [[1, 0]]\n', "unknown key 'mask'"),
        (["batchnorm", "--batch", "2"], 'op = "batchnorm"\nx = [[1, 2]]\n', "--batch cannot be"),
    ],
)
def test_a_bad_layer_file_or_flag_is_one_line_exit_2(capsys, tmp_path, argv, text, message):
    path = tmp_path / "my.toml"
    path.write_text(text)
    code, out, err = run_cli(capsys, *argv, "--no-ui", "--example", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(path) in err
    code, _, err = run_cli(capsys, "dropout", "--no-ui", "--example", "nothing")
    assert code == 2 and "no dropout example named 'nothing'" in err and "dropout-half" in err
