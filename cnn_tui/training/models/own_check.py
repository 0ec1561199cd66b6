"""The form's check of the user's own class, in a child process (`sizes.check_own`).

`python -P -m cnn_tui.training.models.own_check MODEL CHANNELS CLASSES IMAGE_SIZE HIDDEN DATASET`
imports the user's file, builds the class and runs it once (`sizes.measure_own_here`), then
prints one JSON line: `{"params", "activations", "warning"}`, or `{"problem"}` with the one-line
UsageError. What the user's code prints goes to stderr, so the answer is the last line of stdout.
A file that loops or sleeps at import holds only this process, which the app kills.
"""

from __future__ import annotations

import contextlib
import json
import sys

from cnn_tui.errors import UsageError
from cnn_tui.training.models import own, sizes


def main(argv: list[str]) -> int:
    model, channels, classes, image_size, hidden, dataset = argv
    wanted = own.Sizes(int(channels), int(classes), int(image_size), int(hidden), dataset)
    answer: dict[str, object]
    with contextlib.redirect_stdout(sys.stderr):
        try:
            found = sizes.measure_own_here(model, wanted)
        except UsageError as exc:
            answer = {"problem": str(exc)}
        else:
            answer = {
                "params": found.params,
                "activations": found.activations,
                "warning": found.warning,
            }
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
