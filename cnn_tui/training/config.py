"""The training configuration: one validated type behind the CLI flags, config files, presets and form.

Every setting is written once, as an attribute of `TrainConfig` with its default, help text and
rules (`setting(...)`); `FIELDS` (name -> `Field`: type, default, allowed values, help) is
generated from the class. The `cnn-tui train` flags are generated from `FIELDS`
(`cnn_tui.commands.train_flags`), TOML config files and presets are read through it, and the TUI form
validates each field as it is typed with `parse_field`. `layer_settings` layers defaults < preset
< config file < flags for both the CLI and the form. The data sets, models and speed rules the
settings name are the catalogue's (`cnn_tui.catalog`). Nothing here imports torch or textual.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui import catalog, text
from cnn_tui.assets import assets_dir
from cnn_tui.catalog import AMP_MIN_IMAGE_SIZE, PRETRAINED_MODELS, ZOO_PREFIX, is_pretrained
from cnn_tui.catalog import DATASET_NAMES as DATASETS
from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text, check_input_file

# DATASETS and PRETRAINED_MODELS are the catalogue's names (`cnn_tui.catalog`): the choices of
# --dataset and what the rules between fields check; --model takes a short name of
# `catalog.MODELS` or torchvision:NAME (`catalog.parse_model`)

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "step", "onecycle")
AUGMENTS = ("none", "flip", "flip-crop")
# what trains in a pretrained model; layer4 is ResNet's name for its last block (= last-block)
FINETUNE_PARTS = ("head", "last-block", "all", "layer4")
FINETUNES = ("auto", *FINETUNE_PARTS)  # auto: `resolve_finetune`
EARLY_STOP_METRICS = ("val_loss", "val_acc")  # what --early-stop watches
WEIGHTS_CHOICES = ("auto", "imagenet", "none")  # or a path to a state_dict file
LOGGERS = ("tensorboard", "csv", "wandb")  # --log: where else a run logs (training/loggers/)
NO_ITEMS = "none"  # an item-list setting's word for none of them (--log none)

SEED_MAX = 2**32 - 1  # what every seeded generator takes (numpy, torch, torch.cuda)
MAX_TOML_BYTES = 1 << 20  # a config file is a few lines; anything bigger is the wrong file
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
MAX_DEVICES = 1024  # processes per node for --devices (data-parallel training)


class ConfigError(UsageError):
    """A bad value for one config field; `field` names it so a form can show the reason beside it."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Field:
    """How one config field is parsed, checked and explained."""

    name: str
    kind: type  # int, float, str or bool
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    optional: bool = False  # None (or an empty form field) is allowed
    check: Callable[[Any], str | None] | None = None  # extra rule; returns a reason or None
    # a list of these names, each at most once: "a,b" (a TOML array too; the flag repeatable);
    # "none" (NO_ITEMS) or nothing is None
    items: tuple[str, ...] = ()
    # the value as it is kept, once checked (--model FILE.py:Class: the file's absolute path)
    normalize: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def bounds(self) -> str:
        """The range of a number setting in words, as its flag's help states it ("1 to 10000",
        "above 0, at most 10", "at least 0"); "" for a setting without one."""
        low, high = self.minimum, self.maximum
        above = "above" if self.exclusive_minimum else "at least"
        if low is not None and high is not None:
            if self.exclusive_minimum:
                return f"above {_format_number(low)}, at most {_format_number(high)}"
            return f"{_format_number(low)} to {_format_number(high)}"
        if low is not None:
            return f"{above} {_format_number(low)}"
        return f"at most {_format_number(high)}" if high is not None else ""


def _check_device(value: str) -> str | None:
    if _DEVICE_RE.match(value):
        return None
    return "expected auto, cpu, cuda or cuda:N"


def _check_devices(value: str) -> str | None:
    if value == "all" or (re.fullmatch(r"[0-9]{1,4}", value) and 1 <= int(value) <= MAX_DEVICES):
        return None
    return f"expected a number of processes from 1 to {MAX_DEVICES}, or all (every GPU)"


