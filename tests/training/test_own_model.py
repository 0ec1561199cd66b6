"""Your own model (issue 26, item 2): `--model FILE.py:Class` and `--model package.module:Class`.

- its spelling is checked without reading anything; a file's path is kept absolute;
- every problem in the file is one line naming the file and line, exit 2, no run folder made;
- the class is built with the keywords its __init__ takes (the lecture's SimpleCNN/CustomCNN);
- the dry forward leaves the seeded random stream, the training flags and BatchNorm alone;
- a run keeps a copy of the code and its sha256; eval, inspect, predict, export and --resume
  refuse to run it without --trust-model-code (nothing of the file runs: it would leave a
  marker), run the run's COPY with it, and refuse a copy changed since;
- Inside and Grad-CAM find the convolutions of the shipped THE3 example, a reused pool per call.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnn_tui import catalog
from cnn_tui.assets import asset_path
from cnn_tui.cli import main
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.models import own
from cnn_tui.training.runs import store as runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--dataset", "shapes", "--limit", "60", "--epochs", "1", "--batch-size", "32"]
HEADER = "import torch\nfrom torch import nn\n"
GOOD_BODY = """
class Net(nn.Module):
    def __init__(self, in_channels, num_classes, hidden_units=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden_units, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(hidden_units, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))
"""


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *parts: str) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("cnn-tui: error: "), err
    for part in parts:
        assert part in err, (part, err)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# --- spelling ---------------------------------------------------------------------------------


def test_parse_model_spells_own_classes_without_reading_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = catalog.parse_model("models/net.py:Net")
    assert (spec.source, spec.location, spec.name, spec.label) == (
        catalog.OWN_FILE,
        "models/net.py",
        "Net",
        "net.py:Net",
    )
    assert catalog.parse_model("mypkg.nets:Net").source == catalog.OWN_MODULE
    assert catalog.parse_model("torchvision:resnet18").zoo
    assert not catalog.is_pretrained("net.py:Net")
    for bad, reason in (
        ("net.py", "name the class"),
        ("net.py:1x", "not a class name"),
        ("models/net.txt:Net", "not a Python file"),
    ):
        with pytest.raises(ValueError, match=reason):
            catalog.parse_model(bad)
    # kept absolute (a run's ranks, a resume from elsewhere), ~ expanded
    config = TrainConfig.from_mapping({"model": "models/net.py:Net"})
    assert config.model == f"{tmp_path}/models/net.py:Net"
    home = TrainConfig.from_mapping({"model": "~/net.py:Net"}).model
    assert home == f"{Path.home()}/net.py:Net"


def test_finetune_and_weights_are_refused_for_an_own_model():
    with pytest.raises(UsageError, match="--finetune head applies to pretrained models only"):
        TrainConfig.from_mapping({"model": "/x/net.py:Net", "finetune": "head"})
    with pytest.raises(UsageError, match="--weights applies to pretrained models only"):
        TrainConfig.from_mapping({"model": "/x/net.py:Net", "weights": "imagenet"})


# --- errors in the file: one line with the file and line ---------------------------------------

ERRORS = {
    "syntax": ("class Net(nn.Module)\n    pass\n", "bad.py:3: syntax error"),
    "import": ("x = 1\nraise RuntimeError('boom\\x1b[2J')\n", "bad.py:4: at import: RuntimeError"),
    "missing": ("class Other(nn.Module):\n    pass\n", "bad.py: no class Net (it defines"),
    "not-module": ("class Net:\n    pass\n", "bad.py:3: Net is a class, not a subclass"),
    "required": (
        """
class Net(nn.Module):
    def __init__(self, num_classes, depth):
        super().__init__()
""",
        "bad.py:5: Net.__init__ needs depth, which cnn-tui cannot fill",
    ),
    "outputs": (
        GOOD_BODY.replace("nn.Linear(hidden_units, num_classes)", "nn.Linear(hidden_units, 7)"),
        "bad.py:4: Net outputs 2×7 for 2 images, expected 2×10",
    ),
    "channels": (
        GOOD_BODY.replace("nn.Conv2d(in_channels,", "nn.Conv2d(1,"),
        "bad.py:12: Net expects 1-channel images; shapes' images have 3 channels",
    ),
    "forward": (
        """
