"""`cnn-tui bench` produces a complete, well-formed report (the figures themselves are not tested)."""

from __future__ import annotations

import json

import pytest

from cnn_tui.bench import features, options, speed, whole_run
from cnn_tui.cli import main
from cnn_tui.commands.bench import options_from_args


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
    models = options.QUICK_MODELS.split(",")
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


@pytest.mark.slow
def test_tui_mode_starts_a_run_from_the_form_and_measures_the_app(tmp_path, capsys) -> None:
    argv = ["bench", "--tui", "--quick", "--device", "cpu", "--models", "the3-cnn",
            "--limit", "300", "--epochs", "2", "--json", str(tmp_path / "tui.json")]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "tui.json").read_text())
    assert report["mode"] == "tui" and report["settings"]["repeats"] == 1
    assert report["settings"]["run"]["model"] == "the3-cnn"
    (run,) = report["results"]["runs"]
    assert run["state"] == "finished"
    # the chart's first point comes after the event it draws, and both after Start
    assert 0 < run["first_batch_event_s"] <= run["first_point_s"]
    assert run["finished_core_share"] >= 0
    # the live run's windows, tab by tab from the Charts tab on, while it lasted
    assert (
        list(run["following_tabs"])
        == ["charts", "metrics", "system", "console"][: len(run["following_tabs"])]
    )
    for figures in run["following_tabs"].values():
        assert figures["core_share"] >= 0 and figures["seconds"] > 0
    charts = run["following_tabs"].get("charts", {}).get("core_share")
    assert run["following_core_share"] == charts
    assert "Start → first point on the loss chart" in table
    assert "TUI showing the finished run" in table


@pytest.mark.slow
def test_features_mode_times_two_processes_a_sweep_and_inspect(tmp_path, capsys) -> None:
    argv = [
        "bench", "--features", "--device", "cpu", "--dataset", "shapes", "--limit", "64",
        "--repeats", "1", "--json", str(tmp_path / "f.json"),
    ]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["mode"] == "features" and report["settings"]["model"] == "simple-cnn"
    rows = {row["feature"]: row for row in report["results"]}
    assert list(rows) == [
        "train, 1 process",
        "train, --devices 2 (data-parallel)",
        "sweep of 2 runs",
        "inspect one test image",
    ]
    one = rows["train, 1 process"]["seconds"]
    assert rows["sweep of 2 runs"]["speedup"] == pytest.approx(
        2 * one / rows["sweep of 2 runs"]["seconds"]
    )
    assert rows["sweep of 2 runs"]["compared_with"] == "train, 1 process × 2"
    assert rows["inspect one test image"]["speedup"] is None
    for feature, row in rows.items():
        assert row["seconds"] > 0 and len(row["runs"]) == 1
        assert any(line.startswith(feature) for line in table.splitlines()), feature


def test_features_commands_inspect_the_run_they_trained(tmp_path) -> None:
    opts = options_from_args(_parse(["bench", "--features", "--models", "the3-cnn"]))
    commands = features.feature_commands(opts, "the3-cnn", None, tmp_path, parallel=False)
    argv = {command["feature"]: command["argv"] for command in commands}
    assert "train, --devices 2 (data-parallel)" not in argv  # one GPU: no such row
    train = argv["train, 1 process"]
    run_dir = train[train.index("--run-dir") + 1]
    inspect = argv["inspect one test image"]
    assert inspect[3:5] == ["inspect", run_dir]
    sweep = argv["sweep of 2 runs"]
    assert sweep[sweep.index("--grid") + 1] == "lr=0.001,0.002"
    assert opts.batch_size == options.WHOLE_RUN_BATCH_SIZE and opts.finetune == "head"


