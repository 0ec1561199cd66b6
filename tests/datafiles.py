"""Tiny data set files in the real on-disk formats, for tests of the loaders and the engine.

- `write_tiny_cifar10`: CIFAR-10's python-pickle batches (data_batch_1..5, test_batch,
  batches.meta) in root/cifar-10-batches-py, pickled as the official ones were (`py2_pickle`).
- `write_tiny_idx`: Fashion-MNIST's four IDX files, gzipped or raw.
- `write_image_folder`: one sub-folder per class of PNG/JPEG files, optionally with a corrupt
  image and a non-image file.

Images carry their class as a colour (plus noise), so a model can learn them in a few steps.
Import with `from datafiles import ...` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def class_images(
    labels: np.ndarray, channels: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 (N, channels, size, size) images whose mean colour depends on the label."""
    labels = np.asarray(labels)
    levels = np.linspace(30, 225, 10)
    base = np.empty((len(labels), channels), dtype=np.float64)
    for c in range(channels):
        base[:, c] = levels[(labels * (c + 3)) % 10]
    noise = rng.normal(0, 12, (len(labels), channels, size, size))
    return np.clip(base[:, :, None, None] + noise, 0, 255).astype(np.uint8)


class _Python2Pickler(pickle._Pickler):
    """Pickles as Python 2's numpy did at protocol 2, the way the official CIFAR-10 batches were
    written: text and bytes as Python 2 str (SHORT_BINSTRING / BINSTRING opcodes, no
    `_codecs.encode` call) and numpy's array builder under its old name numpy.core.multiarray."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


def py2_pickle(obj: object) -> bytes:
    """`obj` pickled as by Python 2 at protocol 2 (see `_Python2Pickler`)."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % 10)


def write_tiny_cifar10(
    root: str | Path, n_train: int = 50, n_test: int = 20, seed: int = 0
) -> Path:
    """Write a CIFAR-10 look-alike with n_train images over the 5 train batches; returns root.

    The loader finds it with data_dir=root (or root/cifar-10-batches-py).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def write_batch(name: str, n: int) -> None:
        labels = _labels(n, rng)
        images = class_images(labels, 3, 32, rng).reshape(n, 3072)
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in labels],
            b"data": images,
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(py2_pickle(batch))

    sizes = np.full(5, n_train // 5)
    sizes[: n_train % 5] += 1
    for i, n in enumerate(sizes, start=1):
        write_batch(f"data_batch_{i}", int(n))
    write_batch("test_batch", n_test)
    meta = {
        b"num_cases_per_batch": int(sizes[0]),
        b"label_names": [name.encode() for name in CIFAR10_CLASSES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return Path(root)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian uint32 dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_tiny_idx(
    root: str | Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0
) -> Path:
    """Write the four Fashion-MNIST IDX files (28×28, labels 0-9) into root; returns root."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = _labels(n, rng)
        images = class_images(labels, 1, 28, rng)[:, 0]
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            data = idx_bytes(array)
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    return root


def write_image_folder(
    root: str | Path,
    classes: tuple[str, ...] = ("cats", "dogs"),
    per_class: int = 10,
    corrupt: bool = True,
    non_image: bool = True,
    seed: int = 0,
) -> Path:
    """One sub-folder per class of PNG and JPEG images of assorted sizes; returns root.

    With `corrupt`, classes[0]/broken.jpg is a truncated JPEG; with `non_image`,
    classes[-1]/notes.txt is text. Both must be skipped by the loader.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = int(rng.integers(20, 60)), int(rng.integers(20, 60))
            pixels = class_images(np.array([label]), 3, max(height, width), rng)[0]
            image = Image.fromarray(pixels.transpose(1, 2, 0)[:height, :width])
            if i % 2:
                image.save(folder / f"{name}_{i}.jpg", quality=90)
            else:
                image.convert("L" if i % 4 == 0 else "RGB").save(folder / f"{name}_{i}.png")
    if corrupt:
        good = (root / classes[0] / f"{classes[0]}_1.jpg").read_bytes()
        (root / classes[0] / "broken.jpg").write_bytes(good[: len(good) // 3])
    if non_image:
        (root / classes[-1] / "notes.txt").write_text("not an image\n")
    return root
