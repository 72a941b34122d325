"""Strategies: separators that wrap a separator (progressive inference first).

A strategy is itself a :class:`~demixbench.separators.Separator` and exposes a trace of its
steps; result rows carry its name, its config hash and the step. A plain separator is the
strategy ``"none"`` at step 0. Specs on the command line look like
``progressive:target=vocals,steps=5,schedule=linear``.

Strategies are found through the ``demixbench.strategies`` entry points (the built-ins are
declared there too); a spec's values are converted to the types the strategy's constructor
annotates (``int``, ``float``, ``bool``, ``list[float]`` written ``0.2/0.5/1``, else text).
"""

from __future__ import annotations

import inspect
import math
import typing
from functools import lru_cache
from typing import Any

from ..errors import DemixbenchError
from ..plugins import PluginEntry, PluginRegistry
from ..separators.base import Separator
from .base import Step, Strategy
from .oracle_gain import OracleGain
from .progressive import ProgressiveSeparator
from .schedules import SCHEDULES, make_schedule
from .wiener import WienerFilter

NO_STRATEGY = "none"

__all__ = ["NO_STRATEGY", "SCHEDULES", "OracleGain", "ProgressiveSeparator", "Step", "Strategy",
           "StrategyRegistry", "WienerFilter", "build_strategy", "make_schedule", "parse_strategy",
           "strategy_registry"]


class StrategyRegistry(PluginRegistry):
    kind = "strategy"

    def error(self, message: str) -> Exception:
        return DemixbenchError(message)

    def check(self, entry: PluginEntry, obj: Any) -> str | None:
        if not (isinstance(obj, type) and issubclass(obj, Strategy)):
            return ("is not a demixbench Strategy subclass; point the entry point at a class "
                    "deriving from demixbench.strategies.Strategy")
        if obj.strategy_name != entry.name:
            return (f"sets strategy_name = {obj.strategy_name!r}; it must be the entry point's "
                    f"name {entry.name!r}")
        return None


@lru_cache(maxsize=1)
def strategy_registry() -> StrategyRegistry:
    """The installed strategies (read once per process)."""
    return StrategyRegistry()


_BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("not a finite number")
    return x


def _annotation_kind(cls: type, key: str) -> str:
    """"int", "float", "bool", "list" or "str": the constructor's annotation of ``key``."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: read them as text
        hints = {}
    hint = hints.get(key)
    if hint is None:
        param = inspect.signature(cls.__init__).parameters.get(key)
        hint = param.annotation if param is not None else None
    text = hint if isinstance(hint, str) else repr(hint)
    for kind in ("list", "bool", "int", "float"):
        if kind in text:
            return kind
    return "str"


def _parse_value(cls: type, key: str, text: str) -> Any:
    kind = _annotation_kind(cls, key)
    if kind == "list":
        return [_finite(float(v)) for v in text.split("/") if v]
    if kind == "bool":
        if text.lower() not in _BOOL_TEXT:
            raise ValueError(text)
        return _BOOL_TEXT[text.lower()]
    if kind == "int":
        return int(text)
    if kind == "float":
        return _finite(float(text))
    return text


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """``"progressive:target=vocals,steps=5"`` -> ``("progressive", {"target": ..., ...})``."""
    name, _, rest = spec.partition(":")
    if name == NO_STRATEGY and not rest:
        return name, {}
    registry = strategy_registry()
    if name not in registry:
        raise DemixbenchError(f"unknown strategy {name!r}; use one of "
                              f"{', '.join(registry.names())} (or {NO_STRATEGY} for the plain "
                              "separator)")
    cls = registry.get(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "inner")]
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, text = part.partition("=")
        if not sep:
            raise DemixbenchError(f"--strategy {spec}: expected key=value, got {part!r}")
        if key not in accepted:
            raise DemixbenchError(f"--strategy {spec}: {name} has no option {key!r}; its options: "
                                  f"{', '.join(accepted)}")
        try:
            params[key] = _parse_value(cls, key, text)
        except ValueError:
            raise DemixbenchError(f"--strategy {spec}: bad value for {key}: {text!r}") from None
    return name, params


def build_strategy(spec: str, inner: Separator) -> Strategy:
    name, params = parse_strategy(spec)
    try:
        return strategy_registry().get(name)(inner, **params)
    except (TypeError, ValueError) as exc:
        raise DemixbenchError(f"--strategy {spec}: {exc}") from None
