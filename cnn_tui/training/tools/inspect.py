"""Inside a trained network: the feature maps of every stage, the first layer's filters, the class
probabilities and Grad-CAM for one image (`cnn-tui inspect`, the run screen's Inside tab).

`inspect_image(run, image, true)` runs the run's model once on one uint8 image with forward hooks
on its stages and returns an `Inspection` of plain numpy arrays:

- the stages: every conv and pooling layer of the small CNNs and of your own class (`--model
  FILE.py:Class`, found by a walk of its modules), the stem and each residual block of a
  ResNet, the first conv and each of the five blocks (its max-pool) of VGG16, each block of the
  feature extractor of any other torchvision model (`zoo.stage_names`; none for ViT and Swin,
  whose blocks hold tokens, not maps) (`stage_modules`);
- the first conv layer: its weights, its real input (normalised, as the network sees it) and its
  output, so one filter at one output cell can be recomputed by hand (`filter_patch`);
- Grad-CAM (Selvaraju et al. 2017) for the predicted, the true and any asked-for class: the
  gradient of the class score (the logit, before the softmax) with respect to a stage's feature
  maps, averaged over the positions, weights each channel; the map is ReLU(Σ_k α_k A^k). The stage
  is the deepest one whose maps are at least 4×4 (`default_cam_layer`), where the maps still have
  room to say where — but a pooling layer right after a convolution gives way to that
  convolution (Selvaraju et al. use the last conv layer): behind its ReLU a pooled map is ≥ 0,
  and with a linear head right after it (SimpleCNN) the α_k are the head's mean weights, the
  same for every image, whose sum with the channels is ≤ 0 everywhere on most images (measured
  in docs/inside.md). Any stage can be asked for (`--cam-layer`, `g` in the Inside view); a map
  that is empty or the same everywhere comes with the reason (`cam_problem`).

Models that average their logits over the image and its mirror at evaluation (fast-cnn,
airbench-cnn) run their stages twice; the hooks keep the first run, on the image as it is, and the
gradient through it is half that of that path alone, which Grad-CAM's ReLU and normalisation do not
see. `inspect_run(InspectRequest)` is `cnn-tui inspect`'s whole job on one image (the command
prints its report). UI-free; torch is imported inside the functions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.fileio import check_input_file
from cnn_tui.text import one_line

if TYPE_CHECKING:
    from torch import nn

    from cnn_tui.training.tools.run_model import RunModel

CAM_MIN_SIZE = 4  # Grad-CAM's default stage: the deepest one with maps at least this big
PATCH_CELLS = 4  # "open in the lesson": at most this many output rows and columns around the cell


@dataclass
class Stage:
    """The output of one stage for the image: (C, H, W) float32."""

    name: str  # the module's path in the model, e.g. "conv_block_1.2", "layer3.1"
    kind: str  # e.g. "conv 3×3", "max-pool 2×2", "residual block"
    activation: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.activation.shape
        return int(c), int(h), int(w)

    def stats(self) -> dict[str, Any]:
        # in float64: the huge (finite) maps of a run near divergence overflow float32 sums; an
        # infinite value gives NaN statistics (null in JSON), without numpy's warnings
        a = self.activation.astype(np.float64)
        with np.errstate(all="ignore"):
            return {
                "name": self.name,
                "kind": self.kind,
                "shape": list(self.shape),
                "min": float(a.min()),
                "max": float(a.max()),
                "mean": float(a.mean()),
                "std": float(a.std()),
                "zeros": float(np.mean(a == 0)),  # after a ReLU: the share of units that are off
                "channel_means": [round(float(v), 6) for v in a.mean(axis=(1, 2))],
            }


@dataclass
class FirstConv:
    """The first convolution the image goes through, with what it really read and wrote."""

    name: str
    weight: np.ndarray  # (F, C, KH, KW)
    bias: np.ndarray | None  # (F,), None for a conv without bias (a BatchNorm follows)
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    padding_mode: str
    input: np.ndarray  # (C, H, W): the normalised image as this layer saw it
    output: np.ndarray  # (F, H', W')


@dataclass
class Inspection:
    """One image through the network."""

    image: np.ndarray  # uint8 (C, H, W) as the data set holds it (before normalisation)
    true: int | None
    probabilities: np.ndarray  # (K,)
    stages: list[Stage]
    first_conv: FirstConv | None
    cam_layer: str
    cams: dict[int, np.ndarray] = field(default_factory=dict)  # class -> ReLU'd map (h, w)
    cam_problems: dict[int, CamProblem] = field(default_factory=dict)  # class -> why it is empty

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def cam_image(self, cls: int) -> np.ndarray:
        """Grad-CAM of class `cls` upsampled (bilinear) to the image's size, scaled to [0, 1]."""
        return upsampled(self.cams[cls], self.image.shape[1:])


