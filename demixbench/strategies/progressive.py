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

Adaptive β (Zang et al. 2025's idea, the seed paper's future work): at each step, K candidate
weights ``β = k / K`` (k = 1..K) are tried and one estimate is kept, chosen by

- ``adaptive="oracle"``: the SI-SDR of the candidate against the reference target (what Zang
  et al.'s released music code does). It needs the references: an oracle, marked so in every row;
- ``adaptive="blind"``: no reference. A separator that is given a clean target should return it
  unchanged, so a candidate ``x`` is scored by how little re-separating it changes it:
  ``SDR(x, separate(x)[t])`` (idempotence). Leakage of accompaniment into ``x`` is what the
  separator removes on the second pass, so less change means less leakage. This costs one more
  separation per candidate.

In both modes the previous estimate is itself a candidate, so the criterion never gets worse
from one step to the next; the chosen β (None when the previous estimate is kept) is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..metrics.scoring import with_accompaniment
from ..metrics.sdr import si_sdr, usdr
from ..separators.base import Separator, check_range
from ..separators.wiener import wiener_postfilter
from .base import Step, Strategy
from .schedules import make_schedule


class ProgressiveSeparator(Strategy):
    """Progressive inference around ``inner`` for ``target``.

    ``schedule`` is a name of :func:`make_schedule` (``value`` for constant/geometric,
    ``betas`` for an explicit list). ``adaptive`` ("oracle" or "blind") replaces the schedule
    by a per-step choice among ``candidates`` weights (see the module doc). ``wiener=True``
    refines every separation (step 0 included) with the multichannel Wiener post-filter
    (one EM iteration), as the seed paper's Wiener switch does; the refined target is what is
    remixed into the next step.
    """

    strategy_name = "progressive"
    description = ("progressive inference (seed paper): remix the previous estimate of the target "
                   "with weight beta_n and separate again; schedules or adaptive beta")

    def __init__(self, inner: Separator, target: str = "vocals", steps: int = 5,
                 schedule: str = "linear", value: float | None = None,
                 betas: list[float] | None = None, wiener: bool = False,
                 adaptive: str | None = None, candidates: int = 4):
        super().__init__(inner)
        if target not in inner.sources:
            raise DemixbenchError(f"progressive: {inner.name} has no stem {target!r}; choose one "
                                  f"of {', '.join(inner.sources)}")
        check_range("progressive", "steps", steps, 1, 1000, integer=True)
        check_range("progressive", "candidates", candidates, 1, 100, integer=True)
        self.wiener = bool(wiener)
        self.target = target
        self.steps = int(steps)
        self.schedule = schedule
        self.value = value
        if adaptive not in (None, "oracle", "blind"):
            raise DemixbenchError(f"progressive: adaptive must be oracle or blind, got {adaptive!r}")
        if adaptive and candidates < 1:
            raise DemixbenchError(f"progressive: candidates must be >= 1, got {candidates}")
        self.adaptive = adaptive
        self.candidates = int(candidates)
        self.betas = make_schedule(schedule, self.steps, value, betas)

    @property
    def oracle(self) -> bool:  # type: ignore[override]
        return self.inner.oracle or self.adaptive == "oracle"

    def strategy_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"target": self.target, "steps": self.steps, "wiener": self.wiener,
                                  "others": "step0"}
        if self.adaptive:
            params.update(adaptive=self.adaptive, candidates=self.candidates)
        else:
            params.update(schedule=self.schedule,
                          betas=[round(float(b), 12) for b in self.betas])
        return params

    def trace(self, mixture: np.ndarray, sample_rate: int,
              references: Mapping[str, np.ndarray] | None = None) -> list[Step]:
        """Steps 0..N: the mixture fed to the inner separator and the estimates returned."""
        if self.adaptive == "oracle":
            # accompaniment's reference is derived from the stems, as the scorer derives it
            references = with_accompaniment(references or {})
            if self.target not in references:
                raise DemixbenchError("progressive: adaptive=oracle needs the reference of "
                                      f"{self.target!r}")

        def run(mix: np.ndarray):
            est = self.run_inner(mix, sample_rate, references)
            return wiener_postfilter(mix, est) if self.wiener else est

        first = run(mixture)
        steps = [Step(0, mixture, first, {"beta": 0.0})]
        previous = first[self.target]
        for n in range(1, self.steps + 1):
            if self.adaptive:
                beta, mix_n, estimate, score = self._choose(mixture, previous, run, references)
                info = {"beta": beta, "kept_previous": beta is None, "criterion": score}
            else:
                beta = float(self.betas[n - 1])
                mix_n = self._blend(mixture, previous, beta)
                estimate = run(mix_n)[self.target]
                info = {"beta": beta}
            steps.append(Step(n, mix_n, {**first, self.target: estimate}, info))
            previous = estimate
        return steps

    @staticmethod
    def _blend(mixture: np.ndarray, previous: np.ndarray, beta: float) -> np.ndarray:
        return ((1.0 - beta) * mixture + beta * previous).astype(np.float32)

    def _criterion(self, estimate: np.ndarray, run, references) -> float:
        if not np.any(estimate):
            return float("-inf")
        if self.adaptive == "oracle":
            return float(np.mean(si_sdr(references[self.target], estimate)))
        return usdr(estimate, run(estimate)[self.target])  # idempotence, in dB

    def _choose(self, mixture, previous, run, references):
        """Best of the previous estimate (kept as is: β None) and K re-separations."""
        best = (None, mixture, previous, self._criterion(previous, run, references))
        for k in range(1, self.candidates + 1):
            beta = k / self.candidates
            mix = self._blend(mixture, previous, beta)
            estimate = run(mix)[self.target]
            score = self._criterion(estimate, run, references)
            if score > best[3]:
                best = (beta, mix, estimate, score)
        return best
