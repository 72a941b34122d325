"""What a run is asked to do (:class:`RunConfig`), what it planned (:class:`Variant`) and what it
did (:class:`RunSummary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import Dataset, open_dataset
from ..datasets.excerpt import excerpt_pieces
from ..strategies import NO_STRATEGY

DEFAULT_DATASETS = ("synthetic", "demo")
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
class Variant:
    """One planned (separator configuration, strategy) pair; the separator is built on demand."""

    name: str  # registry name, with its label (unet@early)
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


def open_run_dataset(spec: str, config: RunConfig) -> Dataset:
    """The dataset of ``spec`` as a run sees it: cut into ``excerpts_per_track`` pieces."""
    return excerpt_pieces(open_dataset(spec), config.excerpts_per_track, config.excerpt)
