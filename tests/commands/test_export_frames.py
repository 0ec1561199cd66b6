"""`cnn-tui conv|pool|net --export-frames DIR`: the steps of one phase written as SVG
screenshots of the lesson screen, numbered, with index.txt and frames.json, without a terminal;
bad flags and folders refused in one line (exit 2) before anything is written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from cli_process import run_cnn_tui

from cnn_tui import cli
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.slides import portable_svg, status_counter

SVG = "{http://www.w3.org/2000/svg}"


def screen_lines(path: Path) -> list[str]:
    """The text of an SVG screenshot, one string per terminal row (it must parse as XML)."""
    rows: dict[float, list[tuple[float, str]]] = defaultdict(list)
    for element in ET.parse(path).iter(f"{SVG}text"):
        if element.get("y") is not None:
            text = (element.text or "").replace("\xa0", " ")
            rows[float(element.get("y"))].append((float(element.get("x")), text))
    return ["".join(text for _, text in sorted(row)) for _, row in sorted(rows.items())]


def assert_portable(path: Path) -> None:
    """A frame that lines up outside a browser (`slides.portable_svg`): every space kept and a
    monospace font any renderer has; still an SVG that parses."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    assert root.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve"
    style = "".join(root.find(f"{SVG}style").itertext())
    family = re.search(r"matrix \{\s*font-family: ([^;]+);", style)
    assert family is not None
    fonts = [name.strip().strip('"') for name in family.group(1).split(",")]
    assert "DejaVu Sans Mono" in fonts and fonts[-1] == "monospace"
    assert "white-space: pre;" in style


def exported(folder: Path) -> tuple[list[str], dict]:
    files = sorted(path.name for path in folder.iterdir())
    return files, json.loads((folder / "frames.json").read_text())


