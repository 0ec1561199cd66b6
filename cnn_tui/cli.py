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
from cnn_tui.commands import COMMANDS, output, streams
from cnn_tui.errors import STDOUT, RunError, UsageError, disk_full, path_error
from cnn_tui.text import one_line
from cnn_tui.training.runs.folders import MAX_FOLDERS, resolve_run_folders

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # (argparse quotes what was typed: an unknown argument holding ESC is shown escaped)
        message = one_line(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        """Parse, then resolve the --runs-dir values (`runs.folders`): `args.run_folders`
        holds every folder, `args.runs_dir` the first (where new runs go)."""
        parsed = super().parse_args(args, namespace)
        if hasattr(parsed, "runs_dir"):  # (the top-level parser: a subcommand's has none)
            try:
                parsed.run_folders = resolve_run_folders(parsed.runs_dirs or [parsed.runs_dir])
            except UsageError as exc:
                self.error(str(exc))
            parsed.runs_dir = str(parsed.run_folders.new_runs)
        return parsed


def _add_no_ui(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--no-ui", action="store_true", help=f"run headless: {what}")


RUNS_DIR_HELP = (
    "where training runs are stored (default: ./runs); repeat it, or give a quoted glob "
    f"('/shared/*/runs', at most {MAX_FOLDERS} folders), to list the runs of several folders: "
    "new runs go into the first"
)


class _RunsDirFlag(argparse.Action):
    """`--runs-dir`, repeatable: the values in order in `runs_dirs`, the first in `runs_dir`
    (resolved by `_Parser.parse_args`)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def, override]
        given = [*(getattr(namespace, "runs_dirs", None) or []), values]
        namespace.runs_dirs = given
        setattr(namespace, self.dest, given[0])


def _add_runs_dir(parser: argparse.ArgumentParser, **default: str) -> None:
    """`--runs-dir`, a global flag that each subcommand takes too (`cnn-tui runs --runs-dir X`
    as well as `cnn-tui --runs-dir X runs`), as often as wanted. A subcommand's copy has no
    default (SUPPRESS): given there, its values replace those given before the subcommand; not
    given, those stay."""
    action = parser.add_argument(
        "--runs-dir",
        action=_RunsDirFlag,
        type=output.path_argument,
        metavar="DIR",
        help=RUNS_DIR_HELP,
        **(default or {"default": argparse.SUPPRESS}),  # type: ignore[arg-type]
    )
    output.chooses_output(action)


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
    _add_runs_dir(parser, default="runs")
    parser.set_defaults(runs_dirs=None)
    _add_no_ui(parser, "print a short overview of the subcommands and exit")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for command in COMMANDS.values():
        child = sub.add_parser(command.name, help=command.help, description=command.description)
        command.load().add_arguments(child)
        _add_no_ui(child, command.no_ui_help)
        _add_runs_dir(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the subcommand, turn its errors into one line and an exit code. While it runs,
    stdout is a `streams.NamedStream`, so a failed write to it is named as such, not as some file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    if stdout is not None:
        sys.stdout = streams.NamedStream(stdout, STDOUT)
    try:
        code = _dispatch(parser, args)
        if sys.stdout is not None:
            sys.stdout.flush()  # what is still buffered fails here, named, not silently at exit
        return code
    except UsageError as exc:
        print(f"cnn-tui: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"cnn-tui: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `cnn-tui runs --no-ui | head -1`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except OSError as exc:  # outside the training loop (which says so itself)
        flag = flag_for(exc.filename, parser, args) if exc.filename not in (None, STDOUT) else None
        full = disk_full(exc, flag=flag)
        if full is not None:
            print(f"cnn-tui: {one_line(full)}", file=sys.stderr)
            return 1
        bad_path = path_error(exc, flag)  # a --json, -o or --runs-dir path that cannot be written
        if bad_path is None:
            raise
        print(f"cnn-tui: error: {one_line(bad_path)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnn-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if stdout is not None and isinstance(sys.stdout, streams.NamedStream):
            sys.stdout = stdout


def flag_for(path: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The flag that chose where `path` is written: of the arguments given (or defaulted), the
    one naming that file or the nearest folder above it, when it is a flag that chooses outputs
    (`output.chooses_output`: `--run-dir` for a run's files, `--runs-dir` for a run made under it,
    `--json-file`, `-o`); None when another argument is nearer (`eval RUN` and `--resume RUN`
    write into RUN, which no other folder replaces) or none names it."""
    target = os.path.abspath(path)
    nearest: tuple[int, argparse.Action] | None = None
    for action in _actions(parser, args):
        value = getattr(args, action.dest, None)
        if not isinstance(value, str) or value in ("", "-"):
            continue
        place = os.path.abspath(value)
        inside = target == place or target.startswith(place.rstrip(os.sep) + os.sep)
        if inside and (nearest is None or len(place) > nearest[0]):
            nearest = (len(place), action)
    if nearest is None or not getattr(nearest[1], "chooses_output", False):
        return None
    names = nearest[1].option_strings
    return next((name for name in names if name.startswith("--")), names[0])


def _actions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.Action]:
    """The arguments of `cnn-tui` and of the subcommand that ran."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and args.command in action.choices:
            actions += action.choices[args.command]._actions
    return actions


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
            print(parser.format_help(), end="")  # (print_help would hide a failed write)
            return 0
        from cnn_tui.commands import tui

        return tui.open_app(None, None, runs_dir=args.run_folders)
    return COMMANDS[args.command].load().run(args)
