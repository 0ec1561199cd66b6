"""Data sets for training, each loaded once into uint8 tensors, and the batched tensor ops on them.

`load_dataset(name, ...)` returns a `DataSplits`: train / validation / test images as uint8
(N, C, H, W) tensors on the CPU with int64 labels, the class names and the per-channel mean and
standard deviation of the training images. The engine moves the tensors to the device once and
works on whole batches there with `normalize`, `augment` and `resize` (no per-image Python work,
no DataLoader), as airbench does.

Data sets:
- `shapes`: procedurally drawn shapes (`cnn_tui.training.data.shapes`), offline, the default.
- `cifar10`: the official python-pickle batches, downloaded with torchvision's URL and checksum
  when missing.
- `fashion-mnist`: IDX files (gzipped or not) from --data-dir, Debian's dataset-fashion-mnist
  package, or torchvision's download.
- `imagefolder`: one sub-folder per class, read with Pillow and resized once at load time.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import socket
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnn_tui.catalog import (
    DATASETS,
    DEFAULT_DATA_DIR,
    FASHION_MNIST_FILES,
    FASHION_MNIST_SYSTEM_DIR,
    fashion_mnist_folders,
)
from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import check_input_file, is_regular_file
from cnn_tui.text import some
from cnn_tui.training.config import AUGMENTS
from cnn_tui.training.data import shapes as shapes_dataset
from cnn_tui.training.system import background_import

DOWNLOAD_TIMEOUT_S = 30.0  # a stalled connection fails after this long instead of hanging
_FASHION_MNIST, _CIFAR10 = DATASETS["fashion-mnist"], DATASETS["cifar10"]  # sizes, classes
FASHION_MNIST_CLASSES = _FASHION_MNIST.classes
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
IMAGEFOLDER_TEST_FRACTION = 0.2
IMAGEFOLDER_SPLIT_SEED = 0  # fixed, so the test set stays the same whatever --seed is
SHAPES_DATA_SEED = 0  # the shapes themselves are fixed; --seed only changes the train/val split
# the most an IDX file may hold: Fashion-MNIST's largest (train-images) is 47,040,016 bytes; a
# few MiB of gzip can inflate to many GiB, so inflating stops here
MAX_IDX_BYTES = 64 * 1024 * 1024

ProgressCallback = Callable[[str, int, int], None]  # (what is happening, done, total)


@dataclass
class DataSplits:
    """A data set split three ways, as uint8 (N, C, H, W) images and int64 labels on the CPU."""

    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]  # per channel, of train_x / 255
    std: tuple[float, ...]
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (imagefolder)
    source: str = ""  # where the files came from, for reports

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _unknown_dataset(name: str) -> UsageError:
    return UsageError(f"unknown data set {name!r}; valid data sets: {', '.join(DATASETS)}")


def dataset_info(
    name: str, data_dir: str | None = None, image_size: int | None = None
) -> tuple[int, tuple[int, int], int, list[str]]:
    """(channels, native image size, number of classes, class names), without loading images.

    The catalogue's facts; for `imagefolder` the classes are the sub-folders of `data_dir` (none
    when it is not given or not a folder) and the size is `image_size` (default: the catalogue's).
    """
    info = DATASETS.get(name)
    if info is None:
        raise _unknown_dataset(name)
    classes = list(info.classes)
    size = info.image_size
    if name == "imagefolder":
        size = image_size or size
        if data_dir and Path(data_dir).is_dir():
            classes = _class_folders(Path(data_dir))
    return info.channels, (size, size), len(classes), classes


def load_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    val_split: float = 0.1,
    seed: int = 0,
    download: bool = True,
    image_size: int | None = None,
    limit: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> DataSplits:
    """Load data set `name` whole into uint8 tensors and split it into train / val / test.

    The validation set is a seeded, stratified `val_split` fraction of the official training set;
    the test set is the official one (imagefolder: a fixed stratified 20 % of the images).
    `limit` caps the number of training images (a seeded, stratified subset) and shrinks val and
    test by the same factor. `image_size` sets the size imagefolder images are resized to; the
    other data sets keep their own size (the engine resizes batches on the device).
    `on_progress(what, done, total)` is called now and then while loading.
    """
    if name not in DATASETS:
        raise _unknown_dataset(name)
    if not 0.0 <= val_split < 1.0:
        raise UsageError(f"val_split must be at least 0 and below 1, got {val_split}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    if name in ("cifar10", "fashion-mnist") and data_dir and os.path.lexists(data_dir):
        if not os.path.isdir(data_dir):  # (not a download's "File exists" or "Not a directory")
            raise UsageError(
                f"--data-dir {data_dir} is a file, not a folder: give the folder that holds "
                f"the {name} data set (or where it is to be downloaded)"
            )
    report = on_progress or (lambda what, done, total: None)
    skipped: list[str] = []

    if name == "shapes":
        pool = shapes_dataset.TRAIN_SIZE
        if limit is not None:  # generate only what is needed: a few hundred images in milliseconds
            pool = min(pool, math.ceil(min(limit, pool) / (1.0 - val_split)) + 10)
        n_test = math.ceil(pool * shapes_dataset.TEST_SIZE / shapes_dataset.TRAIN_SIZE)
        report("drawing shapes", 0, pool + n_test)
        train_images, train_labels = shapes_dataset.generate(pool, SHAPES_DATA_SEED, "train")
        test_images, test_labels = shapes_dataset.generate(n_test, SHAPES_DATA_SEED, "test")
        report("drawing shapes", pool + n_test, pool + n_test)
        classes, source = (
            list(shapes_dataset.CLASSES),
            "generated (cnn_tui.training.data.shapes)",
        )
        train_x, train_y = (
            torch.from_numpy(train_images.copy()),
            torch.from_numpy(train_labels.copy()),
        )
        test_x, test_y = torch.from_numpy(test_images.copy()), torch.from_numpy(test_labels.copy())
    elif name == "cifar10":
        train_x, train_y, test_x, test_y, classes, source = _load_cifar10(
            data_dir, download, report
        )
    elif name == "fashion-mnist":
        train_x, train_y, test_x, test_y, source = _load_fashion_mnist(data_dir, download, report)
        classes = list(FASHION_MNIST_CLASSES)
    else:
        images, labels, classes, skipped, source = _load_image_folder(
            data_dir, image_size or DATASETS["imagefolder"].image_size, report
        )
        order = _stratified_order(labels.numpy(), np.random.default_rng(IMAGEFOLDER_SPLIT_SEED))
        n_test = _class_aware_count(labels.numpy(), IMAGEFOLDER_TEST_FRACTION)
        test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
        train_x, train_y = images[train_idx], labels[train_idx]
        test_x, test_y = images[test_idx], labels[test_idx]

    rng = np.random.default_rng(seed)
    order = _stratified_order(train_y.numpy(), rng)
    n_val = round(len(order) * val_split)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    val_x, val_y = train_x[val_idx], train_y[val_idx]
    train_x, train_y = train_x[train_idx], train_y[train_idx]

    if limit is not None and limit < len(train_y):
        factor = limit / len(train_y)
        train_x, train_y = _take_subset(train_x, train_y, limit, rng)
        val_x, val_y = _take_subset(val_x, val_y, max(1, round(len(val_y) * factor)), rng)
        test_x, test_y = _take_subset(test_x, test_y, max(1, round(len(test_y) * factor)), rng)

    if len(train_y) < 2 or len(test_y) < 1:
        fix = (
            "add images: at least 2 per class folder"
            if name == "imagefolder"
            else "its files are incomplete: get the data set again"
        )
        raise UsageError(
            f"data set {name} in {source} is too small to train and test on ({len(train_y)} "
            f"training and {len(test_y)} test images after the split): {fix}"
        )
    mean, std = channel_stats(train_x)
    return DataSplits(
        name=name,
        classes=list(classes),
        train_x=train_x.contiguous(),
        train_y=train_y.contiguous(),
        val_x=val_x.contiguous(),
        val_y=val_y.contiguous(),
        test_x=test_x.contiguous(),
        test_y=test_y.contiguous(),
        mean=mean,
        std=std,
        skipped=skipped,
        source=source,
    )


# --- splitting ----------------------------------------------------------------------------------


def _stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the indices in which every prefix holds the classes in proportion.

    Each index is keyed by its (random) rank within its class divided by the class size; sorting
    by that key interleaves the classes evenly, so taking the first k gives a stratified sample.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    perm = rng.permutation(n)
    shuffled = labels[perm]
    counts = np.bincount(shuffled)
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.float64)
    rank[by_class] = np.arange(n) - np.repeat(starts, counts)
    key = (rank + 0.5) / counts[shuffled]
    return perm[np.argsort(key, kind="stable")]


def _class_aware_count(labels: np.ndarray, fraction: float) -> int:
    """How many images make up `fraction` of the set (at least one per class that has two)."""
    counts = np.bincount(labels)
    return max(round(len(labels) * fraction), int((counts >= 2).sum()))


def _take_subset(
    x: torch.Tensor, y: torch.Tensor, k: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    if k >= len(y):
        return x, y
    keep = np.sort(_stratified_order(y.numpy(), rng)[:k])
    return x[keep], y[keep]


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images / 255, exact, via 256-bin counts."""
    if len(images) == 0:
        channels = images.shape[1]
        return (0.5,) * channels, (0.25,) * channels
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        var = float((counts * values.square()).sum() / total) - mean * mean
        means.append(mean)
        stds.append(max(math.sqrt(max(var, 0.0)), 1e-3))  # a flat channel must not divide by 0
    return tuple(means), tuple(stds)


# --- downloads ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision's downloads use urlopen without a timeout; the default one applies to them."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = text.removeprefix("<urlopen error ").removesuffix(">")
    return text if len(text) <= 160 else text[:157] + "..."


# --- CIFAR-10 -----------------------------------------------------------------------------------


def _cifar10_folder(root: Path) -> Path:
    """`root` itself when it holds the batches, else root/cifar-10-batches-py."""
    if (root / CIFAR10_TRAIN_FILES[0]).is_file():
        return root
    return root / CIFAR10_FOLDER


def _cifar10_missing(folder: Path) -> list[str]:
    names = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)
    return [name for name in names if not (folder / name).is_file()]


