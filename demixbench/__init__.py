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


def __getattr__(name: str):
    """``demixbench.run``, ``demixbench.open_results`` and ``demixbench.Results`` (the notebook
    API, :mod:`demixbench.api`), imported when first used so that ``import demixbench`` stays
    light."""
    if name in ("run", "open_results", "Results"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'demixbench' has no attribute {name!r}")
