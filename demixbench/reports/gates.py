"""Regression gates, one rule for ``compare --fail-on`` and the pytest plugin's
``--demix-compare-fail``: ``METRIC[:TARGET]:DB`` (grammar in :mod:`demixbench.specs`).

A gate **fails** when, for a compared row of its metric (and target), the median paired change
drops by more than DB and the bootstrap 95 % CI of that median lies entirely below zero. A gate
that **cannot be evaluated** fails too, saying why: its metric or target is absent from the
comparison (on either side), or no row of it has the :data:`MIN_PAIRS` pairs a confidence
interval needs. ``allow_unevaluated`` (``--gate-unevaluated=warn``) makes those warnings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DemixbenchError
from ..metrics import METRICS
from ..specs import Gate, parse_gate

MIN_PAIRS = 2  # one pair has no bootstrap interval of its median


@dataclass
class GateOutcome:
    gate: Gate
    failed: list[dict]  # rows that dropped by more than the gate allows
    unevaluated: str | None = None  # why the gate could not be judged


def parse(text: str) -> Gate:
    """A gate, its metric checked against the installed metrics."""
    gate = parse_gate(text)
    if gate.metric not in METRICS:
        raise DemixbenchError(f"{text!r}: unknown metric {gate.metric!r}; choose from "
                              f"{', '.join(METRICS)}")
    return gate


def parse_list(texts: Sequence[str] | str | None) -> list[Gate]:
    if texts is None:
        return []
    items = texts.split(",") if isinstance(texts, str) else list(texts)
    return [parse(t.strip()) for t in items if t.strip()]


def label(gate: Gate) -> str:
    return f"{gate.metric}{':' + gate.target if gate.target else ''}:{gate.db:g}"


def evaluate(rows: Sequence[dict], gates: Sequence[Gate]) -> list[GateOutcome]:
    """Judge every gate against comparison rows (``metric``, ``target``, ``n``,
    ``median_diff``, ``ci_high``)."""
    out = []
    for g in gates:
        mine = [r for r in rows if r["metric"] == g.metric
                and (g.target is None or r["target"] == g.target)]
        if not mine:
            present = sorted({r["metric"] for r in rows})
            what = (f"metric {g.metric}" if not any(r["metric"] == g.metric for r in rows)
                    else f"target {g.target} of {g.metric}")
            out.append(GateOutcome(g, [], f"{what} is not in the comparison (compared: "
                                          f"{', '.join(present) or 'nothing'}); compare it on "
                                          "both sides"))
            continue
        enough = [r for r in mine if (r.get("n") or 0) >= MIN_PAIRS
                  and r.get("ci_high") is not None and math.isfinite(r["ci_high"])]
        failed = [r for r in enough if r["median_diff"] < -g.db and r["ci_high"] < 0]
        why = None
        if not enough:
            most = max((r.get("n") or 0) for r in mine)
            why = (f"at most {most} paired track(s) per row; a gate needs {MIN_PAIRS} or more "
                   "for a confidence interval")
        out.append(GateOutcome(g, failed, why))
    return out


def fails(outcomes: Sequence[GateOutcome], allow_unevaluated: bool = False) -> bool:
    return any(o.failed or (o.unevaluated and not allow_unevaluated) for o in outcomes)
