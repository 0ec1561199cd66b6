"""Paths: confined, safe outputs, non-regular inputs (issue 23, cases 2, 5, 6, 7, 11 and 12's
"`inspect --image` on a folder says 'no such file'").

- A path read from a file stays inside that file's folder (`fileio.confined`): a sweep.json whose
  run folder is `../victim`, absolute, `..` or a symbolic link out is refused before anything is
  written.
- A new run goes only into a folder that does not exist, is empty or was made ready for it
  (`store.check_new_run_dir`): never a folder of the user's own files, never `/`.
- An output goes only to a regular file or a new path (`fileio.check_output_path`, and
  `atomic_write` as the last guard): never over a FIFO, device or symbolic link; `-` is stdout,
  `/dev/null` discards. Files a run appends to or locks are never opened through a link.
- A file a command opens is checked first (`fileio.check_input_file`): a FIFO is never opened (it
  would wait for ever), and a folder, FIFO or device is named as what it is.

Running as root here: nothing below writes outside tmp_path even when the code under test is
wrong. A device node is made in tmp_path (mknod) or the case is skipped; `/` and `/dev/*` are
only ever given to checks, with the writers that would follow patched to fail the test.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from inspect_fixtures import write_model_run

from cnn_tui import fileio
from cnn_tui.cli import main
from cnn_tui.commands import output
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import launcher, sweeps
from cnn_tui.training.runs import store as runs

QUICK = ["--epochs", "1", "--limit", "10", "--device", "cpu"]


def cli(capsys, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """Run `cnn-tui ARGV` in this process; (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--runs-dir", str(tmp_path / "runs"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys, tmp_path: Path, *argv: str) -> str:
    """`cnn-tui ARGV` exits 2 with one `cnn-tui:` line on stderr and no traceback; that line."""
    code, _, err = cli(capsys, tmp_path, *argv)
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("cnn-tui: ") and err.count("\n") == 1, err
    return err


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under `folder`: its type bits and its bytes (a link: where it points)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found[str(path)] = (stat.S_IFMT(mode), os.readlink(path))
        elif stat.S_ISREG(mode):
            found[str(path)] = (stat.S_IFMT(mode), path.read_bytes())
        else:
            found[str(path)] = (stat.S_IFMT(mode), b"")
    return found


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def char_device(path: Path) -> Path:
    """A character device node like /dev/zero, made in tmp_path (root only)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except (PermissionError, OSError):
        pytest.skip("making a device node needs root (and CAP_MKNOD)")
    return path


def link_to_victim(tmp_path: Path, name: str) -> Path:
    """A symbolic link `name` to a file of the user's (victim.txt) that must stay as it is."""
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file\n")
    link = tmp_path / name
    link.symlink_to(victim)
    return link


@contextmanager
def never_opened(*fifos: Path) -> Iterator[None]:
    """Fails the test if the block opens one of `fifos`, without ever hanging: a writer waits on
    each (a FIFO's open returns once both ends are open), so code that opens one gets EOF
    instead of waiting for ever, and the writer records it before that EOF."""
    opened: list[Path] = []

    def writer(path: Path) -> None:
        fd = os.open(path, os.O_WRONLY)  # returns once a reader opened it
        opened.append(path)
        os.close(fd)

    threads = [threading.Thread(target=writer, args=(path,), daemon=True) for path in fifos]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        seen = list(opened)  # (before releasing the writers: that opens them here)
        for path, thread in zip(fifos, threads, strict=True):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            thread.join()
            os.close(fd)
    assert seen == [], f"opened: {seen}"


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> Path:
    """A run with a model (config.toml, checkpoint.pt, a finished status), no training."""
    return write_model_run(tmp_path_factory.mktemp("model") / "run", limit=60)


# --- 2. paths read from a file stay in its folder ---------------------------------------------


@pytest.mark.parametrize("name", ["01-a", "sub/02-b", "./03-c"])
def test_confined_keeps_what_is_inside(tmp_path: Path, name: str) -> None:
    assert fileio.confined(tmp_path, name, "the run folder") == tmp_path / name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../victim", "leads outside"),
        ("..", "leads outside"),
        (".", "leads outside"),
        ("a/../../victim", "leads outside"),
        ("/tmp/victim", "an absolute path"),
        ("", "not a folder name"),
        (None, "not a folder name"),
        (3, "not a folder name"),
        ("bad\x00name", "not a folder name"),
    ],
)
def test_confined_refuses_what_leads_out(tmp_path: Path, name, words: str) -> None:
    with pytest.raises(UsageError, match=words) as caught:
        fileio.confined(tmp_path / "sweep", name, "sweep.json: the run folder")
    assert "must stay inside its folder" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_confined_follows_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "sweep").mkdir()
    (tmp_path / "victim").mkdir()
    (tmp_path / "sweep" / "01-a").symlink_to(tmp_path / "victim")
    with pytest.raises(UsageError, match="leads outside"):
        fileio.confined(tmp_path / "sweep", "01-a", "the run folder")
    (tmp_path / "sweep" / "inner").mkdir()
    (tmp_path / "sweep" / "02-b").symlink_to(tmp_path / "sweep" / "inner")
    assert fileio.confined(tmp_path / "sweep", "02-b", "the run folder").name == "02-b"


