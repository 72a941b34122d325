"""The separator registry: a plain object fed by the ``demixbench.separators`` entry points.

Built-in separators are declared in the project's own ``pyproject.toml`` the same way a plugin
declares its own, so there is one discovery path. An entry point must resolve to a
:class:`~demixbench.separators.base.Separator` subclass; a plugin that fails to import or
resolves to something else raises :class:`PluginError` naming the plugin, its distribution
and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

from ..errors import PluginError, SeparatorError
from .base import Separator

GROUP = "demixbench.separators"


@dataclass(frozen=True)
class SeparatorEntry:
    """One declared separator: its name, where it comes from, and how to load it."""

    name: str
    target: str  # "module:attribute"
    distribution: str

    def load(self) -> type[Separator]:
        ep = metadata.EntryPoint(name=self.name, value=self.target, group=GROUP)
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"separator plugin {self.name!r} ({self.target}, from distribution "
                f"{self.distribution!r}) failed to load: {type(exc).__name__}: {exc}; install "
                f"what it needs or uninstall {self.distribution}") from None
        if not (isinstance(obj, type) and issubclass(obj, Separator)):
            raise PluginError(
                f"separator plugin {self.name!r} ({self.target}, from distribution "
                f"{self.distribution!r}) is not a demixbench Separator subclass; point the "
                "entry point at a class deriving from demixbench.separators.Separator")
        if not obj.sources:
            raise PluginError(f"separator plugin {self.name!r} ({self.target}) declares no "
                              "sources; set the class attribute sources = ('vocals', ...)")
        return obj


class SeparatorRegistry:
    """Separators by name. ``entries`` defaults to the installed entry points."""

    def __init__(self, entries: Iterable[SeparatorEntry] | None = None):
        if entries is None:
            entries = _installed_entries()
        self._entries: dict[str, SeparatorEntry] = {}
        for e in entries:
            other = self._entries.get(e.name)
            if other is not None and other.target != e.target:
                raise PluginError(
                    f"separator name {e.name!r} is declared twice: by {other.distribution!r} "
                    f"({other.target}) and by {e.distribution!r} ({e.target}); uninstall one")
            self._entries[e.name] = e

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> SeparatorEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise SeparatorError(
                f"unknown separator {name!r}; known: {', '.join(self.names())} "
                "(`demixbench list` shows them all)") from None

    def get(self, name: str) -> type[Separator]:
        return self.entry(name).load()

    def create(self, name: str, **params: Any) -> Separator:
        """Build separator ``name`` with constructor ``params``; raises if it cannot run here."""
        cls = self.get(name)
        # a model with weights checks them when it loads them (one-line MissingWeightsError)
        if not cls.needs_weights:
            ok, why = cls.availability()
            if not ok:
                raise SeparatorError(f"{name} is not available here: {why}")
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise SeparatorError(f"{name}: bad parameters {params}: {exc}") from None


def _installed_entries() -> list[SeparatorEntry]:
    out = []
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        out.append(SeparatorEntry(ep.name, ep.value, dist.name if dist else "?"))
    return out


@lru_cache(maxsize=1)
def default_registry() -> SeparatorRegistry:
    """The registry of installed separators (read once per process)."""
    return SeparatorRegistry()
