"""Untrusted text on the terminal (issue 23, cases 3 and 4): names from files and folders never
reach the terminal raw, and folder flags refuse control characters.

Run names (folder names), class names (a run's saved classes, the class folders of the images),
image file names and config values may hold anything: an escape sequence (`ESC ]0;...BEL` sets a
terminal's title, `ESC [2J` wipes the screen), a C1 control (U+009B is CSI on some terminals),
a bidirectional override, a newline that breaks a table, Rich/Textual markup. Every printer
writes them through `cnn_tui.text.one_line`; the property tests feed arbitrary strings through
`runs --no-ui` and `predict`, and assert that nothing but printable text and our own line breaks
comes out. The dashboard's and the runs screen's rendering have theirs in
tests/ui/test_faults_text_screens.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hostile_text import TITLE, WIPE, as_file_name, assert_safe, hostile_text, toml_string
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from inspect_fixtures import write_model_run
from PIL import Image
from train_ui_fixtures import write_run

from cnn_tui import text
from cnn_tui.cli import main
from cnn_tui.commands import evaluate, inspect, output
from cnn_tui.commands.sweep_report import format_table, grid_text
from cnn_tui.training.loop import metrics
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs import sweeps

# --- the sanitiser itself ---------------------------------------------------------------------


@given(st.text(st.characters(), max_size=40))
@settings(max_examples=300, deadline=None)
def test_one_line_leaves_no_control_character_and_keeps_printable_text(message) -> None:
    shown = text.one_line(message)
    assert_safe(shown)
    assert "\n" not in shown
    assert text.one_line(shown) == shown  # idempotent: a cell sanitised twice reads the same
    if message.isprintable():
        assert shown == message


def test_one_line_writes_the_escapes() -> None:
    assert text.one_line(f"run{TITLE}{WIPE}") == r"run\x1b]0;pwned\x07\x1b[2J"
    assert text.one_line("a\x9bb\x85c\x7f") == r"a\x9bb\x85c\x7f"
    assert text.one_line("cat\u202egpj.exe\u2066") == r"cat\u202egpj.exe\u2066"
    assert text.one_line("two\nlines\r") == r"two\nlines\r"
    assert text.one_line("zürich 東京 [red]x") == "zürich 東京 [red]x"


@given(hostile_text())
@settings(max_examples=300, deadline=None)
def test_markup_shows_any_name_literally_in_textual_markup(name) -> None:
    """A name put into markup (`[b]NAME[/b] rest`) shows as `one_line(NAME)`: its brackets are
    not tags, its `[/]` closes nothing, a final backslash does not eat our closing tag."""
    from textual.content import Content

    shown = text.one_line(name)
    if shown.endswith("\\"):
        shown = shown[:-1] + r"\x5c"
    content = Content.from_markup(f"[b]{text.markup(name)}[/b] rest [i]{text.markup(name)}[/i]")
    assert content.plain == f"{shown} rest {shown}"
    assert_safe(content.plain)


@pytest.mark.parametrize("name", ["plain", TITLE, WIPE, "a\x9bb", "a\u202eb", "a\nb", "a\x85b"])
def test_control_character_finds_what_a_path_must_not_hold(name) -> None:
    assert (text.control_character(name) is None) == (name == "plain")


def test_table_cells_are_one_line_each() -> None:
    lines = output.table(["run", "model"], [[f"a{TITLE}", "two\nlines"], ["b", "[red]x"]])
    assert len(lines) == 3
    assert lines[1] == r"a\x1b]0;pwned\x07  two\nlines"
    assert_safe("\n".join(lines))


# --- runs --no-ui -----------------------------------------------------------------------------


@given(
    names=st.lists(hostile_text().map(as_file_name), min_size=1, max_size=3, unique=True),
    model=hostile_text(),
)
@example(names=[f"run{TITLE}", f"wipe{WIPE}", "bidi\u202eexe.txt"], model="[red]x\x1b[2J")
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_runs_lists_any_run_name_and_config_value_escaped(tmp_path_factory, capsys, names, model):
    runs_dir = tmp_path_factory.mktemp("runs")
    for name in names:
        run_dir = write_run(runs_dir / name, state="finished", message=model)
        config = (run_dir / runs.CONFIG_FILE).read_text()
        (run_dir / runs.CONFIG_FILE).write_text(
            config.replace('model = "simple-cnn"', f"model = {toml_string(model)}")
        )
    capsys.readouterr()
    assert main(["--runs-dir", str(runs_dir), "runs", "--no-ui"]) == 0
    out, err = capsys.readouterr()
    assert_safe(out + err)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["run", "model"]
    table = lines[1 : 1 + len(names)]  # one line per run: a newline in a name breaks nothing
    for name in names:
        row = next(line for line in table if line.startswith(text.one_line(name)))
        assert text.one_line(model) in row
    assert all(": " in line for line in lines[1 + len(names) :])  # damaged files, if any
    assert main(["--runs-dir", str(runs_dir), "runs", "--no-ui", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)  # the JSON keeps the names as they are
    assert sorted(run["name"] for run in listed) == sorted(names)


# --- predict ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> Path:
    return write_model_run(tmp_path_factory.mktemp("predict") / "run")


def save_classes(run_dir: Path, classes: list[str]) -> None:
    import torch

    checkpoint = torch.load(run_dir / runs.CHECKPOINT_FILE, weights_only=True)
    checkpoint["classes"] = classes
    torch.save(checkpoint, run_dir / runs.CHECKPOINT_FILE)


def write_image(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


@given(
    class_name=hostile_text(),
    folder=hostile_text().map(as_file_name),
    file=hostile_text().map(as_file_name),
)
@example(class_name=f"[red]cat{TITLE}", folder=f"dogs{WIPE}", file="x\u202egnp.exe")
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_predict_prints_any_class_folder_and_file_name_escaped(
    model_run, tmp_path_factory, capsys, class_name, folder, file
) -> None:
    from cnn_tui.training.data import datasets

    k = len(datasets.dataset_info("shapes")[3])
    # every class hostile, the first one also the images' class folder
    classes = [folder] + [f"{class_name}{i}" for i in range(1, k)]
    save_classes(model_run, classes)
    images = tmp_path_factory.mktemp("images")
    write_image(images / folder / f"{file}.png", 1)
    write_image(images / folder / "second.png", 2)
    capsys.readouterr()
    argv = ["predict", str(model_run), "--device", "cpu"]
    assert main([*argv, str(images)]) == 0  # the folder: the table and the summary
    out, err = capsys.readouterr()
    assert_safe(out + err)
    predicted = [line for line in out.splitlines() if "/second.png" in line]
    assert len(predicted) == 1  # one row per image, whatever the names hold
    assert any(text.one_line(name) in out for name in classes)
    one = images / folder / f"{file}.png"
    if text.control_character(str(one)) is None:  # one image: its classes as bars
        assert main([*argv, str(one)]) == 0
        out, err = capsys.readouterr()
        assert_safe(out + err)
        assert out.startswith(text.one_line(one))
    else:  # a path argument holding a control character is refused (case 4)
        with pytest.raises(SystemExit) as refused:
            main([*argv, str(one)])
        assert refused.value.code == 2
        out, err = capsys.readouterr()
        assert_safe(out + err)
        assert "holds a control character" in err and err.count("\n") == 1


# --- eval, inspect and sweep --show -----------------------------------------------------------


def test_eval_report_escapes_the_class_names(tmp_path) -> None:
    classes = [f"cat{TITLE}", "dog\n[red]x", "bird\u202e"]
    matrix = [[3, 1, 0], [0, 2, 2], [1, 0, 4]]
    report = {
        "classes": classes,
        "test_accuracy": 0.69,
        "macro_precision": 0.7,
        "macro_recall": 0.7,
        "macro_f1": 0.7,
        "per_class": [
            {"class": name, "precision": 0.7, "recall": 0.7, "f1": 0.7, "support": 4}
            for name in classes
        ],
        "confusion_matrix": matrix,
        "most_confused": [{"true": classes[1], "predicted": classes[2], "count": 2}],
        "checkpoint_epoch": 1,
        "checkpoint_batch": 0,
        "n_test": 13,
        "test_loss": 0.5,
    }
    printed = "\n".join(evaluate.report_lines(report, tmp_path / f"run{WIPE}"))
    assert_safe(printed)
    assert r"cat\x1b]0;pwned\x07" in printed and r"dog\n[red]x → bird\u202e (2)" in printed
    lines = metrics.format_report(report).splitlines()
    start = lines.index(next(line for line in lines if line.startswith("confusion"))) + 2
    rows = lines[start : start + len(classes) + 1]  # a newline in a class name breaks no row
    assert [row.split()[0] for row in rows[:-1]] == [text.one_line(name) for name in classes]
    assert rows[-1] == ""


def test_inspect_report_escapes_the_image_and_class_names() -> None:
    data = {
        "image": f"photo{TITLE}.png",
        "true": None,
        "predicted": f"cat{WIPE}",
        "probabilities": {f"cat{WIPE}": 0.9, "dog\n": 0.1},
        "layers": [],
        "grad_cam": {
            "layer": "conv2",
            "shape": [2, 2],
            "predicted": {"class": f"cat{WIPE}", "map": [[0, 1], [0, 0]], "max": 1.0},
        },
    }
    printed = "\n".join(inspect.text_lines(data, [f"converted {TITLE}"]))
    assert_safe(printed)
    assert printed.startswith(r"photo\x1b]0;pwned\x07.png · predicted cat\x1b[2J")


def test_sweep_show_escapes_run_names_and_grid_values(tmp_path, capsys) -> None:
    plan = sweeps.make_plan(runs_config(), {"seed": [1, 2]}, "cpu")
    sweep_dir = sweeps.create_sweep(plan, tmp_path, str(tmp_path / "sw"))
    manifest = json.loads((sweep_dir / sweeps.SWEEP_FILE).read_text())
    manifest["runs"][0]["dir"] = f"run{TITLE}"
    manifest["runs"][1]["overrides"]["seed"] = f"[red]{WIPE}\n2"
    manifest["grid"] = {f"seed{WIPE}": [1, f"[red]{WIPE}\n2"]}
    (sweep_dir / sweeps.SWEEP_FILE).write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["sweep", "--show", str(sweep_dir), "--no-ui"]) == 0
    out, err = capsys.readouterr()
    assert_safe(out + err)
    lines = out.splitlines()
    assert len(lines) == 1 + 1 + 2 + 2  # title, header, two runs, "sorted by", the summary
    assert r"run\x1b]0;pwned\x07" in out and r"[red]\x1b[2J\n2" in out
    rows = sweeps.sweep_rows(sweep_dir)
    assert_safe("\n".join([grid_text(manifest), *format_table(rows, list(manifest["grid"]))]))


def runs_config():
    from cnn_tui.training.config import TrainConfig

    return TrainConfig(epochs=1, device="cpu")


# --- folder flags (case 4) --------------------------------------------------------------------

BAD_PATHS = [f"runs{TITLE}", "a\nb", "a\x9bb", "a\u202eb", "a\x7fb"]
PATH_FLAGS = [
    ["--runs-dir", "{}", "runs", "--no-ui"],
    ["train", "--no-ui", "--run-dir", "{}"],
    ["train", "--no-ui", "--resume", "{}"],
    ["train", "--no-ui", "--config", "{}"],
    ["train", "--no-ui", "--json-file", "{}"],
    ["eval", "{}", "--no-ui"],
    ["export", "{}", "--format", "torchscript"],
    ["export", "run", "--format", "torchscript", "-o", "{}"],
    ["inspect", "run", "--no-ui", "--image", "{}"],
    ["inspect", "run", "--no-ui", "--json", "{}"],
    ["predict", "run", "{}"],
    ["sweep", "--show", "{}", "--no-ui"],
    ["sweep", "--stop", "{}"],
    ["lr-find", "--no-ui", "-o", "{}"],
    ["bench", "--no-ui", "--data-dir", "{}"],
]


@pytest.mark.parametrize("argv", PATH_FLAGS, ids=" ".join)
@pytest.mark.parametrize("bad", BAD_PATHS, ids=text.one_line)
def test_path_flags_refuse_control_characters(tmp_path, monkeypatch, capsys, argv, bad) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main([bad if arg == "{}" else arg for arg in argv])
    assert refused.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert_safe(err)
    assert f"'{text.one_line(bad)}' holds a control character" in err
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing echoed raw


def test_train_data_dir_and_weights_refuse_control_characters(tmp_path, capsys) -> None:
    for flag in ("--data-dir", "--weights"):
        capsys.readouterr()
        code = main(["--runs-dir", str(tmp_path / "runs"), "train", "--no-ui", flag, f"d{TITLE}"])
        assert code == 2
        err = capsys.readouterr().err
        assert_safe(err)
        assert f"{flag} must not hold control characters" in err and r"\x1b" in err
    assert not (tmp_path / "runs").exists()


def test_an_unknown_argument_is_echoed_escaped(capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["runs", "--no-ui", f"extra{TITLE}"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert_safe(err)
    assert r"extra\x1b]0;pwned\x07" in err