class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()

    def forward(self, x):
        return self.helper(x)

    def helper(self, x):
        raise ValueError("no")
""",
        "bad.py:12: Net.forward raised ValueError: no",
    ),
    "no-super": (
        "class Net(nn.Module):\n    def __init__(self):\n        self.fc = nn.Linear(2, 2)\n",
        "bad.py:5: Net() raised: AttributeError: cannot assign module before Module.__init__() "
        "call (call super().__init__() first in __init__)",
    ),
    "not-tensor": (
        """
class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.LazyLinear(num_classes)

    def forward(self, x):
        return {"logits": self.fc(x.flatten(1))}
""",
        "bad.py:9: Net.forward returns a dict, not a tensor of logits",
    ),
}


@pytest.mark.parametrize("kind", ERRORS)
def test_a_bad_model_file_is_one_line_with_file_and_line(capsys, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    body, expected = ERRORS[kind]
    write(tmp_path / "bad.py", HEADER + body)
    code, _, err = cli(
        capsys, "train", "--no-ui", "--model", "bad.py:Net", *TINY, "--run-dir", "run"
    )
    assert code == 2
    one_line(err, expected)
    assert "\x1b" not in err  # the file's text reaches the terminal escaped
    assert not (tmp_path / "run").exists()  # refused before a run folder is made


# --- building -----------------------------------------------------------------------------------


def source_of(tmp_path: Path, body: str, name: str) -> own.Source:
    path = write(tmp_path / f"{name.lower()}.py", HEADER + body)
    return own.read_source(f"{path}:{name}")


def test_lecture_classes_are_built_with_the_keywords_their_init_takes(tmp_path):
    lecture = """
