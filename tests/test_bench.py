"""`cnn-tui bench` produces a complete, well-formed report (the figures themselves are not tested)."""

from __future__ import annotations

import json

import pytest

from cnn_tui.bench import args as bench_args
from cnn_tui.bench import measure
from cnn_tui.cli import main


def _check_speed_report(report: dict, models: list[str]) -> None:
    assert report["mode"] == "speed"
    env = report["environment"]
    for key in ("device", "device_name", "torch", "torchvision", "torch_threads"):
        assert env[key] not in (None, "")
    assert report["settings"]["batch_size"] > 0
    assert [row["model"] for row in report["results"]] == models
    for row in report["results"]:
        for side in ("engine", "reference"):
            for key in ("train_images_per_s", "eval_images_per_s"):
                assert row[side][key] > 0, (row["model"], side, key)
            assert len(row[side]["train_runs"]) == report["settings"]["repeats"]
        assert row["ratio"]["train"] > 0 and row["ratio"]["eval"] > 0


def test_quick_bench_prints_a_full_table_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--device", "cpu", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    models = bench_args.QUICK_MODELS.split(",")
    _check_speed_report(report, models)
    rows = [line for line in table.splitlines() if line.split()[:1] in ([m] for m in models)]
    assert len(rows) == len(models)
    for line in rows:
        assert len(line.split()) == 9  # model, size, mode, 3 train figures, 3 eval figures
    assert "device cpu" in table and "torch" in table


def test_json_without_a_file_prints_only_json_and_resnet18_takes_a_size(capsys) -> None:
    argv = ["bench", "--quick", "--device", "cpu", "--models", "resnet18@40", "--batch-size", "4"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    _check_speed_report(report, ["resnet18"])
    assert report["results"][0]["image_size"] == 40
    assert report["results"][0]["finetune"] == "all"


@pytest.mark.slow
def test_whole_run_mode_times_both_runs(tmp_path, capsys) -> None:
    argv = [
        "bench", "--whole-run", "--device", "cpu", "--models", "the3-cnn",
        "--limit", "64", "--repeats", "1", "--workers", "1", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "whole-run"
    runs = {row["run"]: row for row in report["results"]}
    assert set(runs) == {"cnn-tui train", "seed-style loop"}
    for row in runs.values():
        assert row["seconds"] > 0 and 0 <= row["test_accuracy"] <= 1
        assert row["speedup"] > 0
    assert runs["seed-style loop"]["speedup"] == pytest.approx(1.0)


def test_whole_run_commands_compare_the_cache_for_a_frozen_resnet(tmp_path) -> None:
    args = _parse(["bench", "--whole-run", "--models", "resnet18@64"])
    opts = measure.options_from_args(args)
    labels = [label for label, _ in measure.whole_run_commands(opts, "resnet18", 64, tmp_path)]
    assert labels == [
        "cnn-tui train (feature cache)",
        "cnn-tui train (no cache)",
        "seed-style loop",
    ]
    argv = dict(measure.whole_run_commands(opts, "resnet18", 64, tmp_path))
    assert "--no-cache-features" in argv["cnn-tui train (no cache)"]
    for command in argv.values():
        assert command[command.index("--batch-size") + 1] == "32"
        assert command[command.index("--finetune") + 1] == "head"
        assert command[command.index("--image-size") + 1] == "64"


def _parse(argv: list[str]):
    from cnn_tui.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--models", "vgg16"],
        ["bench", "--models", "resnet18@huge"],
        ["bench", "--models", "resnet18@4"],
        ["bench", "--batches", "0"],
        ["bench", "--dataset", "mnist"],
        ["bench", "--repeats", "many"],
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_bad_values_found_later_are_usage_errors_too(tmp_path, capsys) -> None:
    assert main(["bench", "--startup", "--whole-run"]) == 2
    assert main(["bench", "--quick", "--device", "cuda:99"]) == 2
    assert main(["bench", "--quick", "--lr", "nan"]) == 2
    assert main(["bench", "--quick", "--json", str(tmp_path / "no" / "such.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("cnn-tui: error:") for line in err)
