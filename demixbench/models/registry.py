"""The trainable architectures by name: config class, builder and a CPU-sized default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ..errors import DemixbenchError


@dataclass(frozen=True)
class Architecture:
    name: str
    config_class: type
    build: Callable[[Any], Any]
    description: str
    defaults: tuple[tuple[str, Any], ...] = ()  # this project's defaults over the class's

    def config(self, overrides: dict[str, Any] | None = None):
        """The default configuration with ``overrides`` (values converted to the fields' types)."""
        known = {f.name for f in fields(self.config_class)}
        base = self.config_class(**dict(self.defaults))
        values = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in known:
                raise DemixbenchError(f"{self.name}: no configuration key {key!r}; its keys: "
                                      f"{', '.join(sorted(known))}")
            values[key] = _convert(self.name, key, value, getattr(base, key))
        return self.config_class(**values)


def _convert(model: str, key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(type(default[0])(v) for v in value.split("/")) if default else ()
    except ValueError:
        raise DemixbenchError(f"{model}: {key}={value!r} is not a {type(default).__name__}") from None
    return value


def _architectures() -> dict[str, Architecture]:
    from .convtasnet import TasNetConfig, build_model
    from .demucs_lite import DemucsLiteConfig, build_demucs_lite
    from .unet import UNetConfig, build_unet

    return {
        "unet": Architecture("unet", UNetConfig, build_unet,
                             "spectrogram U-Net with a BLSTM bottleneck, soft masks, mixture "
                             "phase (seed report 003, section 4.1), sized for a CPU"),
        "demucs_lite": Architecture("demucs_lite", DemucsLiteConfig, build_demucs_lite,
                                    "simplified Demucs: waveform U-Net of 1-D convolutions, "
                                    "two-layer BLSTM bottleneck (seed report 003, section 7)"),
        "convtasnet": Architecture("convtasnet", TasNetConfig, build_model,
                                   "Conv-TasNet, a small configuration for CPU training",
                                   tuple(SMALL_TASNET.items())),
    }


# Conv-TasNet for CPU training: the music configuration (N=B=256, H=512, X=10, R=4) cut down
SMALL_TASNET = {"N": 128, "L": 32, "B": 64, "H": 128, "P": 3, "X": 7, "R": 2}

ARCHITECTURES: dict[str, Architecture] = {}


def architecture(name: str) -> Architecture:
    if not ARCHITECTURES:
        ARCHITECTURES.update(_architectures())
    if name not in ARCHITECTURES:
        raise DemixbenchError(f"no trainable model {name!r}; choose one of "
                              f"{', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]
