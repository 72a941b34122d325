"""Trainable separation networks (torch modules) and their checkpoint format.

Each architecture is a module with a frozen config dataclass and ``build(config)``; every model
maps a mixture ``(batch, channels, samples)`` to estimates ``(batch, sources, channels,
samples)``. :data:`ARCHITECTURES` names them for ``demixbench train`` and the learned
separators (:mod:`demixbench.separators.learned`).
"""

from __future__ import annotations

from .registry import ARCHITECTURES, Architecture, architecture

__all__ = ["ARCHITECTURES", "Architecture", "architecture"]
