"""Separators: the contract, the registry, and the built-in separators."""

from ..identity import stable_hash
from .base import Estimates, Separator, adapt_inputs, restore_outputs, separate_adapted
from .registry import SeparatorEntry, SeparatorRegistry, SeparatorSpec, default_registry

__all__ = ["Estimates", "Separator", "SeparatorEntry", "SeparatorRegistry", "adapt_inputs",
           "SeparatorSpec", "default_registry", "restore_outputs", "separate_adapted", "stable_hash"]
