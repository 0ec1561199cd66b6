"""Untrusted text on the screens (issue 23, case 3): what the runs screen, the home screen's
banner and a run's dashboard (status line, results tables, samples, log, notifications) draw
from hostile run names, class names, config values and messages.

The check reads what Textual writes to the terminal: the text of the segments of a full screen
update (`rendered_text`), with its own colour and cursor sequences kept aside as styles. No ESC,
no C0 or C1 control, no bidi control may be among them, and markup in a name is shown as text.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_text import TITLE, WIPE, as_file_name, assert_safe, hostile_text, toml_string
from hypothesis import HealthCheck, example, given, settings
from train_ui_fixtures import CLASSES, write_run

from cnn_tui import text
from cnn_tui.training.runs import store as runs
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.runs import RunsScreen

SIZE = (300, 50)  # wide: a name of three escaped pieces is shown whole in every column


def rendered_text(app: CnnTuiApp) -> str:
    """The text a full update of the screen writes to the terminal, line by line (the toasts of
    notifications included: they are on the screen)."""
    update = app.screen._compositor.render_full_update()
    return "\n".join(
        "".join(segment.text for strip in line for segment in strip) for line in update.strips
    )


def make_hostile(runs_dir: Path, name: str, classes: list[str], value: str, message: str):
    """A finished run named `name` with `classes`, a failed one whose status says `message`, a
    running one; every config value the screens show is `value`."""
    finished = write_run(runs_dir / name, state="finished", classes=classes)
    failed = write_run(runs_dir / f"{name}-failed", state="failed", epochs_done=1, message=message)
    live = write_run(runs_dir / f"{name}-live", state="running")
    for run_dir in (finished, failed, live):
        config = (run_dir / runs.CONFIG_FILE).read_text()
        (run_dir / runs.CONFIG_FILE).write_text(
            config.replace('model = "simple-cnn"', f"model = {toml_string(value)}")
        )
        events = [
            json.loads(line) for line in (run_dir / runs.EVENTS_FILE).read_text().splitlines()
        ]
        started = events[0]
        started["config"].update(model=value, dataset=value, early_stop_metric=value)
        started["device_name"] = value
        (run_dir / runs.EVENTS_FILE).write_text("".join(json.dumps(e) + "\n" for e in events))
    return finished, failed


async def check_screens(runs_dir: Path, name: str, classes: list[str], value: str, message: str):
    finished, failed = make_hostile(runs_dir, name, classes, value, message)
    app = CnnTuiApp(runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()  # the home screen's banner of runs in progress
        await pilot.pause()
        assert_safe(rendered_text(app))

        screen = RunsScreen(runs_dir)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.runs) == 3)
        shown = rendered_text(app)
        assert_safe(shown)
        assert text.one_line(name) in shown and text.one_line(value) in shown
        await pilot.press("k")  # clone: the hostile model is refused, in a notification
        await pilot.pause()
        assert_safe(rendered_text(app))

        await app.push_screen(ResultsScreen(finished))
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = rendered_text(app)  # the title, the status line and the Results tab
        assert_safe(shown)
        assert text.one_line(value) in shown and text.one_line(classes[1]) in shown
        for tab in ("8", "5"):  # samples, log (the charts and epochs tabs show numbers)
            await pilot.press(tab)
            await pilot.pause()
            assert_safe(rendered_text(app))

        await app.push_screen(ResultsScreen(failed))
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = rendered_text(app)
        assert_safe(shown)
        first = text.lines(message)[0]
        if first.strip():  # the status line quotes the first line of the reason
            assert first.strip() in shown
        await pilot.press("5")
        await pilot.pause()
        assert_safe(rendered_text(app))


@given(
    name=hostile_text(3).map(as_file_name),
    class_name=hostile_text(3),
    value=hostile_text(3),
    message=hostile_text(3),
)
@example(
    name=f"run{TITLE}[red]x",
    class_name=f"[b]cat{WIPE}\n",
    value="[/]\x9b2J\u202e",
    message=f"loss is NaN {TITLE}\nsecond line [red]",
)
@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_screens_draw_any_name_escaped_and_markup_as_text(
    tmp_path_factory, name, class_name, value, message
) -> None:
    classes = [f"{class_name}{i}" for i in range(len(CLASSES))]
    runs_dir = tmp_path_factory.mktemp("runs")
    asyncio.run(check_screens(runs_dir, name, classes, value, message))


def test_a_class_called_red_is_not_red(tmp_path) -> None:
    """Markup in a class name is text: `[red]x` is shown with its brackets (as markup it would
    be a red `x`)."""
    classes = ["[red]x", *CLASSES[1:]]

    async def check() -> None:
        run = write_run(tmp_path / "run", state="finished", classes=classes)
        app = CnnTuiApp(runs_dir=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(ResultsScreen(run))
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown = rendered_text(app)
            assert "[red]x → " in shown  # the most confused pairs: a Text, not Rich markup
            assert "0 [red]x" in shown  # the confusion matrix's row

    asyncio.run(check())


@pytest.mark.parametrize("bad", [f"runs{TITLE}", "a\nb"])
def test_the_form_refuses_a_data_dir_with_control_characters(bad) -> None:
    from cnn_tui.training.config import ConfigError, parse_field

    with pytest.raises(ConfigError, match="must not hold control characters"):
        parse_field("data_dir", bad)
