"""Separators: the contract, the registry, and the built-in separators."""

from .base import Estimates, Separator, adapt_inputs, restore_outputs, separate_adapted, stable_hash
from .registry import SeparatorEntry, SeparatorRegistry, default_registry

__all__ = ["Estimates", "Separator", "SeparatorEntry", "SeparatorRegistry", "adapt_inputs",
           "default_registry", "restore_outputs", "separate_adapted", "stable_hash"]
