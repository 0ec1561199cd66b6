"""Your own model's code in the TUI: a run folder never runs code by itself.

A run of `--model FILE.py:Class` keeps a copy of that code (RUN/model_source.py). The command
line runs it only with `--trust-model-code` (`training.models.own`); in the TUI a run, or a
sweep, is trusted for the rest of the app session when:

- this app started it (the form's Start, a sweep started from the sweep form): the user named
  the file there;
- the command that opened the app was given `--trust-model-code` for it (`cnn-tui inspect RUN
  --trust-model-code`, `cnn-tui eval RUN ...`, `cnn-tui train --resume RUN ...`, `cnn-tui sweep
  --resume SWEEP ...`);
- the user said so in the dialog `ask_trust` shows where the model would be built (the Inside
  tab, resuming from the runs screen, resuming a sweep, cloning a run into the form, whose check
  runs the file the run names): the class, the file it came from, the copy and its sha256, and
  why. Cancel leaves the code unrun and says how to trust it later.

Trusting runs the copy only if its sha256 still matches the recorded one (`own.run_source`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_tui.text import one_line

TRUSTED_ATTRIBUTE = "cnn_tui_trusted_code"  # on the app: the run and sweep folders trusted


def _trusted(app: Any) -> set[Path]:
    found = getattr(app, TRUSTED_ATTRIBUTE, None)
    if found is None:
        found = set()
        setattr(app, TRUSTED_ATTRIBUTE, found)
    return found


def trust(app: Any, folder: str | Path) -> None:
    """Trust the code of the run (or sweep) in `folder` for the rest of this app session."""
    _trusted(app).add(Path(folder).resolve())


def is_trusted(app: Any, folder: str | Path) -> bool:
    """Whether `folder` (or the sweep folder it lies in) is trusted in this app session."""
    path = Path(folder).resolve()
    return any(path == kept or kept in path.parents for kept in _trusted(app))


def run_question(run_dir: str | Path, doing: str) -> str | None:
    """The dialog's text for a run of the user's own class (None: no code of the user's)."""
    from cnn_tui.training.models import own

    code = own.run_code(run_dir)
    if code is None:
        return None
    sha = f"sha256 {one_line(code.sha256[:16])}…" if code.sha256 else "no recorded sha256"
    return (
        f"{one_line(Path(run_dir).name)} trains your own model code:\n"
        f"  class {one_line(code.class_name)} from {one_line(code.origin)}\n"
        f"  kept as {one_line(code.copy)} ({sha})\n\n"
        f"A run folder never runs code by itself. {doing} runs that file's code here, as "
        "--trust-model-code does on the command line. Trust it only if you know who wrote it "
        "(read the file first)."
    )


def clone_question(run_dir: str | Path) -> str | None:
    """The dialog's text for cloning a run of the user's own class into the form, whose check
    (and Start) runs the file the run names, as it is now (None: no code of the user's)."""
    from cnn_tui.training.models import own

    code = own.run_code(run_dir)
    if code is None:
        return None
    return (
        f"{one_line(Path(run_dir).name)} trains your own model code: class "
        f"{one_line(code.class_name)} from {one_line(code.origin)}.\n\n"
        "In the form, its settings run that file, as it is now, when the form checks them and "
        "when you press Start. Trust it only if you know who wrote it (read the file first)."
    )


def sweep_question(sweep_dir: str | Path, manifest: dict[str, Any]) -> str | None:
    """The dialog's text for a sweep of the user's own class (None: no code of the user's)."""
    from cnn_tui import catalog
    from cnn_tui.training.runs import sweeps

    models = sweeps.own_models(manifest)
    if not models:
        return None
    named = ", ".join(one_line(catalog.model_label(model)) for model in models[:3])
    return (
        f"Sweep {one_line(Path(sweep_dir).name)} trains your own model code ({named}).\n\n"
        "A sweep folder never runs code by itself. Resuming it runs its stopped runs' copies of "
        "that code and, for its pending runs, the file it names as it is now, as "
        "--trust-model-code does on the command line. Trust it only if you know who wrote it."
    )


def ask_trust(
    screen: Any, folder: str | Path, question: str | None, go: Callable[[bool], None]
) -> None:
    """`go(True)` at once when `question` is None (no code of the user's) or `folder` is
    trusted already; else ask, and `go(True)` once trusted, `go(False)` on Cancel."""
    if question is None or is_trusted(screen.app, folder):
        go(True)
        return
    from cnn_tui.ui.training.dialogs import confirm

    def answered(choice: str | None) -> None:
        if choice == "yes":
            trust(screen.app, folder)
            go(True)
        else:
            go(False)

    screen.app.push_screen(confirm("Run this model's code?", question, "Trust and run"), answered)


def run_when_trusted(
    screen: Any, folder: str | Path, question: str | None, action: Callable[[], None], key: str
) -> None:
    """`action()` once `folder`'s code is trusted (`ask_trust`); on Cancel, a notification that
    it was not run and that pressing `key` asks again."""

    def go(trusted: bool) -> None:
        if trusted:
            action()
        else:
            again = f"press {key} again to be asked again"
            screen.notify(refused(folder, again), severity="warning", markup=False)

    ask_trust(screen, folder, question, go)


def refused(folder: str | Path, again: str) -> str:
    """What is shown where the model would have run when the user did not trust its code;
    `again`: how to be asked again."""
    return (
        f"{one_line(Path(folder).name)}: its model is your own code, not run (not trusted); {again}"
    )
