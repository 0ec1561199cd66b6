"""Regenerate the documentation's screenshots (docs/images/*.svg) with the app's own save_screenshot.

The app runs headless (Textual's `App.run_test`) and is driven from the home screen with keys, as
a user would: the conv lesson, the picture lesson (`cnn-tui conv --image`), the network lesson, the training form, the runs screen, a run's
live dashboard, a finished run's results (the confusion matrix), its Inside and Metrics tabs. The runs live
in a temporary folder, made with the tests' own fixtures: a small real run trained by the engine
(results and Inside) and a run in progress written in the documented format (the dashboard).

    python scripts/screenshots.py            # writes docs/images/
    python scripts/screenshots.py OUT_DIR
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout, and the tests' run fixtures

from inspect_fixtures import train_run  # noqa: E402
from train_ui_fixtures import STARTED, write_run  # noqa: E402

from cnn_tui.ui.app import CnnTuiApp  # noqa: E402

SIZE = (120, 40)
TRAINED = time.strftime("%Y%m%d-%H%M%S-the3-cnn-shapes")
RUNNING = "20251122-082640-simple-cnn-shapes"  # train_ui_fixtures.STARTED, in UTC


async def settle(
    pilot, ready: Callable[[], bool] = lambda: True, *, workers: bool = True, timeout: float = 60.0
) -> None:
    """Wait for `ready()` (and for the screen's one-off workers), then give the charts a redraw.

    `workers=False` for the screens whose workers follow a run's files and never complete."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.1)
        if workers:
            await pilot.app.workers.wait_for_complete()
        if ready():
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{type(pilot.app.screen).__name__} did not settle")
    await pilot.pause(1.2)  # the charts redraw at most once a second


def inspected(screen) -> bool:
    """The Inside tab has run its image through the network (and found the mistakes)."""
    views = screen.query("InsideView")
    return bool(views) and views.first().inspection is not None and views.first().wrong is not None


async def shoot(runs_dir: Path, out: Path) -> list[Path]:
    app = CnnTuiApp(runs_dir=runs_dir)
    saved: list[Path] = []

    def save(name: str) -> None:
        saved.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out))))

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        save("home")

        await pilot.press("c")  # the conv lesson, part-way through the forward pass
        await pilot.press(*["right_square_bracket"] * 4, *["right"] * 5)
        await settle(pilot)
        save("conv-lesson")
        await pilot.press("escape", "n")  # the network lesson, into the backward pass
        await pilot.press("b", *["p"] * 5, *["right"] * 2)
        await settle(pilot)
        save("net-lesson")
        await pilot.press("escape", "t")
        await settle(pilot)
        save("train-form")

        await pilot.press("escape", "r")
        await settle(pilot, lambda: len(getattr(app.screen, "runs", ())) == 4, workers=False)
        save("runs")
        runs = app.screen
        table = runs.query_one("DataTable")
        names = [run.path.name for run in runs.runs]
        table.move_cursor(row=names.index(RUNNING))
        await pilot.press("enter")
        await settle(pilot, lambda: len(app.screen.history.epochs) == 2, workers=False)
        save("dashboard")
        await pilot.press("escape")
        table.move_cursor(row=names.index(TRAINED))
        await pilot.press("enter", "7")
        await settle(pilot, lambda: app.screen.summary is not None, workers=False)
        save("results")
        await pilot.press("9")
        await settle(pilot, lambda: inspected(app.screen), workers=False)
        save("inside")
        await pilot.press("2")  # the Metrics tab of the same run
        await settle(pilot, lambda: len(app.screen.query_one("MetricsGrid").charts) == 4)
        save("metrics")
        await pilot.press("3")  # its System tab: the trainer's readings of the machine
        await settle(pilot, lambda: app.screen.query_one("SystemPane").timeline.readings)
        save("system")
    return saved


async def shoot_picture(out: Path) -> Path:
    """The picture lesson (`cnn-tui conv --image`), part-way through the forward pass: image 0
    of Fashion-MNIST's test set when Debian's dataset-fashion-mnist is installed, else a drawn
    disc (written as a PNG in the current, temporary folder)."""
    import numpy as np
    from PIL import Image

    from cnn_tui.catalog import FASHION_MNIST_SYSTEM_DIR
    from cnn_tui.lessons.picture import PictureSettings, build_picture_lesson

    image = "fashion-mnist:0"
    if not (Path(FASHION_MNIST_SYSTEM_DIR) / "t10k-images-idx3-ubyte.gz").is_file():
        rows, cols = np.mgrid[0:28, 0:28]
        disc = (rows - 13.5) ** 2 + (cols - 12.0) ** 2 < 8.5**2
        Image.fromarray(np.where(disc, 220, cols * 4).astype(np.uint8)).save("disc.png")
        image = "disc.png"
    lesson = build_picture_lesson(PictureSettings(image, "sobel-x", crop="8,13"))
    app = CnnTuiApp("conv", lesson)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*["right_square_bracket"] * 5, *["right"] * 4)
        await settle(pilot)
        return Path(app.save_screenshot(filename="picture-lesson.svg", path=str(out)))


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    os.environ["TZ"] = "UTC"  # the runs table prints start times in local time
    time.tzset()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the screens opened from home list ./runs, and name it "runs"
        runs_dir = Path("runs")
        train_run(runs_dir / TRAINED, model="the3-cnn", limit=4000, epochs=4, batch_size=64)
        write_run(runs_dir / RUNNING, state="running", epochs=4, epochs_done=2)
        write_run(
            runs_dir / "20251122-074640-simple-cnn-shapes",
            state="stopped",
            epochs=10,
            epochs_done=3,
            message="stopped by the user (SIGTERM)",
            started=STARTED - 2400,
        )
        write_run(
            runs_dir / "20251122-064640-simple-cnn-shapes",
            state="failed",
            epochs_done=1,
            message="out of GPU memory at batch size 512: lower --batch-size",
            started=STARTED - 6000,
        )
        saved = [*asyncio.run(shoot(runs_dir, out)), asyncio.run(shoot_picture(out))]
        for path in saved:
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        os.chdir(ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
