"""The user's own network: `--model path/to/file.py:Class` or `--model package.module:Class`.

A student's `nn.Module` class (THE3's CNN, the lecture's TinyVGG) trains like any model here.
What happens to it, in order:

- `read_source`: the bytes of its file (a module's: where `importlib` finds it, its parent
  packages imported to get there) are read once; those very bytes are what runs (`load_class`),
  what the run keeps (RUN/model_source.py) and what their sha256 is of, so the copy is exactly
  the code that trained;
- `load_class`: the bytes compiled under the file's own name (tracebacks and messages point
  into it), run as a fresh module — for `module:Class` as that very module (its dotted name,
  `__package__`, a package's `__path__`; the current folder on `sys.path` last, `cwd_on_path`),
  so a run's copy imports its siblings as the original did — the class looked up and checked to
  be an `nn.Module`;
- `build`: the class constructed with the keywords its `__init__` takes among `ALIASES` (the
  data set's channels, classes and image size; `--hidden-units`), then one dry forward of two
  blank images (eval mode, no_grad, the RNG stream and every module's training flag restored, so
  the trainer's seeded stream and BatchNorm's statistics are as if it never ran) checks that the
  output is (N, K) logits; a class with no trainable parameters is refused, and an output
  that looks like probabilities is a warning (`warning_of`). `train` checks the class so before
  a run folder is made, built from the run's seed, and the run's own `build` takes that model
  (`check_before_run`, `_KEPT`): a class that takes a while to build is built once.

Every problem is a `UsageError` in one line that names the file and line (`file.py:12: ...`): a
syntax error, an exception at import, a missing class (with the classes it does define), a
class that is no `nn.Module`, a parameter of `__init__` nothing fills, the wrong number of
outputs for the data set's classes, the wrong input channels, a forward that raises (the line of
the deepest frame in the user's file), an output that is not a tensor. Text from the file goes
through `text.one_line`.

A run folder never runs code by itself (`run_source`): eval, inspect, predict, export and
--resume of such a run refuse unless the user trusts it (`--trust-model-code`, Hugging Face's
`trust_remote_code` convention); trusted, they run the RUN's copy, once its sha256 matches the one
recorded beside it (a copy changed since is refused all the same).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import re
import sys
import threading
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.fileio import input_problem
from cnn_tui.text import one_line
from cnn_tui.training.runs import store as runs

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnn_tui.training.config import TrainConfig

TRUST_FLAG = "--trust-model-code"

# __init__ keywords we fill, by what they mean; the lecture's TinyVGG-style classes call the
# channels `input_shape` and the classes `output_shape` (SimpleCNN(input_shape, hidden_units,
# output_shape), CustomCNN(input_shape, output_shape))
CHANNELS, CLASSES, SIZE, HIDDEN = "channels", "classes", "image_size", "hidden_units"
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ("in_channels", "input_channels", "num_channels", "channels", "input_shape", "in_ch"),
        CHANNELS,
    ),
    **dict.fromkeys(
        ("num_classes", "n_classes", "output_shape", "num_outputs", "classes"), CLASSES
    ),
    **dict.fromkeys(("image_size", "img_size", "input_size"), SIZE),
    "hidden_units": HIDDEN,
}
DRY_BATCH = 2  # images of the dry forward (BatchNorm1d in training mode would need 2 as well)


@dataclass(frozen=True)
class Source:
    """The code of a user's class: the bytes that run, where they came from, their hash."""

    spec: str  # --model, as the run keeps it
    class_name: str
    path: str  # the file the bytes were read from (the original, or a run's copy)
    code: bytes
    module: str | None = None  # package.module:Class: the module's name (relative imports)
    origin: str = ""  # the user's file these bytes were copied from ("" : `path` itself)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.code).hexdigest()

    @property
    def shown(self) -> str:
        """The file as messages name it: relative to the current folder when inside it."""
        return shown_path(self.path)

    def record(self) -> dict[str, Any]:
        """What the run keeps beside its copy (`store.write_model_source`)."""
        return {
            "model": self.spec,
            "class": self.class_name,
            "origin": self.origin or self.path,
            "module": self.module,
            "sha256": self.sha256,
            "bytes": len(self.code),
        }