def upsampled(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map resized bilinearly to `size`, divided by its maximum (all-zero stays zero)."""
    import torch
    import torch.nn.functional as F

    tensor = torch.as_tensor(np.asarray(cam, dtype=np.float32))[None, None]
    out = F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    top = float(out.max())
    return (out / top).numpy() if top > 0 else np.zeros(tuple(size), dtype=np.float32)


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _kind(module: nn.Module, block: str = "residual block") -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        stride = "" if module.stride == (1, 1) else f"/{module.stride[0]}"
        return f"conv {kh}×{kw}{stride}"
    if isinstance(module, nn.modules.pooling._AdaptiveMaxPoolNd | nn.AdaptiveAvgPool2d):
        return "global " + ("max-pool" if "Max" in type(module).__name__ else "avg-pool")
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kh, kw = _pair(module.kernel_size)
        return f"{'max' if isinstance(module, nn.MaxPool2d) else 'avg'}-pool {kh}×{kw}"
    return block


def stage_modules(model: nn.Module) -> list[tuple[str, str]]:
    """(module path, kind) of the stages shown for `model`, in the order the model runs them."""
    from torch import nn

    kind = type(model).__name__
    named = dict(model.named_modules())
    # torchvision's own ResNet and VGG (a user's class may have the same name: the walk below)
    kind = kind if type(model).__module__.startswith("torchvision.") else ""
    if kind == "ResNet" and "layer1" in named:
        names = ["conv1", "maxpool"]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            names += [f"{layer}.{i}" for i in range(len(named[layer]))]
        return [(name, _kind(named[name])) for name in names]
    if kind == "VGG" and "features" in named:
        features = named["features"]
        names = ["features.0"] + [
            f"features.{i}" for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)
        ]
        return [
            (name, _kind(named[name]) + ("" if name == "features.0" else f" (block {i})"))
            for i, name in enumerate(names)
        ]
    if type(model).__module__.startswith("torchvision."):  # the rest of torchvision's zoo
        from cnn_tui.training.models import zoo

        return [(name, _kind(named[name], "block")) for name in zoo.stage_names(model)]
    # the small CNNs and your own class: every convolution and pooling layer, in order
    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    return [(name, _kind(m)) for name, m in named.items() if isinstance(m, (nn.Conv2d, *pools))]


def default_cam_layer(stages: list[Stage]) -> str:
    """The deepest stage whose maps are at least CAM_MIN_SIZE (else 2) on each side; a pooling
    stage right after a convolution stage gives way to that convolution (module docstring)."""
    for smallest in (CAM_MIN_SIZE, 2, 1):
        fitting = [i for i, s in enumerate(stages) if min(s.shape[1:]) >= smallest]
        if fitting:
            at = fitting[-1]
            if at > 0 and _is_pool(stages[at]) and stages[at - 1].kind.startswith("conv"):
                at -= 1
            return stages[at].name
    raise UsageError("the model has no stage with feature maps to inspect")


def _is_pool(stage: Stage) -> bool:
    return "pool" in stage.kind


@dataclass(frozen=True)
class CamProblem:
    """Why a Grad-CAM map says nothing, and a stage to try instead (None: no better one)."""

    kind: str  # "no-activations", "no-gradients", "negative", "constant"
    reason: str
    alternative: str | None


def cam_problem(
    layer: str,
    activation: np.ndarray,
    gradient: np.ndarray,
    cam: np.ndarray,
    stages: list[Stage],
) -> CamProblem | None:
    """None for a map that shows where; else why it is empty (all 0) or flat (the same value
    everywhere): the stage's units all off, no gradient reaching them, the weighted sum ≤ 0
    everywhere, or maps too small or too even to tell places apart."""
    if not np.any(activation):
        kind, reason = (
            "no-activations",
            f"every unit of {layer} is 0 for this image (dead after a ReLU)",
        )
    elif not np.any(gradient):
        kind, reason = (
            "no-gradients",
            f"the class score does not change with {layer} (every gradient is 0)",
        )
    elif not float(cam.max()) > 0:
        kind, reason = (
            "negative",
            (
                f"Σ α_k·A_k ≤ 0 everywhere at {layer}: the channels that lower the class score "
                "outweigh those that raise it at every place; Grad-CAM's ReLU keeps nothing"
            ),
        )
    elif cam.size == 1 or float(cam.max() - cam.min()) <= 1e-6 * float(cam.max()):
        kind, reason = (
            "constant",
            (
                f"the map is the same everywhere at {layer} ({cam.shape[0]}×{cam.shape[1]}): "
                "it cannot say where"
            ),
        )
    else:
        return None
    return CamProblem(kind, reason, _alternative(layer, stages))


def _alternative(layer: str, stages: list[Stage]) -> str | None:
    """The stage to try instead of `layer`: the nearest earlier convolution (or block) with maps
    of at least 2×2, else the nearest earlier stage, else the next one."""
    names = [s.name for s in stages]
    at = names.index(layer) if layer in names else len(names)
    earlier = [s for s in stages[:at] if min(s.shape[1:]) >= 2]
    preferred = [s for s in earlier if not _is_pool(s)]
    for choice in (preferred, earlier):
        if choice:
            return choice[-1].name
    later = stages[at + 1 : at + 2]
    return later[0].name if later else None


def inspect_image(
    run: RunModel,
    image: np.ndarray,
    true: int | None = None,
    *,
    cam_classes: tuple[int, ...] = (),
    cam_layer: str | None = None,
) -> Inspection:
    """Run one uint8 image (C, H, W) through `run`'s model; see the module docstring."""
    import torch
    from torch import nn

    model = run.model
    stages = dict(stage_modules(model))
    named = dict(model.named_modules())
    convs = [name for name, m in named.items() if isinstance(m, nn.Conv2d)]
    outputs: dict[str, torch.Tensor] = {}  # in the graph: Grad-CAM differentiates them
    order: list[str] = []
    conv_input: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {}
    second_pass: list[bool] = []

    owner = threading.get_ident()

    def hook(name: str):
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            # the model is shared: another thread (the Inside view's loader) may run it meanwhile
            if threading.get_ident() != owner or second_pass:
                return None
            calls[name] = calls.get(name, 0) + 1
            if calls[name] > 1 and name == order[0]:
                # the first layer again: a second run (the mirrored image of a flip-averaging
                # model), not kept
                second_pass.append(True)
                return None
            # a module used again (a student's one `self.pool` after each conv): its k-th call
            # is stage NAME#k
            key = call_name(name, calls[name])
            order.append(key)
            if isinstance(module, nn.Conv2d) and not conv_input:
                conv_input[key] = args[0].detach()
            # the rest of the model gets a copy, so no in-place op downstream can change this one
            outputs[key] = output
            return output.clone()

        return record

    handles = [named[name].register_forward_hook(hook(name)) for name in {*stages, *convs}]
    try:
        x = run.model_input(torch.as_tensor(np.asarray(image))[None])
        x = x.detach().requires_grad_(True)  # the weights are frozen: track from the input
        with torch.enable_grad():
            logits = model(x)  # (as setup.batch_logits, with the input kept for the gradient)
            recorded = [
                Stage(n, stages[module_name(n)], _map(outputs[n]))
                for n in order
                if module_name(n) in stages
            ]
            layer = cam_layer or default_cam_layer(recorded)
            if layer not in outputs or module_name(layer) not in stages:
                raise UsageError(unknown_layer(layer, [s.name for s in recorded]))
            probabilities = logits.detach().float().softmax(1)[0].cpu().numpy()
            if not np.isfinite(probabilities).all():  # a diverged run's weights
                raise run.not_finite()
            wanted = {int(probabilities.argmax()), *cam_classes}
            if true is not None:
                wanted.add(int(true))
            cams, problems = {}, {}
            activation = _map(outputs[layer])
            for c in sorted(wanted):
                if 0 <= c < logits.shape[1]:
                    cams[c], gradient = _grad_cam(logits[0, c], outputs[layer])
                    problem = cam_problem(layer, activation, gradient, cams[c], recorded)
                    if problem is not None:
                        problems[c] = problem
    finally:
        for handle in handles:
            handle.remove()
    first = next((name for name in order if name in conv_input), None)
    return Inspection(
        image=np.asarray(image),
        true=None if true is None else int(true),
        probabilities=probabilities,
        stages=recorded,
        first_conv=_first_conv(named[module_name(first)], first, conv_input[first], outputs[first])
        if first
        else None,
        cam_layer=layer,
        cams=cams,
        cam_problems=problems,
    )


def call_name(module: str, call: int) -> str:
    """The stage of the `call`-th run of `module` in one forward: its name, then NAME#2, ..."""
    return module if call == 1 else f"{module}#{call}"


def module_name(stage: str) -> str:
    """The module a stage (`call_name`) is a run of."""
    return stage.partition("#")[0]


def unknown_layer(layer: str, names: list[str]) -> str:
    """The one-line error for a Grad-CAM layer the model does not have."""
    return f"--cam-layer {one_line(layer)}: no such layer; choose one of: {', '.join(names)}"


def _map(tensor: Any) -> np.ndarray:
    return tensor.detach()[0].float().cpu().contiguous().numpy()


def grad_cam(score: Any, activation: Any) -> np.ndarray:
    """Grad-CAM of one class score over a stage's maps A (1, C, h, w): ReLU(Σ_k α_k A_k) with
    α_k the mean over positions of ∂score/∂A_k (Selvaraju et al. 2017, eq. 1-2)."""
    return _grad_cam(score, activation)[0]


def _grad_cam(score: Any, activation: Any) -> tuple[np.ndarray, np.ndarray]:
    """`grad_cam`'s map and the gradient (C, h, w) it weighed the channels with."""
    import torch

    (grad,) = torch.autograd.grad(score, activation, retain_graph=True)
    alpha = grad[0].float().mean(dim=(1, 2))
    cam = (alpha[:, None, None] * activation.detach()[0].float()).sum(0).clamp(min=0)
    return cam.cpu().numpy(), grad[0].float().cpu().numpy()


def _first_conv(module: nn.Module, name: str, x: Any, y: Any) -> FirstConv:
    bias = module.bias
    return FirstConv(
        name=name,
        weight=module.weight.detach().float().cpu().numpy(),
        bias=None if bias is None else bias.detach().float().cpu().numpy(),
        stride=_pair(module.stride),
        padding=_pair(module.padding) if not isinstance(module.padding, str) else (0, 0),
        dilation=_pair(module.dilation),
        groups=int(module.groups),
        padding_mode=str(module.padding_mode),
        input=x[0].float().cpu().contiguous().numpy(),
        output=_map(y),
    )


# --- one filter at one cell, for the conv lesson ----------------------------------------------


@dataclass(frozen=True)
class FilterPatch:
    """The first conv's filter `filter` over the input patch that makes output cells around
    `cell`: a conv lesson with these arrays computes `activation` at `lesson_cell`.

    The lesson takes a one-filter convolution without padding; the layer's own padding is inside
    `x` as the values it pads with (zeros, or a reflection for other padding modes), so the
    lesson's arithmetic is exactly the layer's, for every input channel.
    """

    layer: str
    filter: int
    cell: tuple[int, int]  # (row, column) of the cell in the layer's output
    origin: tuple[int, int]  # the patch's top-left corner in the padded input
    x: np.ndarray  # (C, PH, PW) float64: the padded input patch
    w: np.ndarray  # (C, KH, KW) float64
    b: float
    stride: tuple[int, int]
    lesson_cell: tuple[int, int]  # the cell in the lesson's output
    activation: float  # the network's own output at `cell`
    padded: bool  # whether the patch reaches into the layer's padding


def filter_patch(
    conv: FirstConv,
    filter_index: int,
    cell: tuple[int, int],
    *,
    max_size: int,
    max_channels: int,
    max_kernel: int,
    max_stride: int,
    cells: int = PATCH_CELLS,
) -> FilterPatch:
    """The patch of `conv`'s input under filter `filter_index` at output `cell`, for a lesson of at
    most max_size × max_size inputs and max_channels channels; UsageError when it cannot be exact."""
    import torch
    import torch.nn.functional as F

    f_count, channels, kh, kw = conv.weight.shape
    out_h, out_w = conv.output.shape[1:]
    i, j = cell
    if not 0 <= filter_index < f_count:
        raise UsageError(f"filter {filter_index} does not exist: {conv.name} has {f_count} filters")
    if not (0 <= i < out_h and 0 <= j < out_w):
        raise UsageError(f"cell ({i}, {j}) is outside {conv.name}'s {out_h}×{out_w} output")
    reasons = []
    if conv.groups != 1 or conv.dilation != (1, 1):
        reasons.append("it is a grouped or dilated convolution; the lesson's is neither")
    if channels > max_channels:
        reasons.append(f"it reads {channels} channels; the lesson takes at most {max_channels}")
    if max(kh, kw) > min(max_kernel, max_size) or max(conv.stride) > max_stride:
        reasons.append(f"its {kh}×{kw} kernel or stride {conv.stride} exceeds the lesson's limits")
    if reasons:
        raise UsageError(f"{conv.name} cannot be opened in the lesson exactly: {reasons[0]}")
    sh, sw = conv.stride
    rows = _window(i, out_h, cells, sh, kh, max_size)
    cols = _window(j, out_w, cells, sw, kw, max_size)
    ph, pw = conv.padding
    x = torch.as_tensor(conv.input)[None]
    if ph or pw:
        mode = {"zeros": "constant"}.get(conv.padding_mode, conv.padding_mode)
        x = F.pad(x, (pw, pw, ph, ph), mode=mode)
    top, left = rows[0] * sh, cols[0] * sw
    height, width = (len(rows) - 1) * sh + kh, (len(cols) - 1) * sw + kw
    patch = x[0, :, top : top + height, left : left + width].double().numpy()
    padded_h, padded_w = conv.input.shape[1] + 2 * ph, conv.input.shape[2] + 2 * pw
    touches_padding = (ph or pw) and (
        top < ph or left < pw or top + height > padded_h - ph or left + width > padded_w - pw
    )
    bias = 0.0 if conv.bias is None else float(conv.bias[filter_index])
    return FilterPatch(
        layer=conv.name,
        filter=filter_index,
        cell=(i, j),
        origin=(top, left),
        x=patch,
        w=conv.weight[filter_index].astype(np.float64),
        b=bias,
        stride=(sh, sw),
        lesson_cell=(i - rows[0], j - cols[0]),
        activation=float(conv.output[filter_index, i, j]),
        padded=bool(touches_padding),
    )


def _window(index: int, size: int, cells: int, stride: int, kernel: int, max_input: int) -> range:
    """Up to `cells` output positions around `index` whose input fits in `max_input`."""
    fit = max(1, min(cells, size, (max_input - kernel) // stride + 1))
    start = min(max(0, index - fit // 2), size - fit)
    return range(start, start + fit)


# --- the report for scripts -------------------------------------------------------------------


def report(inspection: Inspection, classes: list[str], source: str) -> dict[str, Any]:
    """The probabilities, the Grad-CAM maps and the per-stage statistics as plain JSON values."""

    def name(index: int | None) -> str | None:
        if index is None:
            return None
        return classes[index] if 0 <= index < len(classes) else str(index)

    def cam(index: int) -> dict[str, Any]:
        values = inspection.cams[index]
        problem = inspection.cam_problems.get(index)
        return {
            "class": name(index),
            "index": index,
            "max": float(values.max()),
            "map": np.round(values, 6).tolist(),  # at the stage's resolution, ReLU'd, unscaled
            "empty": problem is not None,  # all 0, or the same everywhere: it shows no place
            "problem": None if problem is None else problem.kind,
            "reason": None if problem is None else problem.reason,
            "try_layer": None if problem is None else problem.alternative,
        }

    cams = {"predicted": cam(inspection.predicted)}
    if inspection.true is not None:
        cams["true"] = cam(inspection.true)
    stage = inspection.stage(inspection.cam_layer)
    return {
        "image": source,
        "true": name(inspection.true),
        "predicted": name(inspection.predicted),
        "probabilities": {
            # unrounded: 0.9999996 stays below 1 (a reader formats it, `text.confidence`)
            name(i) or str(i): float(p)
            for i, p in enumerate(inspection.probabilities)
        },
        "grad_cam": {
            "layer": inspection.cam_layer,
            "shape": list(stage.shape[1:]),
            "layers": [s.name for s in inspection.stages],  # what --cam-layer takes
            **cams,
        },
        "layers": [s.stats() for s in inspection.stages],
    }


# --- cnn-tui inspect --------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectRequest:
    """Which image to inspect with which run: test image `test_index` of the run's test split
    (None: the first, or the worst mistake on screen) or the file `image`, on `device`."""

    run_dir: Path
    test_index: int | None = None
    image: str | None = None
    device: str = "auto"
    cam_layer: str | None = None  # None: `default_cam_layer`
    trust_model_code: bool = False  # a run of the user's own class: run its copy of the code


@dataclass
class Subject:
    """The image to inspect: pixels, its true class (None for a file) and where it came from."""

    image: np.ndarray
    true: int | None
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InspectReport:
    """What `cnn-tui inspect` reports: the JSON `data` (`report`), notes on reading a file and,
    for a run whose training diverged, which of its weights were used (`RunModel.note`)."""

    data: dict[str, Any]
    notes: list[str]
    weights_note: str | None = None


def subject(run: RunModel, test_index: int | None, image_file: str | None) -> Subject:
    """The image the request names: a file, or test image N (default 0) of the run's test split."""
    from cnn_tui.training.data import image_files
    from cnn_tui.training.tools.run_model import load_test_split

    if image_file is not None:
        try:
            pixels, notes = image_files.read_image(image_file, run.channels, run.image_size)
        except image_files.ImageFileError as exc:
            raise UsageError(f"--image {image_file}: {exc}") from None
        return Subject(pixels, None, image_file, notes)
    images, labels = load_test_split(run)
    index = 0 if test_index is None else test_index
    if not 0 <= index < len(labels):
        raise UsageError(
            f"--test-index {index} is out of range: the test split has {len(labels)} images (0 to {len(labels) - 1})"
        )
    return Subject(images[index], int(labels[index]), f"test image {index}")


def check_request(request: InspectRequest) -> None:
    """The errors that need no model, before anything loads (also before the Inside screen)."""
    if request.test_index is not None and request.test_index < 0:
        raise UsageError(f"--test-index must be 0 or more, got {request.test_index}")
    if request.image is not None:  # (a FIFO would hang, a folder or device is no image)
        check_input_file(request.image, "--image", "give one image file")
    if not request.run_dir.is_dir():
        raise UsageError(f"{request.run_dir} is not a run directory (no such folder)")
    from cnn_tui.training.models import own

    own.check_run(request.run_dir, trusted=request.trust_model_code)


def inspect_run(request: InspectRequest) -> InspectReport:
    """Load the run's model, inspect the image the request names and report on it."""
    from cnn_tui.training.tools.run_model import load_run_model

    check_request(request)
    run = load_run_model(request.run_dir, request.device, request.trust_model_code)
    names = [name for name, _ in stage_modules(run.model)]
    if request.cam_layer is not None and module_name(request.cam_layer) not in names:
        raise UsageError(unknown_layer(request.cam_layer, names))  # before the test split loads
    chosen = subject(run, request.test_index, request.image)
    inspection = inspect_image(run, chosen.image, chosen.true, cam_layer=request.cam_layer)
    return InspectReport(report(inspection, run.classes, chosen.source), chosen.notes, run.note())