def test_conv_writes_every_kth_step_of_a_phase_as_numbered_svgs(tmp_path: Path) -> None:
    folder = tmp_path / "slides" / "dw"  # made, with its parent
    done = run_cnn_tui(
        "conv", "--height", "4", "--width", "4", "--export-frames", str(folder),
        "--phase", "dw", "--every", "10", "--frame-size", "80x24",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 5 frames to {folder} (index.txt, frames.json)\n"
    files, manifest = exported(folder)
    model = OpReplay(build_example("conv", height=4, width=4))
    target = model.resolve_goto("dw", {})
    model.go_to(target)  # entered as `p` enters it: before dW's first step
    start, total = target.position, model.replay.total  # dW's first step follows dB's steps
    # every 10th step of dW's 36, and its last; each file numbered as its status line counts
    phase_steps = [1, 11, 21, 31, 36]
    steps = [start + k - 1 for k in phase_steps]
    assert files == [*(f"{k:04d}-dw.svg" for k in steps), "frames.json", "index.txt"]
    assert not list(folder.glob(".*"))  # no temporary file left
    assert [f["phase_step"] for f in manifest["frames"]] == phase_steps
    assert [f["step"] for f in manifest["frames"]] == steps
    assert (manifest["phase"], manifest["steps"], manifest["size"]) == ("dw", 36, [80, 24])
    # each frame shows the step it is listed with, as the lesson model writes it
    index = (folder / "index.txt").read_text().splitlines()
    assert index[0].startswith("# cnn-tui conv --export-frames: backward · dW, 5 frames")
    for line, frame in zip(index[1:], manifest["frames"], strict=True):
        model.seek(frame["step"])
        formula, numbers = model.step_lines()[:2]
        assert frame["formula"] == f"{formula}   {numbers}"
        counter = f"step {frame['step']} / {total}"
        assert frame["counter"] == counter
        assert line == (
            f"{frame['file']}  {counter}  (dw step {frame['phase_step']} of 36)  {frame['formula']}"
        )
        shown = screen_lines(folder / frame["file"])
        assert len(shown) >= 24  # an 80×24 terminal (and the window's title)
        assert any(row.strip().startswith(formula) for row in shown)
        assert any(numbers in row for row in shown)
        status = next(row for row in shown if "backward · dW" in row)  # the status line
        assert counter in status  # the frame's own number is its file's and the index's
        assert_portable(folder / frame["file"])


def test_pool_and_net_export_through_the_cli(tmp_path: Path, capsys) -> None:
    assert cli.main(["pool", "--export-frames", str(tmp_path / "pool"), "--phase", "dx"]) == 0
    files, manifest = exported(tmp_path / "pool")
    first = manifest["frames"][0]
    assert files[0] == f"{first['step']:04d}-dx.svg" and first["phase_step"] == 1
    assert len(manifest["frames"]) == manifest["steps"]
    assert "wrote" in capsys.readouterr().out
    code = cli.main(
        ["net", "--export-frames", str(tmp_path / "net"), "--phase", "dw1", "--every", "100"]
    )
    assert code == 0
    files, manifest = exported(tmp_path / "net")
    frames = manifest["frames"]
    # the network lesson's status counts the whole lesson ("all K / T"): the files' numbers
    assert files == [f"{f['step']:04d}-dw1.svg" for f in frames] + ["frames.json", "index.txt"]
    assert [f["phase_step"] for f in frames] == [1, 101, 201, manifest["steps"]]
    assert [f["step"] - f["phase_step"] for f in frames] == [frames[0]["step"] - 1] * 4
    for frame in frames:
        shown = screen_lines(tmp_path / "net" / frame["file"])
        assert any(frame["formula"].split("   ")[0] in row for row in shown)
        assert frame["counter"].startswith(f"all {frame['step']} / ")
        assert any(frame["counter"] in row for row in shown)  # as the frame's status line says


def test_force_replaces_only_an_earlier_export(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "frames"
    small = ["conv", "--height", "4", "--width", "4", "--export-frames", str(folder)]
    assert cli.main([*small, "--phase", "dw", "--every", "5"]) == 0
    before = sorted(path.name for path in folder.iterdir())
    assert len(before) == 10  # 8 frames and the index files
    capsys.readouterr()
    # again without --force: refused, nothing changed
    assert cli.main([*small, "--phase", "db"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(path.name for path in folder.iterdir()) == before
    # with --force: the earlier frames are replaced, none of them left behind
    assert cli.main([*small, "--phase", "db", "--force"]) == 0
    files, manifest = exported(folder)
    assert files == [f"{k:04d}-db.svg" for k in range(1, 5)] + ["frames.json", "index.txt"]
    assert [f["step"] for f in manifest["frames"]] == [1, 2, 3, 4]  # dB opens the pass
    # a file no export wrote is never written over, even with --force
    (folder / "notes.md").write_text("mine")
    capsys.readouterr()
    assert cli.main([*small, "--force"]) == 2
    err = capsys.readouterr().err
    assert "holds notes.md, which no export wrote" in err
    assert (folder / "notes.md").read_text() == "mine" and len(list(folder.iterdir())) == 7


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--phase", "nope"], "--phase nope: no phase 'nope' here: the phases are forward"),
        (["--height", "16", "--width", "16", "--max-frames", "50"], "give --every 40"),
        (["--every", "0"], "argument --every: expected 1 to 20000, got 0"),
        (["--frame-size", "80x"], "argument --frame-size: give COLSxROWS, e.g. 120x40"),
        (["--frame-format", "gif"], "argument --frame-format: invalid choice: 'gif'"),
        (["--frame-size", "30x10"], "30x10 is out of range: columns 60 to 400, rows 20 to 200"),
        (["--no-ui"], "--export-frames writes frames, --no-ui prints a trace"),
    ],
)
def test_bad_flags_exit_2_in_one_line_and_write_nothing(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    folder = tmp_path / "frames"
    assert main(["conv", "--export-frames", str(folder), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not folder.exists()


def main(argv: list[str]) -> int:
    """`cli.main`, with argparse's exit (a bad flag value) as its code."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_its_options_need_it_and_a_file_is_no_folder(tmp_path: Path, capsys) -> None:
    assert cli.main(["net", "--phase", "dw1"]) == 2
    assert "--phase goes with --export-frames DIR" in capsys.readouterr().err
    (tmp_path / "a.svg").write_text("")
    assert cli.main(["pool", "--export-frames", str(tmp_path / "a.svg")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "phase", "steps", "shown"),
    [
        (["batchnorm", "--batch", "1", "--height", "2"], "dvar", 12, "backward · dσ²"),
        (["dropout", "--example", "dropout-half"], "y", 16, "forward · y"),
    ],
)
def test_batchnorm_and_dropout_export_a_stage(
    tmp_path: Path, capsys, argv: list[str], phase: str, steps: int, shown: str
) -> None:
    folder = tmp_path / phase
    code = cli.main([*argv, "--export-frames", str(folder), "--phase", phase, "--every", "5"])
    assert code == 0, capsys.readouterr().err
    files, manifest = exported(folder)
    positions = [*range(1, steps + 1, 5)]
    positions += [steps] if positions[-1] != steps else []
    frames = manifest["frames"]
    assert files == [f"{f['step']:04d}-{phase}.svg" for f in frames] + [
        "frames.json",
        "index.txt",
    ]
    assert manifest["steps"] == steps
    assert [f["phase_step"] for f in frames] == positions
    for frame in frames:
        rows = screen_lines(folder / frame["file"])
        assert any(f"all {frame['step']} / " in row for row in rows)  # the file's number
        assert any(shown in row for row in rows)  # the status line
        assert any(frame["formula"].split("   ")[0] in row for row in rows)
        assert any("✓" in row for row in rows)  # the checks finished before the shots
    if "dropout-half" in argv:
        assert "dropout-half" in manifest["frames"][0]["status"]  # the status names the example


def test_conv_image_exports_the_crop_steps(tmp_path: Path, capsys) -> None:
    """`cnn-tui conv --image PNG --export-frames DIR`: the picture lesson's frames."""
    from PIL import Image

    rows, cols = np.mgrid[0:12, 0:16]
    grey = ((cols >= 8) * 200 + rows * 4).astype(np.uint8)  # a vertical edge at column 8
    Image.fromarray(grey).save(tmp_path / "edge.png")
    folder = tmp_path / "picture"
    code = cli.main(
        ["conv", "--image", str(tmp_path / "edge.png"), "--kernel", "sobel-x", "--height", "4",
         "--width", "4", "--export-frames", str(folder), "--every", "20", "--frame-size", "80x24"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    files, manifest = exported(folder)
    assert manifest["phase"] == "forward" and manifest["size"] == [80, 24]
    frames = manifest["frames"]
    assert len(files) == len(frames) + 2 and files[0] == "0001-forward.svg"
    assert [f["step"] for f in frames] == [f["phase_step"] for f in frames]  # forward opens
    assert frames[0]["phase_step"] == 1 and frames[-1]["phase_step"] == manifest["steps"]
    for frame in frames:
        rows = screen_lines(folder / frame["file"])
        assert any(frame["formula"].split("   ")[0] in row for row in rows)
        assert any("edge.png" in row for row in rows)  # the picture lesson, not the plain one


def test_the_status_counter_is_the_frames_number() -> None:
    conv = ["conv2d · backward · dW", "step 60 / 171", "cell 7 / 19", "5 steps/s"]
    assert status_counter(conv, 60) == "step 60 / 171"
    net = ["network · step 2/5 · dw1", "step 60 / 288", "all 543 / 900", "5 steps/s"]
    assert status_counter(net, 543) == "all 543 / 900"
    with pytest.raises(ValueError, match="no part of the status line counts step 60"):
        status_counter(net, 60)  # a stage's own count is not the lesson's


def test_portable_svg_keeps_the_spaces_and_falls_back_to_a_monospace_font(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=20, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print("    0     1\n1   0.5  -0.2")
    svg = portable_svg(console.export_svg(title="t"))
    (tmp_path / "f.svg").write_text(svg)
    assert_portable(tmp_path / "f.svg")
    if shutil.which("rsvg-convert"):  # Debian's librsvg2-bin: the renderer that dropped spaces
        subprocess.run(
            ["rsvg-convert", str(tmp_path / "f.svg"), "-o", str(tmp_path / "f.png")], check=True
        )
        assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs librsvg's rsvg-convert")
def test_png_frames_are_rendered_by_rsvg_convert(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "png"
    small = ["conv", "--height", "4", "--width", "4", "--export-frames", str(folder)]
    assert (
        cli.main([*small, "--phase", "db", "--frame-format", "png", "--frame-size", "80x24"]) == 0
    )
    files, manifest = exported(folder)
    assert files == [f"{k:04d}-db.png" for k in range(1, 5)] + ["frames.json", "index.txt"]
    for frame in manifest["frames"]:
        data = (folder / frame["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width > 600 and height > 400  # an 80×24 terminal's picture
    index = (folder / "index.txt").read_text().splitlines()
    assert index[1].startswith("0001-db.png  step 1 / ")
    # a later SVG export may replace the PNG one (--force: both are an export's own files)
    assert cli.main([*small, "--phase", "db", "--force"]) == 0
    assert exported(folder)[0] == [f"{k:04d}-db.svg" for k in range(1, 5)] + [
        "frames.json",
        "index.txt",
    ]


def test_png_without_rsvg_convert_is_refused_and_a_failing_one_named(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from cnn_tui.lessons import slides

    folder = tmp_path / "png"
    argv = ["conv", "--height", "4", "--width", "4", "--export-frames", str(folder)]
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    assert cli.main([*argv, "--frame-format", "png"]) == 2
    err = capsys.readouterr().err
    assert "--frame-format png needs rsvg-convert" in err and err.count("\n") == 1
    assert not folder.exists()
    monkeypatch.undo()
    monkeypatch.setattr(slides, "CONVERTER", "false")  # on the PATH, fails with no output
    assert cli.main([*argv, "--phase", "db", "--frame-format", "png"]) == 1
    err = capsys.readouterr().err
    assert "false could not convert a frame: exit 1" in err and err.count("\n") == 1
    assert not [p for p in folder.iterdir() if p.suffix == ".png"]
    assert main(["conv", "--frame-format", "png"]) == 2
    assert "--frame-format goes with --export-frames DIR" in capsys.readouterr().err
