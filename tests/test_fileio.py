"""Atomic writes give a file the permissions a plain open() would (a run folder on a shared server)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnn_tui import fileio

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def set_umask() -> Iterator:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_a_new_file_gets_what_open_would_give_it(tmp_path: Path, set_umask, mask: int) -> None:
    set_umask(mask)
    assert fileio.umask() == mask
    fileio.atomic_write_text(tmp_path / "status.json", "{}")
    with (tmp_path / "plain.json").open("w") as handle:
        handle.write("{}")
    assert mode(tmp_path / "status.json") == mode(tmp_path / "plain.json") == 0o666 & ~mask


def test_a_file_written_again_keeps_its_mode(tmp_path: Path, set_umask) -> None:
    set_umask(0o022)
    target = tmp_path / "config.toml"
    fileio.atomic_write_text(target, "a = 1\n")
    target.chmod(0o640)
    fileio.atomic_write_text(target, "a = 2\n")
    assert target.read_text() == "a = 2\n"
    assert mode(target) == 0o640
    assert fileio.temp_files(target) == []


def test_the_umask_is_read_without_changing_it_when_proc_is_missing(set_umask, monkeypatch) -> None:
    set_umask(0o027)
    real_read_text = Path.read_text

    def no_proc(self: Path, *args, **kwargs) -> str:
        if str(self).startswith("/proc/"):
            raise FileNotFoundError(str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", no_proc)
    assert fileio.umask() == 0o027
    assert os.umask(0o027) == 0o027  # (still set as it was)


def test_an_output_path_is_checked_before_the_work(tmp_path: Path) -> None:
    assert fileio.check_output_path(tmp_path / "report.json", "--json") == tmp_path / "report.json"
    with pytest.raises(fileio.UsageError, match=r"^--json .* is a folder: give a file name$"):
        fileio.check_output_path(tmp_path, "--json")
    with pytest.raises(fileio.UsageError, match=r"^-o .*: the folder .*missing does not exist$"):
        fileio.check_output_path(tmp_path / "missing" / "model.onnx", "-o")


@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_path_in_a_folder_one_cannot_write(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(fileio.UsageError, match="is not writable by you"):
        fileio.check_output_path(locked / "bench.json", "--json")


def test_a_temporary_file_that_cannot_be_made_is_reported_as_the_target(
    tmp_path: Path, monkeypatch
) -> None:
    def refused(*args, dir, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".x.json.abc.tmp"))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as caught:
        fileio.atomic_write_text(tmp_path / "x.json", "{}")
    assert caught.value.filename == str(tmp_path / "x.json")
