"""Computing one unit: load the track's excerpt, rebuild the mixture, separate (or read the
estimate cache) or trace a strategy, score every step. The same code runs in this process and in
a worker of a distributed run; it writes nothing (the caller is the one writer of the store).

Notices a unit raises (a silent stem, a moved excerpt) travel with its record, so a worker's
notices reach the run as a local unit's do.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from pathlib import Path

from ..datasets import Dataset, choose_excerpt, cut_and_mix
from ..errors import DemixbenchError
from ..metrics import score_track
from ..metrics.bsseval import HANDOVER_NOTICE
from ..separators import Separator, adapt_inputs, restore_outputs, separate_adapted
from ..separators.base import suite_stems
from ..strategies import NO_STRATEGY, Strategy
from .cache import EstimateCache, input_key
from .config import RunConfig
from .measure import measure
from .store import UnitRecord

MIN_SAMPLES = 4096  # shorter tracks cannot be separated (STFT frames) nor scored
EXCERPT_CACHE_BYTES = 512 << 20  # excerpts kept in memory across separators

Progress = Callable[[str], None]
# (dataset, subset, track, (excerpt start, stop) in samples, track length in samples) of the
# unit being run: external estimates read it to return the files of that track
CURRENT_TRACK: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "demixbench_current_track", default=None)


class UnitComputer:
    """Computes units (load the excerpt, separate or read the cache, score): what a run does
    per unit, in this process or in a worker of a distributed run."""

    def __init__(self, config: RunConfig, cache_dir: str | Path | None = None,
                 progress: Progress | None = None):
        self.config = config
        self.cache = EstimateCache(cache_dir) if cache_dir else None
        self.cache_dir = cache_dir
        self.progress = progress or (lambda msg: None)
        self.notices: list[str] = []
        self._excerpts: dict[tuple[str, str, str], tuple] = {}
        self._excerpt_bytes = 0

    def excerpt(self, dataset: Dataset, track):
        """A track's excerpt, kept in memory for the next separators while the excerpts kept
        stay under ``EXCERPT_CACHE_BYTES`` (beyond, tracks are read again)."""
        key = (dataset.name, track.subset, track.name)
        if key in self._excerpts:
            return self._excerpts[key]
        loaded = self._load(dataset, track)
        size = loaded[1].nbytes * (1 + len(loaded[2]))
        if self._excerpt_bytes + size <= EXCERPT_CACHE_BYTES:
            self._excerpts[key] = loaded
            self._excerpt_bytes += size
        return loaded

    def _load(self, dataset: Dataset, track):
        stems, sr = track.load()
        n = next(iter(stems.values())).shape[-1]
        if n < MIN_SAMPLES:
            raise DemixbenchError(f"{dataset.name}/{track.name}: only {n} samples long ({n / sr:.4f} s);"
                                  f" the suite needs at least {MIN_SAMPLES} samples to separate and "
                                  "score a track: drop it or give a longer one")
        excerpt = choose_excerpt(stems, sr, self.config.excerpt)
        refs, mixture = cut_and_mix(stems, excerpt, self.config.gains)
        notices = [f"{dataset.name}/{track.name}: {n}" for n in excerpt.notices]
        notices += [f"{dataset.name}/{track.name}: {s} is silent in the excerpt {excerpt.label}; "
                    "its metrics are NaN (silent reference)" for s in excerpt.silent_stems]
        self.notices.extend(n for n in notices if n not in self.notices)
        return excerpt, mixture, refs, sr, notices, n / sr

    def _separate(self, sep: Separator, mixture, refs, sr):
        """Plain separation through the estimate cache: ([(step, estimates, info, refs)], seconds,
        peak memory delta, cached, conversions)."""
        references = refs if sep.oracle else None
        key = input_key(mixture, sr, references) if self.cache else ""
        hit = (self.cache.get(sep.config_hash(), key, tuple(sep.sources), mixture.shape)
               if self.cache else None)
        if hit is not None:
            return [(0, suite_stems(sep, hit.estimates), {}, refs)], None, None, True, hit.conversions
        with measure() as m:
            estimates, conversions = separate_adapted(sep, mixture, sr, references=references)
        if self.cache and m.seconds >= self.config.cache_min_seconds:
            self.cache.put(sep.config_hash(), key, estimates, conversions)
        return ([(0, suite_stems(sep, estimates), {}, refs)], m.seconds, m.peak_delta_mb, False,
                conversions)

    def _trace(self, strategy: Strategy, mixture, refs, sr):
        """A strategy's steps, each brought back to the input's rate and shape."""
        with measure() as m:
            mix, model_refs, work_sr, conversions = adapt_inputs(strategy, mixture, sr, refs)
            steps = []
            back: list[str] = []
            for step in strategy.trace(mix, work_sr, model_refs if strategy.oracle else None):
                estimates, back = restore_outputs(step.estimates, work_sr, sr, mixture.shape)
                step_refs = refs
                if step.references is not None:
                    step_refs, _ = restore_outputs(step.references, work_sr, sr, mixture.shape)
                steps.append((step.index, suite_stems(strategy, estimates), step.info, step_refs))
        return steps, m.seconds, m.peak_delta_mb, False, conversions + back

    def compute_unit(self, run_id, unit_key, dataset, track, sep, strategy, excerpt, mixture,
                     refs, sr, notices, track_seconds) -> tuple[list[dict], UnitRecord]:
        """Separate (or read the estimate cache) and score one unit: its rows and record,
        nothing written (the caller writes, so a distributed run has one writer)."""
        where = CURRENT_TRACK.set((dataset.name, track.subset, track.name,
                                   (excerpt.start, excerpt.stop), int(round(track_seconds * sr))))
        try:
            if strategy is None:
                steps, sep_seconds, peak, cached, conversions = self._separate(sep, mixture, refs,
                                                                               sr)
            else:
                steps, sep_seconds, peak, cached, conversions = self._trace(strategy, mixture,
                                                                            refs, sr)
        finally:
            CURRENT_TRACK.reset(where)
        base = {"run_id": run_id, "dataset": dataset.name, "track": track.name,
                "subset": track.subset, "excerpt": excerpt.label, "separator": sep.name,
                "separator_hash": sep.config_hash(),
                "oracle": int(strategy.oracle if strategy else sep.oracle),
                "strategy": strategy.strategy_name if strategy else NO_STRATEGY,
                "strategy_hash": strategy.strategy_hash() if strategy else "",
                "sep_seconds": sep_seconds, "sep_peak_delta_mb": peak}
        rows = []
        t_metric = time.perf_counter()
        token = HANDOVER_NOTICE.set(lambda msg: self.progress(f"  {msg}"))
        try:
            scored = [(index, score_track(step_refs, estimates, self.config.metrics, sr,
                                          self.config.win, bsseval=self.config.bsseval,
                                          mixture=mixture), info)
                      for index, estimates, info, step_refs in steps]
        finally:
            HANDOVER_NOTICE.reset(token)
        for index, scores, info in scored:
            rows.extend({**base, "step": index, "target": s.target, "metric": s.metric,
                         "value": s.value, "nan_reason": s.nan_reason,
                         "detail": {**s.detail, **info} or None} for s in scores)
        metric_seconds = time.perf_counter() - t_metric
        if self.cache is not None and self.cache.notices:  # entries found wrong and recomputed
            notices = [*notices, *self.cache.notices]
            self.cache.notices.clear()
        record = UnitRecord(unit_key, dataset.name, track.name, sep.name, sep_seconds, peak,
                            metric_seconds, cached, conversions, notices, track.subset,
                            track_seconds)
        return rows, record