def _sweep(tmp_path: Path) -> Path:
    plan = sweeps.make_plan(TrainConfig(limit=10), {"epochs": [1, 2]}, "cpu", devices=["cpu"])
    return sweeps.create_sweep(plan, tmp_path / "runs")


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.toml").write_text("# the user's own settings\n")
    (victim / "notes.txt").write_text("keep me\n")
    return victim


@pytest.mark.parametrize("where", ["../../victim", "absolute", "..", "symlink"])
def test_sweep_resume_never_writes_outside_the_sweep(capsys, tmp_path: Path, where: str) -> None:
    """Case 2: a sweep.json whose run "dir" leads out is refused before anything is written."""
    sweep_dir = _sweep(tmp_path)
    victim = _victim(tmp_path)
    manifest = json.loads((sweep_dir / runs.SWEEP_FILE).read_text())
    if where == "absolute":
        manifest["runs"][0]["dir"] = str(victim)
    elif where == "symlink":
        (sweep_dir / manifest["runs"][0]["dir"]).symlink_to(victim)
    else:
        manifest["runs"][0]["dir"] = where
    (sweep_dir / runs.SWEEP_FILE).write_text(json.dumps(manifest))
    before, sweep_before = snapshot(tmp_path / "victim"), snapshot(sweep_dir)
    for flags in (["--resume", str(sweep_dir)], ["--show", str(sweep_dir)]):
        err = refused(capsys, tmp_path, "sweep", "--no-ui", *flags)
        assert str(sweep_dir / runs.SWEEP_FILE) in err and "must stay inside its folder" in err
    assert snapshot(tmp_path / "victim") == before
    assert snapshot(sweep_dir) == sweep_before  # not even the sweep's own status.json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "victim"]


def test_a_sound_manifest_still_reads(tmp_path: Path) -> None:
    sweep_dir = _sweep(tmp_path)
    rows = sweeps.sweep_rows(sweep_dir)
    assert [Path(row["path"]).parent for row in rows] == [sweep_dir, sweep_dir]


# --- 5, 6. a new run goes only into a new or empty folder ---------------------------------------


def _users_folder(tmp_path: Path) -> Path:
    """Case 5's folder: the user's own config.toml, best.pt, samples.npz and lock."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.toml").write_text('dataset = "shapes"\nepochs = 1\n# my notes\n')
    (folder / "best.pt").write_bytes(b"my best weights")
    (folder / "samples.npz").write_bytes(b"my samples")
    (folder / "lock").write_text("my lock\n")
    return folder


def test_train_refuses_a_folder_of_the_users_files(capsys, tmp_path: Path) -> None:
    """Case 5: `--run-dir` at a folder of the user's own files overwrites nothing."""
    folder = _users_folder(tmp_path)
    before = snapshot(folder)
    err = refused(capsys, tmp_path, "train", "--no-ui", *QUICK, "--run-dir", str(folder))
    assert f"run dir {folder} holds other files (best.pt, config.toml, lock, ...)" in err
    assert "new or empty folder" in err and "choose another --run-dir" in err
    err = refused(
        capsys, tmp_path, "train", "--no-ui", "--config", str(folder / "config.toml"),
        "--run-dir", str(folder), "--device", "cpu",
    )  # fmt: skip
    assert "holds other files" in err
    assert snapshot(folder) == before


