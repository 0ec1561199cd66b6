"""Data sets (real loaders on tiny files in the real formats) and the batched tensor ops."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datafiles import (
    CIFAR10_CLASSES,
    idx_bytes,
    write_image_folder,
    write_tiny_cifar10,
    write_tiny_idx,
)

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.data import datasets
from cnn_tui.training.data import shapes as shapes_dataset

# --- shapes -------------------------------------------------------------------------------------


def test_shapes_module_does_not_import_torch():
    code = "import sys, cnn_tui.training.data.shapes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shapes_are_deterministic_per_seed_and_split():
    images, labels = shapes_dataset.generate(300, 7)
    shapes_dataset.generate.cache_clear()
    again_images, again_labels = shapes_dataset.generate(300, 7)
    assert images is not again_images  # really drawn twice
    assert np.array_equal(images, again_images) and np.array_equal(labels, again_labels)
    other, _ = shapes_dataset.generate(300, 8)
    test, _ = shapes_dataset.generate(300, 7, "test")
    assert not np.array_equal(images, other)
    assert not np.array_equal(images, test)


def test_shapes_have_balanced_classes_and_the_documented_format():
    images, labels = shapes_dataset.generate(500, 0)
    assert images.shape == (500, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (500,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [50] * 10
    assert not images.flags.writeable  # the cached arrays cannot be changed by accident
    # Every image shows something: the shape stands out from its background.
    assert images.reshape(500, -1).std(axis=1).min() > 5


def test_load_shapes_splits_with_the_seed():
    first = datasets.load_dataset("shapes", limit=200, seed=1)
    again = datasets.load_dataset("shapes", limit=200, seed=1)
    other = datasets.load_dataset("shapes", limit=200, seed=2)
    assert first.name == "shapes" and first.classes == list(shapes_dataset.CLASSES)
    assert (first.channels, first.image_size, first.num_classes) == (3, (32, 32), 10)
    assert len(first.train_y) == 200 and first.train_y.bincount().tolist() == [20] * 10
    assert 15 <= len(first.val_y) <= 30 and len(first.test_y) > 20
    assert torch.equal(first.val_x, again.val_x) and not torch.equal(first.val_x, other.val_x)
    for split in (first.train_x, first.val_x, first.test_x):
        assert split.dtype == torch.uint8 and split.is_contiguous()
    assert first.train_y.dtype == torch.int64


def test_load_shapes_full_size():
    splits = datasets.load_dataset("shapes")
    assert len(splits.train_y) == 18_000 and len(splits.val_y) == 2_000
    assert len(splits.test_y) == 4_000
    assert splits.val_y.bincount().tolist() == [200] * 10  # stratified


# --- CIFAR-10 -----------------------------------------------------------------------------------


def test_cifar10_reads_the_pickle_batches(tmp_path):
    write_tiny_cifar10(tmp_path, n_train=50, n_test=20)
    progress = []
    splits = datasets.load_dataset(
        "cifar10", str(tmp_path), on_progress=lambda *args: progress.append(args)
    )
    assert splits.classes == list(CIFAR10_CLASSES)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (45, 5, 20)
    assert splits.train_x.shape == (45, 3, 32, 32) and splits.train_x.dtype == torch.uint8
    assert progress and progress[-1][1] == progress[-1][2]
    # The official test batch comes back whole and in order, image by image.
    import pickle

    with (tmp_path / "cifar-10-batches-py" / "test_batch").open("rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    assert torch.equal(splits.test_x, torch.from_numpy(batch[b"data"].reshape(-1, 3, 32, 32)))
    assert splits.test_y.tolist() == batch[b"labels"]
    # The train / val split covers the official train set exactly once.
    train_total = int(splits.train_x.double().sum() + splits.val_x.double().sum())
    files = [tmp_path / "cifar-10-batches-py" / f"data_batch_{i}" for i in range(1, 6)]
    expected = 0
    for path in files:
        with path.open("rb") as handle:
            expected += int(pickle.load(handle, encoding="bytes")[b"data"].sum(dtype=np.int64))
    assert train_total == expected
    # mean / std are those of train_x / 255
    x = splits.train_x.double() / 255
    assert np.allclose(splits.mean, x.mean(dim=(0, 2, 3)).numpy(), atol=1e-9)
    assert np.allclose(splits.std, x.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-9)


def test_cifar10_data_dir_may_be_the_batches_folder(tmp_path):
    write_tiny_cifar10(tmp_path, n_train=20, n_test=10)
    splits = datasets.load_dataset("cifar10", str(tmp_path / "cifar-10-batches-py"), val_split=0.2)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (16, 4, 10)


@pytest.mark.parametrize(
    "damage", ["truncate", "garbage", "not-a-dict", "bad-rows", "bad-labels", "bad-meta"]
)
def test_cifar10_corrupt_files_are_usage_errors_naming_the_file(tmp_path, damage):
    import pickle

    folder = write_tiny_cifar10(tmp_path, n_train=20, n_test=10) / "cifar-10-batches-py"
    target = folder / ("batches.meta" if damage == "bad-meta" else "data_batch_3")
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:500])
    elif damage == "garbage":
        target.write_bytes(b"\x00not a pickle at all" * 10)
    elif damage == "not-a-dict":
        target.write_bytes(pickle.dumps([1, 2, 3]))
    elif damage == "bad-rows":
        target.write_bytes(
            pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4})
        )
    elif damage == "bad-labels":
        batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 12]}
        target.write_bytes(pickle.dumps(batch))
    else:
        target.write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    with pytest.raises(UsageError, match=target.name):
        datasets.load_dataset("cifar10", str(tmp_path))


def test_cifar10_missing_without_download_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--data-dir"):
        datasets.load_dataset("cifar10", str(tmp_path), download=False)


def test_cifar10_download_failure_is_a_fast_run_error(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    # An address that can never resolve (RFC 6761), so the test is the same with or without network.
    monkeypatch.setattr(CIFAR10, "url", "https://cifar.invalid/cifar-10-python.tar.gz")
    start = time.monotonic()
    with pytest.raises(RunError) as info:
        datasets.load_dataset("cifar10", str(tmp_path / "empty"))
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "could not be downloaded" in message and str(tmp_path / "empty") in message
    assert "--data-dir" in message and "cifar-10-batches-py" in message


def test_cifar10_download_from_a_stalled_server_times_out(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)  # connections complete, but nothing is ever sent back
    try:
        port = server.getsockname()[1]
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
        monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(RunError, match="could not be downloaded"):
            datasets.load_dataset("cifar10", str(tmp_path))
        assert time.monotonic() - start < 10
        assert socket.getdefaulttimeout() is None  # the global default is restored
    finally:
        server.close()


# --- Fashion-MNIST ------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, gz):
    write_tiny_idx(tmp_path, n_train=60, n_test=20, gz=gz)
    splits = datasets.load_dataset("fashion-mnist", str(tmp_path), val_split=0.5)
    assert splits.classes == list(datasets.FASHION_MNIST_CLASSES)
    assert splits.train_x.shape == (30, 1, 28, 28) and splits.test_x.shape == (20, 1, 28, 28)
    assert len(splits.val_y) == 30 and splits.channels == 1
    assert splits.source == str(tmp_path)


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    write_tiny_idx(tmp_path / "FashionMNIST" / "raw", n_train=20, n_test=10)
    splits = datasets.load_dataset("fashion-mnist", str(tmp_path))
    assert len(splits.test_y) == 10


def test_read_idx_checks_the_magic_number_and_length(tmp_path):
    good = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "good").write_bytes(idx_bytes(good))
    assert np.array_equal(datasets.read_idx(tmp_path / "good"), good)
    (tmp_path / "magic").write_bytes(b"\x00\x00\x0d\x03" + idx_bytes(good)[4:])  # float32 code
    (tmp_path / "short").write_bytes(idx_bytes(good)[:-5])
    (tmp_path / "bad.gz").write_bytes(b"not gzip data")
    (tmp_path / "empty").write_bytes(b"")
    for name, reason in [
        ("magic", "magic"),
        ("short", "truncated"),
        ("bad.gz", "not readable"),
        ("empty", "magic"),
    ]:
        with pytest.raises(UsageError, match=rf"{name}.*{reason}"):
            datasets.read_idx(tmp_path / name)


def test_fashion_mnist_bad_file_is_a_usage_error_naming_it(tmp_path):
    write_tiny_idx(tmp_path, n_train=20, n_test=10)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes([3] * 9)))
    with pytest.raises(UsageError, match="t10k-labels-idx1-ubyte.gz"):
        datasets.load_dataset("fashion-mnist", str(tmp_path))


def test_fashion_mnist_missing_without_download_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--data-dir"):
        datasets.load_dataset("fashion-mnist", str(tmp_path), download=False)


def test_fashion_mnist_download_failure_is_a_fast_run_error(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", ["https://fashion.invalid/"])
    start = time.monotonic()
    with pytest.raises(RunError, match="could not be downloaded"):
        datasets.load_dataset("fashion-mnist", str(tmp_path))
    assert time.monotonic() - start < 30


@pytest.mark.skipif(
    not Path(datasets.FASHION_MNIST_SYSTEM_DIR).is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_the_debian_package():
    splits = datasets.load_dataset("fashion-mnist")
    assert splits.source == datasets.FASHION_MNIST_SYSTEM_DIR
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (54_000, 6_000, 10_000)
    assert splits.train_x.shape[1:] == (1, 28, 28)
    assert splits.test_y.bincount().tolist() == [1000] * 10
    assert abs(splits.mean[0] - 0.286) < 0.01 and abs(splits.std[0] - 0.353) < 0.01


# --- image folders ------------------------------------------------------------------------------


def test_image_folder_skips_bad_files_and_splits_80_20(tmp_path):
    root = write_image_folder(tmp_path / "pets", per_class=10)
    splits = datasets.load_dataset("imagefolder", str(root), image_size=16, val_split=0.25)
    assert splits.classes == ["cats", "dogs"]
    assert sorted(splits.skipped) == ["cats/broken.jpg", "dogs/notes.txt"]
    assert splits.train_x.shape[1:] == (3, 16, 16) and splits.train_x.dtype == torch.uint8
    assert splits.test_y.bincount().tolist() == [2, 2]  # 20 % of each class
    assert splits.val_y.bincount().tolist() == [2, 2]
    assert splits.train_y.bincount().tolist() == [6, 6]
    # Images keep their class colour through decoding and resizing (JPEG, grey PNG included).
    means = splits.train_x.double().mean(dim=(1, 2, 3))
    assert means[splits.train_y == 0].max() < means[splits.train_y == 1].min()


def test_image_folder_test_split_does_not_depend_on_the_seed(tmp_path):
    root = write_image_folder(tmp_path, per_class=10, corrupt=False, non_image=False)
    a = datasets.load_dataset("imagefolder", str(root), image_size=8, seed=0)
    b = datasets.load_dataset("imagefolder", str(root), image_size=8, seed=5)
    assert torch.equal(a.test_x, b.test_x)
    assert a.image_size == (8, 8) and a.skipped == []


def test_image_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        datasets.load_dataset("imagefolder", str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="--data-dir"):
        datasets.load_dataset("imagefolder", None)
    write_image_folder(tmp_path / "one", classes=("cats",), per_class=2)
    with pytest.raises(UsageError, match="at least 2"):
        datasets.load_dataset("imagefolder", str(tmp_path / "one"))
    root = write_image_folder(tmp_path / "two", per_class=2, corrupt=False, non_image=False)
    for path in (root / "dogs").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(UsageError, match="no readable images in dogs"):
        datasets.load_dataset("imagefolder", str(root))


# --- names, info, arguments ---------------------------------------------------------------------


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(UsageError, match="shapes, cifar10, fashion-mnist, imagefolder"):
        datasets.load_dataset("mnist")
    with pytest.raises(UsageError, match="valid data sets"):
        datasets.dataset_info("mnist")


def test_dataset_info(tmp_path):
    assert datasets.dataset_info("shapes")[:3] == (3, (32, 32), 10)
    assert datasets.dataset_info("cifar10")[3] == list(CIFAR10_CLASSES)
    assert datasets.dataset_info("fashion-mnist")[:3] == (1, (28, 28), 10)
    assert datasets.dataset_info("imagefolder") == (3, (64, 64), 0, [])
    write_image_folder(tmp_path, per_class=1, corrupt=False, non_image=False)
    assert datasets.dataset_info("imagefolder", str(tmp_path), 96) == (
        3,
        (96, 96),
        2,
        ["cats", "dogs"],
    )


def test_bad_split_arguments():
    with pytest.raises(UsageError, match="val_split"):
        datasets.load_dataset("shapes", val_split=1.0)
    with pytest.raises(UsageError, match="limit"):
        datasets.load_dataset("shapes", limit=0)


# --- batched ops --------------------------------------------------------------------------------


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def _batch(n: int = 6, channels: int = 3, size: int = 10, device: str = "cpu") -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_flip_twice_with_the_same_draws_is_the_identity(device):
    batch = _batch(32, device=device)
    once = datasets.augment(batch, "flip", torch.Generator(device).manual_seed(3))
    twice = datasets.augment(once, "flip", torch.Generator(device).manual_seed(3))
    assert torch.equal(twice, batch)
    flipped = (once != batch).flatten(1).any(dim=1)
    assert 0 < flipped.sum() < 32  # some images flipped, some not
    assert torch.equal(once[flipped], batch[flipped].flip(3))


@pytest.mark.parametrize("device", DEVICES)
def test_random_crop_is_a_reflect_padded_crop_of_each_image(device):
    batch = _batch(16, 2, 9, device=device)
    out = datasets.augment(batch, "flip-crop", torch.Generator(device).manual_seed(0))
    assert out.shape == batch.shape and out.dtype == batch.dtype and out.device == batch.device
    for image, result in zip(batch.cpu(), out.cpu(), strict=True):
        candidates = []
        for source in (image, image.flip(2)):
            padded = F.pad(source[None].float(), (4, 4, 4, 4), mode="reflect")[0]
            candidates += [padded[:, y : y + 9, x : x + 9] for y in range(9) for x in range(9)]
        assert any(torch.equal(result.float(), c) for c in candidates)
    assert torch.equal(datasets.random_crop(batch, padding=0), batch)
    floats = datasets.augment(batch.float(), "flip-crop", torch.Generator(device).manual_seed(0))
    assert torch.equal(floats, out.float())  # the same draws move floats the same way


def test_augment_none_and_unknown_mode():
    batch = _batch()
    assert datasets.augment(batch, "none") is batch
    with pytest.raises(UsageError, match="flip-crop"):
        datasets.augment(batch, "rotate")


@pytest.mark.parametrize("device", DEVICES)
def test_normalize_gives_zero_mean_unit_std_on_the_train_set(device):
    splits = datasets.load_dataset("shapes", limit=300)
    x = datasets.normalize(splits.train_x.to(device), splits.mean, splits.std)
    assert x.dtype == torch.float32 and x.shape == splits.train_x.shape
    assert torch.allclose(x.mean(dim=(0, 2, 3)).cpu(), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)).cpu(), torch.ones(3), atol=1e-3)
    half = datasets.normalize(
        splits.train_x[:4].to(device), splits.mean, splits.std, torch.bfloat16
    )
    assert half.dtype == torch.bfloat16 and half.device == x.device


@pytest.mark.parametrize("device", DEVICES)
def test_resize_keeps_dtype_and_constant_images(device):
    batch = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8, device=device)
    big = datasets.resize(batch, 24)
    assert big.shape == (2, 3, 24, 24) and big.dtype == torch.uint8 and (big == 77).all()
    small = datasets.resize(batch.float(), (4, 6))
    assert small.shape == (2, 3, 4, 6) and torch.allclose(small, torch.tensor(77.0, device=device))
    assert datasets.resize(batch, 8) is batch