def test_whole_run_commands_compare_the_cache_for_a_frozen_resnet(tmp_path) -> None:
    args = _parse(["bench", "--whole-run", "--models", "resnet18@64"])
    opts = options_from_args(args)
    labels = [label for label, _ in whole_run.whole_run_commands(opts, "resnet18", 64, tmp_path)]
    assert labels == [
        "cnn-tui train (feature cache)",
        "cnn-tui train (no cache)",
        "seed-style loop",
    ]
    argv = dict(whole_run.whole_run_commands(opts, "resnet18", 64, tmp_path))
    assert "--no-cache-features" in argv["cnn-tui train (no cache)"]
    for command in argv.values():
        assert command[command.index("--batch-size") + 1] == "32"
        assert command[command.index("--finetune") + 1] == "head"
        assert command[command.index("--image-size") + 1] == "64"


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_the_other_pretrained_models_bench_like_resnet18(name, tmp_path) -> None:
    args = _parse(["bench", "--whole-run", "--models", "resnet50@224,vgg16@224"])
    assert args.models == [("resnet50", 224), ("vgg16", 224)]
    opts = options_from_args(args)
    argv = dict(whole_run.whole_run_commands(opts, name, 224, tmp_path))
    assert list(argv) == [
        "cnn-tui train (feature cache)",
        "cnn-tui train (no cache)",
        "seed-style loop",
    ]
    for command in argv.values():
        assert command[command.index("--model") + 1] == name
        assert command[command.index("--weights") + 1] == "none"
    config = speed.bench_config(opts, name, 224, 32)
    assert (config.model, config.weights, config.finetune, config.image_size) == (
        name, "none", "head", 224,
    )  # fmt: skip


def test_bench_takes_a_torchvision_model_like_the_short_names(tmp_path) -> None:
    args = _parse(["bench", "--whole-run", "--models", "torchvision:mobilenet_v3_small@64"])
    assert args.models == [("torchvision:mobilenet_v3_small", 64)]
    opts = options_from_args(args)
    name = "torchvision:mobilenet_v3_small"
    argv = dict(whole_run.whole_run_commands(opts, name, 64, tmp_path))
    assert list(argv)[:2] == ["cnn-tui train (feature cache)", "cnn-tui train (no cache)"]
    for command in argv.values():
        assert command[command.index("--model") + 1] == name
        assert command[command.index("--weights") + 1] == "none"
    config = speed.bench_config(opts, name, 64, 32)
    assert (config.model, config.weights, config.finetune) == (name, "none", "head")


