"""output.log: the trainer's console output kept in its run folder (runs/output_log.py), the size
cap, the launcher's file descriptors (no doubled lines), and reading it back safely."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest
from conftest import wait_for

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.runs import launcher, output_log
from cnn_tui.training.runs.output_log import (
    NOTE,
    LineFilter,
    console_lines,
    keep_output,
    read_output,
    tail_offset,
    teeing,
)


def log_text(run_dir) -> str:
    return (run_dir / "output.log").read_text(encoding="utf-8")


# --- what a line shows ---------------------------------------------------------------------------


def test_lines_are_shown_as_a_terminal_leaves_them_and_never_send_an_escape() -> None:
    hostile = (
        b"\x1b[31mred\x1b[0m plain\n"  # colours: removed
        b"\x1b]0;evil title\x07after the title\n"  # OSC (window title): removed
        b"wipe \x1b[2J\x1b[H done\n"  # erase and move: removed
        b"c1 csi \xc2\x9b31mx and bidi \xe2\x80\xaeabc, lone esc \x1b\n"  # (the rest escaped)
        b"bell \x07 del \x7f\n"
        b"bad utf-8 \xff\xfe\n"
        b"loading  10%\rloading 100%\r\n"  # redrawn in place: the last drawing; a CRLF ending
        b"a\tb\n"
    )
    lines = console_lines(hostile)
    assert lines[0] == "red plain"
    assert lines[1] == "after the title"
    assert lines[2] == "wipe  done"
    assert lines[3] == "c1 csi x and bidi \\u202eabc, lone esc \\x1b"
    assert lines[4] == "bell \\x07 del \\x7f"
    assert lines[5] == "bad utf-8 \ufffd\ufffd"
    assert lines[6] == "loading 100%"
    assert lines[7] == "a       b"
    assert len(lines) == 8
    assert not any(ch in "".join(lines) for ch in "\x1b\x07\x9b\x7f\r\u202e")
    assert console_lines(b"\n\nlast") == ["", "", "last"]


def test_the_line_filter_keeps_a_progress_bar_once_as_last_drawn() -> None:
    lines = LineFilter()
    frames = "".join(f"\r{n:3d}% |{'#' * (n // 10)}" for n in range(0, 101, 5))
    assert lines.feed("epoch 1\n" + frames) == ["epoch 1\n"]
    assert lines.feed("\n") == ["100% |##########\n"]
    assert lines.feed("\r\x1b[2K") == []  # a bar erased at its end ...
    assert lines.rest() == ""  # ... leaves no line
    assert lines.feed("crlf\r") == []
    assert lines.feed("\nnext") == ["crlf\n"]
    assert lines.rest() == "next\n"
    long = LineFilter()
    assert long.feed("x" * (output_log.PENDING_MAX + 10)) == [
        "x" * (output_log.PENDING_MAX + 10) + "\n"
    ]
    assert long.pending == ""


# --- keeping it ----------------------------------------------------------------------------------


def test_keep_output_tees_prints_logging_and_the_reporters_stream(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with teeing():
        reporter_out = sys.stdout  # what a reporter made before the run is held keeps
        handler = logging.StreamHandler(sys.stderr)  # (made before: it keeps its stream)
        logger = logging.getLogger("cnn_tui_test_output_log")
        logger.addHandler(handler)
        try:
            print("before the run is held")
            with keep_output(run):
                print("a print", flush=True)
                reporter_out.write("a report line\n")
                logger.warning("a logged warning")
                sys.stderr.write("\x1b[33mcoloured\x1b[0m\n")
            print("after the run")
        finally:
            logger.removeHandler(handler)
    kept = log_text(run)
    for line in ("a print", "a report line", "a logged warning"):  # (warnings: test_runs_console)
        assert line in kept
    assert "coloured\n" in kept and "\x1b" not in kept
    assert "before the run is held" not in kept and "after the run" not in kept
    printed = capsys.readouterr()
    assert "a print" in printed.out and "a report line" in printed.out  # still printed
    assert "a logged warning" in printed.err
    assert not isinstance(sys.stdout, output_log.TeeStream)  # put back
    assert handler.stream is not reporter_out


def test_a_resumed_run_appends_after_a_separator_and_the_error_that_ended_it(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "output.log").write_bytes(b"first session, cut short")
    with pytest.raises(RunError), keep_output(run, resume=True):
        print("second session")
        raise RunError("out of GPU memory at batch size 512: lower --batch-size")
    lines = log_text(run).splitlines()
    assert lines[0] == "first session, cut short"
    assert lines[1].startswith(f"{NOTE} ===== resumed ")
    assert lines[2:] == [
        "second session",
        "cnn-tui: out of GPU memory at batch size 512: lower --batch-size",
    ]
    with pytest.raises(UsageError), keep_output(run, resume=True):
        raise UsageError("bad --weights file")
    assert log_text(run).endswith("cnn-tui: error: bad --weights file\n")
    with pytest.raises(ZeroDivisionError), keep_output(run, resume=True):
        print(1 / 0)
    assert "Traceback (most recent call last)" in log_text(run)
    assert log_text(run).endswith("ZeroDivisionError: division by zero\n")


def test_output_log_is_never_written_through_a_symbolic_link(tmp_path) -> None:
    run, target = tmp_path / "run", tmp_path / "users-file"
    run.mkdir()
    target.write_text("mine\n")
    (run / "output.log").symlink_to(target)
    with pytest.raises(UsageError, match="symbolic link"), keep_output(run):
        pass
    assert target.read_text() == "mine\n"
    assert read_output(run).problem == "output.log is a symbolic link: not shown"


def test_the_cap_keeps_the_head_and_the_tail_with_a_note_of_what_was_left_out(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cap = {"max_bytes": 16_384, "head_bytes": 2048, "tail_bytes": 4096, "check_every": 1024}
    with keep_output(run, **cap):
        for n in range(3000):
            print(f"line {n:05d} " + "x" * 40)
    data = (run / "output.log").read_bytes()
    assert len(data) <= cap["max_bytes"] + cap["check_every"] + 100
    lines = data.decode().splitlines()
    assert lines[0].startswith("line 00000 ")  # the head ...
    assert lines[-1].startswith("line 02999 ")  # ... and the tail, whole lines
    notes = [line for line in lines if line.startswith(NOTE)]
    assert len(notes) == 1  # (an earlier cut's note is counted, not kept)
    left_out = int(notes[0].split("(")[1].split(" bytes")[0])
    kept = [line for line in lines if line.startswith("line ")]
    assert left_out == (3000 - len(kept)) * len(lines[0] + "\n")  # every cut counted
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_no_line_is_doubled_when_the_launcher_put_the_streams_on_output_log(
    tmp_path, monkeypatch
) -> None:
    """The TUI's launcher points the trainer's file descriptors at output.log: the trainer's
    tee sees the same file behind its streams and writes nothing more (the real spawn), and its
    stdout, a file, is line-buffered so that each line is there for the Console tab at once."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # (as the TUI's own environment)
    run = tmp_path / "run"
    run.mkdir()
    code = textwrap.dedent(
        f"""
        import sys, warnings
        from cnn_tui.training.runs.output_log import keep_output, teeing
        with teeing(), keep_output({str(run)!r}):
            print("a print")  # (no flush: in the file at once all the same)
            there = "a print" in open({str(run / "output.log")!r}).read()
            sys.stderr.write("in the file at once\\n" if there else "held in a buffer\\n")
            warnings.warn("a warning", UserWarning)
            sys.stderr.write("to stderr\\n")
            import os
            os.write(2, b"from C code\\n")
        """
    )
    pid = launcher.spawn_detached([sys.executable, "-c", code], run)
    wait_for(lambda: launcher.child_exit_code(pid) is not None, 60, "the child to end")
    assert launcher.child_exit_code(pid) == 0, log_text(run)
    kept = log_text(run)
    assert "in the file at once" in kept  # (a launched trainer's stdout: line-buffered)
    for line in ("a print", "UserWarning: a warning", "to stderr", "from C code"):
        assert kept.count(line) == 1, kept


