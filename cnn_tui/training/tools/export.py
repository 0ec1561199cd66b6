"""`cnn-tui export RUN --format torchscript|torch-export|onnx`: a run's model as one file to ship.

- `torchscript`: `torch.jit.trace` of the model in eval mode (loads with `torch.jit.load`, no
  cnn-tui needed). Traced, not scripted: torchvision's and our models trace cleanly.
- `torch-export`: `torch.export.export` with a dynamic batch size, saved as a `.pt2` archive
  (`torch.export.load(path).module()`), the format PyTorch now recommends over TorchScript.
- `onnx`: `torch.onnx.export(..., dynamo=True)` — the maintained exporter, which needs the
  `onnx` and `onnxscript` packages — checked with `onnxruntime`; all three are the optional extra
  `pip install 'cnn-tui[onnx]'`.

The file takes the normalised float batch (N, C, H, W) the model sees — the preprocessing is
printed and stored in the file's metadata (`cnn_tui.json`: classes, mean, std, input size). Before
anything is written, the exported model is loaded back from the bytes and run on test images of the
run, and its logits must agree with the run's own model to float tolerance; only then is the file
written, atomically. Export runs on the CPU. An existing file is kept unless --force is given;
`-o` takes a regular file or a new path only (never a device, FIFO or link), and `-o /dev/null`
exports and checks but keeps nothing.

`export(ExportRequest)` does all of it and returns a summary of what it wrote (the command prints
it).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import STDOUT, atomic_write, is_null_device, json_text
from cnn_tui.training.runs import store as runs

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cnn_tui.training.tools.run_model import RunModel

FORMATS = {"torchscript": ".torchscript.pt", "torch-export": ".pt2", "onnx": ".onnx"}
ONNX_HINT = "pip install 'cnn-tui[onnx]'"
CHECK_IMAGES = 64  # test images the exported model is checked on
TOLERANCE = 1e-4  # largest difference of a logit, relative to the largest logit (at least 1)
METADATA_FILE = "cnn_tui.json"


@dataclass(frozen=True)
class ExportRequest:
    """Which run to export in which format (one of FORMATS), to which file (None: ./RUN_NAME +
    the format's suffix), and whether an existing file may be replaced."""

    run_dir: Path
    format: str
    output: Path | None = None
    force: bool = False
    trust_model_code: bool = False  # a run of the user's own class: run its copy of the code


def metadata(run: RunModel) -> dict[str, Any]:
    """What a user of the file needs to feed it: the classes and the preprocessing."""
    size = run.prep.image_size or run.image_size[0]
    return {
        "run": run.name,
        "model": run.config.model,
        "dataset": run.config.dataset,
        "classes": run.classes,
        "input": [run.channels, size, size],
        "mean": list(run.prep.mean),
        "std": list(run.prep.std),
        "preprocessing": "x = (pixels / 255 - mean) / std per channel, resized to input",
        "weights": run.weights_file,
        "epoch": run.epoch,
    }


def _quiet() -> contextlib.AbstractContextManager:
    """torch.jit's deprecation warnings and the ONNX exporter's progress lines stay off the
    terminal: the command prints its own one-line result."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def export_torchscript(model: Any, example: torch.Tensor, meta: dict[str, Any]):
    import torch

    with _quiet():
        traced = torch.jit.trace(model, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={METADATA_FILE: json_text(meta)})
    data = buffer.getvalue()

    def run(x: torch.Tensor) -> np.ndarray:
        with _quiet():
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        with torch.inference_mode():
            return loaded(x).float().numpy()

    return data, run


def _batch_dim() -> Any:
    import torch

    return ({0: torch.export.Dim("batch", min=1, max=4096)},)


def export_program(model: Any, example: torch.Tensor, meta: dict[str, Any]):
    import torch

    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={METADATA_FILE: json_text(meta)})
    data = buffer.getvalue()

    def run(x: torch.Tensor) -> np.ndarray:
        with _quiet():
            loaded = torch.export.load(io.BytesIO(data)).module()
        with torch.inference_mode():
            return loaded(x).float().numpy()

    return data, run


def export_onnx(model: Any, example: torch.Tensor, meta: dict[str, Any]):
    try:
        import onnx  # noqa: F401  (the exporter writes onnx protos)
        import onnxruntime
        import onnxscript  # noqa: F401  (the dynamo exporter's op library)
    except ImportError as exc:
        raise UsageError(
            f"ONNX export needs the onnx extra ({exc.name} is not installed): {ONNX_HINT}"
        ) from None
    import torch

    with _quiet():
        program = torch.onnx.export(
            model, (example,), dynamo=True, dynamic_shapes=_batch_dim(), verbose=False
        )
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_FILE, json_text(meta)
    data = proto.SerializeToString()

    def run(x: torch.Tensor) -> np.ndarray:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        import numpy as np

        return np.asarray(session.run(None, {name: x.numpy()})[0], dtype=np.float32)

    return data, run


EXPORTERS: dict[str, Callable[..., tuple[bytes, Callable[[Any], np.ndarray]]]] = {
    "torchscript": export_torchscript,
    "torch-export": export_program,
    "onnx": export_onnx,
}


def check_outputs(expected: np.ndarray, got: np.ndarray, what: str) -> float:
    """The largest difference of a logit (relative to the largest logit, at least 1); RunError
    when the exported model does not agree with the run's own model."""
    if got.shape != expected.shape:
        raise RunError(f"the {what} gives outputs of shape {got.shape}, expected {expected.shape}")
    import numpy as np

    scale = max(1.0, float(np.abs(expected).max()))
    worst = float(np.abs(got - expected).max()) / scale
    if not worst <= TOLERANCE:
        raise RunError(
            f"the {what} does not agree with the run's model (largest relative difference "
            f"{worst:.2g} > {TOLERANCE:g}); nothing was written"
        )
    return worst


def export_run(run: RunModel, fmt: str, output: Path) -> dict[str, Any]:
    """Export, check on test images, then write `output` atomically; a summary of what was done."""
    import torch

    from cnn_tui.training.tools.run_model import load_test_split

    images, _ = load_test_split(run)
    batch = run.model_input(torch.as_tensor(images[:CHECK_IMAGES])).contiguous()
    with torch.inference_mode():
        expected = run.model(batch).float().numpy()
    meta = metadata(run)
    try:
        data, reload = EXPORTERS[fmt](run.model, batch[:2].clone(), meta)
        got = reload(batch)
    except (UsageError, RunError):
        raise
    except Exception as exc:  # an op the exporter cannot express: say so in one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise RunError(f"{fmt} export of {run.config.model} failed: {reason}") from None
    worst = check_outputs(expected, got, f"exported {fmt} file")
    atomic_write(output, lambda handle: handle.write(data))
    return {
        "format": fmt,
        "file": str(output),
        "bytes": len(data),
        "checked_images": int(len(batch)),
        "max_relative_difference": worst,
        **meta,
    }


def output_path(run_dir: Path, fmt: str, output: Path | None, force: bool) -> Path:
    """Where the file goes: checked (`store.check_output_file`: a regular file or a new path, never
    a file the run keeps),
    never stdout (the model is binary), an existing file only with --force; the null device
    takes it without --force (export and check, keep nothing)."""
    if output is not None and str(output) == STDOUT:
        raise UsageError(
            "-o -: an exported model is a binary file, not for stdout; give a file name"
        )
    path = runs.check_output_file(output or run_dir.resolve().name + FORMATS[fmt], "-o")
    if path.exists() and not force and not is_null_device(path):
        raise UsageError(f"{path} already exists: pass --force to replace it, or -o another file")
    return path


def export(request: ExportRequest) -> dict[str, Any]:
    """Check the request, load the run's model on the CPU and export it (`export_run`)."""
    from cnn_tui.training.tools.run_model import load_run_model

    if request.format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {request.format!r}")
    output = output_path(request.run_dir, request.format, request.output, request.force)
    if request.format == "onnx":
        _check_onnx_installed()
    run = load_run_model(request.run_dir, "cpu", request.trust_model_code)
    return export_run(run, request.format, output)


def _check_onnx_installed() -> None:
    """Before the model loads: a missing extra is one line naming the install command."""
    import importlib.util

    for name in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"ONNX export needs the onnx extra ({name} is missing): {ONNX_HINT}")
