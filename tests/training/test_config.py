"""Where training settings come from: defaults < --preset < --config FILE < flags; bad input."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from cnn_tui.commands import train_flags as train_args
from cnn_tui.errors import UsageError
from cnn_tui.training.config import FIELDS, TrainConfig, list_presets, load_preset


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_args.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_when_nothing_is_given():
    assert train_args.config_from_args(_args()) == TrainConfig()


def test_flags_override_file_override_preset(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('epochs = 7\nlr = 0.05\nmodel = "custom-cnn"\n')
    config = train_args.config_from_args(
        _args("--preset", "the3-task2", "--config", str(path), "--lr", "0.2", "--no-amp")
    )
    assert config.lr == 0.2  # flag beats file
    assert config.epochs == 7 and config.model == "custom-cnn"  # file beats preset
    assert config.optimizer == "sgd" and config.dataset == "cifar10"  # from the preset
    assert config.batch_size == 64 and config.amp is False


def test_a_preset_may_leave_a_required_setting_to_the_flags(tmp_path):
    with pytest.raises(UsageError, match="--data-dir"):
        train_args.config_from_args(_args("--preset", "cats-vs-dogs"))
    config = train_args.config_from_args(_args("--preset", "cats-vs-dogs", "--data-dir", "pets"))
    assert config.dataset == "imagefolder" and config.data_dir == "pets"
    assert config.grad_clip > 0 and config.finetune == "head"


def test_every_shipped_preset_is_valid_and_documented():
    presets = {preset.name: preset for preset in list_presets() if preset.builtin}
    for name in (
        "the3-task2",
        "the3-task3",
        "lecture-simple-cnn",
        "lecture-custom-cnn",
        "finetune-cifar-simple",
        "finetune-cifar-resnet18",
        "cats-vs-dogs",
        "lecture-resnet50-transfer",
        "cats-vs-dogs-vgg16",
        "fast-fashion-mnist",
        "fast-cifar10",
    ):
        assert name in presets, name
    for name, preset in presets.items():
        assert preset.description and preset.reference, name
        load_preset(name, check=False)
    assert load_preset("lecture-simple-cnn") == TrainConfig(
        dataset="cifar10", model="simple-cnn", epochs=10, batch_size=32, optimizer="adam", lr=1e-3
    )


def test_the_pretrained_model_presets_follow_their_seeds():
    import dataclasses

    lecture = load_preset("lecture-resnet50-transfer")
    assert (lecture.dataset, lecture.model, lecture.weights, lecture.finetune) == (
        "cifar10", "resnet50", "imagenet", "head",
    )  # fmt: skip
    assert (lecture.optimizer, lecture.lr, lecture.image_size) == ("adam", 1e-3, 224)
    assert (lecture.batch_size, lecture.epochs, lecture.augment) == (32, 10, "none")
    assert lecture.cache_features  # frozen, not augmented: the backbone runs once per image
    presets = {preset.name: preset for preset in list_presets()}
    assert "82%" in presets["lecture-resnet50-transfer"].reference
    cats = load_preset("cats-vs-dogs-vgg16", check=False)
    resnet = load_preset("cats-vs-dogs", check=False)
    assert (cats.model, cats.weights, cats.finetune) == ("vgg16", "imagenet", "head")
    assert dataclasses.replace(cats, model="resnet18") == resnet  # the seed's other network
    assert cats.grad_clip > 0 and cats.optimizer == "adam"
    cats.replace(data_dir="pets").check()


def test_pretrained_models_take_weights_and_resolve_auto_to_imagenet():
    for model in ("resnet18", "resnet50", "vgg16"):
        config = TrainConfig.from_mapping({"model": model, "finetune": "last-block"})
        assert config.resolved_weights == "imagenet"
        assert TrainConfig.from_mapping({"model": model, "weights": "w.pt"}).weights == "w.pt"
    assert TrainConfig(model="custom-cnn").resolved_weights == "none"
    TrainConfig.from_mapping({"model": "resnet50", "finetune": "layer4"})  # resnet's last block
    assert TrainConfig.from_mapping({"model": "vgg16", "image_size": 32}).image_size == 32


def test_config_file_round_trips(tmp_path):
    from cnn_tui.training.config import load_config_file

    config = TrainConfig(model="resnet18", weights="none", image_size=64, limit=100, amp=False)
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config_file(path) == config


# Each bad input: exit code 2, one line on stderr that names the problem, no traceback.
BAD_INPUTS = [
    (["--model", "vgg99"], "--model: unknown model; valid models: simple-cnn"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--lr", "-0.1"], "--lr must be greater than 0"),
    (["--lr", "fast"], "--lr must be a number, got 'fast'"),
    (["--batch-size", "2.5"], "--batch-size must be a whole number"),
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["--config", "missing.toml"], "config file missing.toml does not exist"),
    (["--config", "bad-key.toml"], "unknown setting 'learning_rate'"),
    (["--config", "bad-syntax.toml"], "is not valid TOML"),
    (["--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:N"),
    (["--dataset", "imagefolder"], "--dataset imagefolder needs --data-dir"),
    (["--weights", "imagenet"], "--weights applies to pretrained models only"),
    (["--model", "vgg16", "--finetune", "layer4"], "layer4 is a ResNet block; vgg16 has none"),
    (["--model", "vgg16", "--dataset", "fashion-mnist"], "needs images of at least 32 px"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, argv, message):
    (tmp_path / "bad-key.toml").write_text("learning_rate = 0.1\n")
    (tmp_path / "bad-syntax.toml").write_text("epochs = = 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "cnn_tui", "train", "--no-ui", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "runs").exists()  # nothing written for a rejected command


def test_every_field_has_a_flag():
    parser = argparse.ArgumentParser()
    train_args.add_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    assert {field.flag for field in FIELDS.values()} <= flags


# --- one definition per setting ---------------------------------------------------------------


def test_fields_are_generated_from_the_dataclass():
    """Each setting is written once (an attribute of TrainConfig); FIELDS cannot drift from it."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(TrainConfig)
    attributes = dataclasses.fields(TrainConfig)
    assert [attribute.name for attribute in attributes] == list(FIELDS)
    for attribute in attributes:
        field = FIELDS[attribute.name]
        assert field.default == attribute.default == getattr(TrainConfig(), attribute.name)
        assert field.help == attribute.metadata["help"]  # written in TrainConfig itself
        optional = field.kind | None
        assert hints[attribute.name] == (optional if field.optional else field.kind)
        assert field.optional == (field.default is None)


