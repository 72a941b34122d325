"""The checkpoint format of the trainable models: ``{"format": "demixbench-model-1", "model":
NAME, "config": {...}, "state_dict": {...}, "training": {...}}``, written by ``torch.save`` and
read with ``weights_only=True`` (plain containers and tensors only). ``state_dict`` may be
float16 (the shipped checkpoints are: half the size, and the models run in float32 after
loading); ``training`` records what made it (data fingerprints, steps, minutes, seed,
validation scores)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..weights import MissingWeightsError, WeightsError, load_torch
from .registry import architecture

FORMAT = "demixbench-model-1"


def config_dict(config) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def save_model(model, name: str, path: str | Path, training: dict | None = None,
               half: bool = False) -> Path:
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "model": name, "config": config_dict(model.config),
                "state_dict": state, "training": training or {}}, tmp)
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_package(path: str | Path, expected: str | None = None) -> dict:
    """The checkpoint's dict, checked: its format and (with ``expected``) its model name."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{expected or 'model'}: no checkpoint at {path}; train one "
                                  f"with `demixbench train {expected or 'MODEL'} ... --out {path}`")
    pkg = load_torch(path)
    if not isinstance(pkg, dict) or pkg.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a demixbench model checkpoint (expected a dict with "
                           f"format {FORMAT}, model, config and state_dict)")
    if expected is not None and pkg.get("model") != expected:
        raise WeightsError(f"{path} holds a {pkg.get('model')} model, not {expected}; pass it "
                           f"to the {pkg.get('model')} separator")
    return pkg


def load_model(path: str | Path, expected: str | None = None):
    """``(model in eval mode, float32; the checkpoint's dict)``."""
    pkg = read_package(path, expected)
    arch = architecture(pkg["model"])
    try:
        config = arch.config_class(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in pkg["config"].items()})
        model = arch.build(config)
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in pkg["state_dict"].items()}
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise WeightsError(f"{path}: config and weights do not fit "
                           f"({str(exc).splitlines()[0]})") from None
    return model.eval(), pkg