class SimpleCNN(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.conv = nn.Conv2d(input_shape, hidden_units, 3, padding=1)
        self.fc = nn.Linear(hidden_units * 32 * 32, output_shape)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class CustomCNN(nn.Module):
    def __init__(self, input_shape: int, output_shape: int, img_size=28, *, dropout=0.5):
        super().__init__()
        self.conv = nn.Conv2d(input_shape, 8, 3, padding=1)
        self.fc = nn.Linear(8 * img_size * img_size, output_shape)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
"""
    path = write(tmp_path / "lecture.py", HEADER + lecture)
    sizes = own.Sizes(channels=3, classes=10, image_size=32, hidden_units=5, dataset="shapes")
    for name, expected in (
        ("SimpleCNN", {"input_shape": 3, "hidden_units": 5, "output_shape": 10}),
        ("CustomCNN", {"input_shape": 3, "output_shape": 10, "img_size": 32}),
    ):
        source = own.read_source(f"{path}:{name}")
        cls = own.load_class(source)
        assert own.constructor_arguments(cls, source, sizes) == expected
        model = own.build(source, sizes)
        assert type(model).__name__ == name and own.source_of(model) is source


def test_the_dry_forward_leaves_the_random_stream_and_batchnorm_alone(tmp_path):
    body = """
class Net(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        torch.rand(1)  # a forward that draws from the global stream
        x = self.drop(self.bn(self.conv(x) + 1.0)).mean((2, 3))
        return self.fc(x)
"""
    source = source_of(tmp_path, body, "Net")
    sizes = own.Sizes(3, 10, 32)
    torch.manual_seed(0)
    model = own.build(source, sizes)
    after_build = torch.rand(3)
    torch.manual_seed(0)
    model_again = own.load_class(source)(3, 10)  # the same construction, no dry forward
    assert torch.equal(after_build, torch.rand(3))  # the stream continues as without it
    assert torch.equal(model.conv.weight, model_again.conv.weight)
    assert model.training and model.bn.training
    assert int(model.bn.num_batches_tracked) == 0
    assert torch.equal(model.bn.running_mean, torch.zeros(4))


def test_the_model_a_runs_check_built_is_the_one_the_run_builds(tmp_path):
    """`check_before_run` with the run's seed builds the class as the run would (`setup.prepare`:
    seeded, then `build`) and hands that model to the run's build: the same weights and the same
    random stream after it as a fresh build, taken once, only for the same code, sizes and
    seed, and only by the next build (one that does not take it lets it go: a kept model is
    never held for a whole run); the check leaves the stream as it was."""
    path = write(tmp_path / "net.py", HEADER + GOOD_BODY)
    model, sizes = f"{path}:Net", own.Sizes(3, 10, 32, 4, "shapes")
    torch.manual_seed(123)
    stream = torch.rand(2)
    torch.manual_seed(123)
    checked = own.check_before_run(model, sizes, seed=7)
    assert torch.equal(torch.rand(2), stream)  # the stream as it was
    source = own.read_source(model)
    torch.manual_seed(8)
    assert own.build(source, sizes) is not checked  # another seed: built anew
    torch.manual_seed(7)
    assert own.build(source, sizes) is not checked  # (let go by the build before)
    checked = own.check_before_run(model, sizes, seed=7)
    torch.manual_seed(7)
    assert own.build(source, own.Sizes(1, 10, 32, 4, "fashion-mnist")) is not checked
    checked = own.check_before_run(model, sizes, seed=7)
    torch.manual_seed(7)
    taken = own.build(source, sizes)
    after_taken = torch.rand(3)
    torch.manual_seed(7)
    fresh = own.build(source, sizes)  # (taken once: built anew)
    assert taken is checked and fresh is not checked
    assert torch.equal(after_taken, torch.rand(3))
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, taken.state_dict()[key]), key
    own.check_before_run(model, sizes, seed=7)
    own.drop_kept()
    torch.manual_seed(7)
    assert own.build(source, sizes) is not checked


def test_train_builds_your_class_once_and_still_checks_it_first(capsys, tmp_path, monkeypatch):
    """`train --model file.py:Class` (and its --resume) constructs the class once: the check
    before the run folder is made builds the model the run trains."""
    monkeypatch.chdir(tmp_path)
    builds = tmp_path / "builds.txt"
    monkeypatch.setenv("OWN_MODEL_BUILDS", str(builds))
    counted = GOOD_BODY.replace(
        "        super().__init__()\n",
        "        super().__init__()\n"
        "        with open(os.environ['OWN_MODEL_BUILDS'], 'a') as handle:\n"
        "            handle.write('built\\n')\n",
        1,
    )
    write(tmp_path / "net.py", "import os\n" + HEADER + counted)
    code, _, err = cli(capsys, "train", "--no-ui", "--model", "net.py:Net", *TINY, "--run-dir", "r")
    assert code == 0, err
    assert builds.read_text().count("built") == 1
    builds.unlink()
    argv = ["train", "--no-ui", "--resume", "r", "--trust-model-code", "--epochs", "2"]
    code, _, err = cli(capsys, *argv)
    assert code == 0, err
    assert builds.read_text().count("built") == 1


# --- a run of your own model: the copy, its hash, and trust -------------------------------------

MARKED = (
    """
import os
import torch
from torch import nn

# what ran, and from which file: a test reads this to know whether (and which) code ran
with open(os.environ["OWN_MODEL_MARKER"], "a") as handle:
    handle.write(__file__ + "\\n")
"""
    + GOOD_BODY
)


@pytest.fixture(scope="module")
def marked_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(run folder, the model's file, the marker file) of one run of a file that leaves a
    marker whenever it runs."""
    root = tmp_path_factory.mktemp("own")
    marker = root / "ran.txt"
    model = write(root / "marked_net.py", MARKED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OWN_MODEL_MARKER", str(marker))
        code = main(
            ["train", "--no-ui", "--model", f"{model}:Net", *TINY, "--run-dir", str(root / "run")]
        )
    assert code == 0
    return root / "run", model, marker


def test_a_run_keeps_a_copy_of_the_code_and_its_hash(marked_run):
    run, model, _ = marked_run
    assert (run / runs.MODEL_SOURCE_FILE).read_bytes() == model.read_bytes()
    record = json.loads((run / runs.MODEL_SOURCE_RECORD).read_text())
    assert record["sha256"] == own.Source("", "Net", str(model), model.read_bytes()).sha256
    assert record["origin"] == str(model) and record["class"] == "Net"
    assert runs.read_config(run).model == f"{model}:Net"


def tool_commands(run: Path, tmp_path: Path) -> dict[str, list[str]]:
    image = tmp_path / "red.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    return {
        "eval": ["eval", "--no-ui", str(run)],
        "inspect": ["inspect", "--no-ui", str(run)],
        "predict": ["predict", str(run), str(image)],
        "export": [
            "export",
            str(run),
            "--format",
            "torchscript",
            "-o",
            str(tmp_path / "m.pt"),
            "--force",
        ],
        "resume": ["train", "--no-ui", "--resume", str(run), "--epochs", "2"],
    }


def test_the_tui_commands_refuse_before_the_app_opens(capsys, tmp_path, marked_run, monkeypatch):
    run, _, marker = marked_run
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    marker.unlink(missing_ok=True)
    for argv in (["eval", str(run)], ["inspect", str(run)], ["train", "--resume", str(run)]):
        code, _, err = cli(capsys, *argv)
        assert code == 2, argv
        one_line(err, "never runs code by itself", "--trust-model-code")
    assert not marker.exists()


def test_a_run_folder_never_runs_its_code_without_trust(capsys, tmp_path, marked_run, monkeypatch):
    run, _, marker = marked_run
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    marker.unlink(missing_ok=True)
    for name, argv in tool_commands(run, tmp_path).items():
        code, _, err = cli(capsys, *argv)
        assert code == 2, name
        one_line(err, "never runs code by itself", "--trust-model-code", "model_source.py")
        assert not marker.exists(), name  # nothing of the file ran


def test_trusted_tools_run_the_runs_copy(capsys, tmp_path, marked_run, monkeypatch):
    run, model, marker = marked_run
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    own._LOADED.clear()  # (this process ran the original already)
    model_text = model.read_text()
    model.write_text(model_text.replace("hidden_units=4", "hidden_units=9"))  # changed since
    try:
        for name, argv in tool_commands(run, tmp_path).items():
            marker.unlink(missing_ok=True)
            own._LOADED.clear()
            code, _, err = cli(capsys, *argv, "--trust-model-code")
            assert code == 0, (name, err)
            ran = marker.read_text().split()
            assert ran == [str((run / runs.MODEL_SOURCE_FILE).absolute())], name
    finally:
        model.write_text(model_text)


def test_a_changed_copy_is_refused_even_with_trust(capsys, tmp_path, marked_run, monkeypatch):
    run, _, marker = marked_run
    copy = tmp_path / "run"
    copy.mkdir()
    for path in run.iterdir():
        if path.is_file() and path.name != runs.LOCK_FILE:
            (copy / path.name).write_bytes(path.read_bytes())
    (copy / runs.MODEL_SOURCE_FILE).write_text(MARKED + "\nprint('hello')\n")
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    marker.unlink(missing_ok=True)
    code, _, err = cli(capsys, "inspect", "--no-ui", str(copy), "--trust-model-code")
    assert code == 2
    one_line(err, "has changed since the run was trained", "refused even with")
    (copy / runs.MODEL_SOURCE_FILE).unlink()  # a link to elsewhere is no copy either
    (copy / runs.MODEL_SOURCE_FILE).symlink_to(run / runs.MODEL_SOURCE_FILE)
    code, _, err = cli(capsys, "inspect", "--no-ui", str(copy), "--trust-model-code")
    assert code == 2
    one_line(err, "model_source.py is missing or not a file")
    assert not marker.exists()


# --- package.module:Class -----------------------------------------------------------------------


def test_a_module_class_trains_and_its_module_file_is_kept(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    package = tmp_path / "ownpkg_t26"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(
        package / "blocks.py",
        HEADER + "def block(c_in, c_out):\n    return nn.Conv2d(c_in, c_out, 3)\n",
    )
    nets = write(
        package / "nets.py",
        HEADER
        + "from .blocks import block\n"
        + GOOD_BODY.replace(
            "nn.Conv2d(in_channels, hidden_units, 3, padding=1)", "block(in_channels, hidden_units)"
        ),
    )
    code, _, err = cli(
        capsys, "train", "--no-ui", "--model", "ownpkg_t26.nets:Net", *TINY, "--run-dir", "run"
    )
    assert code == 0, err
    run = tmp_path / "run"
    assert (run / runs.MODEL_SOURCE_FILE).read_bytes() == nets.read_bytes()
    assert json.loads((run / runs.MODEL_SOURCE_RECORD).read_text())["module"] == "ownpkg_t26.nets"
    own._LOADED.clear()  # the copy runs with its package's relative imports
    code, out, err = cli(capsys, "inspect", "--no-ui", "run", "--trust-model-code")
    assert code == 0, err
    code, _, err = cli(capsys, "train", "--no-ui", "--model", "nopkg_t26.nets:Net", *TINY)
    assert code == 2
    one_line(err, "no module named nopkg_t26 can be imported")
    for name in [n for n in sys.modules if n.startswith("ownpkg_t26")]:
        monkeypatch.delitem(sys.modules, name)


# --- the shipped example: trains, and Inside finds its convolutions -----------------------------


def test_the_the3_example_trains_and_inside_finds_its_convolutions(capsys, tmp_path):
    example = asset_path("examples", "the3_student_cnn.py")
    run = tmp_path / "run"
    code, _, err = cli(
        capsys,
        "train",
        "--no-ui",
        "--model",
        f"{example}:StudentCNN",
        *TINY,
        "--run-dir",
        str(run),
    )
    assert code == 0, err
    code, out, err = cli(
        capsys, "inspect", "--no-ui", str(run), "--trust-model-code", "--json", "-"
    )
    assert code == 0, err
    report = json.loads(out)
    stages = [stage["name"] for stage in report["layers"]]
    # one self.pool after each conv: a stage per call
    assert stages == ["conv1", "pool", "conv2", "pool#2", "conv3", "pool#3"]
    assert report["grad_cam"]["layer"] == "conv3"  # the last convolution


# --- sweeps, config files -----------------------------------------------------------------------


def test_a_sweep_of_own_code_is_resumed_only_when_trusted(tmp_path):
    from cnn_tui.training.runs import sweeps

    manifest = {
        "base": {"model": "simple-cnn"},
        "grid": {"model": ["simple-cnn", "/x/net.py:Net"]},
        "runs": [{"overrides": {"model": "/x/net.py:Net", "lr": 0.1}}],
    }
    assert sweeps.own_models(manifest) == ["/x/net.py:Net"]
    with pytest.raises(UsageError, match="never runs code by itself.*--trust-model-code"):
        sweeps.check_trusted(tmp_path, manifest, trusted=False)
    sweeps.check_trusted(tmp_path, manifest, trusted=True)
    assert sweeps.own_models({"base": {"model": "simple-cnn"}, "runs": []}) == []
    assert "--trust-model-code" in sweeps.runner_command(tmp_path, ["cpu"], trust_model_code=True)


def test_a_grid_and_a_search_space_take_your_own_class(tmp_path, monkeypatch):
    from cnn_tui.training.runs import search, sweeps

    monkeypatch.chdir(tmp_path)
    models = ["simple-cnn", f"{tmp_path}/net.py:Net", "torchvision:resnet18"]
    spec = "model=simple-cnn,net.py:Net,torchvision:resnet18"
    assert sweeps.parse_grid([spec]) == {"model": models}
    assert search.parse_space([spec])["model"].choices == tuple(models)


def test_a_config_file_names_your_own_class_relative_to_the_current_folder(tmp_path, monkeypatch):
    from cnn_tui.training.config import load_config_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "the3.toml").write_text('model = "nets/the3_student_cnn.py:StudentCNN"\n')
    config = load_config_file(tmp_path / "the3.toml")
    assert config.model == f"{tmp_path}/nets/the3_student_cnn.py:StudentCNN"


def test_a_runs_copy_runs_as_the_module_it_came_from(tmp_path, monkeypatch):
    """A package's module (relative imports) and a package's __init__ (re-exports) run as
    themselves: from the folder they trained in; elsewhere, one line says what to do."""
    project = tmp_path / "project"
    package = project / "ownfix_pkg"
    package.mkdir(parents=True)
    write(package / "__init__.py", "from .nets import Net\n")
    write(
        package / "blocks.py",
        HEADER + "def block(c_in, c_out):\n    return nn.Conv2d(c_in, c_out, 3)\n",
    )
    write(package / "nets.py", HEADER + "from .blocks import block\n" + GOOD_BODY)
    (tmp_path / "elsewhere").mkdir()

    def fresh(folder: Path) -> None:  # a new process started in `folder` (the console script)
        monkeypatch.chdir(folder)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(project))])
        for name in [n for n in sys.modules if n.startswith("ownfix_pkg")]:
            monkeypatch.delitem(sys.modules, name)
        own._LOADED.clear()

    fresh(project)
    assert own.load_class(own.read_source("ownfix_pkg:Net")).__name__ == "Net"
    for model in ("ownfix_pkg:Net", "ownfix_pkg.nets:Net"):
        fresh(project)
        run = tmp_path / model.replace(":", "-")
        run.mkdir()
        own.keep_copy(run, own.read_source(model))
        fresh(project)
        source = own.run_source(run, model, trusted=True)
        assert own.load_class(source).__name__ == "Net", model
        fresh(tmp_path / "elsewhere")
        with pytest.raises(UsageError) as error:
            own.load_class(own.run_source(run, model, trusted=True))
        assert "that holds ownfix_pkg (" in str(error.value)
        assert "the run keeps only this one file" in str(error.value)
        assert f"({project} when it trained)" in str(error.value)
    # a file that imports its neighbour, named by its path: the module form is the way
    write(project / "sib.py", HEADER + "from ownfix_sibling import block\n" + GOOD_BODY)
    write(project / "ownfix_sibling.py", "block = None\n")
    fresh(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="from its folder, --model sib:Net"):
        own.load_class(own.read_source(f"{project}/sib.py:Net"))


