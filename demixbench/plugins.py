"""Entry-point plugins: one discovery path for the four kinds of pluggable parts.

Separators, strategies, metrics and datasets are declared under the entry-point groups
``demixbench.separators``, ``demixbench.strategies``, ``demixbench.metrics`` and
``demixbench.datasets``. demixbench declares its built-ins in its own ``pyproject.toml`` exactly
as a plugin package does, so built-ins and plugins are found, listed and loaded the same way.
Python's :mod:`importlib.metadata` is the library made for this (no home-made scanning).

An entry that fails to import, or resolves to the wrong kind of object, raises
:class:`PluginError` naming the entry, its distribution and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .errors import PluginError

KINDS = {
    "separator": "demixbench.separators",
    "strategy": "demixbench.strategies",
    "metric": "demixbench.metrics",
    "dataset": "demixbench.datasets",
}


@dataclass(frozen=True)
class PluginEntry:
    """One declared plugin: its name, where it comes from, and how to load it."""

    name: str
    target: str  # "module:attribute"
    distribution: str
    kind: str = "separator"

    @property
    def group(self) -> str:
        return KINDS[self.kind]

    def load(self, check: Callable[[PluginEntry, Any], str | None] | None = None) -> Any:
        """Import the entry's object; ``check`` returns a problem (text) or None."""
        ep = metadata.EntryPoint(name=self.name, value=self.target, group=self.group)
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"{self.kind} plugin {self.name!r} ({self.target}, from distribution "
                f"{self.distribution!r}) failed to load: {type(exc).__name__}: {exc}; install "
                f"what it needs or uninstall {self.distribution}") from None
        problem = check(self, obj) if check else None
        if problem:
            raise PluginError(f"{self.kind} plugin {self.name!r} ({self.target}, from distribution "
                              f"{self.distribution!r}) {problem}")
        return obj


class PluginRegistry:
    """Plugins of one kind by name. ``entries`` defaults to the installed entry points."""

    kind = "separator"

    def __init__(self, entries: Iterable[PluginEntry] | None = None, kind: str | None = None):
        self.kind = kind or self.kind
        if entries is None:
            entries = installed_entries(self.kind)
        self._entries: dict[str, PluginEntry] = {}
        self._loaded: dict[str, Any] = {}
        for e in entries:
            other = self._entries.get(e.name)
            if other is not None and other.target != e.target:
                raise PluginError(
                    f"{self.kind} name {e.name!r} is declared twice: by {other.distribution!r} "
                    f"({other.target}) and by {e.distribution!r} ({e.target}); uninstall one")
            self._entries[e.name] = e

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def unknown(self, name: str) -> str:
        return (f"unknown {self.kind} {name!r}; known: {', '.join(self.names())} "
                "(`demixbench list` shows them all)")

    def entry(self, name: str) -> PluginEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(self.unknown(name)) from None

    def error(self, message: str) -> Exception:
        return PluginError(message)

    def check(self, entry: PluginEntry, obj: Any) -> str | None:
        """What is wrong with a loaded object (None when it is fine)."""
        return None

    def get(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self.entry(name).load(self.check)
        return self._loaded[name]


def installed_entries(kind: str) -> list[PluginEntry]:
    out = []
    for ep in metadata.entry_points(group=KINDS[kind]):
        dist = getattr(ep, "dist", None)
        out.append(PluginEntry(ep.name, ep.value, dist.name if dist else "?", kind))
    return out
