"""`cnn-tui predict`: the run's own preprocessing on image files, checked against `cnn-tui eval`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from inspect_fixtures import train_run, write_model_run
from PIL import Image

from cnn_tui import cli
from cnn_tui.commands import predict as predict_command
from cnn_tui.training.data import image_files
from cnn_tui.training.tools import predict
from cnn_tui.training.tools.run_model import load_run_model, load_test_split


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield train_run(tmp_path_factory.mktemp("predict") / "run")
    finally:
        torch.set_num_threads(before)


def test_predictions_on_test_images_written_as_files_agree_with_eval(trained, tmp_path, capsys):
    run = load_run_model(trained, "cpu")
    images, labels = load_test_split(run)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "test" / run.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    assert cli.main(["eval", str(trained), "--no-ui", "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        cli.main(["predict", str(trained), str(tmp_path / "test"), "--json", "--device", "cpu"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    k = len(run.classes)
    confusion = np.zeros((k, k), dtype=int)
    for row in result["predictions"]:
        confusion[run.classes.index(row["folder_class"]), run.classes.index(row["predicted"])] += 1
    assert confusion.tolist() == report["confusion_matrix"]
    assert result["images"] == report["n_test"] == len(labels)
    assert result["accuracy"] == pytest.approx(report["test_accuracy"])

    assert cli.main(["predict", str(trained), str(tmp_path / "test"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert f"accuracy against the class folders: {result['correct']}/{len(labels)}" in text
    assert text.splitlines()[0].split()[:2] == ["image", "predicted"]


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    return write_model_run(tmp_path_factory.mktemp("predict-model") / "run")


def test_odd_files_are_converted_with_a_note_and_bad_ones_are_one_line(model_run, tmp_path, capsys):
    Image.new("RGBA", (64, 48), (10, 200, 30, 128)).save(tmp_path / "wide.png")
    Image.new("L", (32, 32), 90).save(tmp_path / "grey.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code = cli.main(["predict", str(model_run), str(tmp_path / "wide.png"), str(tmp_path / "grey.png"),
                     str(tmp_path / "broken.png"), str(tmp_path / "missing.jpg"), "--top", "2",
                     "--json"])  # fmt: skip
    assert code == 2  # two of the named files could not be used
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2
    assert any("missing.jpg: no such file or folder" in line for line in errors)
    assert any("skipped" in line and "broken.png" in line for line in errors)
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in json.loads(captured.out)["predictions"]}
    assert rows["wide.png"]["notes"] == ["transparency dropped", "resized from 64×48, centre crop"]
    assert rows["grey.png"]["notes"] == ["grey repeated to RGB"]
    assert len(rows["grey.png"]["top"]) == 2
    assert rows["grey.png"]["top"][0]["probability"] >= rows["grey.png"]["top"][1]["probability"]


def test_read_image_matches_the_runs_channels_and_size(tmp_path):
    Image.new("RGB", (40, 20), (250, 0, 0)).save(tmp_path / "red.jpg")
    pixels, notes = image_files.read_image(tmp_path / "red.jpg", 1, (28, 28))
    assert pixels.shape == (1, 28, 28) and pixels.dtype == np.uint8
    assert notes == ["colour made grey", "resized from 40×20, centre crop"]
    with pytest.raises(image_files.ImageFileError, match="it is a folder"):
        image_files.read_image(tmp_path, 3, (32, 32))


def test_one_image_on_a_terminal_is_drawn_beside_its_classes(model_run, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    Image.new("RGB", (32, 32), (0, 0, 255)).save(tmp_path / "blue.png")
    run = load_run_model(model_run, "cpu")
    inputs = predict.gather([str(tmp_path / "blue.png")], run.classes)
    (prediction,) = predict.predict_files(run, inputs, 3)
    out = Terminal()
    predict_command.print_one(prediction, tmp_path / "blue.png", run, out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 16  # 32 pixel rows, two per text row
    assert "\x1b[38;2;0;0;255m\x1b[48;2;0;0;255m▀" in lines[0]
    assert prediction.top[0][0] in lines[0]


def test_an_empty_folder_and_a_bad_top_are_usage_errors(model_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["predict", str(model_run), str(tmp_path / "empty")]) == 2
    assert "no image files in this folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # (argparse's usage error: the flag's bound)
        cli.main(["predict", str(model_run), str(tmp_path), "--top", "0"])
    assert refused.value.code == 2
    assert "--top: expected 1 to 1000, got 0" in capsys.readouterr().err
