"""Device choice for torch-based code (separators, torch BSS Eval, training), fallbacks recorded."""

from __future__ import annotations

from .errors import SeparatorError


def pick_device(requested: str) -> tuple[str, str | None]:
    """``(device, note)``: the device to run on, and a note when it differs from the request."""
    import torch

    if requested not in ("auto", "cpu", "cuda", "mps") and not requested.startswith("cuda:"):
        raise SeparatorError(f"device must be auto, cpu, cuda[:N] or mps, got {requested!r}")
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return ("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"), None
    if requested.startswith("cuda") and not torch.cuda.is_available():
        return "cpu", f"device {requested} requested but CUDA is not available: ran on cpu"
    if requested == "mps" and not has_mps:
        return "cpu", "device mps requested but MPS is not available: ran on cpu"
    return requested, None


class OnDevice:
    """Mixin for separators that run torch models: :meth:`_set_device` picks the device, and
    a fallback (cuda asked, none here) is reported through :meth:`notes`, which the runner
    records with the unit's conversions."""

    device: str = "cpu"
    device_note: str | None = None

    @classmethod
    def worker_resources(cls, params: dict) -> dict[str, float]:
        """A separator asked to run on CUDA takes a GPU worker's ``GPU`` resource."""
        return {"GPU": 1} if str(params.get("device", "")).startswith("cuda") else {}

    def _set_device(self, requested: str) -> None:
        self.device, self.device_note = pick_device(requested)

    def notes(self) -> list[str]:
        return [self.device_note] if self.device_note else []
