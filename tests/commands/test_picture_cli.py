"""`cnn-tui conv --image`: the trace of the crop with its header, and every bad input as one
line with exit status 2."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from cnn_tui import cli
from cnn_tui.lessons import picture as pic


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def png(tmp_path):
    rows, cols = np.mgrid[0:12, 0:16]
    grey = ((cols >= 8) * 200 + rows * 4).astype(np.uint8)  # a vertical edge at column 8
    path = tmp_path / "edge.png"
    Image.fromarray(grey).save(path)
    return path


def test_trace_of_the_crop_names_the_picture_crop_and_kernel(capsys, png):
    code, out, err = run_cli(
        capsys, "conv", "--image", str(png), "--kernel", "sobel-x", "--crop", "3,5", "--no-ui"
    )
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("picture: edge.png, 12×16 grey levels in [0, 1]")
    assert lines[1].startswith("kernel: sobel-x [-1 0 1; -2 0 2; -1 0 1]: vertical edges")
    assert lines[2].startswith("feature map: the kernel over the whole picture (stride 1")
    assert lines[2].endswith("→ 10×14, values 0 to 3.14")  # 1·0.78 + 2·0.79 + 1·0.78 at best
    assert lines[3] == (
        "crop: rows 3–8, columns 5–10 (6×6) → out 4×4 = feature map rows 3–6, columns 5–8 "
        "(the naive loops below give those cells: max |Δ| 0.0e+00)"
    )
    assert "example: picture: sobel-x on a 6×6 crop of edge.png" in out
    assert "forward: out[i,j] = b + Σ_ki,kj x_pad[i+ki,j+kj]·w[ki,kj]   (160 steps)" in out
    assert sum(re.match(r"out\[\d,\d\] \+?= ", line) is not None for line in lines) == 160


def test_backward_and_custom_kernel(capsys, png):
    code, out, _ = run_cli(
        capsys,
        "conv", "--image", str(png), "--kernel-values", "1 -1", "--height", "4", "--width", "5",
        "--stride", "2", "--crop", "4,6", "--backward", "--summary", "--no-ui",
    )  # fmt: skip
    assert code == 0
    assert "kernel: your kernel [1 -1]: your own kernel (--kernel-values)" in out
    assert "crop: rows 4–7, columns 6–10 (4×5) → out 2×2 = feature map rows 2–3, columns 3–4" in out
    assert "dx as a transposed convolution equals the dX pass: max |Δ| 0.0e+00" in out
    assert "gradient check (central differences, eps 1e-06): max relative error" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image", "missing.png"], "--image missing.png: no such file"),
        (["--image", "NOTIMAGE"], "not an image Pillow can read"),
        (["--image", "fashion-mnist:99999999"], "the test set has 3 images (0 to 2)"),
        (["--image", "fashion-mnist:oops"], "write fashion-mnist:INDEX"),
        (["--image", "PNG", "--crop", "11,0"], "--crop 11,0: a 6×6 crop of the 12×16 picture"),
        (["--image", "PNG", "--crop", "1x"], "--crop must be ROW,COL"),
        (["--image", "PNG", "--stride", "2", "--crop", "1,1"], "multiple of the stride"),
        (["--image", "PNG", "--padding", "1"], "--padding cannot be combined with --image"),
        (["--image", "PNG", "--kernel", "3"], "with --image, --kernel names a kernel"),
        (["--image", "PNG", "--example", "basic-5x5"], "--example cannot be combined"),
        (["--image", "PNG", "--kernel-values", "1,2;3"], "every row needs as many numbers"),
        (["--kernel", "sobel-x"], "--kernel sobel-x needs --image"),
        (["--crop", "1,1"], "--crop needs --image"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, png, monkeypatch, argv, message):
    (tmp_path / "NOTIMAGE").write_text("not an image")
    images = np.zeros((3, 28, 28), np.uint8)
    raw = bytes([0, 0, 8, 3]) + (3).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw + images.tobytes())
    monkeypatch.setattr(pic, "fashion_mnist_folders", lambda: [str(tmp_path)])
    monkeypatch.chdir(tmp_path)
    argv = [str(png) if arg == "PNG" else arg for arg in argv]
    code, out, err = run_cli(capsys, "conv", *argv, "--no-ui")
    assert code == 2 and out == ""
    assert err.startswith("cnn-tui: error: ") and message in err and err.count("\n") == 1


def test_fashion_mnist_not_installed(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(pic, "fashion_mnist_folders", lambda: [str(tmp_path)])
    code, _, err = run_cli(capsys, "conv", "--image", "fashion-mnist:0", "--no-ui")
    assert code == 2
    assert "install Debian's dataset-fashion-mnist or pass --image FILE" in err


def test_a_named_kernel_that_does_not_exist_is_a_flag_error(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["conv", "--image", "x.png", "--kernel", "blurry", "--no-ui"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "a kernel's name (edge, sobel-x" in err
    assert err.count("\n") == 1
