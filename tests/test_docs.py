"""The documentation: README.md as the front door and the MkDocs site, built as CI builds it.

The site is built with `mkdocs build --strict`, so a broken link or anchor, a missing image or a
page left out of the nav fails here. Its architecture page is generated from the source tree and
pyproject.toml at build time; these tests check the result against the tree and the contracts.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cnn_tui.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"<code>(.*?)</code>", re.DOTALL)
PATH = re.compile(r"\b(?:cnn_tui|tests|scripts|docs)/[\w/.-]*\w/?")
DOTTED = re.compile(r"\bcnn_tui(?:\.[A-Za-z_]\w*)+")


def _modules() -> list[str]:
    """Every package and module under cnn_tui, by dotted name, from the files."""
    names = []
    for path in (ROOT / "cnn_tui").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def _contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["importlinter"]["contracts"]


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def _codes(page: Path) -> set[str]:
    return {html.unescape(code) for code in CODE.findall(page.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    return out


def test_the_site_builds_strict_with_every_page(site: Path) -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert pages, "no pages under docs/"
    for page in pages:
        assert f": {page}\n" in config, f"docs/{page} is not in mkdocs.yml's nav"
        folder = page.removesuffix(".md").removesuffix("index").rstrip("/")
        assert (site / folder / "index.html").is_file(), f"docs/{page} was not built"


def test_readme_is_a_short_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_relative_link_and_image_in_the_readme_exists() -> None:
    targets = LINK.findall(README.read_text(encoding="utf-8"))
    local = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert any(t.endswith(".svg") for t in local), "the README shows no screenshot"
    missing = [t for t in local if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_the_readme_command_table_names_every_subcommand() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands") :]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `cnn-tui")]
    named = {name for cell in first_cells for name in re.findall(r"`?cnn-tui ([\w-]+)", cell)}
    assert set(COMMANDS) <= named, f"missing from README's command table: {set(COMMANDS) - named}"


def test_the_architecture_page_lists_every_module_and_contract(site: Path) -> None:
    page = site / "architecture" / "index.html"
    codes, text = _codes(page), _text(page)
    missing = [name for name in _modules() if name not in codes]
    assert not missing, f"modules missing from the architecture page: {missing}"
    for contract in _contracts():
        assert contract["name"] in text, contract["name"]
        assert contract["type"] in text
        for key, value in contract.items():
            if isinstance(value, list):
                assert set(value) <= codes, (contract["name"], key, set(value) - codes)


def test_the_cli_reference_shows_every_command_and_the_json_convention(site: Path) -> None:
    page = site / "cli" / "index.html"
    codes, text = _codes(page), _text(page)
    for name in COMMANDS:
        assert f"cnn-tui {name}" in codes, name
        assert f"usage: cnn-tui {name}" in text, name
    assert "--json-file FILE" in codes  # from cnn_tui/commands/output.py's docstring


def test_the_docs_name_only_files_and_modules_that_exist() -> None:
    """Paths and dotted module names in README.md and docs/ point at the live tree."""
    modules = set(_modules())
    stale = []
    for doc in [README, *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for path in PATH.findall(text):
            if not (ROOT / path).exists():
                stale.append(f"{doc.relative_to(ROOT)}: {path}")
        for dotted in DOTTED.findall(text):
            parts = dotted.split(".")
            # a module, or an attribute of one (cnn_tui.cli.run)
            if ".".join(parts) not in modules and ".".join(parts[:-1]) not in modules:
                stale.append(f"{doc.relative_to(ROOT)}: {dotted}")
    assert not stale, "the docs name what is not in the tree:\n" + "\n".join(stale)
