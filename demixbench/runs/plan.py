"""Planning a run: which separator configurations and strategies run on which tracks, and the
run's identity.

Each separator is built once to learn its configuration (code identity and weights checksums
included) and released; the plan is a list of :class:`~demixbench.runs.config.Variant`. The
run id is a hash of the run configuration: the settings, every separator's and strategy's
configuration, each metric's definition and code, the engine's code and every track's
fingerprint (:mod:`demixbench.identity`). The same command on the same code and data resumes;
anything that changes a result makes another run.
"""

from __future__ import annotations

import gc
from dataclasses import asdict

from .. import __version__
from ..datasets import Dataset
from ..errors import DemixbenchError, PluginError, SeparatorError
from ..identity import code_identity, engine_identity, stable_hash, unit_key
from ..metrics import METRICS
from ..separators import Separator, SeparatorRegistry, default_registry
from ..specs import convert_params
from ..strategies import NO_STRATEGY, build_strategy, parse_strategy
from ..weights import MissingWeightsError, WeightsError
from .config import RunConfig, Variant, open_run_dataset
from .provenance import versions


class Skipped:
    """The separators skipped for one reason: one notice names them all (models of one family
    skipped because a package is not installed read ``skipped umx, umxhq, umxl: why``)."""

    def __init__(self, why: str):
        self.why, self.names = why, []

    def __str__(self) -> str:
        return f"skipped {', '.join(self.names)}: {self.why}"


def add_skip(notices: list, name: str, why: str) -> None:
    """Name ``name`` in the notice of the separators skipped for ``why``, started where the
    first of them was skipped."""
    for notice in notices:
        if isinstance(notice, Skipped) and notice.why == why:
            notice.names.append(name)
            return
    notices.append(Skipped(why))
    notices[-1].names.append(name)


class Planner:
    """The plan and identity of a :class:`RunConfig` (see the module doc)."""

    def __init__(self, config: RunConfig, registry: SeparatorRegistry | None = None,
                 datasets: list[Dataset] | None = None):
        self.config = config
        self.notices: list = []  # str, and Skipped while planning (then their text)
        self.typed_params: dict[str, dict] = {}  # --param values as the constructors take them
        self.registry = registry or default_registry()
        unknown = [m for m in config.metrics if m not in METRICS]
        if unknown:
            raise DemixbenchError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                                  f"{', '.join(METRICS)}")
        absent = [why for m in config.metrics if (why := METRICS[m].missing())]
        if absent:  # before any separation, not after the first unit's
            raise DemixbenchError(f"--metrics: {'; '.join(absent)}")
        for spec in config.strategies:
            parse_strategy(spec)  # a malformed spec is an error whatever the separators
        if config.excerpts_per_track < 1:
            raise DemixbenchError(f"--excerpts-per-track {config.excerpts_per_track}: give 1 or "
                                  "more")
        if config.excerpts_per_track > 1 and config.excerpt <= 0:
            raise DemixbenchError("--excerpts-per-track needs an excerpt length: --excerpt "
                                  "SECONDS (not 0)")
        # datasets already opened (and possibly restricted, as `evaluate` does) or opened here
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
                add_skip(self.notices, name, str(exc))
                continue
            if not explicit and not getattr(cls, "default_run", True):
                continue  # test-only models run when named
            params = convert_params(name, cls, dict(self.config.params.get(name, {})))
            if name in self.config.params:  # typed, so "1024" and 1024 are one run
                self.typed_params[name] = dict(params)
            if cls.needs_weights and self.config.weights and "weights" not in params:
                params["weights"] = self.config.weights
            if not cls.needs_weights:  # those report missing weights when built
                ok, why = cls.availability()
                if not ok:
                    add_skip(self.notices, name, why)
                    continue
            sep = self._build(name, params, explicit, no_weights)
            if sep is None:
                continue
            planned.extend(self._variants_of(sep, params))
            del sep
            gc.collect()
        self.notices = [str(n) for n in self.notices]
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
                add_skip(self.notices, name, str(exc))
            else:  # a default run lists them once (demixbench list says what each needs)
                no_weights.append(name)
        except WeightsError as exc:  # corrupt or unloadable weights: say which, go on
            add_skip(self.notices, name, str(exc))
        except SeparatorError as exc:
            if explicit or name in self.config.params:
                raise
            add_skip(self.notices, name, str(exc))
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
        c["params"] = self.typed_params
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
        # the code that computes rows: each metric's module closure and the engine's (excerpt
        # choice, mixing, scoring); an edit there is a new run, an edit of reports is not
        c["metric_code"] = {m: code_identity(METRICS[m].compute) for m in self.config.metrics}
        c["engine_code"] = engine_identity()
        if new_run:  # a run beside the one made under other versions
            c["versions"] = versions()
        return c

    def run_id(self) -> str:
        return stable_hash(self.run_config(), 12)

    def units(self) -> list[tuple[Dataset, object, Variant]]:
        """Every planned unit, separator by separator (one model in memory at a time), then
        strategy, dataset and track."""
        by_separator: dict[tuple[str, str], list[Variant]] = {}
        for v in self.variants:
            by_separator.setdefault((v.name, v.config_hash), []).append(v)
        return [(d, t, v) for variants in by_separator.values() for v in variants
                for d in self.datasets for t in d.tracks]

    @staticmethod
    def unit_key(dataset: Dataset, track, variant: Variant) -> str:
        return unit_key(dataset.name, track.subset, track.name, variant.config_hash,
                        variant.strategy_hash)
