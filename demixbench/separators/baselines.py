"""Baselines that need no model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import STEMS
from .base import Estimates, Separator


class MixtureSeparator(Separator):
    """``mix``: the mixture itself as the estimate of every stem (SiSEC's MIX lower bound).

    It also declares ``accompaniment`` so that the accompaniment score is the mixture's, not
    the sum of three copies of it.
    """

    name = "mix"
    sources = STEMS + ("accompaniment",)
    sample_rate = None
    description = "mixture as every estimate (lower bound)"

    def _separate(self, mixture: np.ndarray, sample_rate: int,
                  references: Mapping[str, np.ndarray] | None) -> Estimates:
        return {src: mixture.copy() for src in self.sources}
