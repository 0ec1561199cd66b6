"""MkDocs hooks (mkdocs.yml `hooks:`): the parts of the site generated from the live tree.

A page asks for a part with a marker line, replaced at build time:
- `<!-- generated: module-map -->`: every package and module under cnn_tui with the first line
  of its docstring and its length (read with `ast`: nothing is imported);
- `<!-- generated: contracts -->`: pyproject.toml's `[tool.importlinter]` contracts (name, type,
  modules);
- `<!-- generated: json-convention -->`: the `--json` convention, from the docstring of
  cnn_tui/commands/output.py;
- `<!-- generated: json-flags -->` and `<!-- generated: commands -->`: each subcommand's JSON
  flags and its `--help`, from the parser `cnn-tui` builds (which imports no torch).

Modules are moving while the project grows, so nothing here is a stored list: the map is whatever
the tree holds when the site is built. An unknown marker fails the build.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnn_tui"
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
HELP_COLUMNS = "100"


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. cnn_tui.training.loop.engine
    path: Path
    summary: str  # the first line of the docstring ("" without one)
    lines: int
    package: bool


def package_modules(package: Path = PACKAGE) -> list[Module]:
    """Every module and package under `package`, packages before their modules."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(package.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        summary = docstring.strip().splitlines()[0] if docstring.strip() else ""
        found.append(Module(".".join(parts), path, summary, len(text.splitlines()), is_package))
    return sorted(found, key=lambda module: module.name.split("."))


def contracts(pyproject: Path = ROOT / "pyproject.toml") -> list[dict]:
    """The import-linter contracts, as pyproject.toml states them."""
    with open(pyproject, "rb") as handle:
        config = tomllib.load(handle)
    return config.get("tool", {}).get("importlinter", {}).get("contracts", [])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def module_map() -> str:
    modules = package_modules()
    groups: dict[str, list[Module]] = {}
    for module in modules:
        parts = module.name.split(".")
        top = parts[1] if len(parts) > 2 or (len(parts) == 2 and module.package) else ""
        groups.setdefault(top, []).append(module)
    out = [f"{len(modules)} modules, {sum(m.lines for m in modules):,} lines.", ""]
    for top, members in groups.items():
        out += [f"### `cnn_tui{'.' + top if top else ''}`", ""]
        out += ["| module | lines | what it is for |", "| --- | ---: | --- |"]
        for module in members:
            name = f"**`{module.name}`**" if module.package else f"`{module.name}`"
            summary = _cell(module.summary) if module.summary else "*(no docstring)*"
            out.append(f"| {name} | {module.lines:,} | {summary} |")
        out.append("")
    return "\n".join(out)


def contract_list() -> str:
    out = []
    for contract in contracts():
        out += [f"### {contract['name']}", "", f"*{contract['type']}*", ""]
        for key, value in contract.items():
            if key in ("name", "type"):
                continue
            values = value if isinstance(value, list) else [value]
            shown = ", ".join(f"`{item}`" for item in values)
            out.append(f"- {key.replace('_', ' ')}: {shown}")
        out.append("")
    return "\n".join(out)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    if str(ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(ROOT))  # this checkout, not an installed copy
    from cnn_tui import cli

    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps its help to the terminal's width
    parser = cli.build_parser()
    # argparse keeps its subcommands in a private action; reading it is the only way in
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, dict(sub.choices)


def json_convention() -> str:
    source = (PACKAGE / "commands" / "output.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    body = docstring.split("\n", 1)[1].strip() if "\n" in docstring else docstring
    # Markdown wants a blank line where a list starts after a paragraph, and where one ends
    body = re.sub(r"(?m)^(?!- |\s)(.+)\n(?=- )", r"\1\n\n", body)
    return re.sub(r"(?m)^((?:- |\s).*)\n(?=[^-\s])", r"\1\n\n", body)


def _spelling(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    return f"{names} `[{metavar}]`" if action.nargs == "?" else f"{names} `{metavar}`"


def json_flags() -> str:
    _, commands = _parser()
    out = ["| command | JSON flags |", "| --- | --- |"]
    for name, parser in commands.items():
        actions = [
            a
            for a in parser._actions
            if any(o in ("--json", "--json-file") for o in a.option_strings)
        ]
        shown = "; ".join(_spelling(action) for action in actions) or "none"
        out.append(f"| `cnn-tui {name}` | {shown} |")
    return "\n".join(out)


def command_help() -> str:
    parser, commands = _parser()
    out = ["### `cnn-tui`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, child in commands.items():
        out += [f"### `cnn-tui {name}`", "", "```text", child.format_help().rstrip(), "```", ""]
    return "\n".join(out)


PARTS = {
    "module-map": module_map,
    "contracts": contract_list,
    "json-convention": json_convention,
    "json-flags": json_flags,
    "commands": command_help,
}


def on_page_markdown(markdown: str, page, config, files) -> str:  # MkDocs' hook signature
    def generate(match: re.Match[str]) -> str:
        part = PARTS.get(match.group(1))
        if part is None:
            raise PluginError(f"{page.file.src_path}: no generated part {match.group(1)!r}")
        return part()

    return MARKER.sub(generate, markdown)