def _download_cifar10(root: Path) -> None:
    background_import.wait()  # torchvision imports torch._dynamo: not while it is loading
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            download_and_extract_archive(
                CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5
            )
    except Exception as exc:  # any failure (DNS, timeout, checksum, bad archive) means the same
        raise RunError(
            f"CIFAR-10 is not in {root} and could not be downloaded ({_short_reason(exc)}): "
            "download it on a machine with internet, or pass --data-dir pointing to a folder "
            f"with {CIFAR10_FOLDER}"
        ) from None


# What a CIFAR-10 batch may ask the unpickler for: the official files (pickled by Python 2's numpy
# at protocol 2) need numpy's array reconstructor, ndarray and dtype; the same data pickled again
# by Python 3 may also need _codecs.encode (bytes at protocol 2), numpy's scalar (numpy ints in the
# label list) and _frombuffer (arrays at protocol 5). All of them only build data. Anything else
# (os.system, builtins.eval, ...) is refused before it is looked up, so a file never runs code.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("codecs", "encode"),
}


class _RefusedGlobal(Exception):
    """A pickle asked for something a CIFAR-10 file never holds."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR-10 batches hold (see `_CIFAR_GLOBALS`)."""

    def find_class(self, module: str, name: str) -> object:
        where = _CIFAR_GLOBALS.get((module, name))
        if where is None:
            raise _RefusedGlobal(f"{module}.{name}")
        import codecs
        import importlib

        owner, attribute = where
        if owner in ("multiarray", "numeric"):  # numpy 2 moved numpy.core to numpy._core
            try:
                holder = importlib.import_module(f"numpy._core.{owner}")
            except ImportError:
                holder = importlib.import_module(f"numpy.core.{owner}")
        else:
            holder = {"numpy": np, "codecs": codecs}[owner]
        return getattr(holder, attribute)


