"""Inside a trained network (training/inspect.py): stages, Grad-CAM, the first layer's filters,
and `cnn-tui inspect --no-ui` with its JSON report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from inspect_fixtures import silence_conv, write_model_run

from cnn_tui import cli, text
from cnn_tui.lessons import naive
from cnn_tui.training.tools import inspect
from cnn_tui.training.tools.run_model import load_run_model, load_test_split

LESSON_LIMITS = {"max_size": 16, "max_channels": 4, "max_kernel": 16, "max_stride": 8}


@pytest.fixture(scope="module")
def simple_run(tmp_path_factory):
    return write_model_run(tmp_path_factory.mktemp("inspect") / "simple")


@pytest.fixture(scope="module")
def loaded(simple_run):
    run = load_run_model(simple_run, "cpu")
    images, labels = load_test_split(run)
    return run, images, labels


def reference_grad_cam(run, image, layer: str, cls: int) -> np.ndarray:
    """Grad-CAM computed here from scratch: a forward hook keeps the stage's output, a tensor hook
    its gradient, backward() from the class logit; then ReLU(Σ_k mean(dA_k)·A_k)."""
    kept = {}
    module = dict(run.model.named_modules())[layer]

    def keep(_module, _args, output):
        if "a" not in kept:
            kept["a"] = output
            output.register_hook(lambda grad: kept.setdefault("g", grad))
            return output.clone()  # (an in-place ReLU after a conv must not change the kept A)
        return None

    handle = module.register_forward_hook(keep)
    try:
        x = run.prep(torch.as_tensor(image)[None]).requires_grad_(True)
        run.model(x)[0, cls].backward()
    finally:
        handle.remove()
    weights = kept["g"][0].mean(dim=(1, 2))
    return torch.relu((weights[:, None, None] * kept["a"][0]).sum(0)).detach().numpy()


def test_grad_cam_matches_a_reference_computed_with_hooks(loaded):
    run, images, labels = loaded
    for index in (0, 5):
        result = inspect.inspect_image(run, images[index], int(labels[index]), cam_classes=(7,))
        assert set(result.cams) >= {result.predicted, int(labels[index]), 7}
        for cls, cam in result.cams.items():
            expected = reference_grad_cam(run, images[index], result.cam_layer, cls)
            assert cam.shape == result.stage(result.cam_layer).shape[1:]
            np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-7)
        up = result.cam_image(result.predicted)
        assert up.shape == images[index].shape[1:]
        assert up.max() == pytest.approx(1.0) or up.max() == 0.0


def test_grad_cam_on_a_resnet_block_matches_the_reference(tmp_path):
    run = load_run_model(write_model_run(tmp_path / "resnet", model="resnet18"), "cpu")
    image = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    result = inspect.inspect_image(run, image, 2, cam_layer="layer3.1")
    assert [s.name for s in result.stages][:3] == ["conv1", "maxpool", "layer1.0"]
    assert len(result.stages) == 2 + 8  # the stem, its pool and the eight residual blocks
    np.testing.assert_allclose(
        result.cams[2], reference_grad_cam(run, image, "layer3.1", 2), rtol=1e-4, atol=1e-6
    )


def test_stages_probabilities_and_first_layer_are_the_models_own(loaded):
    run, images, labels = loaded
    result = inspect.inspect_image(run, images[3], int(labels[3]))
    names = [stage.name for stage in result.stages]
    assert names == ["conv_block_1.0", "conv_block_1.2", "conv_block_1.4"]
    assert [s.kind for s in result.stages] == ["conv 3×3", "conv 3×3", "max-pool 2×2"]
    x = run.prep(torch.as_tensor(images[3])[None])
    with torch.no_grad():
        block = run.model.conv_block_1
        first = block[0](x)
        pooled = block(x)
        probabilities = run.model(x).softmax(1)[0].numpy()
    np.testing.assert_allclose(result.stages[0].activation, first[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(result.stages[2].activation, pooled[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(result.probabilities, probabilities, atol=1e-6)
    # inspect computes in fp32 (exact activations); predictions run under the run's autocast
    fp32 = dataclasses.replace(run, amp_dtype=None)
    np.testing.assert_allclose(result.probabilities, fp32.probabilities(images[3:4])[0], atol=1e-6)
    np.testing.assert_allclose(result.probabilities, run.probabilities(images[3:4])[0], atol=2e-3)
    stats = result.stages[2].stats()
    assert stats["shape"] == [4, 16, 16] and stats["min"] >= 0.0  # after ReLU and max-pool
    assert stats["zeros"] == pytest.approx(float(np.mean(pooled.numpy() == 0)))
    conv = result.first_conv
    assert conv.name == "conv_block_1.0" and conv.weight.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(conv.input, x[0].numpy(), atol=1e-7)


@pytest.mark.parametrize("cell", [(0, 0), (13, 20), (31, 31)])
def test_the_lessons_naive_conv_on_a_filter_patch_gives_the_networks_activation(loaded, cell):
    run, images, _ = loaded
    conv = inspect.inspect_image(run, images[1]).first_conv
    patch = inspect.filter_patch(conv, 2, cell, **LESSON_LIMITS)
    assert patch.x.shape[0] == 3  # every input channel: exact, not a one-channel stand-in
    assert patch.x.shape[1] <= 16 and patch.x.shape[2] <= 16
    assert patch.padded == (cell != (13, 20))  # the border cells read the zero padding
    out, _ = naive.conv2d_forward(
        patch.x[None], patch.w[None], np.array([patch.b]), patch.stride, 0
    )
    i, j = patch.lesson_cell
    assert out[0, 0, i, j] == pytest.approx(patch.activation, abs=1e-5)
    assert patch.activation == pytest.approx(float(conv.output[2, cell[0], cell[1]]))


def test_a_strided_7x7_stem_also_fits_the_lesson_exactly(tmp_path):
    run = load_run_model(write_model_run(tmp_path / "r18", model="resnet18"), "cpu")
    image = np.random.default_rng(2).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    conv = inspect.inspect_image(run, image).first_conv
    patch = inspect.filter_patch(conv, 5, (7, 3), **LESSON_LIMITS)
    assert patch.stride == (2, 2) and patch.w.shape == (3, 7, 7) and patch.b == 0.0
    out, _ = naive.conv2d_forward(patch.x[None], patch.w[None], np.array([0.0]), patch.stride, 0)
    assert out[0, 0][patch.lesson_cell] == pytest.approx(patch.activation, abs=1e-5)
    with pytest.raises(inspect.UsageError, match="reads 3 channels; the lesson takes at most 2"):
        inspect.filter_patch(conv, 5, (7, 3), **{**LESSON_LIMITS, "max_channels": 2})
    with pytest.raises(inspect.UsageError, match="outside"):
        inspect.filter_patch(conv, 5, (16, 0), **LESSON_LIMITS)


def test_inspect_no_ui_writes_the_json_report(simple_run, tmp_path, capsys):
    report = tmp_path / "inside.json"
    code = cli.main(["inspect", str(simple_run), "--no-ui", "--test-index", "4", "--device", "cpu",
                     "--json", str(report)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("test image 4 · true ") and "Grad-CAM at conv_block_1.2" in out
    data = json.loads(report.read_text())
    assert sum(data["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert data["predicted"] == max(data["probabilities"], key=data["probabilities"].get)
    cam = data["grad_cam"]
    assert cam["layer"] == "conv_block_1.2" and cam["shape"] == [
        32,
        32,
    ]  # (the conv before the pool)
    assert np.array(cam["predicted"]["map"]).shape == (32, 32)
    assert cam["true"]["class"] == data["true"]
    assert [layer["name"] for layer in data["layers"]] == [
        "conv_block_1.0", "conv_block_1.2", "conv_block_1.4",
    ]  # fmt: skip
    assert len(data["layers"][0]["channel_means"]) == 4


def test_inspect_an_image_file(simple_run, tmp_path, capsys):
    from PIL import Image

    Image.new("LA", (50, 40), (120, 200)).save(tmp_path / "grey.png")
    assert cli.main(["inspect", str(simple_run), "--no-ui", "--image", str(tmp_path / "grey.png"),
                     "--device", "cpu", "--json", "-"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["true"] is None and "true" not in data["grad_cam"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--test-index", "5000"], "--test-index 5000 is out of range: the test split has"),
        (["--test-index", "-1"], "--test-index: expected 0 to 999999999, got -1"),  # (argparse)
        (["--image", "nothere.png"], "--image nothere.png: no such file"),
    ],
)
def test_bad_inspect_input_is_one_line_and_exit_2(simple_run, capsys, extra, message):
    try:
        code = cli.main(["inspect", str(simple_run), "--no-ui", "--device", "cpu", *extra])
    except SystemExit as exc:  # a flag out of its bounds: argparse's usage error
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_inspect_of_a_folder_that_is_no_run(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path), "--no-ui"]) == 2
    assert "is not a run directory" in capsys.readouterr().err


# --- Grad-CAM's layer: the default, --cam-layer, and maps that say nothing ---------------------


def test_the_default_layer_is_the_convolution_before_the_pool_and_shows_where(tmp_path):
    """On a trained SimpleCNN the pooled ReLU output before the linear head gives empty maps on
    most images (docs/inside.md); the default, the conv before that pool, gives a map."""
    from inspect_fixtures import train_run

    run = load_run_model(train_run(tmp_path / "trained", hidden_units=6), "cpu")
    images, labels = load_test_split(run)
    shown = 0
    for index in range(20):
        result = inspect.inspect_image(run, images[index], int(labels[index]))
        assert result.cam_layer == "conv_block_1.2"
        cam = result.cams[result.predicted]
        if result.predicted not in result.cam_problems:
            assert cam.max() > 0 and cam.max() > cam.min()
            shown += 1
    assert shown >= 15


def test_an_empty_map_is_reported_with_its_reason_and_a_layer_to_try(tmp_path, capsys):
    run_dir = silence_conv(write_model_run(tmp_path / "dead"), "conv_block_1.2")
    code = cli.main(["inspect", str(run_dir), "--no-ui", "--device", "cpu", "--json", "-",
                     "--cam-layer", "conv_block_1.4"])  # fmt: skip
    assert code == 0
    cam = json.loads(capsys.readouterr().out)["grad_cam"]
    assert cam["layer"] == "conv_block_1.4"
    assert cam["layers"] == ["conv_block_1.0", "conv_block_1.2", "conv_block_1.4"]
    predicted = cam["predicted"]
    assert predicted["empty"] and predicted["problem"] == "no-activations"
    assert "every unit of conv_block_1.4 is 0" in predicted["reason"]
    assert predicted["try_layer"] == "conv_block_1.2" and predicted["max"] == 0.0
    # the default layer: the dead conv's own output is -1 everywhere, no gradient passes its ReLU
    assert cli.main(["inspect", str(run_dir), "--no-ui", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Grad-CAM at conv_block_1.2 (32×32):" in out
    assert "EMPTY: the class score does not change with conv_block_1.2" in out
    assert "try another layer: --cam-layer conv_block_1.0" in out
    assert "strongest at" not in out


def test_a_map_that_is_the_same_everywhere_is_said_to_be_flat():
    stages = [inspect.Stage("a", "conv 3×3", np.ones((2, 4, 4), np.float32))]
    flat = inspect.cam_problem(
        "a", np.ones((2, 4, 4)), np.ones((2, 4, 4)), np.full((4, 4), 0.5), stages
    )
    assert flat.kind == "constant" and "the same everywhere at a (4×4)" in flat.reason
    assert flat.alternative is None  # (no other stage)
    fine = np.arange(16.0).reshape(4, 4)
    assert inspect.cam_problem("a", np.ones((2, 4, 4)), np.ones((2, 4, 4)), fine, stages) is None
    negative = inspect.cam_problem(
        "a", np.ones((2, 4, 4)), -np.ones((2, 4, 4)), np.zeros((4, 4)), stages
    )
    assert negative.kind == "negative"


def test_cam_layer_flag_picks_the_layer_and_a_bad_name_lists_the_good_ones(simple_run, capsys):
    assert cli.main(["inspect", str(simple_run), "--no-ui", "--device", "cpu", "--json", "-",
                     "--cam-layer", "conv_block_1.0"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["grad_cam"]["layer"] == "conv_block_1.0" and data["grad_cam"]["shape"] == [32, 32]
    code = cli.main(["inspect", str(simple_run), "--no-ui", "--device", "cpu",
                     "--cam-layer", "classifier.1"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "--cam-layer classifier.1: no such layer; choose one of: conv_block_1.0, "
        "conv_block_1.2, conv_block_1.4"
    )
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("p", "digits", "shown"),
    [(0.9997, 2, "99.97%"), (0.9997, 1, ">99.9%"), (0.99996, 2, ">99.99%"), (0.996, 0, ">99%"),
     (1.0, 1, "100.0%"), (0.5, 1, "50.0%"), (3e-5, 2, "<0.01%"), (0.0, 1, "0.0%"),
     (float("nan"), 1, "-")],
)  # fmt: skip
def test_a_confidence_never_rounds_up_to_certainty(p, digits, shown):
    assert text.confidence(p, digits) == shown