def test_a_resume_whose_copy_cannot_build_leaves_the_run_as_it_was(capsys, tmp_path):
    model = write(
        tmp_path / "gone.py", HEADER + "from ownfix_gone_neighbour import x\n" + GOOD_BODY
    )
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig.from_mapping({"model": f"{model}:Net", "dataset": "shapes"})
    runs.write_config(run, config)
    own.keep_copy(run, own.Source(config.model, "Net", str(model), model.read_bytes()))
    status = '{"status": "finished", "epoch": 1, "epochs": 1}'
    (run / runs.STATUS_FILE).write_text(status)
    code, _, err = cli(capsys, "train", "--no-ui", "--resume", str(run), "--trust-model-code")
    assert code == 2
    one_line(err, "No module named 'ownfix_gone_neighbour'")
    assert (run / runs.STATUS_FILE).read_text() == status
    assert not (run / runs.OUTPUT_LOG).exists()


def test_a_class_without_parameters_is_refused_and_probabilities_are_warned(tmp_path):
    empty = (
        "class Net(nn.Module):\n    def forward(self, x):\n        return torch.zeros(len(x), 10)\n"
    )
    with pytest.raises(UsageError, match="net.py:3: Net has no trainable parameters"):
        own.build(source_of(tmp_path, empty, "Net"), own.Sizes(3, 10, 32))
    softmax = GOOD_BODY.replace("return self.fc(", "return torch.softmax(self.fc(").replace(
        "1))\n", "1)), 1)\n"
    )
    model = own.build(source_of(tmp_path, softmax, "Net"), own.Sizes(3, 10, 32))
    assert "forward returns probabilities" in own.warning_of(model)
    assert (
        own.warning_of(own.build(source_of(tmp_path, GOOD_BODY, "Net"), own.Sizes(3, 10, 32)))
        is None
    )


