"""The oracle-predictor experiment (seed paper's lemma, Fig. 2).

Mix the true stems with the target's gain raised step by step, separate each mixture, and score
every stem: if separation quality of the target rises with its relative level, remixing a
good estimate back into the mixture (progressive inference) has something to gain.

Step k uses ``gains[k]`` for the target and 1 for the other stems (step 0: the plain sum, the
seeds' equal weights). Each step's references are the stems as they are in that step's
mixture (the target scaled by its gain). It needs the references to build the mixtures, so it is
an oracle experiment: its rows are marked oracle whatever the inner separator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..separators.base import Separator
from .base import Step, Strategy

DEFAULT_GAINS = (1.0, 1.5, 2.0, 3.0, 4.0)


class OracleGain(Strategy):
    """Separate ``sum(stems) + (g - 1) * stems[target]`` for each gain ``g`` in ``gains``."""

    strategy_name = "oracle-gain"
    description = ("oracle predictor (seed paper's lemma): separate the true stems remixed with "
                   "the target's gain raised; oracle")

    def __init__(self, inner: Separator, target: str = "vocals",
                 gains: list[float] | None = None):
        super().__init__(inner)
        if target not in inner.sources:
            raise DemixbenchError(f"oracle-gain: {inner.name} has no stem {target!r}; choose "
                                  f"one of {', '.join(inner.sources)}")
        self.target = target
        self.gains = [float(g) for g in (gains or DEFAULT_GAINS)]
        if self.gains[0] != 1.0 or any(g <= 0 for g in self.gains):
            raise DemixbenchError(f"oracle-gain: gains must be positive and start at 1 (the plain "
                                  f"sum), got {self.gains}")

    @property
    def oracle(self) -> bool:  # type: ignore[override]
        return True

    def strategy_params(self) -> dict[str, Any]:
        return {"target": self.target, "gains": self.gains}

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        if references is None:
            raise DemixbenchError("oracle-gain needs the reference stems")
        steps = []
        for k, gain in enumerate(self.gains):
            refs = {s: (v * np.float32(gain) if s == self.target else v)
                    for s, v in references.items()}
            mix = np.sum(list(refs.values()), axis=0, dtype=np.float32)
            est = self.run_inner(mix, sample_rate, refs)
            steps.append(Step(k, mix, est, {"gain": gain}, references=refs))
        return steps
