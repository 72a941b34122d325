"""An example demixbench plugin: a separator distributed in its own package.

It declares itself in its pyproject.toml under the entry-point group ``demixbench.separators``;
demixbench finds it once the package is installed.
"""

import numpy as np

from demixbench.separators import Separator


class HalfSplitSeparator(Separator):
    """Splits the mixture into vocals and accompaniment with a fixed gain (a toy 2-stem model)."""

    name = "example_split"
    sources = ("vocals", "accompaniment")
    sample_rate = 44100
    description = "example plugin: vocals = g * mixture, accompaniment = (1 - g) * mixture"

    def __init__(self, gain: float = 0.5):
        self.gain = float(gain)

    def params(self):
        return {"gain": self.gain}

    def _separate(self, mixture, sample_rate, references):
        g = np.float32(self.gain)
        return {"vocals": g * mixture, "accompaniment": (1 - g) * mixture}
