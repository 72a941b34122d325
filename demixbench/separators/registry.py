"""The separator registry, fed by the ``demixbench.separators`` entry points.

Built-in separators are declared in the project's own ``pyproject.toml`` the same way a plugin
declares its own, so there is one discovery path (:mod:`demixbench.plugins`). An entry point
must resolve to a :class:`~demixbench.separators.base.Separator` subclass whose sources are the
suite's stem names (or mapped onto them with ``stem_map``); anything else raises
:class:`PluginError` naming the plugin, its distribution and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .. import SUITE_STEMS
from ..errors import SeparatorError
from ..plugins import PluginEntry, PluginRegistry
from ..specs import convert_params
from .base import Separator

SeparatorEntry = PluginEntry  # (name, "module:attribute", distribution)

_LABEL = re.compile(r"[A-Za-z0-9_-]+")


def split_label(name: str) -> tuple[str, str | None]:
    """``"unet@early"`` → ``("unet", "early")``: a label lets one run hold a separator twice
    with different parameters (two checkpoints of one model), each its own rows and cache."""
    base, at, label = name.partition("@")
    if not at:
        return name, None
    if not base or not _LABEL.fullmatch(label):
        raise SeparatorError(f"separator name {name!r}: write NAME@LABEL with a label of letters, "
                             "digits, _ or -, e.g. unet@early")
    return base, label


def stem_problem(cls: type[Separator]) -> str | None:
    """Why a separator class's sources cannot be scored (None when they can)."""
    if not cls.sources:
        return "declares no sources; set the class attribute sources = ('vocals', ...)"
    stem_map = dict(getattr(cls, "stem_map", {}) or {})
    bad = [s for s in cls.sources if stem_map.get(s, s) not in SUITE_STEMS]
    if bad:
        return (f"declares source(s) {bad} that are not stems the suite scores; name them "
                f"among {', '.join(SUITE_STEMS)}, or map them with the class attribute "
                "stem_map = {'your_name': 'vocals', ...}")
    mapped = [stem_map.get(s, s) for s in cls.sources]
    if len(set(mapped)) != len(mapped):
        return f"maps two sources onto one stem ({mapped}); each stem may come from one source"
    return None


class SeparatorRegistry(PluginRegistry):
    """Separators by name. ``entries`` defaults to the installed entry points."""

    kind = "separator"

    def error(self, message: str) -> Exception:
        return SeparatorError(message)

    def check(self, entry: PluginEntry, obj: Any) -> str | None:
        if not (isinstance(obj, type) and issubclass(obj, Separator)):
            return ("is not a demixbench Separator subclass; point the entry point at a class "
                    "deriving from demixbench.separators.Separator")
        return stem_problem(obj)

    def get(self, name: str) -> Any:
        return super().get(split_label(name)[0])

    def create(self, name: str, **params: Any) -> Separator:
        """Build separator ``name`` with constructor ``params``; raises if it cannot run here."""
        return create_from_class(self.get(name), name, params)

    def spec(self, name: str, params: dict[str, Any]) -> SeparatorSpec:
        """What a worker needs to build ``name`` as this registry does (:class:`SeparatorSpec`)."""
        cls = self.get(name)
        installed = default_registry()
        shipped_class = None
        if split_label(name)[0] not in installed or installed.get(name) is not cls:
            shipped_class = cls  # not an installed entry point: the class travels with it
        return SeparatorSpec(name, dict(params), shipped_class,
                             tuple(sorted(cls.worker_resources(params).items())))


@dataclass(frozen=True)
class SeparatorSpec:
    """A separator as sent to wherever it is built: its registry name (with its label,
    ``unet@early``) and constructor parameters (weights included); a class that no installed
    entry point declares, or a ready-made instance (tests, external estimates), travels with
    it. :meth:`build` makes it the same way in this process and on a Dask worker."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    cls: type | None = None
    resources: tuple[tuple[str, float], ...] = ()  # worker resources a unit needs (GPU=1)
    instance: Any = None

    def build(self) -> Separator:
        if self.instance is not None:
            return self.instance
        if self.cls is not None:
            return create_from_class(self.cls, self.name, self.params)
        return default_registry().create(self.name, **self.params)

    def key(self) -> str:
        import json

        return json.dumps([self.name, self.params, repr(self.cls), id(self.instance)
                           if self.instance is not None else None], sort_keys=True, default=str)


def create_from_class(cls: type[Separator], name: str, params: dict[str, Any]) -> Separator:
    """Build ``cls`` as separator ``name`` (a label in the name is kept on the instance)."""
    # a model with weights checks them when it loads them (one-line MissingWeightsError)
    if not cls.needs_weights:
        ok, why = cls.availability()
        if not ok:
            raise SeparatorError(f"{name} is not available here: {why}")
    params = convert_params(name, cls, params)
    try:
        sep = cls(**params)
    except (TypeError, ValueError) as exc:
        raise SeparatorError(f"{name}: bad parameters {params}: {exc}") from None
    if split_label(name)[1] is not None:
        sep.name = name  # rows, cache and config carry the label; the class keeps its name
    return sep


@lru_cache(maxsize=1)
def default_registry() -> SeparatorRegistry:
    """The registry of installed separators (read once per process)."""
    return SeparatorRegistry()


class _WithInstance(SeparatorRegistry):
    """The installed separators plus one ready-made instance under its own name."""

    def __init__(self, instance: Separator):
        base = default_registry()
        super().__init__([base.entry(n) for n in base.names() if n != instance.name])
        self.instance = instance

    def names(self) -> list[str]:
        return sorted({*super().names(), self.instance.name})

    def __contains__(self, name: object) -> bool:
        return name == self.instance.name or super().__contains__(name)

    def get(self, name: str) -> Any:
        return type(self.instance) if name == self.instance.name else super().get(name)

    def create(self, name: str, **params: Any) -> Separator:
        return self.instance if name == self.instance.name else super().create(name, **params)

    def spec(self, name: str, params: dict[str, Any]) -> SeparatorSpec:
        if name == self.instance.name:
            return SeparatorSpec(name, dict(params), None,
                                 tuple(sorted(self.instance.worker_resources(params).items())),
                                 self.instance)
        return super().spec(name, params)


def with_instance(instance: Separator) -> SeparatorRegistry:
    """A registry whose ``instance.name`` is that ready-made instance (a separator built in a
    test, or external estimates), beside every installed separator."""
    return _WithInstance(instance)