def test_names_of_data_sets_and_models_are_defined_once():
    from cnn_tui import catalog
    from cnn_tui.bench import options as bench_args
    from cnn_tui.training import config
    from cnn_tui.training.data import datasets
    from cnn_tui.training.models import registry as models

    assert datasets.AUGMENTS is config.AUGMENTS
    assert models.FINETUNE_PARTS is config.FINETUNE_PARTS
    assert bench_args.BENCH_MODELS is catalog.MODEL_NAMES  # (--model also takes torchvision:NAME)
    assert set(bench_args.BENCH_DATASETS) == set(config.DATASETS) - {"imagefolder"}


def test_config_does_not_import_torch():
    code = "import cnn_tui.training.config, sys; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_catalogue_imports_neither_torch_numpy_nor_textual():
    code = (
        "import json, sys, cnn_tui.catalog\n"
        "print(json.dumps([m for m in ('torch', 'numpy', 'textual') if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# --- one layering function --------------------------------------------------------------------


def test_layer_settings_precedence_and_cross_field_rules_left_to_the_caller(tmp_path):
    from cnn_tui.training.config import ConfigError, find_preset, layer_settings

    path = tmp_path / "mine.toml"
    path.write_text('epochs = 7\nlr = 0.05\nmodel = "custom-cnn"\n')
    config = layer_settings(
        preset="the3-task2", config_file=path, flags={"lr": "0.2", "amp": False}
    )
    assert config.lr == 0.2 and config.amp is False  # flags beat the file
    assert config.epochs == 7 and config.model == "custom-cnn"  # the file beats the preset
    assert config.optimizer == "sgd" and config.batch_size == 64  # the preset beats defaults
    assert config.seed == TrainConfig().seed
    assert layer_settings() == TrainConfig()
    # a preset that leaves a setting to a later layer is applied whole, unchecked ...
    config = layer_settings(preset="cats-vs-dogs")
    assert (config.dataset, config.model, config.data_dir) == ("imagefolder", "resnet18", None)
    assert config.image_size == 224 and config.batch_size == 32 and config.augment == "flip-crop"
    with pytest.raises(ConfigError, match="needs --data-dir") as exc:
        config.check()  # ... and the caller checks the rules between fields last
    assert exc.value.field == "data_dir"
    assert layer_settings(preset=find_preset("cats-vs-dogs").path) == config  # a preset file
    assert layer_settings(preset="cats-vs-dogs", flags={"data_dir": "pets"}).data_dir == "pets"


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"preset": "no-such-preset"}, "unknown preset 'no-such-preset'"),
        ({"config_file": "missing.toml"}, "config file missing.toml does not exist"),
        ({"config_file": "bad-key.toml"}, "unknown setting 'learning_rate'"),
        ({"flags": {"epochs": "0"}}, "--epochs must be at least 1"),
    ],
)
def test_layer_settings_says_which_layer_is_bad(tmp_path, monkeypatch, layers, message):
    from cnn_tui.training.config import layer_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad-key.toml").write_text("learning_rate = 0.1\n")
    with pytest.raises(UsageError, match=message):
        layer_settings(**layers)


