"""`cnn-tui inspect RUN`: one image through a trained run's network (the Inside screen).

The flags become an `InspectRequest`; with --no-ui the core's report (`tools.inspect.inspect_run`)
is printed here as text, or as JSON (`--json`, `--json FILE`, `--json-file FILE`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui import text
from cnn_tui.commands import output, tool_flags, tui
from cnn_tui.commands.count_flags import add_count

if TYPE_CHECKING:
    from cnn_tui.training.tools.inspect import InspectRequest

TOP_CLASSES = 5  # the probabilities the text report lists
MAX_TEST_INDEX = 10**9 - 1  # no test split is larger (--limit keeps at most 10**9 images)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN", type=output.path_argument, help="the run directory to look inside"
    )
    which = parser.add_mutually_exclusive_group()
    add_count(
        which,
        "--test-index",
        low=0,
        high=MAX_TEST_INDEX,
        bounds="0 to its size - 1",
        help="test image N of the run's test split (default: 0)",
    )
    which.add_argument(
        "--image", metavar="FILE", type=output.path_argument, help="an image file of your own"
    )
    parser.add_argument(
        "--cam-layer",
        metavar="NAME",
        help="the stage Grad-CAM reads (a name from the report's stage table; default: the last "
        "convolution with maps of at least 4×4, see docs/inside.md)",
    )
    tool_flags.add_device_argument(parser)
    tool_flags.add_trust_argument(parser)
    output.add_json_arguments(
        parser,
        "the probabilities, Grad-CAM maps and layer statistics (with --no-ui)",
        file_after_json=True,
    )


def request_from_args(args: argparse.Namespace) -> InspectRequest:
    from cnn_tui.training.tools.inspect import InspectRequest

    return InspectRequest(
        Path(args.run_dir),
        test_index=args.test_index,
        image=args.image,
        device=args.device,
        cam_layer=args.cam_layer,
        trust_model_code=args.trust_model_code,
    )


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools import inspect

    request = request_from_args(args)
    inspect.check_request(request)  # a missing run folder or image: one line, before any work
    if not args.no_ui:
        return tui.open_app("inspect", request, runs_dir=args.run_folders)
    target = output.json_target(args)
    with output.user_prints_to_stderr(args):  # (your own model's code may print)
        result = inspect.inspect_run(request)
    if result.weights_note is not None:  # a diverged run: its last finite weights
        print(f"cnn-tui: note: {text.one_line(result.weights_note)}", file=sys.stderr)
    if target == output.STDOUT:
        output.write_json(result.data, target)
        return 0
    if target is not None:
        output.write_json(result.data, target)
    output.say(*text_lines(result.data, result.notes))
    if target is not None:
        print(f"report written to {text.one_line(target)}", file=sys.stderr)
    return 0


def _peak(values: list[list[float]]) -> tuple[int, int]:
    """(row, column) of the largest value of a map (the first of equal ones, as numpy's argmax)."""
    cells = ((i, j) for i, row in enumerate(values) for j in range(len(row)))
    return max(cells, key=lambda cell: values[cell[0]][cell[1]])


def text_lines(data: dict[str, Any], notes: list[str]) -> list[str]:
    """The report as text: the prediction, the top classes, the stages and where Grad-CAM looks."""
    probabilities = sorted(data["probabilities"].items(), key=lambda item: -item[1])
    true, predicted = data["true"], data["predicted"]
    truth = f" · true {text.one_line(true)}" if true is not None else ""
    mark = "" if true is None else (" ✓" if true == predicted else " ✗")
    lines = [f"{text.one_line(data['image'])}{truth} · predicted {text.one_line(predicted)}{mark}"]
    lines += [f"note: {text.one_line(note)}" for note in notes]
    lines += ["", "class probabilities:"]
    lines += [
        f"  {text.one_line(name):<14} {text.confidence(p):>7}"
        for name, p in probabilities[:TOP_CLASSES]
    ]
    lines += [
        "",
        f"{'stage':<18} {'kind':<24} {'shape':<14} {'min':>8} {'max':>8} {'mean':>8} {'zeros':>6}",
    ]
    for layer in data["layers"]:
        shape = "×".join(str(v) for v in layer["shape"])
        lines.append(
            f"{text.one_line(layer['name']):<18} {text.one_line(layer['kind']):<24} {shape:<14} "
            f"{text.number(layer['min'], '.3g'):>8} {text.number(layer['max'], '.3g'):>8} "
            f"{text.number(layer['mean'], '.3g'):>8} {text.percent(layer['zeros'], 1):>6}"
        )
    cam = data["grad_cam"]
    lines.append("")
    shape = "×".join(map(str, cam["shape"]))
    lines.append(f"Grad-CAM at {text.one_line(cam['layer'])} ({shape}):")
    for key in ("predicted", "true"):
        if key not in cam:
            continue
        name = text.one_line(cam[key]["class"])
        if cam[key].get("empty"):  # (a report without the field: a map to show)
            lines.append(f"  {key} class {name}: EMPTY: {text.one_line(cam[key]['reason'])}")
            if cam[key]["try_layer"] is not None:
                lines.append(
                    f"    try another layer: --cam-layer {text.one_line(cam[key]['try_layer'])}"
                )
            continue
        row, column = _peak(cam[key]["map"])
        lines.append(
            f"  {key} class {name}: strongest at row {row}, column {column} "
            f"(max {text.number(cam[key]['max'], '.3g')})"
        )
    return lines