def _read_pickle_dict(path: Path) -> dict:
    """A CIFAR pickle as a dict with str keys (the files are Python 2 pickles with bytes keys).

    Read with `_CifarUnpickler`, which refuses every class and function but numpy's array
    builders: a pickle from someone else cannot run code here.
    """
    if os.path.lexists(path):
        check_input_file(path, "data file")  # not a FIFO (would wait for ever) or a device
    try:
        with path.open("rb") as handle:
            obj = _CifarUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise UsageError(f"{path} is missing") from None
    except _RefusedGlobal as exc:
        raise UsageError(
            f"{path} is not a CIFAR-10 batch file (it asks for {exc}, which CIFAR-10 files never "
            "hold; it was not run): delete it and download CIFAR-10 again"
        ) from None
    except Exception as exc:  # truncated or garbled pickles raise many different errors
        raise UsageError(f"{path} is not a readable CIFAR-10 file ({_short_reason(exc)})") from None
    if not isinstance(obj, dict):
        raise UsageError(
            f"{path} is not a CIFAR-10 file: expected a dict, got {type(obj).__name__}"
        )
    return {key.decode("latin1") if isinstance(key, bytes) else key: v for key, v in obj.items()}


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_pickle_dict(path)
    data, labels = batch.get("data"), batch.get("labels")
    shape = (_CIFAR10.channels, _CIFAR10.image_size, _CIFAR10.image_size)
    values = math.prod(shape)  # one row per image: 3072
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise UsageError(
            f"{path} is not a CIFAR-10 batch: 'data' is not a uint8 (N, {values}) array"
        )
    if data.shape[1] != values:
        raise UsageError(
            f"{path} is not a CIFAR-10 batch: rows of {data.shape[1]} values, not {values}"
        )
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        labels = labels.tolist()
    if not isinstance(labels, list) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        raise UsageError(f"{path} is not a CIFAR-10 batch: 'labels' is not a list of whole numbers")
    if any(not 0 <= v < len(_CIFAR10.classes) for v in labels):
        raise UsageError(f"{path} has labels outside 0-{len(_CIFAR10.classes) - 1}")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise UsageError(f"{path} is truncated: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, *shape), labels


def _load_cifar10(
    data_dir: str | None, download: bool, report: ProgressCallback
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str], str]:
    root = Path(data_dir or DEFAULT_DATA_DIR)
    folder = _cifar10_folder(root)
    missing = _cifar10_missing(folder)
    if missing:
        if not download:
            raise UsageError(
                f"CIFAR-10 is not in {root} (missing {', '.join(missing)} in {folder}): pass "
                f"--data-dir pointing to a folder with {CIFAR10_FOLDER}"
            )
        report("downloading CIFAR-10", 0, 1)
        _download_cifar10(root)
        folder = root / CIFAR10_FOLDER
        if missing := _cifar10_missing(folder):
            raise RunError(f"the CIFAR-10 download did not contain {', '.join(missing)}")

    meta = _read_pickle_dict(folder / CIFAR10_META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != len(_CIFAR10.classes):
        raise UsageError(
            f"{folder / CIFAR10_META_FILE} has no list of {len(_CIFAR10.classes)} 'label_names'"
        )
    classes = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]

    files = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    parts = []
    for done, name in enumerate(files):
        report("reading CIFAR-10", done, len(files))
        parts.append(_read_cifar10_batch(folder / name))
    report("reading CIFAR-10", len(files), len(files))
    train_x = torch.from_numpy(np.concatenate([p[0] for p in parts[:-1]]))
    train_y = torch.from_numpy(np.concatenate([p[1] for p in parts[:-1]]))
    test_x, test_y = torch.from_numpy(parts[-1][0].copy()), torch.from_numpy(parts[-1][1])
    return train_x, train_y, test_x, test_y, classes, str(folder)