def test_resume_refuses_a_folder_that_is_no_run(capsys, tmp_path: Path) -> None:
    """A config.toml of the user's own does not make a folder a run to write into."""
    folder = _users_folder(tmp_path)
    before = snapshot(folder)
    err = refused(capsys, tmp_path, "train", "--no-ui", "--resume", str(folder))
    assert f"--resume {folder} is not a run folder" in err
    assert snapshot(folder) == before


def test_the_launcher_refuses_a_folder_of_the_users_files(tmp_path: Path, monkeypatch) -> None:
    """The form's Start and a sweep's runs go through launch_run: the same rule."""
    monkeypatch.setattr(launcher, "spawn_detached", lambda *args: pytest.fail("launched"))
    folder = _users_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(UsageError, match="holds other files"):
        launcher.launch_run(TrainConfig(), folder)
    assert snapshot(folder) == before


@pytest.fixture
def no_writes_into_root(monkeypatch):
    """Any write a refused run would have made fails the test (and so never reaches `/`)."""

    def forbidden(*args, **kwargs):
        pytest.fail(f"a write was attempted: {args!r}")

    monkeypatch.setattr(runs, "lock_run", forbidden)
    monkeypatch.setattr(runs, "atomic_write_text", forbidden)
    monkeypatch.setattr(sweeps, "atomic_write_text", forbidden)
    monkeypatch.setattr(launcher, "spawn_detached", forbidden)


def test_run_dir_root_is_refused_before_any_write(capsys, tmp_path, no_writes_into_root) -> None:
    """Case 6: `--run-dir /` (train, sweep, the form's launcher) writes nothing into `/`."""
    before = sorted(os.listdir("/"))
    err = refused(capsys, tmp_path, "train", "--no-ui", *QUICK, "--run-dir", "/")
    assert "run dir / holds other files" in err
    err = refused(capsys, tmp_path, "sweep", "--no-ui", "--limit", "10", "--device", "cpu",
                  "--grid", "epochs=1,2", "--run-dir", "/")  # fmt: skip
    assert "--run-dir / is not empty" in err
    with pytest.raises(UsageError, match="run dir / holds other files"):
        launcher.launch_run(TrainConfig(), "/")
    assert sorted(os.listdir("/")) == before


def test_which_folders_a_new_run_may_take(tmp_path: Path) -> None:
    runs.check_new_run_dir(tmp_path / "new")  # does not exist
    (tmp_path / "empty").mkdir()
    runs.check_new_run_dir(tmp_path / "empty")
    # made ready by the launcher (the TUI, a sweep), even after a trainer that died early
    prepared = tmp_path / "prepared"
    runs.prepare_run_dir(prepared, TrainConfig())
    (prepared / runs.OUTPUT_LOG).write_text("Traceback ...\n")
    (prepared / runs.LOCK_FILE).write_text("123\n")
    (prepared / f".{runs.CONFIG_FILE}.abc123.tmp").write_text("")
    runs.check_new_run_dir(prepared)
    assert runs.is_run_dir(prepared)
    (prepared / "photo.jpg").write_bytes(b"mine")
    with pytest.raises(UsageError, match=r"holds other files \(photo.jpg\)"):
        runs.check_new_run_dir(prepared)
    # a lock alone: the user's, unless this trainer just made it (`locked`)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / runs.LOCK_FILE).write_text("")
    with pytest.raises(UsageError, match=r"holds other files \(lock\)"):
        runs.check_new_run_dir(locked)
    runs.check_new_run_dir(locked, locked=True)
    # a file name with an escape sequence is shown escaped
    (locked / "\x1b]0;title\x07").write_text("")
    with pytest.raises(UsageError) as caught:
        runs.check_new_run_dir(locked, locked=True)
    assert "\x1b" not in str(caught.value) and "\\x1b" in str(caught.value)


def test_a_new_run_in_an_empty_folder_trains(capsys, tmp_path: Path, one_torch_thread) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, "--run-dir",
                       str(tmp_path / "empty"))  # fmt: skip
    assert code == 0, err
    assert runs.read_status(tmp_path / "empty")["status"] == "finished"


# --- 7. outputs only to a regular file or a new path ---------------------------------------------


