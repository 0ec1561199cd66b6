"""How numbers and untrusted text are written, the same in the CLI and the TUI.

One formatter per quantity, so a run prints the same strings in `cnn-tui runs`, headless output,
the dashboard and the sweep table: an accuracy is always `93.42%`, a duration (an ETA too)
`12.3s` / `3m05s` / `1h02m`, a speed `8,926 img/s` (in a column headed img/s: `8,926`), a
memory size `1.5 GiB`, a start time `11:20:45` today. Unknown values (None, NaN, inf) are
written as `UNKNOWN`. Nothing here imports torch, numpy or textual.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from typing import Any

UNKNOWN = "-"  # ASCII, so a table stays readable on a terminal that is not UTF-8
KIB = 1024
MIB = 1024**2
GIB = 1024**3


def finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (bools are not numbers here), and that a
    float holds: a whole number of 400 digits in a damaged JSON file is not one."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def percent(fraction: Any, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage: `0.93421` -> `93.42%`."""
    return f"{fraction * 100:.{digits}f}%" if finite(fraction) else UNKNOWN


def confidence(probability: Any, digits: int = 2) -> str:
    """A probability (a softmax output, a prediction's confidence) as a percentage that never
    rounds to a certainty it is not: `0.9997` -> `99.97%` (or `>99.9%` with 1 digit), `100%`
    only for exactly 1, `0%` only for exactly 0 (`<0.01%` for 0.00003)."""
    if not finite(probability):
        return UNKNOWN
    shown = percent(probability, digits)
    step = 10.0**-digits  # the smallest step `digits` can show
    if 0 < probability < 1 and float(shown[:-1]) >= 100:
        return f">{100 - step:.{digits}f}%"
    if 0 < probability < 1 and float(shown[:-1]) <= 0:
        return f"<{step:.{digits}f}%"
    return shown


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


ESTIMATING = "estimating"  # an ETA before the first batches after the warm-up were measured


def eta(seconds: Any) -> str:
    """The time left of a run, as `duration` writes it, or `estimating` while the trainer has no
    estimate yet (`training.loop.eta`: the warm-up of a start or a resume is not measured)."""
    return duration(seconds) if finite(seconds) and seconds >= 0 else ESTIMATING


def throughput(images_per_second: Any) -> str:
    """`8,926 img/s`."""
    return f"{count(images_per_second)} img/s" if finite(images_per_second) else UNKNOWN


def started(timestamp: Any, now: float | None = None) -> str:
    """When something started (unix seconds), in local time: `11:20:45` on the day of `now`
    (default: the present), `2026-12-05 11:20` on another day. Two runs started minutes apart
    today differ in their text; `cnn-tui runs` and the runs screen both use it."""
    if not finite(timestamp):
        return UNKNOWN
    when = time.localtime(timestamp)
    today = time.localtime(time.time() if now is None else now)
    if when[:3] == today[:3]:
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M", when)


def timestamp(seconds: Any) -> str:
    """A moment in full, local time: `2026-12-06 11:20:45` (where there is room for it)."""
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if finite(seconds) else UNKNOWN
    )


# an automatic run name: `20261206-112045-simple-cnn-fashion-mnist` (store.new_run_dir)
_STAMPED = re.compile(r"(?P<date>\d{8})-(?P<time>\d{6})-(?P<rest>.+)")


