"""One separator benchmarked through the runner and the store, as a value a test can inspect:
what the pytest plugin's ``separation_benchmark`` fixture returns.

:func:`measure` runs exactly what ``demixbench run --separators NAME`` runs (the same runner,
store and estimate cache, so a rerun reads the store and costs nothing) and returns a
:class:`SeparationResult`: per-track values, the suite's aggregates, per-step values of a
strategy, timing, and everything a saved benchmark file needs to pair it later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.excerpt import excerpt_seconds
from ..errors import DemixbenchError
from ..identity import stable_hash
from ..metrics import METRICS
from ..paths import estimate_cache_dir
from ..separators import Separator, default_registry
from ..separators.registry import with_instance
from ..strategies import NO_STRATEGY, parse_strategy
from .runner import DEFAULT_METRICS, RunConfig, Runner
from .store import ResultsStore


@dataclass
class SeparationResult:
    """A separator's scores on a dataset (one run of the suite)."""

    separator: str
    separator_hash: str
    separator_config: dict
    strategy: str
    strategy_config: dict
    dataset: str
    dataset_fingerprint: str
    run_id: str
    win: float
    excerpt: float
    metric_definitions: dict
    rows: list[dict] = field(repr=False)  # track, step, target, metric, value, nan_reason
    timing: dict = field(default_factory=dict)

    @property
    def steps(self) -> list[int]:
        return sorted({r["step"] for r in self.rows})

    @property
    def tracks(self) -> list[str]:
        return sorted({r["track"] for r in self.rows})

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(r["target"] for r in self.rows))

    def _step(self, step: int | None) -> int:
        steps = self.steps
        if step is None:
            return steps[-1]
        if step not in steps:
            raise DemixbenchError(f"{self.separator}: no step {step}; steps are {steps}")
        return step

    def values(self, target: str, metric: str, step: int | None = None) -> dict[str, float]:
        """Per-track values (NaN where the metric is undefined); ``step`` defaults to the last
        step of a strategy (0 for a plain separator)."""
        step = self._step(step)
        self._check(target, metric)
        return {r["track"]: r["value"] for r in self.rows
                if r["target"] == target and r["metric"] == metric and r["step"] == step}

    def aggregate(self, target: str, metric: str, step: int | None = None) -> float:
        """The value over tracks by the metric's own rule (median for cSDR and SI-SDR, mean for
        uSDR), NaN tracks left out; NaN when no track is scored."""
        v = np.array([x for x in self.values(target, metric, step).values() if not math.isnan(x)])
        if v.size == 0:
            return math.nan
        how = METRICS[metric].aggregate if metric in METRICS else "median"
        return float(np.median(v) if how == "median" else np.mean(v))

    def _check(self, target: str, metric: str) -> None:
        if metric not in {r["metric"] for r in self.rows}:
            raise DemixbenchError(f"{self.separator}: metric {metric!r} was not computed; "
                                  f"computed: {', '.join(sorted({r['metric'] for r in self.rows}))}")
        if target not in self.targets:
            raise DemixbenchError(f"{self.separator}: no target {target!r}; targets are "
                                  f"{', '.join(self.targets)}")

    def aggregates(self) -> list[dict]:
        out = []
        for step in self.steps:
            for target in self.targets:
                for metric in dict.fromkeys(r["metric"] for r in self.rows):
                    vals = self.values(target, metric, step).values()
                    out.append({"step": step, "target": target, "metric": metric,
                                "value": self.aggregate(target, metric, step),
                                "n": sum(not math.isnan(v) for v in vals), "tracks": len(vals)})
        return out

    def as_json(self) -> dict:
        from .store import finite_json

        return finite_json({
            "separator": self.separator, "separator_hash": self.separator_hash,
            "separator_config": self.separator_config, "strategy": self.strategy,
            "strategy_config": self.strategy_config, "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint, "run_id": self.run_id,
            "win": self.win, "excerpt": self.excerpt,
            "metric_definitions": self.metric_definitions, "values": self.rows,
            "aggregates": self.aggregates(), "timing": self.timing})


def measure(separator: str | Separator, dataset: str = "demo",
            metrics: Sequence[str] | None = None, excerpt: float = 30.0,
            params: Mapping[str, Any] | None = None, strategy: str | None = None,
            store: str | Path = ".demixbench/results.sqlite", cache: bool = True,
            win: float = 1.0, weights: str | None = None) -> SeparationResult:
    """Benchmark one separator (a registered name or an instance) on one dataset."""
    if isinstance(separator, Separator):
        if params:
            raise DemixbenchError("params apply to a separator given by name; configure the "
                                  "instance yourself")
        name, registry = separator.name, with_instance(separator)
        if not name:
            raise DemixbenchError(f"{type(separator).__name__} has no name; set the class "
                                  "attribute name = '...'")
    elif isinstance(separator, str):
        name, registry = separator, default_registry()
        registry.get(name)  # an unknown name is a one-line error naming the installed ones
    else:
        raise DemixbenchError(f"separator must be a registered name or a Separator instance, "
                              f"not {type(separator).__name__}")
    metrics = list(metrics or DEFAULT_METRICS)
    strategies = [strategy] if strategy and parse_strategy(strategy)[0] != NO_STRATEGY else []
    config = RunConfig(datasets=[dataset], separators=[name], metrics=metrics, excerpt=excerpt,
                       params={name: dict(params)} if params else {}, strategies=strategies,
                       win=win, weights=weights,
                       # the run id then includes the code's and libraries' versions: a rerun
                       # under the same ones resumes (nothing recomputed), other ones make a
                       # new run instead of being refused
                       new_run=True)
    store = Path(store)
    cache_dir = estimate_cache_dir() if cache else None
    with ResultsStore(store) as s:
        runner = Runner(config, s, cache_dir=cache_dir, registry=registry)
        variant = runner.variants[0]
        summary = runner.run(command=f"separation_benchmark {name}")
        rows = s.rows(summary.run_id)
        run_config = runner.run_config()
    rows = [r for r in rows if r["separator_hash"] == variant.config_hash]
    units = {(r["track"], r["subset"]): r for r in rows}.values()
    timed = [u for u in units if u["sep_seconds"] is not None]
    audio = sum(excerpt_seconds(u["excerpt"]) for u in timed)
    peaks = [u["sep_peak_delta_mb"] for u in units if u["sep_peak_delta_mb"] is not None]
    timing = {"rtf": sum(u["sep_seconds"] for u in timed) / audio if audio else math.nan,
              "separation_seconds": sum(u["sep_seconds"] for u in timed),
              "timed_tracks": len(timed), "cached_tracks": len(units) - len(timed),
              "peak_mb": max(peaks) if peaks else math.nan,
              "run_seconds": summary.seconds}
    (ds_name, tracks), = run_config["datasets"].items()
    return SeparationResult(
        separator=name, separator_hash=variant.config_hash, separator_config=variant.config,
        strategy=variant.strategy_name, strategy_config=variant.strategy_config,
        dataset=ds_name, dataset_fingerprint=stable_hash(tracks), run_id=summary.run_id,
        win=win, excerpt=excerpt, metric_definitions=run_config["metric_definitions"],
        rows=[{"track": r["track"], "subset": r["subset"], "step": r["step"],
               "target": r["target"], "metric": r["metric"], "value": r["value"],
               "nan_reason": r["nan_reason"]} for r in rows],
        timing=timing)