def test_a_sweep_checks_every_own_model_before_its_folder_is_made(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.py", HEADER + ERRORS["not-tensor"][0])
    for argv in (
        ["--model", "bad.py:Net", "--grid", "lr=0.1,0.01"],
        ["--grid", "model=simple-cnn,bad.py:Net"],
    ):
        code, _, err = cli(
            capsys, "sweep", "--no-ui", *argv, "--dataset", "shapes", "--runs-dir", "sw"
        )
        assert code == 2, argv
        one_line(err, "bad.py:9: Net.forward returns a dict")
        assert not (tmp_path / "sw").exists()


def test_a_sweep_plan_names_each_build_of_your_own_classes(tmp_path, monkeypatch):
    """What a grid or a search space builds of your own classes, once per distinct build (the
    model, data set, image size and hidden units it is built for), nothing run or read."""
    from cnn_tui.training.runs import search, sweeps

    monkeypatch.chdir(tmp_path)
    a, b = f"{tmp_path}/a.py:Net", f"{tmp_path}/b.py:Net"
    grid = sweeps.parse_grid(["model=simple-cnn,a.py:Net,b.py:Net", "lr=0.1,0.01"])
    plan = sweeps.make_plan(TrainConfig(), grid, devices=[])
    assert [(c.config.model, c.runs) for c in plan.model_checks()] == [(a, ""), (b, "")]
    assert plan.model_checks()[0].problem("a.py:3: at import") == "a.py:3: at import"
    base = TrainConfig.from_mapping({"model": "a.py:Net"})
    grid = sweeps.parse_grid(["dataset=shapes,fashion-mnist", "hidden-units=4,8"])
    checks = sweeps.make_plan(base, grid, devices=[]).model_checks()
    assert [c.runs for c in checks] == [
        "the runs with dataset=shapes hidden-units=4",
        "the runs with dataset=shapes hidden-units=8",
        "the runs with dataset=fashion-mnist hidden-units=4",
        "the runs with dataset=fashion-mnist hidden-units=8",
    ]
    assert checks[3].problem("x") == "the runs with dataset=fashion-mnist hidden-units=8: x"
    assert sweeps.make_plan(TrainConfig(), grid, devices=[]).model_checks() == []
    # a search: every choice of the model and data set, each end of a range
    space = search.parse_space(
        ["model=simple-cnn,a.py:Net", "hidden-units=int:4:64", "lr=log:1e-4:1e-1"]
    )
    checks = search.make_search_plan(TrainConfig(), space, 5, devices=[]).model_checks()
    assert [(c.config.model, c.config.hidden_units, c.runs) for c in checks] == [
        (a, 4, "the trials with hidden-units=4"),
        (a, 64, "the trials with hidden-units=64"),
    ]


def test_a_sweep_checks_each_data_set_its_grid_or_space_builds_your_class_for(
    capsys, tmp_path, monkeypatch
):
    """A class built for 3-channel images only: a grid or a search over the data set is
    refused for Fashion-MNIST's 1-channel images, naming the runs, before anything is made."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "rgb.py", HEADER + GOOD_BODY.replace("nn.Conv2d(in_channels,", "nn.Conv2d(3,"))
    searching = ["--search", "optuna", "--space", "dataset=shapes,fashion-mnist", "--trials", "2"]
    for argv, what in ((["--grid", "dataset=shapes,fashion-mnist"], "runs"), (searching, "trials")):
        code, _, err = cli(
            capsys, "sweep", "--no-ui", "--model", "rgb.py:Net", *argv, "--runs-dir", "sw"
        )
        assert code == 2, argv
        one_line(
            err,
            f"the {what} with dataset=fashion-mnist: rgb.py:12: Net expects 3-channel images; "
            "fashion-mnist's images have 1 channel",
        )
        assert not (tmp_path / "sw").exists()


def test_what_the_model_prints_never_breaks_json_on_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printing = GOOD_BODY.replace(
        "        super().__init__()\n", "        super().__init__()\n        print('built')\n", 1
    )
    printing = printing.replace(
        "    def forward(self, x):\n", "    def forward(self, x):\n        print('forward')\n"
    )
    write(tmp_path / "loud.py", HEADER + "print('imported')\n" + printing)
    code, out, err = cli(
        capsys, "train", "--no-ui", "--json", "--model", "loud.py:Net", *TINY, "--run-dir", "run"
    )
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()]  # every line JSON
    assert "imported" in err and "built" in err and "forward" in err
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    code, out, err = cli(capsys, "predict", "run", "red.png", "--json", "--trust-model-code")
    assert code == 0, err
    assert json.loads(out) and "forward" in err


def test_messages_name_where_the_model_was_named_and_what_runs(capsys, tmp_path, monkeypatch):
    from cnn_tui.commands.train_report import started_lines

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.toml").write_text('model = "gone/net.py:Net"\ndataset = "shapes"\n')
    code, _, err = cli(capsys, "train", "--no-ui", "--config", "cfg.toml", "--run-dir", "run")
    assert code == 2
    one_line(err, "error: cfg.toml: model: gone/net.py: no such file")
    event = {
        "config": {"model": "/x/net.py:Net", "dataset": "shapes", "optimizer": "adam"}
        | {"lr": 0.1, "batch_size": 8},
        "parameters": {"total": 10, "trainable": 10},
        "device": "cpu",
        "device_name": "cpu",
        "n_train": 1,
        "n_val": 1,
        "n_test": 1,
        "classes": ["a", "b"],
        "batches_per_epoch": 1,
        "resumed": True,
        "start_epoch": 2,
    }
    model_line = started_lines(event)[2]
    assert model_line.startswith("model: Net from the run's copy model_source.py (trained as /x/")
