"""Hostile text for the sanitiser's tests: what an attacker puts into a run, class or file name.

`hostile_text(pieces)` draws strings made of escape sequences (`ESC ]0;...BEL` sets a terminal's
title, `ESC [2J` wipes the screen), C0 and C1 controls, bidirectional controls, newlines,
Rich/Textual markup and arbitrary characters; `assert_safe` checks that what reached the
terminal holds none of them.
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
WIPE = "\x1b[2J"  # clears the screen
# pieces an attacker puts into a name; hypothesis adds arbitrary characters around them
PIECES = [
    TITLE, WIPE, "\x1b[31m", "\x9b2J", "\x90", "\x85", "\u202e", "\u2066", "\u200f", "\u2028",
    "\n", "\r", "\t", "\x00", "\x7f", "\x08", "[red]x", "[/]", "[b]", "[@click=app.quit]", "\\",
    ":smile:", "$x", "é", "中", " ",
]  # fmt: skip
piece = st.one_of(
    st.sampled_from(PIECES),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=3),  # no lone halves
)


def hostile_text(pieces: int = 4) -> st.SearchStrategy[str]:
    """Strings of 1 to `pieces` hostile pieces."""
    return st.lists(piece, min_size=1, max_size=pieces).map("".join)


def as_file_name(name: str) -> str:
    """`name` as a file or folder name: no '/' or NUL, not hidden, not too long."""
    name = name.replace("/", "_").replace("\x00", "0")
    return "x" + name[:60] if name.startswith(".") or len(name.encode()) > 200 else name


def assert_safe(printed: str) -> None:
    """Only printable text and line breaks: no ESC, no C0 or C1 control, no bidi control, no
    line or paragraph separator, whatever the names held."""
    for char in printed:
        assert char == "\n" or char.isprintable(), (
            f"{char!r} ({unicodedata.name(char, '?')}) reached the terminal: {printed!r}"
        )


def toml_string(value: str) -> str:
    """A TOML basic string holding `value` exactly (control characters as \\U escapes)."""
    escaped = "".join(
        c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in value
    )
    return f'"{escaped}"'
