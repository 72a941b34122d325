"""demixbench: a benchmark suite for music source separation.

Audio everywhere in the suite is a ``numpy.ndarray`` of dtype ``float32`` and shape
``(channels, samples)``, with its sample rate passed beside it.
"""

__version__ = "0.1.0"

STEMS = ("drums", "bass", "other", "vocals")
"""The four MUSDB18 stems, in MUSDB's order."""
