"""The Conv-TasNet separator: the network of :mod:`demixbench.models.convtasnet` through the
learned-separator base (checkpoint lookup, device, chunked inference)."""

from __future__ import annotations

from .. import STEMS
from .learned import LearnedSeparator


class ConvTasNetSeparator(LearnedSeparator):
    """Conv-TasNet from a checkpoint (``weights``; the shipped one by default); ``segment``
    seconds chunks the input with demucs's overlap-add (``overlap``), else the whole input goes
    through at once."""

    name = "convtasnet"
    model_name = "convtasnet"
    sources: tuple[str, ...] = STEMS
    description = ("Conv-TasNet (this project's implementation): shipped, a small configuration "
                   "trained here on CC0 + synthetic songs; --weights for the Demucs v2 music "
                   "configuration or your own")

    def __init__(self, weights: str | None = None, segment: float | None = None,
                 overlap: float = 0.25, device: str = "cpu"):
        super().__init__(weights, segment, overlap, device)

    def _missing(self) -> str:
        return ("convtasnet: no published checkpoint for this implementation; pass --weights "
                "CHECKPOINT (one you trained, saved with demixbench.models.convtasnet."
                "save_checkpoint)")