# --- --finetune with --weights none: a random backbone trains whole (issue 25) ------------------


@pytest.mark.parametrize(
    "argv, trains",
    [
        (["--model", "resnet18"], "head"),  # ImageNet weights: their features are kept
        (["--model", "resnet18", "--weights", "none"], "all"),  # random: every layer trains
        (["--model", "vgg16", "--weights", "none", "--finetune", "auto"], "all"),
        (["--model", "resnet18", "--weights", "w.pth"], "head"),  # a file of trained weights
        (["--model", "resnet18", "--weights", "none", "--finetune", "head"], "head"),
        (["--model", "resnet50", "--finetune", "last-block"], "last-block"),
    ],
)
def test_finetune_auto_trains_a_random_backbone_whole(argv, trains):
    config = train_args.config_from_args(_args(*argv))
    assert config.resolved_finetune == trains
    assert TrainConfig().finetune == "auto"


@pytest.mark.parametrize(
    "argv, warned",
    [
        (["--model", "resnet18", "--weights", "none", "--finetune", "head"], "only the new head"),
        (["--model", "vgg16", "--weights", "none", "--finetune", "last-block"], "last block"),
        (["--model", "resnet18", "--weights", "none"], None),
        (["--model", "resnet18", "--weights", "none", "--finetune", "all"], None),
        (["--model", "resnet18", "--finetune", "head"], None),
        (["--model", "simple-cnn", "--finetune", "head"], None),  # (trains whole anyway)
    ],
)
def test_a_random_frozen_backbone_is_warned_of_not_refused(argv, warned):
    config = train_args.config_from_args(_args(*argv))
    config.check()  # valid: a random-features baseline is a legitimate (rare) experiment
    warnings = config.warnings()
    if warned is None:
        assert warnings == {}
    else:
        assert list(warnings) == ["finetune"]
        assert warned in warnings["finetune"] and "--finetune all" in warnings["finetune"]
        assert "\n" not in warnings["finetune"]


def test_the_trainer_prints_the_warning_on_stderr_before_training(tmp_path, monkeypatch, capsys):
    from cnn_tui.commands import train_report
    from cnn_tui.training.loop import engine, trainer
    from cnn_tui.training.runs.state import RunState

    def stopped_at_once(config, run_dir, **kwargs):
        return {"status": RunState.STOPPED}

    monkeypatch.setattr(engine, "train", stopped_at_once)
    config = TrainConfig(model="resnet18", weights="none", finetune="head", image_size=32)
    reporter = train_report.PlainReporter(sys.stdout)
    trainer.train_here(config, tmp_path / "r", False, reporter)  # (a launched run: output.log)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"cnn-tui: warning: {config.warnings()['finetune']}"]


def test_the_warning_is_in_the_runs_event_log_and_the_dashboards_log():
    from cnn_tui.ui.training.history import RunHistory

    config = TrainConfig(model="resnet18", weights="none", finetune="head", image_size=32)
    warning = config.warnings()["finetune"]
    history = RunHistory()
    # (the run_started event as bookkeeping writes it: its warnings, and one from a hostile file)
    history.add([{"event": "run_started", "warnings": [warning, "two\nlines\x1b[2J"]}])
    log = history.take_log()
    assert f"warning: {warning}" in log
    assert "warning: two\\nlines\\x1b[2J" in log  # escaped, one line
