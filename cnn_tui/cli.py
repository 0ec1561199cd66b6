"""Command line entry point: `cnn-tui [SUBCOMMAND] [--no-ui] ...`.

Parsing stays light (no torch, no textual at import time) so `--help` is instant; each
subcommand imports what it needs when it runs. Every subcommand takes `--no-ui`, which runs the
same core engine headless.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnn_tui import __version__
from cnn_tui.commands import COMMANDS
from cnn_tui.errors import RunError, UsageError, disk_full, path_error
from cnn_tui.text import one_line

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_no_ui(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--no-ui", action="store_true", help=f"run headless: {what}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnn-tui",
        description=(
            "Learn and run convolutional networks in the terminal. With no subcommand, opens the "
            "home screen: step-through conv/pool lessons and training."
        ),
        epilog="Run 'cnn-tui SUBCOMMAND --help' for the options of each subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"cnn-tui {__version__}")
    parser.add_argument(
        "--runs-dir", default="runs", help="where training runs are stored (default: ./runs)"
    )
    _add_no_ui(parser, "print a short overview of the subcommands and exit")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for command in COMMANDS.values():
        child = sub.add_parser(command.name, help=command.help, description=command.description)
        command.load().add_arguments(child)
        _add_no_ui(child, command.no_ui_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except UsageError as exc:
        print(f"cnn-tui: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"cnn-tui: {one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `cnn-tui runs --no-ui | head -1`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except OSError as exc:  # outside the training loop (which says so itself)
        full = disk_full(exc)
        if full is not None:
            print(f"cnn-tui: {one_line(full)}", file=sys.stderr)
            return 1
        bad_path = path_error(exc)  # a --json, -o or --runs-dir path that cannot be written
        if bad_path is None:
            raise
        print(f"cnn-tui: error: {one_line(bad_path)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnn-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit cannot raise into a closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout closed or not a real file
        pass


def run() -> NoReturn:
    """The `cnn-tui` script and `python -m cnn_tui`: `main`, then exit.

    stdout and stderr are set up first (`commands.streams.install`): any encoding, a reader that
    went away, a closed stream. A reader that went away is no error: the exit status stays the
    command's own (0 where it stopped printing there), not coreutils' 141 (SIGPIPE).

    Once torch is loaded, a normal interpreter exit spends about a second tearing down its
    modules (simple-cnn's one-epoch run: 1.05 of 9.3 s). Every file a command writes is complete
    by the time `main` returns (atomic writes, flushed event lines), so after flushing stdout and
    stderr the process ends at once (`os._exit`) instead. Without torch, or under a profiler,
    a debugger or coverage (which write their results at exit), it exits as usual.
    """
    from cnn_tui.commands import streams

    streams.install()
    try:
        code = main()
    except BrokenPipeError:  # `cnn-tui --help | head -1`: argparse prints outside main's handlers
        code = 0
    finally:  # (`--help` and `--version` end in SystemExit)
        streams.flush()
    if "torch" not in sys.modules or sys.getprofile() or sys.gettrace():
        raise SystemExit(code)
    os._exit(code)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command is None:
        if args.no_ui:
            parser.print_help()
            return 0
        from cnn_tui.commands import tui

        return tui.open_app(None, None, runs_dir=args.runs_dir)
    return COMMANDS[args.command].load().run(args)
