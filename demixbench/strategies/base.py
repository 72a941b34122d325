"""A strategy wraps a separator and is itself a :class:`Separator` (a decorator).

Besides the final estimates, a strategy exposes its *trace*: the input it fed the inner
separator and the estimates after every step, so one run scores every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..identity import code_identity, stable_hash
from ..separators.base import Estimates, Separator


@dataclass
class Step:
    """One step of a strategy: the mixture given to the inner separator and the estimates.
    ``references`` replaces the track's references for scoring this step (oracle experiments
    that rebuild the mixture), ``None`` keeps them."""

    index: int
    mixture: np.ndarray
    estimates: Estimates
    info: dict = field(default_factory=dict)
    references: dict | None = None


class Strategy(Separator):
    """Base class of strategies. Subclasses implement :meth:`trace`."""

    strategy_name: ClassVar[str] = ""

    def __init__(self, inner: Separator):
        self.inner = inner
        self.name = inner.name
        self.sources = inner.sources
        self.sample_rate = inner.sample_rate
        self.channels = inner.channels
        self.stem_map = inner.stem_map

    @property
    def oracle(self) -> bool:  # type: ignore[override]
        return self.inner.oracle

    def strategy_params(self) -> dict[str, Any]:
        return {}

    def notes(self) -> list[str]:
        return self.inner.notes()

    def strategy_config(self) -> dict[str, Any]:
        """The strategy's settings and the identity of its code (an edit is a new config)."""
        return {"strategy": self.strategy_name, **self.strategy_params(),
                "code": code_identity(type(self))}

    def strategy_hash(self) -> str:
        return stable_hash(self.strategy_config())

    def params(self) -> dict[str, Any]:
        return {"inner": self.inner.config(), **self.strategy_config()}

    def run_inner(self, mixture: np.ndarray, sample_rate: int,
                  references: Mapping[str, np.ndarray] | None = None) -> Estimates:
        """Separate with the inner separator; only an oracle inner one is given the references."""
        if self.inner.oracle:
            return self.inner.separate(mixture, sample_rate, references=references)
        return self.inner.separate(mixture, sample_rate)

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        raise NotImplementedError

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        return self.trace(mixture, sample_rate, references)[-1].estimates
