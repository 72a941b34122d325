"""Progressive inference (seed paper, eq. 1) over any separator.

For target stem t, mixture y and steps n = 1..N::

    x̂_0 = separate(y)[t]
    mix_n = (1 - β_n) y + β_n x̂_{n-1}
    x̂_n = separate(mix_n)[t]

With a perfect estimate the target keeps its level in every ``mix_n`` and the accompaniment
fades by (1 - β_n).

Non-target stems: every step returns the inner separator's one-shot (step 0) estimates for the
stems other than the target. The method refines only the target; later separations of ``mix_n``
see an accompaniment scaled by (1 - β_n) plus the target's errors, so their non-target outputs
are estimates of a different mixture and would not be comparable with step 0. Keeping step 0's
makes every step's non-target scores equal to step 0's, so per-step changes are the target's
alone. This choice is recorded in the strategy config (``others: "step0"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..separators.base import Separator
from .base import Step, Strategy
from .schedules import make_schedule


class ProgressiveSeparator(Strategy):
    """Progressive inference around ``inner`` for ``target``.

    ``schedule`` is a name of :func:`make_schedule` (``value`` for constant/geometric,
    ``betas`` for an explicit list). ``wiener=True`` asks for a Wiener refinement after each
    step, which needs the project's Wiener post-filter (not built yet: it raises).
    """

    strategy_name = "progressive"

    def __init__(self, inner: Separator, target: str = "vocals", steps: int = 5,
                 schedule: str = "linear", value: float | None = None,
                 betas: list[float] | None = None, wiener: bool = False):
        super().__init__(inner)
        if target not in inner.sources:
            raise DemixbenchError(f"progressive: {inner.name} has no stem {target!r}; choose one "
                                  f"of {', '.join(inner.sources)}")
        if wiener:
            raise DemixbenchError("progressive: wiener=true needs the Wiener post-filter, which "
                                  "demixbench does not have yet; run with wiener=false")
        self.target = target
        self.steps = int(steps)
        self.schedule = schedule
        self.value = value
        self.betas = make_schedule(schedule, self.steps, value, betas)

    def strategy_params(self) -> dict[str, Any]:
        return {"target": self.target, "steps": self.steps, "schedule": self.schedule,
                "betas": [round(float(b), 12) for b in self.betas], "wiener": False,
                "others": "step0"}

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        """Steps 0..N: the mixture fed to the inner separator and the estimates returned."""

        def run(mix: np.ndarray):
            if self.inner.oracle:
                return self.inner.separate(mix, sample_rate, references=references)
            return self.inner.separate(mix, sample_rate)

        first = run(mixture)
        steps = [Step(0, mixture, first, {"beta": 0.0})]
        previous = first[self.target]
        for n, beta in enumerate(self.betas, start=1):
            mix_n = ((1.0 - beta) * mixture + beta * previous).astype(np.float32)
            estimate = run(mix_n)[self.target]
            steps.append(Step(n, mix_n, {**first, self.target: estimate}, {"beta": float(beta)}))
            previous = estimate
        return steps
