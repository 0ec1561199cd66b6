"""`cnn-tui models` lists every network --model takes; a bad torchvision name is one line, exit 2,
before a run folder is made."""

from __future__ import annotations

import json

from cli_process import run_cnn_tui

from cnn_tui.cli import main


def test_models_lists_the_short_names_and_torchvisions_zoo_with_their_meta(tmp_path) -> None:
    shown = run_cnn_tui("models", "--search", "convnext", cwd=tmp_path, timeout=120)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["model", "kind"]
    assert [line.split()[0] for line in lines[1:]] == [
        "torchvision:convnext_base", "torchvision:convnext_large", "torchvision:convnext_small",
        "torchvision:convnext_tiny",
    ]  # fmt: skip
    assert "82.5%" in lines[-1] and "224 px" in lines[-1] and "32 px" in lines[-1]
    listed = run_cnn_tui("models", "--json", cwd=tmp_path, timeout=120)
    rows = json.loads(listed.stdout)["models"]
    names = [row["model"] for row in rows]
    assert names[:3] == ["simple-cnn", "the3-cnn", "custom-cnn"]
    assert "torchvision:regnet_y_400mf" in names and "torchvision:googlenet" not in names
    tiny = next(row for row in rows if row["model"] == "torchvision:mobilenet_v3_small")
    assert tiny["params"] == 2_542_856 and tiny["image_size"] == 224


def test_a_bad_torchvision_name_is_one_line_and_no_run_folder(tmp_path) -> None:
    done = run_cnn_tui(
        "train", "--no-ui", "--model", "torchvision:mobilenet_v4", cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean torchvision:mobilenet_v2" in lines[0]
    assert "cnn-tui models lists them" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_the_whole_list_shows_the_short_names_with_their_weights_meta(capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith("(")}
    assert len(rows) == 8 + 78 and "torchvision:googlenet" not in rows
    assert lines[-1].startswith("(torchvision:inception_v3 is left out")
    assert "11.7M" in rows["resnet18"] and "69.8%" in rows["resnet18"]  # IMAGENET1K_V1
    assert rows["simple-cnn"].split()[1:3] == ["small", "CNN"]
