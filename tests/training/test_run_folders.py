"""The run folders (`runs.folders`): `--runs-dir` repeated or a glob resolved to a list, each
folder once, the first where new runs go; and `store.list_runs_in` listing them together."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from train_ui_fixtures import STARTED, write_run

from cnn_tui.errors import UsageError
from cnn_tui.training.runs import store
from cnn_tui.training.runs.folders import (
    MAX_FOLDERS,
    RunFolders,
    folder_labels,
    resolve_run_folders,
)
from cnn_tui.training.runs.state import RunState

OTHER_HOST = "gpu-node-7.example.org"


@pytest.fixture
def projects(tmp_path, monkeypatch) -> Path:
    """shared/proj-a/runs, shared/proj-b/runs, shared/proj-c (no runs folder), cwd tmp_path."""
    monkeypatch.chdir(tmp_path)
    for name in ("proj-a/runs", "proj-b/runs", "proj-c"):
        (tmp_path / "shared" / name).mkdir(parents=True)
    return tmp_path / "shared"


def test_no_flag_is_runs_and_one_flag_is_that_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_run_folders(None) == RunFolders((Path("runs"),))
    single = resolve_run_folders(["elsewhere"])  # not there yet: made when a run starts
    assert single.paths == (Path("elsewhere"),) and not single.warnings and not single.several
    assert single.new_runs == Path("elsewhere")


def test_repeated_folders_in_order_each_once(projects):
    folders = resolve_run_folders(
        ["shared/proj-b/runs", "shared/proj-a/runs", "./shared/proj-b/runs/", "shared/proj-a/runs"]
    )
    assert folders.paths == (Path("shared/proj-b/runs"), Path("shared/proj-a/runs"))
    assert folders.new_runs == Path("shared/proj-b/runs") and folders.several
    assert not folders.warnings


def test_a_link_to_a_folder_already_named_counts_once(projects):
    os.symlink(projects / "proj-a" / "runs", projects / "link")
    folders = resolve_run_folders(["shared/proj-a/runs", "shared/link"])
    assert folders.paths == (Path("shared/proj-a/runs"),)


def test_a_glob_gives_its_folders_sorted_and_files_are_left_out(projects):
    (projects / "proj-z-runs.txt").write_text("not a folder")
    folders = resolve_run_folders(["shared/*/runs"])
    assert folders.paths == (Path("shared/proj-a/runs"), Path("shared/proj-b/runs"))
    assert resolve_run_folders(["shared/proj-*"]).paths == tuple(
        Path(f"shared/proj-{x}") for x in "abc"
    )  # (proj-z-runs.txt is a file)
    # a glob and a folder it also matches: once, in the glob's place
    both = resolve_run_folders(["shared/proj-b/runs", "shared/*/runs"])
    assert both.paths == (Path("shared/proj-b/runs"), Path("shared/proj-a/runs"))


def test_a_home_folder_glob_is_expanded(projects, monkeypatch):
    monkeypatch.setenv("HOME", str(projects))
    folders = resolve_run_folders(["~/*/runs"])
    assert folders.paths == (projects / "proj-a/runs", projects / "proj-b/runs")


def test_a_folder_whose_name_looks_like_a_glob_is_that_folder(projects):
    (projects / "runs[1]").mkdir()
    assert resolve_run_folders(["shared/runs[1]"]).paths == (Path("shared/runs[1]"),)


def test_a_glob_that_matches_nothing_alone_is_a_usage_error(projects):
    with pytest.raises(UsageError, match=r"--runs-dir 'shared/\*/nope' matches no folder"):
        resolve_run_folders(["shared/*/nope"])


def test_a_glob_that_matches_nothing_beside_others_is_a_warning(projects):
    folders = resolve_run_folders(["shared/*/runs", "shared/*/nope"])
    assert len(folders.paths) == 2
    assert folders.warnings == ("--runs-dir 'shared/*/nope' matches no folder",)


def test_an_empty_value_is_a_usage_error(projects):
    for specs in ([""], ["proj-a/runs", " "]):
        with pytest.raises(UsageError, match="--runs-dir is empty"):
            resolve_run_folders(specs)


def test_a_file_is_not_a_folder(projects):
    (projects / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="--runs-dir shared/notes.txt is not a folder"):
        resolve_run_folders(["shared/proj-a/runs", "shared/notes.txt"])


def test_a_missing_folder_after_the_first_is_a_warning(projects):
    folders = resolve_run_folders(["shared/proj-a/runs", "shared/proj-q/runs"])
    assert folders.paths[1] == Path("shared/proj-q/runs")
    assert folders.warnings == (
        "--runs-dir shared/proj-q/runs: no such folder (no runs listed from it)",
    )


def test_a_hostile_name_in_a_message_is_escaped(projects):
    with pytest.raises(UsageError) as error:
        resolve_run_folders(["shared/\x1b[31m*"])
    assert "\x1b" not in str(error.value) and "\\x1b[31m*" in str(error.value)


def test_a_glob_cannot_list_more_than_the_cap(projects):
    for n in range(MAX_FOLDERS + 1):
        (projects / "many" / f"p{n:02d}").mkdir(parents=True)
    with pytest.raises(UsageError, match=f"more than {MAX_FOLDERS} folders"):
        resolve_run_folders(["shared/many/*"])
    assert len(resolve_run_folders(["shared/many/p0*"]).paths) == 10
    with pytest.raises(UsageError, match="more than 4 folders"):
        resolve_run_folders(["shared/many/p0*"], limit=4)
    # the cap counts every --runs-dir together
    with pytest.raises(UsageError, match="more than 3 folders"):
        resolve_run_folders(["shared/many/p00", "shared/many/p01", "shared/proj-*"], limit=3)


def test_labels_are_short_and_tell_the_folders_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert folder_labels([Path("/a/proj-a/runs"), Path("/b/proj-b/runs")]) == ["proj-a", "proj-b"]
    assert folder_labels([Path("/x/runs"), Path("/x/runs2")]) == ["x/runs", "runs2"]
    # "runs" alone tells nothing: its parent comes with it
    assert folder_labels([Path("/w/a/runs"), Path("/w/doesnotexist")]) == ["a/runs", "doesnotexist"]
    # the end they share goes, however long
    assert folder_labels([Path("/a/p/runs"), Path("/b/p/runs")]) == ["a", "b"]
    # the same project name under two parents: one more part
    assert folder_labels([Path("/a/p/runs"), Path("/b/p/runs"), Path("/a/q/runs")]) == [
        "a/p",
        "b/p",
        "q",
    ]
    # ./runs and old/runs (relative: the current folder's name tells the first)
    assert folder_labels([Path("runs"), Path("old/runs")]) == [tmp_path.name, "old"]
    assert folder_labels([Path("/runs"), Path("/a/runs")]) == ["/", "a"]
    assert folder_labels([Path("/data/runs")]) == ["runs"]
    for paths in ([Path("/a/b/c"), Path("/b/c"), Path("/c")], [Path("/r"), Path("/s/r")]):
        labels = folder_labels(paths)
        assert len(set(labels)) == len(paths), labels


def test_list_runs_in_two_folders_newest_first_with_another_host(projects):
    a, b = projects / "proj-a" / "runs", projects / "proj-b" / "runs"
    write_run(a / "old", started=STARTED)
    write_run(b / "middle", started=STARTED + 60)
    remote = write_run(a / "remote", state="running", started=STARTED + 120)
    status = json.loads((remote / "status.json").read_text())
    (remote / "status.json").write_text(json.dumps({**status, "host": OTHER_HOST}))
    finished_there = write_run(b / "trained-there", started=STARTED + 30)
    status = json.loads((finished_there / "status.json").read_text())
    (finished_there / "status.json").write_text(json.dumps({**status, "host": OTHER_HOST}))

    listing = store.list_runs_in([a, b, projects / "proj-q"])  # (a missing one lists nothing)
    assert [run.name for run in listing.runs] == ["remote", "middle", "trained-there", "old"]
    assert [run.folder for run in listing.runs] == [a, b, b, a]
    by_name = {run.name: run for run in listing.runs}
    assert by_name["remote"].status == RunState.ELSEWHERE
    assert by_name["remote"].status_label == f"running on {OTHER_HOST}"
    assert by_name["trained-there"].status == RunState.FINISHED  # over: the host is kept
    assert by_name["trained-there"].host == OTHER_HOST and by_name["old"].host == ""
    assert by_name["middle"].to_dict()["folder"] == str(b)
    assert listing.unreadable == {}


def test_an_unreadable_folder_hides_none_of_the_others(projects, monkeypatch):
    a, b = projects / "proj-a" / "runs", projects / "proj-b" / "runs"
    write_run(a / "one")
    real = store.list_runs

    def list_runs(folder):
        if Path(folder) == b:
            raise PermissionError(13, "Permission denied", str(b))
        return real(folder)

    monkeypatch.setattr(store, "list_runs", list_runs)
    listing = store.list_runs_in([a, b])
    assert [run.name for run in listing.runs] == ["one"]
    assert listing.unreadable == {b: "Permission denied"}
    with pytest.raises(PermissionError):  # the only folder: as list_runs of it
        store.list_runs_in([b])


def test_a_listed_runs_changed_settings_are_read_again(tmp_path):
    """The listing keeps each config.toml it parsed until the file changes."""
    run = write_run(tmp_path / "runs" / "one")
    assert store.run_info(run).model == "simple-cnn"
    config = run / "config.toml"
    config.write_text(config.read_text().replace('model = "simple-cnn"', 'model = "resnet18"'))
    assert store.run_info(run).model == "resnet18"
    config.write_text("not = [toml")  # damaged: what it says now, not what it said
    info = store.run_info(run)
    assert info.model == "?" and any("config.toml could not be read" in p for p in info.problems)