def shown_path(path: str | os.PathLike[str]) -> str:
    """`path` relative to the current folder when it lies inside it, else as it is."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:
        return text
    return relative if not relative.startswith("..") else text


def spec_of(model: str) -> catalog.ModelSpec | None:
    """The user's own class `model` names, None for any other model."""
    spec = catalog.parse_model(model)
    return spec if spec.own else None


# --- the code: read, compiled, run ----------------------------------------------------------------


def read_source(model: str, what: str = "--model") -> Source:
    """The code of --model `model` (a user's class) from where it lives now; a UsageError in
    one line when it cannot be found or read (`what`: where the model was named)."""
    spec = catalog.parse_model(model)
    if spec.source == catalog.OWN_FILE:
        path = os.path.abspath(os.path.expanduser(spec.location))
        return Source(spec.text, spec.name, path, _read_bytes(path, what))
    path = _module_file(spec.location, spec.text)
    return Source(spec.text, spec.name, path, _read_bytes(path, what), spec.location)


def _read_bytes(path: str, what: str) -> bytes:
    problem = input_problem(path)
    if problem is not None:
        separator = " " if problem.startswith("is ") else ": "
        raise UsageError(
            f"{what}: {one_line(shown_path(path))}{separator}{problem} (expected a Python file "
            f"defining the class; a relative path starts from the current folder)"
        )
    limit = runs.MAX_MODEL_SOURCE_BYTES  # (the run's copy is read back with the same bound)
    try:
        with open(path, "rb") as handle:
            code = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {one_line(path)} ({exc.strerror or exc})") from None
    if len(code) > limit:
        raise UsageError(
            f"{what}: {one_line(shown_path(path))} is over {limit >> 20} MiB: a "
            "model's file holds some classes (is it the right file?)"
        )
    return code