def _parse(argv: list[str]):
    from cnn_tui.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--models", "vgg19"],
        ["bench", "--models", "torchvision:Bad-Name"],
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
    assert main(["bench", "--tui", "--startup"]) == 2
    assert main(["bench", "--features", "--whole-run"]) == 2
    assert main(["bench", "--quick", "--device", "cuda:99"]) == 2
    assert main(["bench", "--quick", "--lr", "nan"]) == 2
    assert main(["bench", "--quick", "--json", str(tmp_path / "no" / "such.json")]) == 2
    assert main(["bench", "--pairs"]) == 2  # (a mode of --tui)
    assert main(["bench", "--tui", "--preset", "fast-fashion-mnist"]) == 2  # (of --startup)
    assert main(["bench", "--startup", "--preset", "no-such-preset"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 9 and all(line.startswith("cnn-tui: error:") for line in err)
    assert "--pairs is for --tui" in err[6] and "--preset is for --startup" in err[7]
    assert "unknown preset 'no-such-preset'" in err[8]


# --- bench flags that mean a training setting are checked like `cnn-tui train`'s -----------------


@pytest.mark.parametrize(
    "flag",
    [
        ["--lr", "0"],
        ["--lr", "11"],
        ["--lr", "fast"],
        ["--batch-size", "0"],
        ["--epochs", "0"],
        ["--limit", "5"],
        ["--device", "tpu"],
    ],
)
def test_training_settings_of_bench_share_the_config_fields(flag) -> None:
    from cnn_tui.commands.train_flags import config_from_args
    from cnn_tui.errors import UsageError

    with pytest.raises(UsageError) as train_error:
        config_from_args(_parse(["train", *flag]))
    with pytest.raises(UsageError) as bench_error:
        options_from_args(_parse(["bench", *flag]))
    assert str(bench_error.value) == str(train_error.value)


def test_bench_lr_zero_is_a_one_line_usage_error(capsys) -> None:
    assert main(["bench", "--lr", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cnn-tui: error: --lr must be greater than 0, got 0.0"]


def test_bench_keeps_its_own_defaults_of_training_settings() -> None:
    from cnn_tui.training.config import FIELDS

    opts = options_from_args(_parse(["bench"]))
    assert opts.lr == FIELDS["lr"].default and opts.device == FIELDS["device"].default
    assert opts.amp is FIELDS["amp"].default and opts.epochs == 1 and opts.batch_size == 128
    assert options_from_args(_parse(["bench", "--whole-run"])).batch_size == 32
    opts = options_from_args(_parse(["bench", "--lr", "0.01", "--epochs", "3"]))
    assert opts.lr == 0.01 and opts.epochs == 3


def test_reference_loop_flags_follow_the_training_settings() -> None:
    from cnn_tui.commands import reference_loop
    from cnn_tui.training.config import FIELDS

    parser = reference_loop.build_parser()
    mirrored = {a.dest: a for a in parser._actions if a.dest in FIELDS}
    assert {"dataset", "model", "finetune", "lr", "batch_size", "epochs"} <= set(mirrored)
    for name, action in mirrored.items():
        assert action.option_strings == [FIELDS[name].flag]
        # the seed's own defaults (one epoch of batches of 32, from scratch), else train's
        seed = {"epochs": 1, "batch_size": 32, "weights": "none"}
        assert action.default == seed.get(name, FIELDS[name].default), name
    for bad in (["--model", "vgg19"], ["--lr", "0"], ["--dataset", "mnist"], ["--epochs", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    args = parser.parse_args(["--lr", "0.01", "--image-size", "64"])
    assert args.lr == 0.01 and args.image_size == 64


# --- the TUI's cost as pairs, the trainer's start-up timeline ------------------------------------


def _write_events(run_dir, events: list[dict]) -> None:
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_a_runs_throughput_is_its_images_over_its_training_seconds(tmp_path) -> None:
    from cnn_tui.bench.tui_cost import pair_ratios, run_images_per_s
    from cnn_tui.errors import RunError

    # two epochs of the same images at 100 and 300 img/s: 2 n images in n/100 + n/300 seconds
    _write_events(tmp_path / "run", [
        {"event": "run_started", "time": 1.0},
        {"event": "batch", "time": 2.0, "images_per_s": 5.0},
        {"event": "epoch", "time": 3.0, "images_per_s": 100.0},
        {"event": "epoch", "time": 4.0, "images_per_s": 300.0},
    ])  # fmt: skip
    assert run_images_per_s(tmp_path / "run") == pytest.approx(150.0)
    _write_events(tmp_path / "cut", [{"event": "batch", "time": 2.0, "images_per_s": 5.0}])
    with pytest.raises(RunError, match="no finished epoch"):
        run_images_per_s(tmp_path / "cut")
    assert pair_ratios([(100.0, 95.0), (200.0, 210.0)]) == [0.95, 1.05]


def test_pairs_report_alternates_headless_and_tui_runs(tmp_path, monkeypatch) -> None:
    """The order H, T, H, T and each pair's ratio, the trainers stood in for (the real runs:
    `test_tui_pairs_mode_trains_both_sides`)."""
    from cnn_tui.bench import tui_cost

    order, speeds = [], iter([100.0, 90.0, 200.0, 190.0, 100.0, 99.0])

    def headless(config_file, run_dir) -> None:
        assert "model = " in config_file.read_text()  # a --config file of the run's settings
        order.append("H")
        _write_events(run_dir, [{"event": "epoch", "images_per_s": next(speeds)}])

    def probe(config_file, runs_dir, finished_seconds, tabs) -> dict:
        assert json.loads(config_file.read_text())["model"] == "the3-cnn"
        assert (finished_seconds, tabs) == (0.0, "charts")  # the whole run on the Charts tab
        order.append("T")
        _write_events(runs_dir, [{"event": "epoch", "images_per_s": next(speeds)}])
        return {"state": "finished", "run_dir": str(runs_dir)}

    monkeypatch.setattr(tui_cost, "_headless", headless)
    monkeypatch.setattr(tui_cost, "_probe", probe)
    opts = options_from_args(_parse(["bench", "--tui", "--pairs", "--repeats", "3",
                                     "--models", "the3-cnn"]))  # fmt: skip
    report = tui_cost.tui_report(opts)
    assert order == ["H", "T", "H", "T", "H", "T"]
    res = report["results"]
    assert [pair["ratio"] for pair in res["pairs"]] == pytest.approx([0.9, 0.95, 0.99])
    assert res["median_ratio"] == pytest.approx(0.95) and res["tui_cost"] == pytest.approx(0.05)
    from cnn_tui.commands.bench import format_report

    table = format_report(report).splitlines()
    assert [line.split()[:4] for line in table[3:6]] == [
        ["1", "100", "90", "0.90"], ["2", "200", "190", "0.95"], ["3", "100", "99", "0.99"]
    ]  # fmt: skip
    assert "TUI / headless 0.95" in table[-1] and "5.0% of its throughput" in table[-1]
    res.update(median_ratio=1.02, tui_cost=-0.02)  # faster under the TUI: said as noise
    assert format_report(report).splitlines()[-1].endswith("2.0% faster: machine noise")


@pytest.mark.slow
def test_tui_pairs_mode_trains_both_sides(tmp_path, capsys) -> None:
    argv = ["bench", "--tui", "--pairs", "--repeats", "1", "--device", "cpu", "--models",
            "the3-cnn", "--limit", "100", "--epochs", "1", "--json", str(tmp_path / "p.json")]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["settings"]["pairs"] and report["settings"]["run"]["limit"] == 100
    (pair,) = report["results"]["pairs"]
    assert pair["headless_images_per_s"] > 0 and pair["tui_images_per_s"] > 0
    assert pair["ratio"] == pytest.approx(pair["tui_images_per_s"] / pair["headless_images_per_s"])
    # (tiny runs: either side may be the faster one; the verdict follows the measured cost)
    verdict = "the TUI costs the trainer" if report["results"]["tui_cost"] >= 0 else "machine noise"
    out = capsys.readouterr().out
    assert "median of 1 pair(s)" in out and verdict in out


def test_the_timeline_is_the_seconds_between_the_probes_marks() -> None:
    from cnn_tui.bench.timeline import PHASES, phase_seconds

    marks = [["python", 100.5, 0.02], ["cli", 100.6, 0.05], ["torch", 102.0, 1.3],
             ["data", 102.5, 1.9], ["first batch event", 103.0, 2.2]]  # fmt: skip
    phases = phase_seconds(100.0, marks)
    assert [name for name, _, _ in phases] == ["python", "cli", "torch", "data",
                                               "first batch event"]  # fmt: skip
    assert [round(wall, 6) for _, wall, _ in phases] == [0.5, 0.1, 1.4, 0.5, 0.5]
    assert [round(cpu, 6) for _, _, cpu in phases] == [0.02, 0.03, 1.25, 0.6, 0.3]
    assert [name for name, _, _ in phase_seconds(0.0, marks[::-1])] == [m[0] for m in marks]
    assert PHASES[0] == "python" and PHASES[-1] == "first batch event"


def test_startup_times_each_model_and_the_preset(tmp_path) -> None:
    from cnn_tui.bench.startup import train_runs

    opts = options_from_args(_parse(["bench", "--startup", "--dataset", "fashion-mnist",
                                     "--preset", "fast-fashion-mnist", "--limit", "500"]))  # fmt: skip
    assert [run.label for run in train_runs(opts)] == [
        "simple-cnn on fashion-mnist", "preset fast-fashion-mnist"
    ]  # fmt: skip
    model, preset = train_runs(opts)
    argv = model.argv(tmp_path, tmp_path / "run")
    assert argv[:4] == ["train", "--no-ui", "--config", str(tmp_path / "config.toml")]
    assert argv[-2:] == ["--run-dir", str(tmp_path / "run")]
    settings = (tmp_path / "config.toml").read_text()
    assert 'dataset = "fashion-mnist"' in settings and "limit = 500" in settings
    assert "batch_size = 128" in settings  # the training default, not bench's
    assert preset.argv(tmp_path, tmp_path / "p")[2:] == [
        "--preset", "fast-fashion-mnist", "--device", "auto", "--limit", "500",
        "--run-dir", str(tmp_path / "p"),
    ]  # fmt: skip
