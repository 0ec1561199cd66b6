"""A footer whose keys wrap onto a second line instead of running off a narrow terminal.

Textual's Footer is one scrolling line: with the lesson's many keys, half of them would be cut
off in 80 columns. `WrappingFooter` lays clickable keys out as a grid with as many columns as
fit the width (each column as wide as its widest key); a binding group such as ←/→ becomes one
key showing both keys and the group's description. On a narrow terminal (below `WIDE` columns,
a projector's 80) a screen with a `?` key list (a lesson) gets at most `NARROW_LINES` lines: the
keys it names in `footer_optional` (a class attribute: action names, the first dropped first;
else `OPTIONAL`) go first, then the last keys but `?`, which lists every key. It is built on public Textual API only (the screen's
`active_bindings` and `bindings_updated_signal`), not on Footer's internals.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget

_GUTTER = 1
WIDE = 100  # columns from which the footer may take up to `MAX_LINES` lines
NARROW_LINES = 2  # lines the footer takes at most on a narrower terminal (80×24)
MAX_LINES = 4
KEEP = ("toggle_keys",)  # never dropped: `?` lists every key of the screen
OPTIONAL = ("jump", "speed", "reseed")  # dropped first when a screen names none

Entry = tuple[str, str, str, str, bool, str]


def columns_that_fit(widths: Sequence[int], available: int, gutter: int = _GUTTER) -> int:
    """The most grid columns whose widths (each the widest item of its column) fit `available`."""
    for count in range(len(widths), 0, -1):
        columns = [max(widths[i::count]) for i in range(count)]
        if sum(columns) + gutter * (count - 1) <= available:
            return count
    return 1


def group_label(displays: Sequence[str]) -> str:
    """The keys of a binding group as the footer shows them: ←→, +−; three or more digits in a
    row as a range ("1-6" for six tabs: made from the bindings there are, never out of date)."""
    if len(displays) >= 3 and all(len(key) == 1 and key.isdigit() for key in displays):
        numbers = [int(key) for key in displays]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{displays[0]}-{displays[-1]}"
    return "".join(displays)


class FooterEntry(Widget):
    """One key of the footer: the key in bold, its description; a click presses the key."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description"}
    DEFAULT_CSS = """
    FooterEntry {
        width: auto;
        height: 1;
        text-wrap: nowrap;
        background: $footer-item-background;
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        &:hover {
            pointer: pointer;
            color: $footer-key-foreground;
            background: $block-hover-background;
        }
        &.-disabled { text-style: dim; }
    }
    """

    def __init__(
        self, key: str, key_display: str, description: str, *, enabled: bool, tooltip: str
    ) -> None:
        super().__init__(classes="" if enabled else "-disabled")
        self.key, self.key_display, self.description = key, key_display, description
        self.enabled = enabled
        if tooltip:
            self.tooltip = tooltip

    def render(self) -> Text:
        key_style = self.get_component_rich_style("footer-key--key")
        description_style = self.get_component_rich_style("footer-key--description")
        text = Text.assemble((self.key_display, key_style))
        if self.description:
            text.append(" " + self.description, description_style)
        text.stylize_before(self.rich_style)
        return text

    def on_mouse_down(self) -> None:
        if self.enabled:
            self.app.simulate_key(self.key)
        else:
            self.app.bell()