# --- reading it back -----------------------------------------------------------------------------


def test_read_output_by_offset_whole_lines_the_newest_and_after_a_cut(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert not read_output(run).exists
    path = run / "output.log"
    path.write_bytes(b"one\ntwo\nthr")
    first = read_output(run)
    assert first.lines == ["one", "two"] and first.offset == 8  # a line still being written waits
    with path.open("ab") as handle:
        handle.write(b"ee\nfour\n")
    again = read_output(run, first.offset)
    assert again.lines == ["three", "four"] and not again.restarted
    path.write_bytes(b"cut\nlast")  # shorter than the offset: cut, read from its start
    cut = read_output(run, again.offset, final=True)
    assert cut.restarted and cut.lines == ["cut", "last"]
    path.write_bytes(b"".join(b"line %d\n" % n for n in range(100)))
    newest = read_output(run, newest=30)
    assert newest.lines == ["line 97", "line 98", "line 99"]
    assert newest.skipped == newest.offset - 24 and newest.offset == path.stat().st_size
    part = read_output(run, most=20)
    assert part.lines == ["line 0", "line 1"] and part.offset == 14
    assert tail_offset(run, 2) == path.stat().st_size - 16
    assert read_output(run, tail_offset(run, 2)).lines == ["line 98", "line 99"]
    assert tail_offset(run, 1000) == 0 and tail_offset(run, 0) == path.stat().st_size
