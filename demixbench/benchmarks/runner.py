"""Plan and execute a benchmark: datasets' tracks x separators, scored by the chosen metrics.

The plan is a list of units (track x separator). Execution loads each track once, cuts the
excerpt, rebuilds the mixture as the sum of the stems, runs every separator on it (from the
estimate cache when possible), scores the estimates and writes the unit's rows in one
transaction. The run's id is a hash of its configuration, so the same command resumes a run
that was interrupted: finished units are skipped, missing ones are done.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..datasets import Dataset, choose_excerpt, cut_and_mix, open_dataset
from ..errors import DemixbenchError, PluginError, SeparatorError
from ..metrics import METRICS, score_track
from ..separators import (
    Separator,
    SeparatorRegistry,
    adapt_inputs,
    default_registry,
    restore_outputs,
    separate_adapted,
    stable_hash,
)
from ..strategies import NO_STRATEGY, Strategy, build_strategy, parse_strategy
from ..weights import MissingWeightsError, WeightsError
from .cache import EstimateCache, input_key
from .measure import measure
from .store import ResultsStore, UnitRecord

DEFAULT_DATASETS = ("synthetic", "demo")
DEFAULT_METRICS = ("sdr", "isr", "sir", "sar", "si_sdr", "usdr")


@dataclass
class RunConfig:
    datasets: list[str] = field(default_factory=lambda: list(DEFAULT_DATASETS))
    separators: list[str] | None = None  # None: every available registered separator
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    excerpt: float = 30.0  # seconds, 0 = whole track
    win: float = 1.0  # BSS Eval frame length and hop, seconds
    gains: dict[str, float] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=list)  # specs; empty = plain separators
    params: dict[str, dict] = field(default_factory=dict)  # separator -> constructor parameters
    weights: str | None = None  # a weight file or folder for the separators that need weights
    allow_test_trained: bool = False  # score models trained on MUSDB18 test on that split
    bsseval: str = "numpy"  # BSS Eval backend: "numpy" (this project's) or "museval"
    cache_min_seconds: float = 0.5  # cache estimates that took at least this long to compute


@dataclass
class Unit:
    dataset: str
    track_index: int
    separator: str


@dataclass
class RunSummary:
    run_id: str
    store: Path
    resumed: bool
    units_total: int
    units_done_before: int
    units_run: int
    notices: list[str]
    seconds: float


Progress = Callable[[str], None]


def _machine() -> dict:
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def _versions() -> dict:
    from importlib import metadata

    out = {"demixbench": __version__}
    for dist in ("numpy", "scipy", "museval", "soundfile", "soxr", "torch", "demucs"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


class Runner:
    """Executes a :class:`RunConfig` against a :class:`ResultsStore`."""

    def __init__(self, config: RunConfig, store: ResultsStore, cache_dir: str | Path | None = None,
                 registry: SeparatorRegistry | None = None, progress: Progress | None = None):
        self.config = config
        self.store = store
        self.cache = EstimateCache(cache_dir) if cache_dir else None
        self.registry = registry or default_registry()
        self.progress = progress or (lambda msg: None)
        self.notices: list[str] = []
        unknown = [m for m in config.metrics if m not in METRICS]
        if unknown:
            raise DemixbenchError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                                  f"{', '.join(METRICS)}")
        self.datasets: list[Dataset] = [open_dataset(spec) for spec in config.datasets]
        self.separators: list[Separator] = self._build_separators()
        self._check_test_trained()
        self.variants = self._build_variants()

    def _build_separators(self) -> list[Separator]:
        explicit = self.config.separators is not None
        names = self.config.separators if explicit else self.registry.names()
        stray = sorted(set(self.config.params) - set(names))
        if stray:
            raise DemixbenchError(f"--param names separator(s) {', '.join(stray)} that this run "
                                  f"does not include; run includes {', '.join(names)}")
        built = []
        no_weights: list[str] = []
        for name in names:
            try:
                cls = self.registry.get(name)
            except PluginError as exc:
                if explicit:
                    raise
                self.notices.append(f"skipped {name}: {exc}")
                continue
            if not explicit and not getattr(cls, "default_run", True):
                continue  # test-only models run when named
            params = dict(self.config.params.get(name, {}))
            if cls.needs_weights and self.config.weights and "weights" not in params:
                params["weights"] = self.config.weights
            if not cls.needs_weights:  # those report missing weights when built
                ok, why = cls.availability()
                if not ok:
                    self.notices.append(f"skipped {name}: {why}")
                    continue
            try:
                built.append(self.registry.create(name, **params))
            except MissingWeightsError as exc:  # missing weights skip the model, not the run
                if explicit:
                    self.notices.append(f"skipped {name}: {exc}")
                else:  # a default run lists them once (demixbench list says what each needs)
                    no_weights.append(name)
            except WeightsError as exc:  # corrupt or unloadable weights: say which, go on
                self.notices.append(f"skipped {name}: {exc}")
            except SeparatorError as exc:
                if explicit or name in self.config.params:
                    raise
                self.notices.append(f"skipped {name}: {exc}")
        if no_weights:
            self.notices.append(f"skipped {len(no_weights)} separators whose weights are not on this "
                                f"machine: {', '.join(no_weights)} (`demixbench list` says what each "
                                "needs; `demixbench fetch NAME` downloads published ones)")
        if not built:
            raise DemixbenchError("no separator can run: " + "; ".join(self.notices or ["none given"]))
        return built

    def _check_test_trained(self) -> None:
        """Models trained on MUSDB18 test (mdx_extra) must not be scored on it unnoticed."""
        leaky = [s.name for s in self.separators if getattr(type(s), "trained_on_musdb_test", False)]
        on_test = [d.name for d in self.datasets
                   if d.name.startswith("musdb:") and any(t.subset == "test" for t in d.tracks)]
        if not (leaky and on_test):
            return
        msg = (f"{', '.join(leaky)} {'was' if len(leaky) == 1 else 'were'} trained on MUSDB18 test, "
               f"and {', '.join(on_test)} holds test tracks: their scores there are not held-out")
        if not self.config.allow_test_trained:
            raise DemixbenchError(msg + "; drop them, use the train split, or pass "
                                  "--allow-test-trained to score them anyway")
        self.notices.append("warning: " + msg + " (--allow-test-trained)")

    def _build_variants(self) -> list[tuple[Separator, Strategy | None]]:
        """(separator, strategy) pairs to run: every separator plainly, or under each strategy."""
        if not self.config.strategies:
            return [(s, None) for s in self.separators]
        out = []
        for spec in self.config.strategies:
            name, _ = parse_strategy(spec)  # a malformed spec is an error whatever the separators
            if name == NO_STRATEGY:
                out.extend((s, None) for s in self.separators)
                continue
            for sep in self.separators:
                try:
                    out.append((sep, build_strategy(spec, sep)))
                except DemixbenchError as exc:
                    self.notices.append(f"skipped {sep.name} with {spec}: {exc}")
        if not out:
            raise DemixbenchError("no separator can run the strategy: " + "; ".join(self.notices))
        return out

    # -- identity ----------------------------------------------------------------------------
    def run_config(self) -> dict:
        c = asdict(self.config)
        c.pop("cache_min_seconds")
        c["separators"] = {s.name: s.config_hash() for s in self.separators}
        c["strategy_configs"] = {st.strategy_hash(): st.strategy_config()
                                 for _, st in self.variants if st}
        c["datasets"] = {d.name: {t.name: stable_hash(t.fingerprint) for t in d.tracks}
                         for d in self.datasets}
        return c

    def run_id(self) -> str:
        return stable_hash(self.run_config(), 12)

    def plan(self) -> list[Unit]:
        return [Unit(d.name, i, s.name) for d in self.datasets for i in range(len(d.tracks))
                for s, _ in self.variants]

    # -- execution ---------------------------------------------------------------------------
    def run(self, command: str = "") -> RunSummary:
        t0 = time.perf_counter()
        run_id = self.run_id()
        resumed = self.store.begin_run(run_id, self.run_config(), _versions(), _machine(), command)
        done = self.store.done_units(run_id)
        total = len(self.plan())
        if resumed:
            self.progress(f"resuming run {run_id}: {len(done)} of {total} units already done")
        ran = 0
        k = 0
        for dataset in self.datasets:
            for track in dataset.tracks:
                loaded = None
                for sep, strategy in self.variants:
                    k += 1
                    # the excerpt is a deterministic function of the track and the run config,
                    # so (track, separator config, strategy config) identifies the unit
                    unit_key = f"{dataset.name}|{track.name}|{sep.config_hash()}|" + (
                        strategy.strategy_hash() if strategy else NO_STRATEGY)
                    if unit_key in done:
                        continue
                    if loaded is None:
                        loaded = self._load(dataset, track)
                    label = sep.name + (f" {strategy.strategy_name}" if strategy else "")
                    self.progress(f"[{k}/{total}] {label} on {dataset.name}/{track.name}")
                    self._run_unit(run_id, unit_key, dataset, track, sep, strategy, *loaded)
                    ran += 1
        self.store.finish_run(run_id)
        return RunSummary(run_id, self.store.path, resumed, total, len(done), ran, self.notices,
                          time.perf_counter() - t0)

    def _load(self, dataset: Dataset, track):
        stems, sr = track.load()
        excerpt = choose_excerpt(stems, sr, self.config.excerpt)
        refs, mixture = cut_and_mix(stems, excerpt, self.config.gains)
        notices = [f"{dataset.name}/{track.name}: {s} is silent in the excerpt {excerpt.label}; "
                   "its metrics are NaN (silent reference)" for s in excerpt.silent_stems]
        self.notices.extend(n for n in notices if n not in self.notices)
        return excerpt, mixture, refs, sr, notices

    def _separate(self, sep: Separator, mixture, refs, sr):
        """Plain separation through the estimate cache: ([(step, estimates, info, refs)], seconds,
        peak RSS, cached, conversions)."""
        references = refs if sep.oracle else None
        key = input_key(mixture, sr, references) if self.cache else ""
        estimates = self.cache.get(sep.config_hash(), key) if self.cache else None
        if estimates is not None and set(estimates) == set(sep.sources):
            return [(0, estimates, {}, refs)], None, None, True, []
        with measure() as m:
            estimates, conversions = separate_adapted(sep, mixture, sr, references=references)
        if self.cache and m.seconds >= self.config.cache_min_seconds:
            self.cache.put(sep.config_hash(), key, estimates)
        return [(0, estimates, {}, refs)], m.seconds, m.peak_rss_mb, False, conversions

    def _trace(self, strategy: Strategy, mixture, refs, sr):
        """A strategy's steps, each brought back to the input's rate and shape."""
        with measure() as m:
            mix, model_refs, work_sr, conversions = adapt_inputs(strategy, mixture, sr, refs)
            steps = []
            for step in strategy.trace(mix, work_sr, model_refs if strategy.oracle else None):
                estimates, back = restore_outputs(step.estimates, work_sr, sr, mixture.shape)
                step_refs = refs
                if step.references is not None:
                    step_refs, _ = restore_outputs(step.references, work_sr, sr, mixture.shape)
                steps.append((step.index, estimates, step.info, step_refs))
        return steps, m.seconds, m.peak_rss_mb, False, conversions + back

    def _run_unit(self, run_id, unit_key, dataset, track, sep, strategy, excerpt, mixture, refs,
                  sr, notices) -> None:
        if strategy is None:
            steps, sep_seconds, peak, cached, conversions = self._separate(sep, mixture, refs, sr)
        else:
            steps, sep_seconds, peak, cached, conversions = self._trace(strategy, mixture, refs, sr)
        base = {"run_id": run_id, "dataset": dataset.name, "track": track.name,
                "subset": track.subset, "excerpt": excerpt.label, "separator": sep.name,
                "separator_hash": sep.config_hash(),
                "oracle": int(strategy.oracle if strategy else sep.oracle),
                "strategy": strategy.strategy_name if strategy else NO_STRATEGY,
                "strategy_hash": strategy.strategy_hash() if strategy else "",
                "sep_seconds": sep_seconds, "sep_peak_rss_mb": peak}
        rows = []
        t_metric = time.perf_counter()
        for index, estimates, info, step_refs in steps:
            scores = score_track(step_refs, estimates, self.config.metrics, sr, self.config.win,
                                 bsseval=self.config.bsseval)
            rows.extend({**base, "step": index, "target": s.target, "metric": s.metric,
                         "value": s.value, "nan_reason": s.nan_reason,
                         "detail": {**s.detail, **info} or None} for s in scores)
        metric_seconds = time.perf_counter() - t_metric
        record = UnitRecord(unit_key, dataset.name, track.name, sep.name, sep_seconds, peak,
                            metric_seconds, cached, conversions, notices)
        self.store.write_unit(run_id, record, rows)
