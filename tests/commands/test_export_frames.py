"""`cnn-tui conv|pool|net --export-frames DIR`: the steps of one phase written as SVG
screenshots of the lesson screen, numbered, with index.txt and frames.json, without a terminal;
bad flags and folders refused in one line (exit 2) before anything is written."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from cli_process import run_cnn_tui

from cnn_tui import cli
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.op_replay import OpReplay

SVG = "{http://www.w3.org/2000/svg}"


def screen_lines(path: Path) -> list[str]:
    """The text of an SVG screenshot, one string per terminal row (it must parse as XML)."""
    rows: dict[float, list[tuple[float, str]]] = defaultdict(list)
    for element in ET.parse(path).iter(f"{SVG}text"):
        if element.get("y") is not None:
            text = (element.text or "").replace("\xa0", " ")
            rows[float(element.get("y"))].append((float(element.get("x")), text))
    return ["".join(text for _, text in sorted(row)) for _, row in sorted(rows.items())]


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
    frames = [f"{k:04d}-dw.svg" for k in range(1, 6)]
    assert files == [*frames, "frames.json", "index.txt"]
    assert not list(folder.glob(".*"))  # no temporary file left
    # every 10th step of dW's 36, and its last
    assert [f["phase_step"] for f in manifest["frames"]] == [1, 11, 21, 31, 36]
    assert (manifest["phase"], manifest["steps"], manifest["size"]) == ("dw", 36, [80, 24])
    # each frame shows the step it is listed with, as the lesson model writes it
    model = OpReplay(build_example("conv", height=4, width=4))
    target = model.resolve_goto("dw", {})
    model.go_to(target)  # entered as `p` enters it: before dW's first step
    start = target.position  # the position of dW's first step
    index = (folder / "index.txt").read_text().splitlines()
    assert index[0].startswith("# cnn-tui conv --export-frames: backward · dW, 5 frames")
    for line, frame in zip(index[1:], manifest["frames"], strict=True):
        model.seek(start + frame["phase_step"] - 1)
        formula, numbers = model.step_lines()[:2]
        assert frame["formula"] == f"{formula}   {numbers}"
        assert line == f"{frame['file']}  step {frame['phase_step']}  {frame['formula']}"
        shown = screen_lines(folder / frame["file"])
        assert len(shown) >= 24  # an 80×24 terminal (and the window's title)
        assert any(row.strip().startswith(formula) for row in shown)
        assert any(numbers in row for row in shown)
        assert any("backward · dW" in row for row in shown)  # the status line


def test_pool_and_net_export_through_the_cli(tmp_path: Path, capsys) -> None:
    assert cli.main(["pool", "--export-frames", str(tmp_path / "pool"), "--phase", "dx"]) == 0
    files, manifest = exported(tmp_path / "pool")
    assert files[0] == "0001-dx.svg" and len(manifest["frames"]) == manifest["steps"]
    assert "wrote" in capsys.readouterr().out
    code = cli.main(
        ["net", "--export-frames", str(tmp_path / "net"), "--phase", "dw1", "--every", "100"]
    )
    assert code == 0
    files, manifest = exported(tmp_path / "net")
    assert files == ["0001-dw1.svg", "0002-dw1.svg", "0003-dw1.svg", "0004-dw1.svg"] + [
        "frames.json",
        "index.txt",
    ]
    assert [f["phase_step"] for f in manifest["frames"]] == [1, 101, 201, manifest["steps"]]
    for frame in manifest["frames"]:
        shown = screen_lines(tmp_path / "net" / frame["file"])
        assert any(frame["formula"].split("   ")[0] in row for row in shown)


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
    assert files == [f"{k:04d}-{phase}.svg" for k in range(1, len(positions) + 1)] + [
        "frames.json",
        "index.txt",
    ]
    assert manifest["steps"] == steps
    assert [f["phase_step"] for f in manifest["frames"]] == positions
    for frame in manifest["frames"]:
        rows = screen_lines(folder / frame["file"])
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
    assert frames[0]["phase_step"] == 1 and frames[-1]["phase_step"] == manifest["steps"]
    for frame in frames:
        rows = screen_lines(folder / frame["file"])
        assert any(frame["formula"].split("   ")[0] in row for row in rows)
        assert any("edge.png" in row for row in rows)  # the picture lesson, not the plain one
