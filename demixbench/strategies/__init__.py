"""Strategies: separators that wrap a separator (progressive inference first).

A strategy is itself a :class:`~demixbench.separators.Separator` and exposes a trace of its
steps; result rows carry its name, its config hash and the step. A plain separator is the
strategy ``"none"`` at step 0. Specs on the command line look like
``progressive:target=vocals,steps=5,schedule=linear``.
"""

from __future__ import annotations

from typing import Any

from ..errors import DemixbenchError
from ..separators.base import Separator
from .base import Step, Strategy
from .oracle_gain import OracleGain
from .progressive import ProgressiveSeparator
from .schedules import SCHEDULES, make_schedule
from .wiener import WienerFilter

NO_STRATEGY = "none"
STRATEGIES: dict[str, type[Strategy]] = {"progressive": ProgressiveSeparator,
                                         "oracle-gain": OracleGain,
                                         "wiener": WienerFilter}

__all__ = ["NO_STRATEGY", "SCHEDULES", "STRATEGIES", "OracleGain", "ProgressiveSeparator", "Step", "Strategy",
           "WienerFilter", "build_strategy", "make_schedule", "parse_strategy"]

_TYPES = {"steps": int, "value": float, "target": str, "schedule": str, "candidates": int,
          "adaptive": str, "iterations": int, "n_fft": int, "hop": int}
_BOOLS = ("wiener", "sum_to_mix")


def _parse_value(key: str, text: str) -> Any:
    if key in ("betas", "gains"):
        return [float(v) for v in text.split("/") if v]
    if key in _BOOLS:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return text.lower() in ("true", "1", "yes")
    return _TYPES.get(key, str)(text)


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """``"progressive:target=vocals,steps=5"`` -> ``("progressive", {"target": ..., ...})``."""
    name, _, rest = spec.partition(":")
    if name == NO_STRATEGY and not rest:
        return name, {}
    if name not in STRATEGIES:
        raise DemixbenchError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)} "
                              f"(or {NO_STRATEGY} for the plain separator)")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, text = part.partition("=")
        if not sep:
            raise DemixbenchError(f"--strategy {spec}: expected key=value, got {part!r}")
        try:
            params[key] = _parse_value(key, text)
        except ValueError:
            raise DemixbenchError(f"--strategy {spec}: bad value for {key}: {text!r}") from None
    return name, params


def build_strategy(spec: str, inner: Separator) -> Strategy:
    name, params = parse_strategy(spec)
    try:
        return STRATEGIES[name](inner, **params)
    except TypeError as exc:
        raise DemixbenchError(f"--strategy {spec}: {exc}") from None
