"""Strategies: separators that wrap a separator (progressive inference first).

A strategy is itself a :class:`~demixbench.separators.Separator` and exposes a trace of its
steps; result rows carry its name, its config hash and the step. A plain separator is the
strategy ``"none"`` at step 0. Specs on the command line look like
``progressive:target=vocals,steps=5,schedule=linear``.

Strategies are found through the ``demixbench.strategies`` entry points (the built-ins are
declared there too); a spec's values are converted to the types the strategy's constructor
annotates (:mod:`demixbench.specs`: ``int``, ``float``, ``bool``, ``list[float]`` written
``0.2/0.5/1``, ``Literal``, optional values).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import DemixbenchError
from ..plugins import PluginEntry, PluginRegistry
from ..separators.base import Separator
from ..specs import convert_params, parse_strategy_text
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


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """``"progressive:target=vocals,steps=5"`` -> ``("progressive", {"target": ..., ...})``,
    values typed from the strategy constructor's annotations (:mod:`demixbench.specs`)."""
    name, texts = parse_strategy_text(spec)
    if name == NO_STRATEGY and not texts:
        return name, {}
    registry = strategy_registry()
    if name not in registry:
        raise DemixbenchError(f"unknown strategy {name!r}; use one of "
                              f"{', '.join(registry.names())} (or {NO_STRATEGY} for the plain "
                              "separator)")
    cls = registry.get(name)
    return name, convert_params(name, cls, texts, what="--strategy", skip=("inner",))


def build_strategy(spec: str, inner: Separator) -> Strategy:
    name, params = parse_strategy(spec)
    try:
        return strategy_registry().get(name)(inner, **params)
    except (TypeError, ValueError) as exc:
        raise DemixbenchError(f"--strategy {spec}: {exc}") from None