class WrappingFooter(Widget, can_focus=False, can_focus_children=False):
    """The keys of the screen's bindings, wrapped onto as many lines as the width needs."""

    DEFAULT_CSS = """
    WrappingFooter {
        dock: bottom;
        color: $footer-foreground;
        background: $footer-background;
        layout: grid;
        grid-columns: auto;
        grid-rows: 1;
        grid-gutter: 0 1;
        height: auto;
        max-height: 4;
        padding: 0 1;
        FooterEntry { margin: 0; width: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._columns = 0
        self._bindings_ready = False
        self._composed: tuple[list[Entry], list[int], int] | None = None  # what compose showed

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        """Recompose when the keys to show differ from those shown: the screen signals a change
        of its bindings on any focus move and every `refresh_bindings`, often with nothing new
        (a live dashboard: several a second), and a recompose is a layout pass of the screen."""
        if not self.is_attached:
            return
        available = (self.size.width or self.app.size.width) - 2
        if self._fitted(available) != self._composed:
            await self.recompose()

    def _keys(self) -> list[Entry]:
        """(key, key display, description, action, enabled, tooltip) for each footer entry."""
        entries: list[Entry] = []
        seen_actions: set[str] = set()
        grouped: dict[str, int] = {}
        group_displays: dict[int, list[str]] = {}  # entry -> the keys of its group so far
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen_actions:
                continue
            seen_actions.add(binding.action)
            display = self.app.get_key_display(binding)
            group = binding.group
            if group is not None and group.description in grouped:
                index = grouped[group.description]
                _, _, description, _, was_enabled, tip = entries[index]
                group_displays[index].append(display)
                # a click runs the group's last key: → step, ] next cell, + faster
                entries[index] = (
                    binding.key,
                    group_label(group_displays[index]),
                    description,
                    binding.action,
                    was_enabled,
                    tip,
                )
                continue
            if group is not None:
                grouped[group.description] = len(entries)
                group_displays[len(entries)] = [display]
                entries.append(
                    (binding.key, display, group.description, binding.action, enabled, tooltip)
                )
            else:
                entries.append(
                    (binding.key, display, binding.description, binding.action, enabled, tooltip)
                )
        return entries

    def _fitted(self, available: int) -> tuple[list[Entry], list[int], int]:
        """The entries shown at this width, their widths and the grid's columns. On a screen
        whose `?` lists every key (a lesson), at most `NARROW_LINES` lines below `WIDE` columns:
        the screen's `footer_optional` keys (else `OPTIONAL`) dropped first, then the last ones
        (never `?`); other screens keep every key, in up to `MAX_LINES` lines."""
        entries = self._keys() if self._bindings_ready else []
        listed = any(_action_name(entry[3]) in KEEP for entry in entries)  # `?` lists them
        limit = NARROW_LINES if listed and available + 2 < WIDE else MAX_LINES
        wanted = getattr(self.screen, "footer_optional", OPTIONAL)
        optional = [_action_name(a) for a in wanted]

        def widths() -> list[int]:
            return [len(shown) + 1 + len(description) for _, shown, description, *_ in entries]

        count = columns_that_fit(widths(), available) if entries else 1
        while entries and -(-len(entries) // count) > limit:
            names = [_action_name(entry[3]) for entry in entries]
            dropped = next((name for name in optional if name in names), None)
            if dropped is not None:  # every key of that action: home and end go together
                entries = [e for e, name in zip(entries, names, strict=True) if name != dropped]
            else:
                del entries[max(i for i, name in enumerate(names) if name not in KEEP)]
            count = columns_that_fit(widths(), available)
        return entries, widths(), count

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        available = (self.size.width or self.app.size.width) - 2
        entries, widths, count = self._fitted(available)
        self._composed = (entries, widths, count)
        self._columns = count
        self.styles.grid_size_columns = count
        self.styles.grid_columns = " ".join(str(max(widths[i::count])) for i in range(count))
        for key, shown, description, _action, enabled, tooltip in entries:
            yield FooterEntry(key, shown, description, enabled=enabled, tooltip=tooltip)

    def on_resize(self, event: events.Resize) -> None:
        entries, _widths, count = self._fitted(event.size.width - 2)
        if entries and (count != self._columns or len(entries) != len(self.children)):
            self.call_after_refresh(self.recompose)


def _action_name(action: str) -> str:
    """An action without its arguments: "speed(1)" -> "speed", "app.quit" as it is."""
    return action.split("(", 1)[0]