def clip(text: str, width: int) -> str:
    """`text` in at most `width` characters, its end cut with "…": 'horizontal b…'."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"[: max(width, 0)]


def ellipsis_middle(name: str, width: int) -> str:
    """`name` shortened to `width` by cutting its middle: 'sweep-2026…lr-0.01'."""
    if len(name) <= width:
        return name
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


def run_name(name: str, width: int) -> str:
    """A run's name in `width` characters, still telling runs apart.

    An automatic name (`DATE-TIME-model-dataset`, of a run or of a sweep's run `SWEEP/RUN`)
    drops its date first, which runs of one session share, so the time that tells them apart
    stays: `…112045-simple-cnn-fashion-mnist`, then `…112045-…shion-mnist` (the model and the
    data set have columns of their own). Any other name is cut in the middle."""
    if len(name) <= width:
        return name
    last = name.rpartition("/")[2]
    stamped = _STAMPED.fullmatch(last)
    if stamped is not None:
        head = "…" + stamped["time"] + "-"
        rest = stamped["rest"]
        if len(head) + len(rest) <= width:
            return head + rest
        room = width - len(head)
        if room >= 6:  # (room for a word of the rest: its end, the data set)
            return head + "…" + rest[len(rest) - room + 1 :].lstrip("-")
    return ellipsis_middle(name, width)


def size(n_bytes: Any) -> str:
    """A memory or file size in binary units: `812 B`, `3.4 KiB`, `12.0 MiB`, `1.5 GiB`."""
    if not finite(n_bytes) or n_bytes < 0:
        return UNKNOWN
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


# Characters that change how the text around them is shown: the bidirectional controls
# (embeddings, overrides, isolates and the marks). An attacker uses them to make a name read
# backwards ("exe.txt" shown for "txt.exe"); they are category Cf, escaped by `one_line`.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def control_character(text: str) -> str | None:
    """The first character of `text` that a name must not hold, escaped (`\\x1b`), or None.

    Refused: the C0 controls (a newline, ESC), DEL, the C1 controls (U+0080-U+009F, which some
    terminals read as ESC sequences), the line and paragraph separators and the bidirectional
    controls. A folder flag (`--run-dir`) checks its value with it."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in BIDI_CONTROLS:
            return _escaped(char)
    return None


def _escaped(char: str) -> str:
    return repr(char)[1:-1]  # '\x1b', '\x9b', '\u202e', '\n': Python's own escapes


def one_line(message: object) -> str:
    """Text from outside (a file or folder name, a run name, a class name, a config value, an
    error that quotes one) as one line that is safe to print or to show in a widget.

    Every character that is not printable is written as its escape, never sent raw: the C0
    controls (`\\n`, `\\t`, ESC as `\\x1b`, so `ESC ]0;...BEL` cannot set the terminal's title
    nor `ESC [2J` wipe the screen), DEL (`\\x7f`), the C1 controls (`\\x9b`), the bidirectional
    controls (`\\u202e`), the other format characters (zero-width ones), the line and paragraph
    separators, the spaces other than ' ', unassigned code points and lone surrogates (a file
    name that is not UTF-8, `\\udcff`). Printable text, accents and other scripts included, is
    kept as it is."""
    return "".join(c if c.isprintable() else _escaped(c) for c in str(message))


def some(names: list[str], shown: int = 10) -> str:
    """Names from outside, comma-separated, each through `one_line`: at most `shown` of them,
    then how many more (`a, b, c and 297 more`), so a folder of thousands stays one line."""
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(one_line(name) for name in names[:shown]) + more


def lines(message: object) -> list[str]:
    """Text from outside that may hold several lines (an error with its details, a log line),
    as safe lines: split at its line breaks, each line through `one_line`."""
    return [one_line(line) for line in str(message).splitlines()] or [""]


def markup(message: object) -> str:
    """`one_line(message)` made safe to put into Textual content markup (a `Static`, a `Label`,
    a notification with markup): every `[` is escaped, so a class called `[red]x` is shown as
    `[red]x`, not in red, and `[/]` cannot close a tag of ours (nor make the markup invalid).

    A final backslash would escape the `[` of the tag after it, so it is written as its escape,
    `\\x5c`. Rich's markup (a `DataTable` cell given as a str, `console.print`) has other rules:
    give those a `rich.text.Text` of `one_line(...)` instead."""
    line = one_line(message).replace("[", "\\[")
    return line[:-1] + "\\x5c" if line.endswith("\\") else line
