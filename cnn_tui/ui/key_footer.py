"""A Footer whose keys wrap onto a second line instead of running off a narrow terminal.

Textual's Footer is one scrolling line: with the lesson's many keys, half of them would be cut
off in 80 columns. `WrappingFooter` lays the same clickable `FooterKey`s out as a grid with as
many columns as fit the width (each column as wide as its widest key); a binding group such as
←/→ becomes one key showing both keys and the group's description.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

_GUTTER = 1


def columns_that_fit(widths: Sequence[int], available: int, gutter: int = _GUTTER) -> int:
    """The most grid columns whose widths (each the widest item of its column) fit `available`."""
    for count in range(len(widths), 0, -1):
        columns = [max(widths[i::count]) for i in range(count)]
        if sum(columns) + gutter * (count - 1) <= available:
            return count
    return 1


class WrappingFooter(Footer):
    """The keys of the screen's bindings, wrapped onto as many lines as the width needs."""

    DEFAULT_CSS = """
    WrappingFooter {
        layout: grid;
        grid-columns: auto;
        grid-rows: 1;
        grid-gutter: 0 1;
        height: auto;
        max-height: 4;
        padding: 0 1;
        &.-compact FooterKey { margin: 0; width: 1fr; }
        FooterKey .footer-key--key { padding: 0; }
        FooterKey .footer-key--description { padding: 0 0 0 1; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, show_command_palette=False, compact=True)
        self._columns = 0

    def _keys(self) -> list[tuple[str, str, str, str, bool, str]]:
        """(key, key display, description, action, enabled, tooltip) for each footer entry."""
        entries: list[tuple[str, str, str, str, bool, str]] = []
        seen_actions: set[str] = set()
        grouped: dict[str, int] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen_actions:
                continue
            seen_actions.add(binding.action)
            display = self.app.get_key_display(binding)
            group = binding.group
            if group is not None and group.description in grouped:
                index = grouped[group.description]
                _, shown, description, _, was_enabled, tip = entries[index]
                # a click runs the group's last key: → step, ] next cell, + faster
                entries[index] = (
                    binding.key,
                    shown + display,
                    description,
                    binding.action,
                    was_enabled,
                    tip,
                )
                continue
            if group is not None:
                grouped[group.description] = len(entries)
                entries.append(
                    (binding.key, display, group.description, binding.action, enabled, tooltip)
                )
            else:
                entries.append(
                    (binding.key, display, binding.description, binding.action, enabled, tooltip)
                )
        return entries

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        entries = self._keys()
        widths = [len(shown) + 1 + len(description) for _, shown, description, *_ in entries]
        available = (self.size.width or self.app.size.width) - 2
        self._columns = count = columns_that_fit(widths, available) if widths else 1
        self.styles.grid_size_columns = count
        self.styles.grid_columns = " ".join(str(max(widths[i::count])) for i in range(count))
        for key, shown, description, action, enabled, tooltip in entries:
            yield FooterKey(
                key, shown, description, action, disabled=not enabled, tooltip=tooltip
            ).data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        entries = self._keys() if self._bindings_ready else []
        widths = [len(shown) + 1 + len(description) for _, shown, description, *_ in entries]
        if widths and columns_that_fit(widths, event.size.width - 2) != self._columns:
            self.call_after_refresh(self.recompose)
