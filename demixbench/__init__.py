"""demixbench: a benchmark suite for music source separation.

Audio everywhere in the suite is a ``numpy.ndarray`` of dtype ``float32`` and shape
``(channels, samples)``, with its sample rate passed beside it.
"""

__version__ = "0.1.0"

STEMS = ("drums", "bass", "other", "vocals")
"""The four MUSDB18 stems, in MUSDB's order."""

SUITE_STEMS = (*STEMS, "accompaniment", "guitar", "piano")
"""Every stem name the suite scores: the four MUSDB stems, accompaniment (drums + bass + other)
and the two extra stems of 6-stem models. A separator's sources must be among them, or mapped
onto them with its ``stem_map``."""
