"""What a metric is, and the registry of metrics fed by the ``demixbench.metrics`` entry points.

A metric declares its unit, its direction, how per-track values are aggregated over tracks, and
its *scope*:

- ``"signal"``: computed per target on the whole excerpt,
  ``compute(reference, estimate, sample_rate) -> float`` with both ``(channels, samples)``
  (and ``mixture=`` too when it declares ``needs_mixture``);
- ``"bss_group"``: computed framewise on a BSS Eval group of sources (museval's grouping,
  :func:`demixbench.metrics.scoring.bss_groups`),
  ``compute(references, estimates, sample_rate, win=, hop=, backend=) -> {name: (nsrc, nwin)}``
  with arrays ``(nsrc, samples, channels)``; the per-track value is the median over frames.
  Metrics computed together (SDR, ISR, SIR, SAR) share one ``compute`` and are computed once.

Scoring (:func:`~demixbench.metrics.scoring.score_track`), the leaderboard and reports read these
declarations only, so a plugin metric needs no special case anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MetricError
from ..plugins import PluginEntry, PluginRegistry

SCOPES = ("signal", "bss_group")
AGGREGATES = ("median", "mean")


@dataclass(frozen=True)
class MetricInfo:
    """Describes one metric name as it appears in result rows, and how to compute it."""

    name: str
    unit: str
    higher_is_better: bool
    description: str
    aggregate: str  # how per-track values are combined across tracks: "median" or "mean"
    scope: str = "signal"  # "signal" or "bss_group" (see the module doc)
    compute: Callable[..., Any] | None = None
    # signal scope: still defined when the estimate is digital silence (uSDR is, SI-SDR is not)
    defined_for_silent_estimate: bool = False
    # signal scope: compute also takes ``mixture=`` (the track's mixture, (channels, samples));
    # log-WMSE scales by the mixture's level
    needs_mixture: bool = False
    # signal scope: still defined when the reference is digital silence (log-WMSE is, by design)
    defined_for_silent_reference: bool = False
    # modules its compute imports, and the pip requirement that provides them: a run checks
    # them before it separates anything (:meth:`missing`)
    requires: tuple[str, ...] = ()
    install: str = ""
    # further packages (distribution names) its compute calls, beside numpy, scipy and those
    # behind ``requires``: `demixbench list` shows them all with their versions
    packages: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Why this metric cannot be computed here (a module it needs is absent), or None."""
        import importlib.util

        absent = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not absent:
            return None
        return (f"{self.name} needs {', '.join(absent)}: pip install {self.install or absent[0]}")
    # the constants its definition depends on (uSDR's delta, BSS Eval's filter length, ...):
    # recorded with each run, and two runs are compared only when they agree
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def definition(self) -> dict[str, Any]:
        """What must be equal for two runs' values of this metric to be comparable."""
        return {"scope": self.scope, "aggregate": self.aggregate, "unit": self.unit,
                "higher_is_better": self.higher_is_better, **dict(self.parameters)}


def metric_problem(entry: PluginEntry, obj: Any) -> str | None:
    if not isinstance(obj, MetricInfo):
        return ("is not a demixbench MetricInfo; point the entry point at a "
                "demixbench.metrics.MetricInfo instance")
    if obj.name != entry.name:
        return f"declares the name {obj.name!r}; the entry point's name must be the same"
    if obj.scope not in SCOPES:
        return f"has scope {obj.scope!r}; use one of {', '.join(SCOPES)}"
    if obj.aggregate not in AGGREGATES:
        return f"aggregates by {obj.aggregate!r}; use one of {', '.join(AGGREGATES)}"
    if not callable(obj.compute):
        return "has no compute function; the scorer cannot compute it"
    return None


class MetricRegistry(PluginRegistry, Mapping):
    """Metrics by name (a read-only mapping name -> :class:`MetricInfo`)."""

    kind = "metric"

    def error(self, message: str) -> Exception:
        return MetricError(message)

    def check(self, entry: PluginEntry, obj: Any) -> str | None:
        return metric_problem(entry, obj)

    def __getitem__(self, name: str) -> MetricInfo:
        if name not in self._entries:
            raise KeyError(name)
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


class _LazyMetrics(Mapping):
    """:data:`METRICS`: the installed metrics, read from the entry points on first use."""

    _registry: MetricRegistry | None = None

    def _reg(self) -> MetricRegistry:
        if self._registry is None:
            self._registry = MetricRegistry()
        return self._registry

    def __getitem__(self, name: str) -> MetricInfo:
        return self._reg()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reg())

    def __len__(self) -> int:
        return len(self._reg())

    def registry(self) -> MetricRegistry:
        return self._reg()


METRICS = _LazyMetrics()
BSS_EVAL_METRICS = ("sdr", "isr", "sir", "sar")
