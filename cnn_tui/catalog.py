"""The facts about data sets, models and speed, each written once.

- `DATASETS`: each data set's native image size, channels, classes and whether it is downloaded;
- `MODELS`: each network's kind (one of the lecture's small CNNs, an airbench-style fast network or
  a torchvision backbone), whether ImageNet weights exist for it and the image sizes it takes;
- `parse_model`: what `--model` names, as a `ModelSpec` — a short name of `MODELS`,
  `torchvision:NAME` for any classification model of torchvision's registry (its name is checked
  where torchvision is imported: `training.models.zoo`), or the user's own `nn.Module` class as
  `path/to/file.py:Class` or `package.module:Class` (only spelt here: the file is read and run
  where it is built, `training.models.own`);
- the speed rules the engine, the feature cache and the form's memory estimate share: from which
  image size mixed precision pays off on CUDA, and how many images an evaluation or backbone
  batch holds.

Training settings (`training.config`), the data loaders, the model registry, the engine and the
help texts read these; nothing else writes them down. A leaf module: it imports nothing of cnn_tui,
nor torch, numpy or textual, so the flags, the form and `--help` can use it at no cost. The rules
that need torch (the autocast dtype, the device) live in `training.loop.setup`, on top of these.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

# --- data sets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    """One data set as the loaders produce it: uint8 images of `channels` × `image_size`²."""

    name: str
    image_size: int  # its own square size in px (imagefolder: the size images are resized to)
    channels: int
    classes: tuple[str, ...]  # the class names, in label order; () where the files decide
    downloadable: bool  # fetched when missing (shapes is drawn, an image folder is yours)

    @property
    def num_classes(self) -> int | None:
        """How many classes it has; None for an image folder (one per sub-folder)."""
        return len(self.classes) or None


# fmt: off
DATASETS: dict[str, DataSet] = {
    "shapes": DataSet(
        "shapes", image_size=32, channels=3, downloadable=False,  # drawn: training.data.shapes
        classes=("circle", "square", "triangle", "cross", "ring", "horizontal bar",
                 "vertical bar", "diamond", "star", "ellipse"),
    ),
    "cifar10": DataSet(
        "cifar10", image_size=32, channels=3, downloadable=True,
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"),
    ),
    "fashion-mnist": DataSet(
        "fashion-mnist", image_size=28, channels=1, downloadable=True,
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    ),
    # one sub-folder of images per class, read from --data-dir
    "imagefolder": DataSet("imagefolder", image_size=64, channels=3, downloadable=False,
                           classes=()),
}
# fmt: on
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)

# Where Fashion-MNIST's IDX files are looked for when no folder is given: Debian's
# dataset-fashion-mnist package first, then the default data folder (as it is, or in
# torchvision's layout). The training loaders and the picture lesson (`cnn-tui conv --image
# fashion-mnist:INDEX`) both look here.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian: dataset-fashion-mnist
DEFAULT_DATA_DIR = "data"
FASHION_MNIST_FILES = {  # the IDX files (each also found gzipped, as NAME.gz)
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def fashion_mnist_folders(data_dir: str | None = None) -> list[str]:
    """The folders Fashion-MNIST's IDX files are looked for in, first match wins: `data_dir`
    (as it is, or in torchvision's layout) when given, else the system folder and then the
    default data folder."""
    if data_dir:
        return [data_dir, f"{data_dir}/FashionMNIST/raw"]
    return [FASHION_MNIST_SYSTEM_DIR, DEFAULT_DATA_DIR, f"{DEFAULT_DATA_DIR}/FashionMNIST/raw"]


# --- models -------------------------------------------------------------------------------------

SMALL_CNN, FAST, BACKBONE = "small CNN", "fast", "torchvision backbone"


@dataclass(frozen=True)
class Model:
    """One network of `cnn-tui train --model` (its builder: `training.models.registry.MODELS`)."""

    name: str
    kind: str  # SMALL_CNN (the lecture's and THE3's), FAST (airbench-style) or BACKBONE
    pretrained: bool  # ImageNet weights exist for it (--weights imagenet, --finetune)
    # the size its ImageNet weights were trained at; None: trained from scratch at any size
    native_image_size: int | None = None
    # the smallest input it is checked for before it is built (the small CNNs find out when built)
    min_image_size: int = 1


MODELS: dict[str, Model] = {
    model.name: model
    for model in (
        Model("simple-cnn", SMALL_CNN, pretrained=False),
        Model("the3-cnn", SMALL_CNN, pretrained=False),
        Model("custom-cnn", SMALL_CNN, pretrained=False),
        Model("resnet18", BACKBONE, pretrained=True, native_image_size=224),
        Model("resnet50", BACKBONE, pretrained=True, native_image_size=224),
        # five 2×2 max-pools: 32 px leave one pixel for the classifier
        Model("vgg16", BACKBONE, pretrained=True, native_image_size=224, min_image_size=32),
        Model("fast-cnn", FAST, pretrained=False, min_image_size=8),  # three pools: 8 px -> 1
        Model("airbench-cnn", FAST, pretrained=False, min_image_size=16),
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
PRETRAINED_MODELS: tuple[str, ...] = tuple(name for name, m in MODELS.items() if m.pretrained)

# --- --model: a short name above, or any classification model of torchvision's registry ---------

# `torchvision:NAME` names a model of `torchvision.models.list_models(module=torchvision.models)`:
# whether NAME is in it takes torchvision's import (~1-3 s), so the spelling is checked here and
# the name where torchvision is imported anyway (`training.models.zoo`). The user's own class
# (`path/file.py:Class`, `package.module:Class`) is two more sources, spelt here and built by
# `training.models.own`.
TORCHVISION = "torchvision"
OWN_FILE, OWN_MODULE = "file", "module"  # ModelSpec.source of the user's own class
OWN_SOURCES = (OWN_FILE, OWN_MODULE)
OWN_HELP = "path/to/file.py:Class or package.module:Class"
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
ZOO_PREFIX = TORCHVISION + ":"
MODELS_COMMAND = "cnn-tui models"  # lists every model --model takes
_ZOO_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# in the registry but not trainable here, each with the reason (`cnn-tui models` says it)
ZOO_EXCLUDED: dict[str, str] = {
    "googlenet": "its auxiliary classifiers make training's output a tuple, not logits",
    "inception_v3": "its auxiliary classifier makes training's output a tuple, not logits",
}


@dataclass(frozen=True)
class ModelSpec:
    """What `--model` names: one of `MODELS` (source "builtin"), a model of torchvision's
    registry (source "torchvision", `torchvision:NAME`) or the user's own class (source
    OWN_FILE, `path/to/file.py:Class`, or OWN_MODULE, `package.module:Class`)."""

    source: str  # "builtin", TORCHVISION, OWN_FILE or OWN_MODULE
    name: str  # the short name, torchvision's name of the model, or the user's class
    location: str = ""  # the user's class: its file's path (as given) or its module's name

    @property
    def text(self) -> str:
        """The spec as --model takes it (and a run's config.toml keeps it)."""
        if self.own:
            return f"{self.location}:{self.name}"
        return self.name if self.source == "builtin" else f"{self.source}:{self.name}"

    @property
    def zoo(self) -> bool:
        return self.source == TORCHVISION

    @property
    def own(self) -> bool:
        """The user's own class: code of theirs that runs when it is built."""
        return self.source in OWN_SOURCES

    @property
    def label(self) -> str:
        """The spec in a few words for tables and titles: a file's name without its folder."""
        if self.source == OWN_FILE:
            return f"{self.location.replace(chr(92), '/').rsplit('/', 1)[-1]}:{self.name}"
        return self.text

    @property
    def pretrained(self) -> bool:
        """ImageNet weights exist for it: every torchvision model has its registry's DEFAULT
        (the user's own class starts from its own initialisation)."""
        return self.zoo or (not self.own and MODELS[self.name].pretrained)

    @property
    def min_image_size(self) -> int:
        """The smallest input checked before building; a zoo model's comes from its weights'
        meta when it is built (`training.models.zoo`)."""
        return 1 if self.zoo or self.own else MODELS[self.name].min_image_size


def _own_spec(text: str) -> ModelSpec | None:
    """The user's own class `text` names (`FILE.py:Class`, `package.module:Class`), None when
    it names none; ValueError for one misspelt. Nothing is read or imported here."""
    location, colon, name = text.rpartition(":")
    path_like = "/" in text or text.startswith("~") or ".py" in text
    if not colon:
        if text.endswith(".py"):
            raise ValueError(f"name the class in {text}: --model {text}:ClassName")
        return None
    if location == TORCHVISION:
        return None
    if location.endswith(".py") or "/" in location or location.startswith("~"):
        if not location.endswith(".py"):
            raise ValueError(
                f"{location} is not a Python file: --model takes {OWN_HELP} (a .py file)"
            )
        if not _IDENTIFIER_RE.fullmatch(name):
            raise ValueError(
                f"{OWN_HELP}: {name!r} after the colon is not a class name (e.g. {location}:MyCNN)"
            )
        return ModelSpec(OWN_FILE, name, location)
    if _MODULE_RE.fullmatch(location):
        if not _IDENTIFIER_RE.fullmatch(name):
            raise ValueError(
                f"{OWN_HELP}: {name!r} after the colon is not a class name (e.g. {location}:MyCNN)"
            )
        return ModelSpec(OWN_MODULE, name, location)
    if path_like:
        raise ValueError(f"--model takes {OWN_HELP}, got {text!r}")
    return None


def parse_model(text: str) -> ModelSpec:
    """The ModelSpec `text` names; ValueError with the reason in one line if none."""
    text = text.strip()
    if text in MODELS:
        return ModelSpec("builtin", text)
    own = _own_spec(text)
    if own is not None:
        return own
    source, colon, name = text.partition(":")
    if colon and source == TORCHVISION:
        if not _ZOO_NAME_RE.fullmatch(name):
            raise ValueError(
                f"{ZOO_PREFIX}NAME takes a model name of torchvision's registry (lower case, "
                f"e.g. {ZOO_PREFIX}mobilenet_v3_small); {MODELS_COMMAND} lists them"
            )
        if name in ZOO_EXCLUDED:
            raise ValueError(f"{ZOO_PREFIX}{name} is not supported: {ZOO_EXCLUDED[name]}")
        return ModelSpec(TORCHVISION, name)
    raise ValueError(
        f"unknown model; valid models: {', '.join(MODELS)}, {ZOO_PREFIX}NAME for any "
        f"classification model of torchvision ({MODELS_COMMAND} lists them), or your own "
        f"class as {OWN_HELP}"
    )


def absolute_model(text: str) -> str:
    """--model `text` with a file's path made absolute (`~` expanded, relative to the current
    folder), as a run keeps it: its ranks, a resume from another folder and the TUI's trainer
    process then name the same file. Any other model's text is returned as it is."""
    spec = parse_model(text)
    if spec.source != OWN_FILE:
        return spec.text
    return f"{os.path.abspath(os.path.expanduser(spec.location))}:{spec.name}"


def model_label(text: str) -> str:
    """--model `text` in a few words (`ModelSpec.label`); the text itself if it names none."""
    try:
        return parse_model(text).label
    except ValueError:
        return text


def is_own(text: str) -> bool:
    """Whether --model `text` names the user's own class (code that runs when it is built)."""
    try:
        return parse_model(text).own
    except ValueError:
        return False


def is_pretrained(text: str) -> bool:
    """Whether --model `text` has ImageNet weights (False for a name that is no model)."""
    try:
        return parse_model(text).pretrained
    except ValueError:
        return False


# --- speed rules --------------------------------------------------------------------------------

# Mixed precision and channels_last pay off on CUDA once the convolutions are big: on an H100,
# resnet18 at 224 px trains 1.9x faster with both, while at 32 px the casts and layout changes cost
# more than they save (custom-cnn: 11k vs 15-22k img/s). So on CUDA they apply to model inputs of
# at least this many px (on the CPU at every size: `training.loop.setup.speed_settings`).
AMP_MIN_IMAGE_SIZE = 64

# Rows per backbone batch of the feature cache: images at 32 px go in thousands, at 224 px in
# hundreds (memory bound).
PIXELS_PER_BATCH = 256 * 224 * 224


def evaluation_batch_size(batch_size: int, image_size: int, cuda: bool) -> int:
    """Images per evaluation batch of a run that trains in batches of `batch_size`.

    Evaluation keeps no activations, so its batches are larger (twice the training batch, 256 to
    4096) — except for big images on a CPU, where big batches spill the caches (resnet18 at
    224 px: 28 img/s in batches of 256, 45 in batches of 32): there it is the training batch.
    """
    if cuda or image_size < 112:
        return min(4096, max(256, 2 * batch_size))
    return batch_size


def backbone_batch_size(image_size: int, requested: int) -> int:
    """How many images the feature cache runs through a frozen backbone at once: `requested`,
    fewer for large images (`PIXELS_PER_BATCH`), at least 16."""
    return max(16, min(requested, PIXELS_PER_BATCH // (image_size * image_size)))