def _check_model(value: str) -> str | None:
    try:
        catalog.parse_model(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_weights(value: str) -> str | None:
    if value in WEIGHTS_CHOICES or value.strip():
        return None
    return "expected auto, imagenet, none or a path to a state_dict file"


def setting(default: Any, help: str, **rules: Any) -> Any:
    """One setting of `TrainConfig`: its default, help text and rules (the keywords of `Field`).

    Its name, type and whether None is allowed come from the attribute and its annotation;
    `FIELDS` is built from these right after the class, so each setting is written once.
    """
    return dataclasses.field(default=default, metadata={"help": help, **rules})


def _format_number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))  # 4294967295, not 4.29497e+09
    return f"{value:g}"


def _shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut short (a config file may hold anything)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str(): Python refuses more than 4300 digits
        return "a number too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_range(field: Field, value: float) -> None:
    low, high = field.minimum, field.maximum
    if low is not None and (value < low or (field.exclusive_minimum and value == low)):
        relation = "greater than" if field.exclusive_minimum else "at least"
        raise ConfigError(
            field.name,
            f"{field.flag} must be {relation} {_format_number(low)}, got {_shown(value)}",
        )
    if high is not None and value > high:
        raise ConfigError(
            field.name, f"{field.flag} must be at most {_format_number(high)}, got {_shown(value)}"
        )


def coerce_field(name: str, value: Any) -> Any:
    """Check a value already typed (from TOML or code) for field `name`; return it normalised."""
    field = FIELDS.get(name)
    if field is None:
        raise ConfigError(
            name, f"unknown setting {_shown(name)}; valid settings: {', '.join(FIELDS)}"
        )
    if value is None or (field.optional and value == ""):
        if field.optional:
            return None
        raise ConfigError(name, f"{field.flag} needs a value")
    if field.items:
        return _item_list(field, value)
    if field.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, f"{field.flag} must be true or false, got {_shown(value)}")
        return value
    if field.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(name, f"{field.flag} must be a whole number, got {_shown(value)}")
        _check_range(field, value)
        return value
    if field.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"{field.flag} must be a number, got {_shown(value)}")
        try:
            value = float(value)
        except OverflowError:  # an int beyond the largest float
            raise ConfigError(
                name, f"{field.flag} must be a finite number, got {_shown(value)}"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(name, f"{field.flag} must be a finite number, got {value}")
        _check_range(field, value)
        return value
    if not isinstance(value, str):
        raise ConfigError(name, f"{field.flag} must be text, got {_shown(value)}")
    value = value.strip()
    if (bad := text.control_character(value)) is not None:
        raise ConfigError(
            name,
            f"{field.flag} must not hold control characters (newline, tab, ESC, ...), got "
            f"{bad} in {_shown(value)}",
        )
    if field.choices and value not in field.choices:
        raise ConfigError(
            name, f"{field.flag} must be one of {', '.join(field.choices)}, got {_shown(value)}"
        )
    if field.check is not None and (reason := field.check(value)) is not None:
        raise ConfigError(name, f"{field.flag}: {reason}, got {_shown(value)}")
    return value if field.normalize is None else field.normalize(value)


def _item_list(field: Field, value: Any) -> str | None:
    """An item-list setting's value, normalised: "tensorboard,csv" (in the order given, each
    once) from that text, "tensorboard, csv" or a TOML array; None for "none" or no item."""
    parts = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(part, str) for part in parts):
        raise ConfigError(
            field.name,
            f"{field.flag} must be a comma list of {', '.join(field.items)}, got {_shown(value)}",
        )
    names = [name.strip() for part in parts for name in part.split(",") if name.strip()]
    if names == [NO_ITEMS]:
        return None
    for name in names:
        if name not in field.items:
            raise ConfigError(
                field.name,
                f"{field.flag}: {_shown(name)} is not one of {', '.join(field.items)} (a comma "
                f"list, or the flag repeated; {NO_ITEMS} alone: none of them)",
            )
    return ",".join(dict.fromkeys(names)) or None


