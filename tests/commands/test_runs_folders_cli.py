"""`cnn-tui runs --no-ui` over several run folders (`--runs-dir` repeated, or a quoted glob): one
table newest first with a folder column, a host column for a run of another machine, the JSON
list with each run's folder, and one line, exit 2, for what names no folder."""

from __future__ import annotations

import json
import time

import pytest
from train_ui_fixtures import write_run

from cnn_tui import cli

OTHER_HOST = "gpu-node-7"


@pytest.fixture
def two_projects(tmp_path, monkeypatch):
    """proj-a/runs with a finished run and one training on OTHER_HOST, proj-b/runs with one
    finished run started between them; cwd tmp_path."""
    monkeypatch.chdir(tmp_path)
    now = time.time()
    write_run(tmp_path / "proj-a/runs/20261206-112045-simple-cnn-shapes", started=now - 600)
    write_run(tmp_path / "proj-b/runs/20261206-112231-simple-cnn-shapes", started=now - 500)
    remote = write_run(
        tmp_path / "proj-a/runs/20261206-113000-simple-cnn-shapes", state="running", started=now
    )
    status = json.loads((remote / "status.json").read_text())
    (remote / "status.json").write_text(json.dumps({**status, "host": OTHER_HOST}))
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_lists_both_folders_newest_first_with_folder_and_host(two_projects, capsys):
    code, out, err = run(capsys, "runs", "--no-ui", "--runs-dir", "*/runs")
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["folder", "run"] and "host" in header.split()
    assert [row.split()[:2] for row in rows] == [
        ["proj-a", "20261206-113000-simple-cnn-shapes"],
        ["proj-b", "20261206-112231-simple-cnn-shapes"],
        ["proj-a", "20261206-112045-simple-cnn-shapes"],
    ]
    assert rows[0].endswith(f"{OTHER_HOST}  running on {OTHER_HOST}")
    assert rows[1].split()[-2:] == ["-", "finished"]


def test_repeated_flags_before_and_after_the_subcommand(two_projects, capsys):
    # after the subcommand, its values replace those before it (as with one --runs-dir)
    code, out, _ = run(
        capsys, "--runs-dir", "nowhere", "runs", "--no-ui",
        "--runs-dir", "proj-b/runs", "--runs-dir", "proj-a/runs", "--runs-dir", "proj-b/runs/",
    )  # fmt: skip
    assert code == 0 and len(out.splitlines()) == 4  # the header and three runs: proj-b once
    # one folder: no folder column (as before)
    code, out, _ = run(capsys, "runs", "--no-ui", "--runs-dir", "proj-b/runs")
    assert out.split()[:2] == ["run", "model"] and len(out.splitlines()) == 2


def test_the_json_list_names_each_runs_folder_and_host(two_projects, capsys):
    code, out, _ = run(
        capsys, "runs", "--no-ui", "--json", "--runs-dir", "proj-a/runs", "--runs-dir", "proj-b/*"
    )
    listed = json.loads(out)
    assert code == 0
    assert [(run["folder"], run["host"], run["status"]) for run in listed] == [
        ("proj-a/runs", OTHER_HOST, "elsewhere"),
        ("proj-b/runs", None, "finished"),
        ("proj-a/runs", None, "finished"),
    ]


def test_a_glob_matching_nothing_beside_others_warns_on_stderr(two_projects, capsys):
    code, out, err = run(
        capsys, "runs", "--no-ui", "--json", "--runs-dir", "*/runs", "--runs-dir", "nope/*"
    )
    assert code == 0 and len(json.loads(out)) == 3
    assert err == "cnn-tui: warning: --runs-dir 'nope/*' matches no folder\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--runs-dir", "nope/*"), "--runs-dir 'nope/*' matches no folder"),
        (("--runs-dir", "proj-a/runs", "--runs-dir", "notes.txt"), "notes.txt is not a folder"),
        (("--runs-dir", ""), "--runs-dir is empty: name the folder"),
    ],
)
def test_nothing_to_list_is_one_line_exit_2(two_projects, capsys, argv, message):
    (two_projects / "notes.txt").write_text("x")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["runs", "--no-ui", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_new_runs_go_into_the_first_folder(two_projects):
    args = cli.build_parser().parse_args(
        ["--runs-dir", "proj-*/runs", "train", "--no-ui", "--runs-dir", "new/runs",
         "--runs-dir", "proj-*/runs"]
    )  # fmt: skip
    assert args.runs_dir == "new/runs"  # (what train and sweep use)
    assert [str(path) for path in args.run_folders.paths] == [
        "new/runs",
        "proj-a/runs",
        "proj-b/runs",
    ]
