"""How numbers and untrusted text are written, the same in the CLI and the TUI.

One formatter per quantity, so a run prints the same strings in `cnn-tui runs`, headless output,
the dashboard and the sweep table: an accuracy is always `93.42%`, a duration `12.3s` / `3m05s` /
`1h02m`, a speed `8,926 img/s`, a memory size `1.5 GiB`. Unknown values (None, NaN, inf) are
written as `UNKNOWN`. Nothing here imports torch, numpy or textual.
"""

from __future__ import annotations

import math
from typing import Any

UNKNOWN = "-"  # ASCII, so a table stays readable on a terminal that is not UTF-8
KIB = 1024
MIB = 1024**2
GIB = 1024**3


def finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def percent(fraction: Any, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage: `0.93421` -> `93.42%`."""
    return f"{fraction * 100:.{digits}f}%" if finite(fraction) else UNKNOWN


def number(value: Any, spec: str = ".4f") -> str:
    """A number in `spec`'s format (a loss: `0.3123`)."""
    return format(value, spec) if finite(value) else UNKNOWN


def count(value: Any) -> str:
    """A whole number with thousands separators: `12,345`."""
    return f"{value:,.0f}" if finite(value) else UNKNOWN


def short_count(value: Any) -> str:
    """A count in a few characters, where its order matters more than its digits: `812`,
    `20.5k`, `23.5M` (a model's parameters)."""
    if not finite(value):
        return UNKNOWN
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def duration(seconds: Any) -> str:
    """`0.4s`, `12.3s`, `3m05s`, `1h02m`: tenths below a minute, then minutes and seconds, then
    hours and minutes (an ETA is a duration too)."""
    if not finite(seconds) or seconds < 0:
        return UNKNOWN
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s"


def throughput(images_per_second: Any) -> str:
    """`8,926 img/s`."""
    return f"{count(images_per_second)} img/s" if finite(images_per_second) else UNKNOWN


def size(n_bytes: Any) -> str:
    """A memory or file size in binary units: `812 B`, `3.4 KiB`, `12.0 MiB`, `1.5 GiB`."""
    if not finite(n_bytes) or n_bytes < 0:
        return UNKNOWN
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def one_line(message: object) -> str:
    """Text from outside (a file name, a run name, an error) as one printable line: control
    characters (a newline, an escape sequence) are written as escapes, never sent raw."""
    text = str(message)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