def _target(tmp_path: Path, kind: str) -> Path:
    if kind == "fifo":
        return fifo(tmp_path / "out.json")
    if kind == "symlink":
        return link_to_victim(tmp_path, "out.json")
    return char_device(tmp_path / "out.json")


def _output_commands(run: Path) -> dict[str, list[str]]:
    """Every output flag, {TARGET} where the file goes."""
    return {
        "export -o": ["export", str(run), "--format", "torchscript", "--force", "-o", "{T}"],
        "export --json-file": ["export", str(run), "--format", "torchscript", "--json-file", "{T}"],
        "inspect --json": ["inspect", str(run), "--no-ui", "--json", "{T}"],
        "lr-find -o": ["lr-find", "-o", "{T}", "--device", "cpu"],
        "lr-find --json-file": ["lr-find", "--json-file", "{T}", "--device", "cpu"],
        "bench --json": ["bench", "--json", "{T}"],
        "train --json-file": ["train", "--no-ui", *QUICK, "--json-file", "{T}"],
        "sweep --json-file": ["sweep", "--no-ui", "--grid", "epochs=1,2", "--json-file", "{T}"],
        "runs --json-file": ["runs", "--no-ui", "--json-file", "{T}"],
        "eval --json-file": ["eval", str(run), "--no-ui", "--json-file", "{T}"],
        "predict --json-file": ["predict", str(run), str(run), "--json-file", "{T}"],
    }


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
@pytest.mark.parametrize("command", list(_output_commands(Path("RUN"))))
def test_an_output_never_replaces_what_is_no_regular_file(
    capsys, tmp_path: Path, model_run: Path, kind: str, command: str
) -> None:
    """Case 7: a FIFO, a symbolic link or a device named as an output stays as it was; one line
    before any work, naming the flag and what the path is."""
    target = _target(tmp_path, kind)
    before = snapshot(tmp_path)
    argv = [str(target) if arg == "{T}" else arg for arg in _output_commands(model_run)[command]]
    err = refused(capsys, tmp_path, *argv)
    flag = command.split()[1]
    words = {"fifo": "a named pipe (FIFO)", "symlink": "a symbolic link", "device": "a character"}
    assert f"{flag} {target} is {words[kind]}" in err and "not a regular file" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/dev/stdout", "is a symbolic link, not a regular file: give - to print on stdout"),
        ("/dev/zero", "is a character device, not a regular file"),
        ("/dev/null", None),
        ("-", None),
    ],
)
def test_check_output_path_of_the_special_files(path: str, words: str | None) -> None:
    """Only checks (nothing is written here): /dev/stdout and devices are refused, the null
    device and `-` pass (discard, stdout)."""
    if not os.path.lexists(path) and path != "-":
        pytest.skip(f"no {path} here")
    if words is None:
        assert fileio.check_output_path(path, "--json") == Path(path)
    else:
        with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
            fileio.check_output_path(path, "--json")


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_atomic_write_never_renames_over_what_is_no_regular_file(tmp_path: Path, kind) -> None:
    """The last guard, for every writer that did not check first."""
    target = _target(tmp_path, kind)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="not a regular file"):
        fileio.atomic_write_text(target, "{}\n")
    assert snapshot(tmp_path) == before
    assert fileio.temp_files(target) == []


def test_the_null_device_takes_an_output_to_discard(capsys, tmp_path, model_run) -> None:
    """`-o /dev/null` exports and checks, keeps nothing, needs no --force (it used to say
    "pass --force"); atomic writes to it discard the bytes and leave the device as it is."""
    if not fileio.is_null_device(os.devnull):
        pytest.skip("no null device here")
    fileio.atomic_write_text(os.devnull, "discarded\n")
    code, out, err = cli(capsys, tmp_path, "export", str(model_run), "--format", "torchscript",
                         "-o", os.devnull)  # fmt: skip
    assert code == 0, err
    assert f"wrote {os.devnull}" in out
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui", "--json-file", os.devnull)
    assert code == 0, err
    assert fileio.temp_files(os.devnull) == []