# --- Fashion-MNIST ------------------------------------------------------------------------------

_FASHION_FILES = FASHION_MNIST_FILES


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when the name ends in .gz) as a numpy array."""
    path = Path(path)
    if os.path.lexists(path):
        check_input_file(path, "data file")  # not a FIFO (would wait for ever) or a device
    too_large = UsageError(
        f"{path} holds more than {MAX_IDX_BYTES >> 20} MiB of data; Fashion-MNIST's largest file "
        "holds 45 MiB: is it the right file?"
    )
    try:
        if path.suffix == ".gz":
            raw = _inflate(path.read_bytes(), MAX_IDX_BYTES)
        elif path.stat().st_size > MAX_IDX_BYTES:
            raise too_large
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} is missing") from None
    except OverflowError:
        raise too_large from None
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # gzip.BadGzipFile: an OSError
        raise UsageError(f"{path} is not readable ({_short_reason(exc)})") from None
    # Header: two zero bytes, the type code (0x08: unsigned byte), the number of dimensions, then
    # one big-endian uint32 per dimension.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise UsageError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if ndim > 4:  # data sets are at most (N, C, H, W); numpy takes at most 64 dimensions
        raise UsageError(f"{path} is not an IDX file of images or labels ({ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UsageError(f"{path} is truncated (incomplete IDX header)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise UsageError(
            f"{path} is truncated or corrupt: the header says {expected} bytes of data, "
            f"the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _inflate(data: bytes, limit: int) -> bytes:
    """The gzip file `data` inflated (every member, as `gzip.decompress`), in one call per member
    (zlib inflates without the GIL: the four files inflate side by side); OverflowError past
    `limit` bytes, before they are all in memory (a gzip bomb), EOFError when it is cut short."""
    parts, size = [], 0
    while data:
        inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
        part = inflater.decompress(data, limit - size + 1)
        size += len(part)
        if size > limit:
            raise OverflowError(size)
        if not inflater.eof:
            raise EOFError("the gzip stream is cut short")
        parts.append(part)
        data = inflater.unused_data.lstrip(b"\0")  # (gzip pads members with zeros at times)
    return b"".join(parts)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _fashion_folder(candidates: list[Path]) -> Path | None:
    for folder in candidates:
        if all(_find_idx(folder, stem) for stem in _FASHION_FILES.values()):
            return folder
    return None


def _download_fashion_mnist(raw_folder: Path) -> None:
    background_import.wait()  # torchvision imports torch._dynamo: not while it is loading
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import download_and_extract_archive

    for filename, md5 in FashionMNIST.resources:
        errors = []
        for mirror in FashionMNIST.mirrors:
            try:
                with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                    download_and_extract_archive(
                        f"{mirror}{filename}", str(raw_folder), filename=filename, md5=md5
                    )
                break
            except Exception as exc:  # try the next mirror; report all reasons if none works
                errors.append(_short_reason(exc))
        else:
            raise RunError(
                f"Fashion-MNIST is not in {raw_folder} or {FASHION_MNIST_SYSTEM_DIR} and could not "
                f"be downloaded ({'; '.join(errors)}): install Debian's dataset-fashion-mnist, or "
                "download it on a machine with internet and pass --data-dir pointing to the "
                "folder with its IDX files"
            )


def _load_fashion_mnist(
    data_dir: str | None, download: bool, report: ProgressCallback
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    root = Path(data_dir or DEFAULT_DATA_DIR)
    candidates = [Path(folder) for folder in fashion_mnist_folders(data_dir)]
    folder = _fashion_folder(candidates)
    if folder is None:
        if not download:
            raise UsageError(
                f"Fashion-MNIST IDX files are not in {' or '.join(map(str, candidates))}: pass "
                "--data-dir pointing to the folder with train-images-idx3-ubyte(.gz) and the rest"
            )
        folder = root / "FashionMNIST" / "raw"  # torchvision's layout
        report("downloading Fashion-MNIST", 0, 1)
        _download_fashion_mnist(folder)

    paths = {key: _find_idx(folder, stem) for key, stem in _FASHION_FILES.items()}
    arrays = {}
    report("reading Fashion-MNIST", 0, len(paths))
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:  # the files inflate side by side
        reading = {key: pool.submit(read_idx, path) for key, path in paths.items() if path}
        for done, (key, future) in enumerate(reading.items(), 1):
            arrays[key] = (paths[key], future.result())
            report("reading Fashion-MNIST", done, len(paths))

    tensors = []
    for split in ("train", "test"):
        (x_path, images), (y_path, labels) = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if images.ndim != 3:
            raise UsageError(f"{x_path} holds {images.ndim}-D data, expected images (N, H, W)")
        size = _FASHION_MNIST.image_size
        if images.shape[1:] != (size, size):
            height, width = images.shape[1:]
            raise UsageError(
                f"{x_path} holds {height}x{width} images; Fashion-MNIST's are {size}x{size}: the "
                "file is damaged or from another data set"
            )
        if labels.ndim != 1:
            raise UsageError(f"{y_path} holds {labels.ndim}-D data, expected labels (N,)")
        if len(images) != len(labels):
            raise UsageError(f"{x_path} has {len(images)} images but {y_path} {len(labels)} labels")
        if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise UsageError(f"{y_path} has labels outside 0-{len(FASHION_MNIST_CLASSES) - 1}")
        tensors.append(torch.from_numpy(images[:, None].copy()))
        tensors.append(torch.from_numpy(labels.astype(np.int64)))
    return tensors[0], tensors[1], tensors[2], tensors[3], str(folder)


# --- image folders ------------------------------------------------------------------------------


def _class_folders(root: Path) -> list[str]:
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise UsageError(
            f"cannot read image folder {root} ({_short_reason(exc)}): make it readable "
            "(chmod u+rx) or pass another --data-dir"
        ) from None


def _class_files(root: Path, name: str) -> list[Path]:
    """The files of class folder root/name (all levels down), hidden ones left out."""
    folder = root / name
    try:
        os.listdir(folder)  # rglob skips a folder it cannot list without a word: check it here
    except OSError as exc:
        raise UsageError(
            f"cannot read class folder {folder} ({_short_reason(exc)}): make it readable "
            "(chmod u+rx) or move it out of the image folder"
        ) from None
    return [  # a FIFO or device too: `_read_image` skips it, so it is listed as skipped
        path
        for path in sorted(folder.rglob("*"))
        if path.exists() and not path.is_dir() and not path.name.startswith(".")
    ]


def _read_image(path: Path, size: int) -> np.ndarray | None:
    """One image as uint8 (3, size, size): RGB, centre-cropped to a square, resized; None if bad."""
    from PIL import Image, ImageOps

    if not is_regular_file(path):  # a FIFO would wait for ever, a device never end
        return None
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            rgb = image.convert("RGB")
        square = ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR)
        return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)
    except Exception:  # not an image, truncated, corrupt, too large: all are skipped and listed
        return None


def _load_image_folder(
    data_dir: str | None, size: int, report: ProgressCallback
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str], str]:
    if not data_dir:
        raise UsageError(
            "--dataset imagefolder needs --data-dir: a folder with one sub-folder per class"
        )
    root = Path(data_dir)
    if not root.is_dir():
        raise UsageError(f"image folder {root} does not exist or is not a folder")
    classes = _class_folders(root)
    if len(classes) < 2:
        raise UsageError(
            f"image folder {root} has {len(classes)} class sub-folder(s); it needs at least 2 "
            "class folders (one sub-folder of images per class)"
        )
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        files.extend((path, label) for path in _class_files(root, name))

    images: list[np.ndarray | None] = []
    workers = min(8, (os.cpu_count() or 1) + 1)  # Pillow decodes without holding the GIL
    step = max(1, len(files) // 100)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, image in enumerate(pool.map(lambda f: _read_image(f[0], size), files)):
            images.append(image)
            if done % step == 0:
                report("reading images", done, len(files))
    report("reading images", len(files), len(files))

    skipped = [
        str(path.relative_to(root))
        for (path, _), im in zip(files, images, strict=True)
        if im is None
    ]
    kept = [(im, label) for (_, label), im in zip(files, images, strict=True) if im is not None]
    counts = np.bincount([label for _, label in kept], minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise UsageError(
            f"image folder {root}: no readable images in {some(empty)}"
            + (f" ({len(skipped)} unreadable file(s) skipped)" if skipped else "")
            + ": add images (PNG, JPEG, ...) to each class folder or remove the empty ones"
        )
    x = torch.from_numpy(np.stack([im for im, _ in kept]))
    y = torch.tensor([label for _, label in kept], dtype=torch.int64)
    return x, y, classes, skipped, str(root)


# --- batched tensor ops for the engine ----------------------------------------------------------


def normalize(
    batch: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> (x / 255 - mean) / std per channel, as `out_dtype`."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=batch.device).view(shape)
    # (x - 255 mean) / (255 std) in one pass over the float copy
    out = (batch.to(torch.float32) - mean_t * 255.0) / (std_t * 255.0)
    return out.to(out_dtype)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device)


def flip_horizontal(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = _rand(len(batch), generator, batch.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)


def random_crop(
    batch: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to `padding` pixels each way, filling the border by reflection.

    Same as padding by reflection and cropping back to size at a random place, done as one gather
    with per-image row and column indices (no padded copy, no per-image loop).
    """
    n, _, height, width = batch.shape
    device = batch.device
    shift_y = (_rand(n, generator, device) * (2 * padding + 1)).long() - padding
    shift_x = (_rand(n, generator, device) * (2 * padding + 1)).long() - padding
    rows = _reflect(torch.arange(height, device=device) + shift_y[:, None], height)  # (N, H)
    cols = _reflect(torch.arange(width, device=device) + shift_x[:, None], width)  # (N, W)
    index_rows = rows[:, None, :, None].expand(-1, batch.shape[1], -1, width)
    out = batch.gather(2, index_rows)
    index_cols = cols[:, None, None, :].expand(-1, batch.shape[1], height, -1)
    return out.gather(3, index_cols)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside 0..size-1 mirrored back inside (like F.pad mode='reflect')."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def augment(
    batch: torch.Tensor, mode: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random augmentation of a batch (any dtype, CPU or CUDA): none, flip, or flip-crop.

    `generator` must live on the batch's device (None: torch's default generator).
    """
    if mode == "none":
        return batch
    if mode == "flip":
        return flip_horizontal(batch, generator)
    if mode == "flip-crop":
        return random_crop(flip_horizontal(batch, generator), 4, generator)
    raise UsageError(f"unknown augmentation {mode!r}; valid values: {', '.join(AUGMENTS)}")


def resize(batch: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize a batch (N, C, H, W) bilinearly (antialiased when shrinking); keeps the dtype."""
    target = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(batch.shape[2:]) == target:
        return batch
    if batch.dtype.is_floating_point:
        return F.interpolate(
            batch, size=target, mode="bilinear", antialias=True, align_corners=False
        )
    out = F.interpolate(
        batch.float(), size=target, mode="bilinear", antialias=True, align_corners=False
    )
    return out.round_().clamp_(0, 255).to(batch.dtype)