def parse_field(name: str, text: str) -> Any:
    """Parse the text of a CLI flag or form field for field `name`; raise ConfigError why not."""
    field = FIELDS.get(name)
    if field is None:
        raise ConfigError(name, f"unknown setting {name!r}")
    text = text.strip()
    if text == "":
        return coerce_field(name, None)
    if field.kind is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ConfigError(name, f"{field.flag} must be true or false, got {_shown(text)}")
    if field.kind is int:
        try:
            value: Any = int(text)
        except ValueError:
            raise ConfigError(
                name, f"{field.flag} must be a whole number, got {_shown(text)}"
            ) from None
        return coerce_field(name, value)
    if field.kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(name, f"{field.flag} must be a number, got {_shown(text)}") from None
        return coerce_field(name, value)
    return coerce_field(name, text)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Build with `TrainConfig.from_mapping` to validate."""

    dataset: str = setting("shapes", "data set to train on", choices=DATASETS)
    data_dir: str | None = setting(
        None, "folder with the data set files (imagefolder: one sub-folder per class)"
    )
    model: str = setting(
        "simple-cnn",
        f"network to train: {', '.join(catalog.MODEL_NAMES)}, {ZOO_PREFIX}NAME (any "
        "classification model of torchvision; `cnn-tui models` lists them), or your own "
        f"nn.Module class as {catalog.OWN_HELP}",
        check=_check_model,
        normalize=catalog.absolute_model,
    )
    hidden_units: int = setting(
        10,
        "filters per conv layer of simple-cnn (and your own class's hidden_units argument)",
        minimum=1,
        maximum=1024,
    )
    weights: str = setting(
        "auto",
        "start weights of a pretrained model: imagenet, none, or a state_dict PATH (auto: "
        "imagenet)",
        check=_check_weights,
    )
    finetune: str = setting(
        "auto",
        "what trains in a pretrained model: the new head, its last block + head (resnet layer4, "
        "vgg16's classifier, a torchvision:NAME model's last stage), or all layers (auto: the "
        "head on pretrained weights, all layers with --weights none)",
        choices=FINETUNES,
    )
    image_size: int | None = setting(
        None,
        "resize images to this many pixels square (default: the data set's own size)",
        minimum=8,
        maximum=512,
    )
    epochs: int = setting(5, "passes over the training set", minimum=1, maximum=10_000)
    batch_size: int = setting(128, "images per training step", minimum=1, maximum=65_536)
    optimizer: str = setting("adam", "optimisation algorithm", choices=OPTIMIZERS)
    lr: float = setting(1e-3, "learning rate", minimum=0.0, maximum=10.0, exclusive_minimum=True)
    momentum: float = setting(0.9, "SGD momentum", minimum=0.0, maximum=0.999)
    weight_decay: float = setting(0.0, "L2 weight decay", minimum=0.0, maximum=1.0)
    schedule: str = setting("none", "learning-rate schedule over the run", choices=SCHEDULES)
    augment: str = setting("none", "random augmentation of training batches", choices=AUGMENTS)
    label_smoothing: float = setting(0.0, "label smoothing of the loss", minimum=0.0, maximum=0.5)
    grad_clip: float = setting(0.0, "clip the gradient norm to this value (0: off)", minimum=0.0)
    early_stop: int = setting(
        0,
        "stop when the validation metric has not improved for this many epochs, then test "
        "the best epoch's weights (0: off)",
        minimum=0,
        maximum=10_000,
    )
    early_stop_metric: str = setting(
        "val_loss", "what early stopping watches", choices=EARLY_STOP_METRICS
    )
    min_delta: float = setting(
        0.0,
        "early stopping: a change of the metric up to this much is no improvement",
        minimum=0.0,
    )
    val_split: float = setting(
        0.1,
        "fraction of the training set held out for validation",
        minimum=0.0,
        maximum=0.5,
        exclusive_minimum=True,
    )
    limit: int | None = setting(
        None,
        "use at most this many training images, val and test shrunk alike (quick runs; default: all)",
        minimum=10,
        maximum=1_000_000_000,
    )
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", check=_check_device)
    devices: str = setting(
        "1",
        f"data-parallel processes per node, 1 to {MAX_DEVICES}, one per GPU (torchrun, "
        "DistributedDataParallel; on the CPU N gloo processes); all: every GPU",
        check=_check_devices,
    )
    sync_bn: bool = setting(
        False, "BatchNorm as SyncBatchNorm: statistics over the whole batch of every GPU"
    )
    amp: bool = setting(
        True,
        f"mixed precision: bf16 (else fp16) on CUDA for inputs of {AMP_MIN_IMAGE_SIZE} px or "
        "more; bf16 on a CPU with bf16 in hardware (AVX512-BF16, AMX)",
    )
    channels_last: bool = setting(
        True,
        f"channels_last memory format (always on the CPU; on CUDA from {AMP_MIN_IMAGE_SIZE} px)",
    )
    cache_features: bool = setting(
        True, "a pretrained model's frozen backbone, no augmentation: compute features once"
    )
    seed: int = setting(
        0,
        "random seed (data split, initialisation, batch order)",
        minimum=0,
        maximum=SEED_MAX,
    )
    log: str | None = setting(
        None,
        "also log the run to tensorboard (event files), csv (files) and/or wandb (Weights & "
        "Biases, offline unless WANDB_MODE says otherwise): a comma list, or the flag repeated",
        items=LOGGERS,
    )

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        base: TrainConfig | None = None,
        source: str = "",
        check: bool = True,
    ) -> TrainConfig:
        """Validate `values` (e.g. a parsed TOML table) on top of `base` (default: the defaults).

        `check=False` skips the rules between fields, for a layer that later layers complete
        (a cats-vs-dogs preset gets its --data-dir from the command line).
        """
        checked: dict[str, Any] = {}
        for name, value in values.items():
            try:
                checked[name] = coerce_field(name, value)
            except ConfigError as exc:
                if source:
                    raise ConfigError(exc.field, f"{source}: {exc}") from None
                raise
        config = dataclasses.replace(base or cls(), **checked)
        if check:
            config.check()
        return config

    def check(self) -> None:
        """Rules that involve more than one field."""
        if self.dataset == "imagefolder" and not self.data_dir:
            raise ConfigError(
                "data_dir",
                "--dataset imagefolder needs --data-dir: a folder with one sub-folder per class",
            )
        spec = catalog.parse_model(self.model)  # (checked as the field was set)
        if not spec.pretrained and self.weights not in ("auto", "none"):
            raise ConfigError(
                "weights",
                f"--weights applies to pretrained models only ({', '.join(PRETRAINED_MODELS)}, "
                f"{ZOO_PREFIX}NAME); --model {spec.label} starts from scratch",
            )
        if spec.own and self.finetune not in ("auto", "all"):
            raise ConfigError(
                "finetune",
                f"--finetune {self.finetune} applies to pretrained models only; your own class "
                f"{spec.label} trains whole from its own initialisation (--finetune auto)",
            )
        if spec.pretrained:
            if self.finetune == "layer4" and not spec.name.startswith("resnet"):
                raise ConfigError(
                    "finetune",
                    f"--finetune layer4 is a ResNet block; {self.model} has none: use "
                    "--finetune last-block",
                )
            smallest = spec.min_image_size
            size = self.image_size or catalog.DATASETS[self.dataset].image_size
            if size < smallest:
                given = "--image-size" if self.image_size else f"{self.dataset} images are"
                raise ConfigError(
                    "image_size",
                    f"--model {self.model} needs images of at least {smallest} px ({given} "
                    f"{size}): pass --image-size {smallest} or more",
                )

    @property
    def resolved_weights(self) -> str:
        """The start weights actually used: 'auto' means imagenet for a pretrained model."""
        if self.weights == "auto":
            return "imagenet" if is_pretrained(self.model) else "none"
        return self.weights

    @property
    def resolved_finetune(self) -> str:
        """What actually trains: 'auto' resolved by `resolve_finetune` (head, or all layers)."""
        return resolve_finetune(self.finetune, self.resolved_weights)

    @property
    def loggers(self) -> tuple[str, ...]:
        """The loggers of `log`, in order ("tensorboard", "csv", ...); () for none."""
        return tuple(self.log.split(",")) if self.log else ()

    def warnings(self) -> dict[str, str]:
        """Settings that are valid but seldom what is meant: field -> why, one line each.

        The form shows each beside its field as it is typed; `cnn-tui train --no-ui` prints each
        on stderr (and so into the run's output.log) before training starts."""
        found: dict[str, str] = {}
        if is_pretrained(self.model) and self.resolved_weights == "none":
            part = self.resolved_finetune
            if part != "all":
                trains = "only the new head" if part == "head" else "only the last block + head"
                found["finetune"] = (
                    f"--finetune {self.finetune} with --weights none trains {trains} on a random "
                    "backbone that stays frozen: expect near-chance accuracy; --finetune all "
                    "(or auto) trains the whole network"
                )
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return to_toml(self.to_dict())

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_mapping(changes, base=self)


def resolve_finetune(finetune: str, weights: str) -> str:
    """What `--finetune` trains, given the start weights as resolved ("imagenet", "none", a path).

    `auto` trains the new head on pretrained weights (their features are worth keeping) and every
    layer from random weights (`none`): a random backbone left frozen is a fixed random projection,
    and a head on it learns little (issue 25: resnet18 on shapes, 7 % test accuracy). Any other
    value is what it says.
    """
    if finetune != "auto":
        return finetune
    return "all" if weights == "none" else "head"


def _fields_of(cls: type) -> dict[str, Field]:
    """A `Field` per attribute of the dataclass `cls`, from its annotation and `setting(...)`."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Field] = {}
    for attribute in dataclasses.fields(cls):
        kind, optional = hints[attribute.name], False
        if isinstance(kind, types.UnionType):  # `int | None`: None (an empty form field) allowed
            kinds = set(typing.get_args(kind)) - {type(None)}
            kind, optional = (kinds.pop() if len(kinds) == 1 else kind), True
        if kind not in (int, float, str, bool) or "help" not in attribute.metadata:
            raise TypeError(
                f"TrainConfig.{attribute.name}: expected an int, float, str or bool attribute "
                "(or one of those | None) defined with setting(...)"
            )
        fields[attribute.name] = Field(
            attribute.name, kind, attribute.default, optional=optional, **attribute.metadata
        )
    return fields


FIELDS: dict[str, Field] = _fields_of(TrainConfig)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def to_toml(values: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
    """Write flat settings as TOML (None values are left out); `header` becomes a [preset] table."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    if header:
        lines.append("")
        lines.append("[preset]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in header.items() if value)
    return "\n".join(lines) + "\n"


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a UsageError naming it."""
    path = Path(path)
    if os.path.lexists(path):  # a FIFO would wait for ever, a device never end: not opened
        check_input_file(path, "config file", "give a .toml file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TOML_BYTES + 1)  # at most: a device must not fill memory
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a folder, expected a .toml file") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    if len(data) > MAX_TOML_BYTES:
        raise UsageError(
            f"config file {path} is over {MAX_TOML_BYTES >> 20} MiB: a config file holds a few "
            "lines of settings (is it the right file?)"
        )
    try:
        return tomllib.loads(data.decode("utf-8-sig"))  # (a byte-order mark is no reason to refuse)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"config file {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}): save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, arrays nested too deep
        reason = str(exc).split(";")[0][:100] or type(exc).__name__
        raise UsageError(f"config file {path} is not a usable TOML file ({reason})") from None


def read_settings_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str | None]:
    """The settings of a TOML config file and the preset it names (`preset = "NAME"`), if any.

    A `[preset]` table is a preset's description, not a setting; `preset` as anything else than
    a name or that table is a UsageError."""
    values = read_toml(path)
    named = values.pop("preset", None)
    if isinstance(named, dict):  # [preset] description = "...": what a saved preset holds
        named = None
    if named is not None and not (isinstance(named, str) and named.strip()):
        raise UsageError(
            f'{path}: preset must be the name of a preset (preset = "fast-cifar10"), got '
            f"{_shown(named)}"
        )
    return values, named.strip() if named is not None else None


def load_config_file(
    path: str | os.PathLike[str], base: TrainConfig | None = None, check: bool = True
) -> TrainConfig:
    """A TrainConfig from a TOML file of settings (a `[preset]` table, if any, is description).

    A file that names a preset (`preset = "NAME"`) is layered on it by `layer_settings` only
    (`--config`); anywhere else (a preset, a run's config.toml) that is a UsageError: presets do
    not chain."""
    values, named = read_settings_file(path)
    if named is not None:
        raise UsageError(
            f"{path}: preset = {_shown(named)}: only a --config file may name a preset (presets "
            "do not chain); copy that preset's settings into this file instead"
        )
    return TrainConfig.from_mapping(values, base=base, source=str(path), check=check)


# --- presets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    description: str = ""
    reference: str = ""  # the figure the seed experiment reported
    builtin: bool = True


def user_presets_dir() -> Path:
    """Where presets saved from the form go: $CNN_TUI_PRESETS or ~/.config/cnn-tui/presets."""
    override = os.environ.get("CNN_TUI_PRESETS")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cnn-tui" / "presets"


def _preset_info(path: Path, builtin: bool) -> PresetInfo:
    try:
        meta = read_toml(path).get("preset", {})
    except UsageError:
        meta = {"description": "(unreadable preset file)"}
    if not isinstance(meta, dict):
        meta = {}
    return PresetInfo(
        name=path.stem,
        path=path,
        description=str(meta.get("description", "")),
        reference=str(meta.get("reference", "")),
        builtin=builtin,
    )


def list_presets() -> list[PresetInfo]:
    """Shipped presets, then the user's own (a user preset with a shipped name is listed too)."""
    found = [_preset_info(p, True) for p in sorted((assets_dir() / "presets").glob("*.toml"))]
    user_dir = user_presets_dir()
    if user_dir.is_dir():
        found += [_preset_info(p, False) for p in sorted(user_dir.glob("*.toml"))]
    return found


def find_preset(name: str) -> PresetInfo:
    """The preset called `name` (the user's own wins over a shipped one of the same name)."""
    matches = [preset for preset in list_presets() if preset.name == name]
    if not matches:
        names = ", ".join(sorted({preset.name for preset in list_presets()}))
        raise UsageError(f"unknown preset {name!r}; available presets: {names}")
    return matches[-1]


def load_preset(name: str, base: TrainConfig | None = None, check: bool = True) -> TrainConfig:
    return load_config_file(find_preset(name).path, base=base, check=check)


def layer_settings(
    *,
    preset: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The settings of a run, layered: defaults < preset < config file < flags.

    The one place that layering happens: `cnn-tui train`
    (`commands.train_flags.config_from_args`), the form opened by it and the form's preset picker
    all call this. `preset` is a preset's name (a `Path` is a preset file, as `list_presets` lists
    them); `flags` maps setting names to command-line text (parsed with `parse_field`) or typed
    values (the on/off flags). A config file may name its preset (`preset = "NAME"`): it is the
    preset layer when no `preset` is given (the flag wins, as flags win over the file's keys).

    Each value is checked as its layer is applied; a bad one (unknown key, bad value, unknown
    preset, missing file) raises a UsageError naming it. The rules between fields are not checked:
    a later layer may complete them (cats-vs-dogs leaves --data-dir to the command line), so the
    caller runs `.check()` on the result last and reports what it raises.
    """
    config = TrainConfig()
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values, file_preset = read_settings_file(config_file)
        if preset is None and file_preset is not None:  # (--preset wins, as every flag does)
            preset = _preset_of_file(file_preset, config_file)
    if preset is not None:
        path = Path(preset) if isinstance(preset, os.PathLike) else find_preset(preset).path
        config = load_config_file(path, base=config, check=False)
    if config_file is not None:
        source = str(config_file)
        config = TrainConfig.from_mapping(file_values, base=config, source=source, check=False)
    if flags:
        values = {
            name: parse_field(name, value) if isinstance(value, str) else value
            for name, value in flags.items()
        }
        config = TrainConfig.from_mapping(values, base=config, check=False)
    return config


def _preset_of_file(name: str, config_file: str | os.PathLike[str]) -> Path:
    """The preset file a config file names (`preset = "NAME"`); an unknown one is a UsageError
    naming the config file."""
    try:
        return find_preset(name).path
    except UsageError as exc:
        raise UsageError(f"{config_file}: {exc}") from None


_PRESET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def save_preset(config: TrainConfig, name: str, description: str = "") -> Path:
    """Save `config` as a user preset (atomic write); returns the file written."""
    if not _PRESET_NAME_RE.match(name):
        raise UsageError(
            f"preset name {name!r} is not valid: use letters, digits, '.', '_' or '-' (max 64)"
        )
    path = user_presets_dir() / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_toml(config.to_dict(), header={"description": description}))
    return path