def test_dash_is_stdout(capsys, tmp_path: Path, model_run: Path) -> None:
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui", "--json-file", "-")
    assert code == 0, err
    assert json.loads(out.splitlines()[0]) == []
    assert not (tmp_path / "-").exists() and not Path("-").exists()
    lines = output.JsonLines(None, "-")
    lines.write({"event": "finished"})
    lines.close()
    assert json.loads(capsys.readouterr().out) == {"event": "finished"}
    err = refused(capsys, tmp_path, "export", str(model_run), "--format", "onnx", "-o", "-")
    assert "-o -: an exported model is a binary file" in err


def test_run_files_are_never_written_through_a_link(tmp_path: Path) -> None:
    """A run folder from someone else with metrics.jsonl, lock or output.log linked at the user's
    files: the trainer refuses instead of appending to (or truncating) them."""
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file\n")
    for name in (runs.EVENTS_FILE, runs.LOCK_FILE, runs.OUTPUT_LOG):
        (run / name).symlink_to(victim)
    with pytest.raises(UsageError, match=f"{runs.EVENTS_FILE} is a symbolic link"):
        runs.EventLog(run)
    with pytest.raises(UsageError, match=f"{runs.LOCK_FILE} is a symbolic link"):
        with runs.lock_run(run):
            pass
    with pytest.raises(UsageError, match=f"{runs.OUTPUT_LOG} is a symbolic link"):
        launcher.spawn_detached(["true"], run)
    assert victim.read_text() == "the user's own file\n"


# --- 11, 12. non-regular inputs refused before opening, with the right words ---------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("folder", "is a folder, not a file"),
        ("fifo", "is a named pipe (FIFO), not a file"),
        ("device", "is a character device, not a file"),
    ],
)
def test_inspect_image_that_is_no_file(capsys, tmp_path, model_run, kind, words) -> None:
    """Case 12: a folder or device given to `inspect --image` is named as such, not "no such
    file"; case 11: a FIFO is never opened."""
    image = tmp_path / "image.png"
    {"folder": image.mkdir, "fifo": lambda: fifo(image), "device": lambda: char_device(image)}[
        kind
    ]()
    with never_opened(*([image] if kind == "fifo" else [])):
        err = refused(capsys, tmp_path, "inspect", str(model_run), "--no-ui", "--image", str(image))
    assert f"--image {image} {words}" in err and "no such file" not in err


def test_predict_never_opens_a_fifo(capsys, tmp_path: Path, model_run: Path) -> None:
    """Case 11: a FIFO given as an image is refused (it used to hang for ever); one in a folder
    is skipped with a note while the real images are predicted."""
    from PIL import Image

    named = fifo(tmp_path / "named.png")
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(folder / "real.png")
    inside = fifo(folder / "pipe.png")
    with never_opened(named, inside):
        code, _, err = cli(capsys, tmp_path, "predict", str(model_run), str(named),
                           "--device", "cpu")  # fmt: skip
        assert code == 2 and "Traceback" not in err
        assert f"skipped {named}: it is a named pipe (FIFO), not a file" in err
        code, out, err = cli(capsys, tmp_path, "predict", str(model_run), str(folder),
                             "--device", "cpu", "--json")  # fmt: skip
    assert code == 0, err
    assert f"skipped {inside}: it is a named pipe (FIFO), not a file" in err
    assert [p["path"] for p in json.loads(out)["predictions"]] == [str(folder / "real.png")]


def test_config_preset_weights_and_checkpoint_fifos(
    capsys, tmp_path: Path, model_run: Path, monkeypatch
) -> None:
    """--config, a preset, --weights and a run's checkpoint.pt: a FIFO is named, never opened."""
    from cnn_tui.training.models import registry

    config = fifo(tmp_path / "settings.toml")
    presets = tmp_path / "presets"
    presets.mkdir()
    preset = fifo(presets / "piped.toml")
    monkeypatch.setenv("CNN_TUI_PRESETS", str(presets))
    weights = fifo(tmp_path / "weights.pt")
    run = tmp_path / "run"
    run.mkdir()
    for name in (runs.CONFIG_FILE, runs.STATUS_FILE):
        (run / name).write_bytes((model_run / name).read_bytes())
    checkpoint = fifo(run / runs.CHECKPOINT_FILE)
    with never_opened(config, preset, weights, checkpoint):
        err = refused(capsys, tmp_path, "train", "--no-ui", *QUICK, "--config", str(config))
        assert f"config file {config} is a named pipe (FIFO), not a file" in err
        err = refused(capsys, tmp_path, "train", "--no-ui", *QUICK, "--preset", "piped")
        assert f"config file {preset} is a named pipe (FIFO)" in err
        with pytest.raises(UsageError, match=r"--weights .*weights.pt is a named pipe \(FIFO\)"):
            registry._read_state_dict(str(weights))
        for argv in (["eval", str(run), "--no-ui"], ["predict", str(run), str(tmp_path)]):
            err = refused(capsys, tmp_path, *argv, "--device", "cpu")
            assert f"checkpoint {checkpoint} is a named pipe (FIFO), not a file" in err