def cwd_on_path() -> None:
    """The current folder on `sys.path` (last, as training looks for a module: a `torch.py`
    beside the model shadows nothing), as `python -m` has it and the console script has not."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _module_file(module: str, text: str) -> str:
    """Where `module` is found (its parent packages are imported to find it); the current folder
    is looked in last, as `python -m` does, so `cnn-tui` finds a package of the project too."""
    cwd_on_path()
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError as exc:
        found, missing = None, exc.name
    except BaseException as exc:  # a parent package's __init__ raised (or exited)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UsageError(_raised(exc, None, f"--model {text}: importing {module}")) from None
    else:
        missing = module
    if found is None:
        raise UsageError(
            f"--model {one_line(text)}: no module named {one_line(missing)} can be imported "
            "(run cnn-tui from the folder that holds it, add that folder to PYTHONPATH or "
            "install your package; or name the file: path/to/file.py:Class)"
        )
    origin = found.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        raise UsageError(
            f"--model {one_line(text)}: {module} is not a Python source file "
            f"({one_line(origin or 'a namespace package')}): name a module file.py"
        )
    return origin


# (path, sha256, module) -> the module its code made: the same code runs once per process
_LOADED: dict[tuple[str, str, str | None], types.ModuleType] = {}
_LOADING = threading.Lock()


def _module_name(source: Source) -> str:
    if source.module:
        return source.module
    stem = re.sub(r"\W", "_", Path(source.path).stem) or "model"
    return f"_cnn_tui_own_{stem}_{source.sha256[:12]}"


def run_module(source: Source) -> types.ModuleType:
    """The module `source`'s bytes make when run (once per process for the same code)."""
    key = (source.path, source.sha256, source.module)
    with _LOADING:
        if key in _LOADED:
            return _LOADED[key]
        try:
            code = compile(source.code, source.path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            line = f":{exc.lineno}" if exc.lineno else ""
            raise UsageError(
                f"{one_line(source.shown)}{line}: syntax error: {one_line(exc.msg)}"
            ) from None
        except ValueError as exc:  # NUL bytes in the source
            raise UsageError(f"{one_line(source.shown)}: not Python source ({exc})") from None
        name = _module_name(source)
        module = types.ModuleType(name)
        module.__file__ = source.path
        if source.module:
            _as_package_module(module, source)
        previous = sys.modules.get(name)
        sys.modules[name] = module  # (dataclasses and pickling look a class's module up)
        try:
            exec(code, module.__dict__)
        except BaseException as exc:  # an error at import, or sys.exit() in the file
            if previous is not None:
                sys.modules[name] = previous
            else:
                sys.modules.pop(name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise UsageError(
                _raised(exc, source, "at import") + _import_hint(exc, source)
            ) from None
        if source.module:  # a package's module: left to the import system once run
            if previous is not None:
                sys.modules[name] = previous
            else:
                sys.modules.pop(name, None)
        _LOADED[key] = module
        return module


def is_package(source: Source) -> bool:
    """Whether `source`'s bytes are a package's `__init__.py` (`--model mypkg:Net`)."""
    return Path(source.origin or source.path).name == "__init__.py"


def _as_package_module(module: types.ModuleType, source: Source) -> None:
    """Make `module` the module `source` came from (its dotted name, `__package__`, a package's
    `__path__`), its parent packages imported as training imported them (the current folder on
    `sys.path`), so its relative and sibling imports resolve as they did in training."""
    dotted = source.module or ""
    cwd_on_path()
    parent = dotted.rpartition(".")[0]
    if is_package(source):
        module.__package__ = dotted
        try:
            found = importlib.util.find_spec(dotted)
        except Exception:  # (its parent does not import: the package's own imports will say)
            found = None
        locations = found.submodule_search_locations if found is not None else None
        module.__path__ = list(locations or [])  # (not found from here: its imports will say)
    else:
        module.__package__ = parent
    if parent:
        try:
            importlib.import_module(parent)
        except Exception:  # (reported by the code's own import, with `_import_hint`)
            pass


def _import_hint(exc: BaseException, source: Source) -> str:
    """What to do when the user's code cannot import what sat beside it in training."""
    relative = isinstance(exc, ImportError) and "no known parent package" in str(exc)
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if not source.module:  # path/file.py:Class: run standalone, its neighbours not on the path
        folder = Path(source.path).parent
        beside = bool(missing) and any(
            (folder / f"{missing.partition('.')[0]}{end}").exists() for end in (".py", "")
        )
        if not (relative or beside):
            return ""
        return (
            " (a file that imports its neighbours runs as a module: from its folder, "
            f"--model {one_line(Path(source.path).stem)}:{one_line(source.class_name)})"
        )
    if not source.origin or not (relative or missing):  # (only a run's copy from here on)
        return ""
    root = Path(source.origin).parent
    for _ in range(source.module.count(".") + is_package(source)):
        root = root.parent
    return (
        f" (the run keeps only this one file, not what it imports: run from the folder that "
        f"holds {one_line((missing or source.module).partition('.')[0])} ({one_line(root)} when it "
        "trained), or add that folder to PYTHONPATH)"
    )


def _user_line(exc: BaseException, path: str) -> int | None:
    """The line of the deepest frame of `exc`'s traceback that is in the file `path`."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            found = frame.lineno
    return found


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    name = type(exc).__name__
    return one_line(f"{name}: {text}"[:200] if text else name)


def _raised(exc: BaseException, source: Source | None, where: str) -> str:
    """`file.py:LINE: where: Type: message` for an exception raised by the user's code."""
    if source is None:  # (a package's __init__: its deepest frame in a file, if any)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename[:1] != "<"]
        at = f" ({one_line(shown_path(frames[-1].filename))}:{frames[-1].lineno})" if frames else ""
        return f"{one_line(where)}{at}: {_reason(exc)}"
    line = _user_line(exc, source.path)
    return f"{one_line(source.shown)}{f':{line}' if line else ''}: {where}: {_reason(exc)}"


def _definition_line(source: Source, class_name: str, method: str | None = None) -> int | None:
    """The line of `class class_name` (or of its method `method`) in the source, from its AST."""
    try:
        tree = ast.parse(source.code)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            if method is None:
                return node.lineno
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
                    return item.lineno
            return node.lineno
    return None


def _at(source: Source, line: int | None) -> str:
    return f"{one_line(source.shown)}{f':{line}' if line else ''}"


def load_class(source: Source) -> type[nn.Module]:
    """The class `source` names, its file run; a UsageError naming the file and line if the
    file does not run, has no such class, or the class is no `nn.Module`."""
    from torch import nn

    module = run_module(source)
    name = source.class_name
    found = module.__dict__.get(name)
    if found is None:
        defined = [
            key
            for key, value in module.__dict__.items()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
        modules = [key for key in defined if issubclass(module.__dict__[key], nn.Module)]
        listed = modules or defined
        what = "nn.Module classes" if modules else "classes"
        it = f"it defines the {what} {', '.join(listed)}" if listed else "it defines no class"
        raise UsageError(f"{one_line(source.shown)}: no class {one_line(name)} ({one_line(it)})")
    line = _definition_line(source, name)
    if not isinstance(found, type) or not issubclass(found, nn.Module):
        kind = "a class" if isinstance(found, type) else f"a {type(found).__name__}"
        hint = ""
        if (source.module or "").partition(".")[0] == catalog.TORCHVISION:
            hint = f" (torchvision's models are --model {catalog.ZOO_PREFIX}{one_line(name)})"
        raise UsageError(
            f"{_at(source, line)}: {one_line(name)} is {kind}, not a subclass of "
            f"torch.nn.Module{hint}"
        )
    return found


# --- built and checked ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """What a model is built for: the data set's channels and classes, the input size."""

    channels: int
    classes: int
    image_size: int
    hidden_units: int = 10
    dataset: str = ""  # for messages: "fashion-mnist's images have 1 channel"

    def value(self, meaning: str) -> int:
        return {
            CHANNELS: self.channels,
            CLASSES: self.classes,
            SIZE: self.image_size,
            HIDDEN: self.hidden_units,
        }[meaning]

    @property
    def images(self) -> str:
        if not self.dataset:
            return "the data set's images"
        return (
            f"{self.dataset}' images" if self.dataset.endswith("s") else f"{self.dataset}'s images"
        )


def constructor_arguments(cls: type, source: Source, sizes: Sizes) -> dict[str, int]:
    """The keywords `cls(...)` is called with: each parameter of its `__init__` named in
    `ALIASES`; a required parameter we cannot fill is a UsageError naming it and ours."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to read: call it without arguments
        return {}
    arguments: dict[str, int] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        meaning = ALIASES.get(parameter.name)
        if meaning is not None and parameter.kind != parameter.POSITIONAL_ONLY:
            arguments[parameter.name] = sizes.value(meaning)
        elif parameter.default is parameter.empty:
            line = _definition_line(source, source.class_name, "__init__")
            raise UsageError(
                f"{_at(source, line)}: {one_line(source.class_name)}.__init__ needs "
                f"{one_line(parameter.name)}, which cnn-tui cannot fill: give it a default (cnn-tui "
                f"fills {_filled()})"
            )
    return arguments


def _filled() -> str:
    """The keywords `constructor_arguments` fills, grouped by meaning, in words."""
    meanings = {CHANNELS: "channels", CLASSES: "classes", SIZE: "px", HIDDEN: "--hidden-units"}
    groups = [
        "/".join(name for name, m in ALIASES.items() if m == meaning) + f" ({word})"
        for meaning, word in meanings.items()
    ]
    return ", ".join(groups)


_CHANNELS_RE = re.compile(
    r"expected input\[[^\]]*\] to have (\d+) channels, but got (\d+) channels"
)


def _forward_problem(exc: BaseException, source: Source, sizes: Sizes) -> str:
    line = _user_line(exc, source.path) or _definition_line(source, source.class_name, "forward")
    name = one_line(source.class_name)
    channels = _CHANNELS_RE.search(str(exc))
    if channels:
        wants, got = int(channels.group(1)), int(channels.group(2))
        if got == sizes.channels:
            plural = "" if got == 1 else "s"
            return (
                f"{_at(source, line)}: {name} expects {wants}-channel images; {sizes.images} "
                f"have {got} channel{plural} (build its first Conv2d with the in_channels / "
                "input_shape it is given)"
            )
    if "shapes cannot be multiplied" in str(exc):
        return (
            f"{_at(source, line)}: {name} does not fit {sizes.image_size}×{sizes.image_size}-px "
            f"images ({_reason(exc)}): a Linear layer's in_features must be the size of what "
            "reaches it (compute it from the image_size it is given, or use nn.LazyLinear)"
        )
    return f"{_at(source, line)}: {name}.forward raised {_reason(exc)}"


def dry_forward(model: nn.Module, source: Source, sizes: Sizes) -> torch.Tensor:
    """One forward of `DRY_BATCH` blank images, checking the output is (N, K) logits; the
    model's training flags and the random stream are as before, no BatchNorm statistic moves."""
    import torch

    modes = [(module, module.training) for module in model.modules()]
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        images = torch.zeros(DRY_BATCH, sizes.channels, sizes.image_size, sizes.image_size)
        model.eval()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            try:
                out = model(images.to(device))
            except Exception as exc:
                raise UsageError(_forward_problem(exc, source, sizes)) from None
    finally:
        for module, training in modes:
            module.training = training
    line = _definition_line(source, source.class_name, "forward")
    name = one_line(source.class_name)
    if not isinstance(out, torch.Tensor):
        raise UsageError(
            f"{_at(source, line)}: {name}.forward returns a {one_line(type(out).__name__)}, not "
            f"a tensor of logits (N, {sizes.classes})"
        )
    if out.dim() != 2 or out.shape[0] != DRY_BATCH or out.shape[1] != sizes.classes:
        shape = "×".join(str(n) for n in out.shape)
        raise UsageError(
            f"{_at(source, _definition_line(source, source.class_name))}: {name} outputs "
            f"{shape} for {DRY_BATCH} images, expected {DRY_BATCH}×{sizes.classes} (one logit "
            f"per class: {sizes.dataset or 'the data set'} has {sizes.classes} classes; build "
            "the last layer with the num_classes / output_shape it is given)"
        )
    if not out.is_floating_point():
        raise UsageError(
            f"{_at(source, line)}: {name}.forward returns {out.dtype} values, not float logits"
        )
    return out


def output_warning(out: torch.Tensor, source: Source) -> str | None:
    """A warning when the dry forward's output looks like probabilities (every row ≥ 0 and
    summing to 1: a softmax at the end), which CrossEntropyLoss does not want; None otherwise."""
    import torch

    out = out.detach().float().cpu()
    if out.numel() == 0 or bool((out < 0).any()):
        return None
    if not torch.allclose(out.sum(dim=1), torch.ones(out.shape[0]), atol=1e-4):
        return None
    line = _definition_line(source, source.class_name, "forward")
    return (
        f"{_at(source, line)}: {one_line(source.class_name)}.forward returns probabilities "
        "(rows ≥ 0 summing to 1): CrossEntropyLoss wants logits, leave out the softmax "
        "(training goes on)"
    )


def build(source: Source, sizes: Sizes) -> nn.Module:
    """The user's model for `sizes`, constructed (`constructor_arguments`) and checked by a
    dry forward (`dry_forward`); the code run is `source`'s. The model the run's check built
    (`check_before_run` with its seed) is taken instead, when this would build it again."""
    import torch
    from torch import nn

    kept = (
        _KEPT.pop(_kept_key(source, sizes, torch.random.get_rng_state()), None) if _KEPT else None
    )
    _KEPT.clear()  # (one build takes it or lets it go: never held for a whole run)
    if kept is not None:  # (built from the same state: the same weights; the stream goes on)
        model, after = kept
        torch.random.set_rng_state(after)
        return model
    cls = load_class(source)
    arguments = constructor_arguments(cls, source, sizes)
    try:
        model = cls(**arguments)
    except Exception as exc:
        called = ", ".join(f"{key}={value}" for key, value in arguments.items())
        hint = ""
        if "before Module.__init__() call" in str(exc):
            hint = " (call super().__init__() first in __init__)"
        raise UsageError(
            _raised(exc, source, f"{one_line(source.class_name)}({called}) raised") + hint
        ) from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"{_at(source, None)}: {one_line(source.class_name)}() is no nn.Module")
    out = dry_forward(model, source, sizes)
    if not any(parameter.requires_grad for parameter in model.parameters()):
        line = _definition_line(source, source.class_name, "__init__")
        raise UsageError(
            f"{_at(source, line)}: {one_line(source.class_name)} has no trainable parameters "
            "(assign its layers to self in __init__ — self.conv = nn.Conv2d(...) — and keep "
            "lists of layers in nn.ModuleList / nn.Sequential, not a Python list)"
        )
    setattr(model, SOURCE_ATTRIBUTE, source)
    setattr(model, WARNING_ATTRIBUTE, output_warning(out, source))
    return model


# The model the check of a run about to train in this process built, for the run's own `build`:
# the same code (path, sha256, module) for the same sizes from the same random state (the run's
# seed, as `setup.prepare` seeds it) builds the same model, so a class that takes a while to
# build is built once. One at a time, taken once; -> (the model, the random state after it).
_KEPT: dict[tuple, tuple[nn.Module, torch.Tensor]] = {}


def _kept_key(source: Source, sizes: Sizes, state: torch.Tensor) -> tuple:
    digest = hashlib.sha256(state.numpy().tobytes()).hexdigest()
    return (source.path, source.sha256, source.module, sizes, digest)


def _build_for_run(source: Source, sizes: Sizes, seed: int) -> nn.Module:
    """`build` from the random state a run of seed `seed` builds its model from, the model kept
    for that run's own `build` (`_KEPT`); the random stream is left as it was."""
    import torch

    _KEPT.clear()
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        key = _kept_key(source, sizes, torch.random.get_rng_state())
        model = build(source, sizes)
        _KEPT[key] = (model, torch.random.get_rng_state())
    return model


def drop_kept() -> None:
    """Let go of the model a check kept (the run trains in other processes)."""
    _KEPT.clear()


def warning_of(model: nn.Module) -> str | None:
    """`output_warning`'s line for a model `build` built (None: nothing to warn about)."""
    return getattr(model, WARNING_ATTRIBUTE, None)


def raised_in(exc: BaseException, source: Source | None) -> str | None:
    """`file.py:LINE: Class raised Type: message while training` when `exc` came out of the
    user's code (a frame of its file in the traceback), None otherwise (a bug of ours)."""
    if source is None or _user_line(exc, source.path) is None:
        return None
    return _raised(exc, source, f"{one_line(source.class_name)} raised while training")


# a plain attribute of a built model (not in its state_dict): the Source it was built from
SOURCE_ATTRIBUTE = "_cnn_tui_own_source"
WARNING_ATTRIBUTE = "_cnn_tui_own_warning"  # and `output_warning`'s line, if any


def source_of(model: nn.Module) -> Source | None:
    """The Source a user's model was built from (None: not a user's model)."""
    return getattr(model, SOURCE_ATTRIBUTE, None)


# --- a run's copy, and trust ----------------------------------------------------------------------


def run_source(run_dir: str | os.PathLike[str], model: str, *, trusted: bool) -> Source | None:
    """The code a run's model is rebuilt from: its copy RUN/model_source.py, None for a run of
    any other model. A run folder never runs code by itself: without `trusted` (the user's
    --trust-model-code) a UsageError says whose code it is and what to do; a copy whose sha256
    differs from the one recorded, or that is missing, is refused even so."""
    spec = spec_of(model)
    if spec is None:
        return None
    run_dir = Path(run_dir)
    record = runs.read_model_source_record(run_dir)
    copy = run_dir / runs.MODEL_SOURCE_FILE
    if record is None or not isinstance(record.get("sha256"), str):
        raise UsageError(
            f"{one_line(run_dir)} trains your own class {one_line(spec.label)}, but its copy of "
            f"the code ({runs.MODEL_SOURCE_FILE}, {runs.MODEL_SOURCE_RECORD}) is missing or "
            "damaged: the model cannot be rebuilt from this folder"
        )
    recorded = record["sha256"]
    origin = one_line(shown_path(str(record.get("origin") or spec.location)))
    if not trusted:
        raise UsageError(
            f"{one_line(run_dir)} trains your own model code (class {one_line(spec.name)} from "
            f"{origin}, kept as {one_line(copy)}, sha256 {one_line(recorded[:12])}): a run "
            f"folder never runs code by itself; read that file, then pass {TRUST_FLAG} to run it"
        )
    code = runs.read_model_source(run_dir)
    if code is None:
        raise UsageError(
            f"{one_line(copy)} is missing or not a file: the model of {one_line(run_dir)} "
            "cannot be rebuilt"
        )
    source = Source(
        spec.text,
        spec.name,
        str(copy.absolute()),
        code,
        module=spec.location if spec.source == catalog.OWN_MODULE else None,
        origin=str(record.get("origin") or ""),
    )
    if source.sha256 != recorded:
        raise UsageError(
            f"{one_line(copy)} has changed since the run was trained (sha256 "
            f"{source.sha256[:12]}, recorded {one_line(recorded[:12])}): refused even with "
            f"{TRUST_FLAG}; train a new run instead"
        )
    return source


@dataclass(frozen=True)
class RunCode:
    """The user's code a run keeps, as its folder says (nothing of it run or checked here)."""

    run_dir: Path
    model: str  # --model
    class_name: str
    origin: str  # the user's file it was copied from, as recorded
    copy: Path  # RUN/model_source.py
    sha256: str  # as recorded ("" when the record is missing)


def run_code(run_dir: str | os.PathLike[str]) -> RunCode | None:
    """What code of the user's the run in `run_dir` would run (None: a run of another model);
    config.toml and model_source.json are read, never the code."""
    run_dir = Path(run_dir)
    model = runs.read_config_values(run_dir).get("model")
    if not isinstance(model, str) or not catalog.is_own(model):
        return None
    spec = catalog.parse_model(model)
    record = runs.read_model_source_record(run_dir) or {}
    sha = record.get("sha256")
    return RunCode(
        run_dir,
        spec.text,
        spec.name,
        shown_path(str(record.get("origin") or spec.location)),
        run_dir / runs.MODEL_SOURCE_FILE,
        sha if isinstance(sha, str) else "",
    )


def check_run(run_dir: str | os.PathLike[str], *, trusted: bool) -> None:
    """`run_source`'s refusal for the run in `run_dir` (its config.toml read), before anything
    else loads: the commands that run a saved model call it first."""
    values = runs.read_config_values(run_dir)
    model = values.get("model")
    if isinstance(model, str) and catalog.is_own(model):
        run_source(run_dir, runs.read_config(run_dir).model, trusted=trusted)


def trust_problem(run_dir: str | os.PathLike[str], model: str) -> str | None:
    """Why running the model of run `run_dir` needs the user's trust (the refusal of
    `run_source`), None when it does not (no code of the user's, or a copy that cannot be run
    anyway: that is reported when it is built)."""
    try:
        run_source(run_dir, model, trusted=False)
    except UsageError as exc:
        return str(exc) if TRUST_FLAG in str(exc) else None
    return None


def keep_copy(run_dir: str | os.PathLike[str], source: Source) -> None:
    """Write `source`'s bytes and their record into the run (`store.write_model_source`)."""
    runs.write_model_source(run_dir, source.code, source.record())


def sizes_for(config: TrainConfig) -> Sizes | None:
    """What a run of `config` builds the user's class for (the data set's channels and classes,
    the image size, --hidden-units); None while an image folder is not there yet (its loader
    says so in one line)."""
    from cnn_tui.training.data import datasets

    channels, native, _, classes = datasets.dataset_info(
        config.dataset, config.data_dir, config.image_size
    )
    if not classes:
        return None
    return Sizes(
        channels, len(classes), config.image_size or native[0], config.hidden_units, config.dataset
    )


def check_resume(run_dir: str | os.PathLike[str], config: TrainConfig, *, trusted: bool) -> None:
    """What `train --resume` checks of a run of the user's class before the run is held or its
    status written: trusted (`run_source`), its copy imports, builds and makes one dry forward
    (a resume that cannot start leaves the run as it was). Nothing for any other model."""

    source = run_source(run_dir, config.model, trusted=trusted)
    sizes = sizes_for(config) if source is not None else None
    if source is None or sizes is None:
        return
    _build_for_run(source, sizes, config.seed)  # (the resumed run's build takes it)


def check_before_run(
    model: str, sizes: Sizes, what: str = "--model", seed: int | None = None
) -> nn.Module | None:
    """What `train` checks of a user's class before a run folder is made: its file, its class,
    its constructor and one dry forward at `sizes` (a UsageError in one line); the model built.
    The random stream is left as it was. None for any other model. `seed`: the run's, when it
    trains in this process next: the model is built as the run builds it and kept for it
    (`build` takes it), so it is not built twice."""
    import torch

    if spec_of(model) is None:
        return None
    source = read_source(model, what)
    if seed is not None:
        return _build_for_run(source, sizes, seed)
    with torch.random.fork_rng(devices=[]):
        return build(source, sizes)
