"""Separators: the contract, the registry, and the built-in separators."""

from .base import Estimates, Separator, separate_adapted, stable_hash
from .registry import SeparatorEntry, SeparatorRegistry, default_registry

__all__ = ["Estimates", "Separator", "SeparatorEntry", "SeparatorRegistry", "default_registry",
           "separate_adapted", "stable_hash"]