def test_data_files_that_are_fifos(tmp_path: Path) -> None:
    """CIFAR-10 and IDX files are named, never opened; an image folder skips a FIFO and a device
    with the unreadable files (they are listed in the run's skipped files)."""
    from datafiles import write_image_folder

    from cnn_tui.training.data import datasets

    pickle_file, idx_file = fifo(tmp_path / "data_batch_1"), fifo(tmp_path / "t10k-labels")
    root = write_image_folder(tmp_path / "images", corrupt=False, non_image=False)
    in_class = fifo(root / "cats" / "pipe.png")
    with never_opened(pickle_file, idx_file, in_class):
        with pytest.raises(UsageError, match=r"data file .* is a named pipe \(FIFO\)"):
            datasets._read_pickle_dict(pickle_file)
        with pytest.raises(UsageError, match=r"data file .* is a named pipe \(FIFO\)"):
            datasets.read_idx(idx_file)
        *_, skipped, _ = datasets._load_image_folder(str(root), 16, lambda *args: None)
    assert skipped == ["cats/pipe.png"]


def test_run_and_sweep_files_that_are_fifos(capsys, tmp_path: Path) -> None:
    """`cnn-tui runs` lists runs whose files are FIFOs without hanging (a folder whose status and
    events are FIFOs is no run); sweep.json is named."""
    strange, piped = tmp_path / "runs" / "strange", tmp_path / "runs" / "piped"
    for run in (strange, piped):
        run.mkdir(parents=True)
        (run / runs.CONFIG_FILE).write_text('dataset = "shapes"\n')
    runs.write_status(strange, "finished", epoch=1, epochs=1)
    names = (runs.EVENTS_FILE, runs.SUMMARY_FILE, runs.SAMPLES_FILE)
    pipes = [fifo(strange / name) for name in names]
    pipes += [fifo(piped / name) for name in (runs.STATUS_FILE, runs.EVENTS_FILE)]
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    pipes.append(fifo(sweep / runs.SWEEP_FILE))
    with never_opened(*pipes):
        code, out, err = cli(capsys, tmp_path, "runs", "--no-ui", "--json")
        assert code == 0, err
        assert [entry["name"] for entry in json.loads(out)] == ["strange"]
        assert runs.read_samples(strange) is None and runs.read_all_events(strange) == ([], 0)
        assert runs.read_status(piped) is None and runs.read_events(piped) == ([], 0)
        err = refused(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep))
        assert f"the sweep manifest {sweep / runs.SWEEP_FILE} is a named pipe (FIFO)" in err


def test_lesson_examples_that_are_fifos(tmp_path: Path, monkeypatch) -> None:
    from cnn_tui.lessons import examples, library, network, settings

    lessons = tmp_path / "assets" / "lessons"
    lessons.mkdir(parents=True)
    (lessons / "tiny.toml").write_text('op = "net"\ntitle = "tiny"\n')
    pipe = fifo(lessons / "piped.toml")
    for module in (library, settings):
        monkeypatch.setattr(module, "assets_dir", lambda: tmp_path / "assets")
    library.user_lessons_dir().mkdir(parents=True)
    mine = fifo(library.user_lessons_dir() / "mine.toml")
    with never_opened(pipe), never_opened(mine):
        assert [info["name"] for info in network.list_net_examples()] == ["tiny"]
        assert settings.example_names("net") == ["tiny"]
        for name in ("piped", "mine", str(mine)):
            with pytest.raises(UsageError, match=r"lesson file .* is a named pipe \(FIFO\)"):
                examples.load_example(name)
            with pytest.raises(UsageError, match=r"lesson file .* is a named pipe \(FIFO\)"):
                network.build_net_example(name)
