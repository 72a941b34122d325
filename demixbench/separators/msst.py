"""Separators from checkpoints in MSST's format (Music-Source-Separation-Training: a YAML config
and a state dict), the form most of the field's published RoFormer, SCNet and MDX23C models
take. The network comes from the package that implements it, or is this project's own where
none does (:mod:`demixbench.models.msst.networks`), inference is MSST's own chunked
overlap-add (:mod:`demixbench.models.msst.demix`), so a checkpoint scores here what it scores
in MSST.

``--weights CKPT --param NAME.config=CONFIG.yaml`` runs any checkpoint of the architecture
(the config also found beside the checkpoint as ``CKPT-stem.yaml`` or ``config.yaml``); with no
``--weights``, ``bs_roformer``, ``mel_band_roformer``, ``mdx23c`` and ``scnet`` load the
published checkpoint named in :mod:`demixbench.published` (``demixbench fetch NAME`` downloads
it). The SHA-256 of the checkpoint and of the config is part of the separator's identity, and so
are the chunking and batching (MSST's window decision depends on the batch size, so it changes the output).

Single-target configs (``training.target_instrument``) return the target and, as MSST's
``--extract_instrumental`` does, the mixture minus the target as ``accompaniment``.
MDX23C and SCNet run on this project's own networks (:mod:`demixbench.models.msst.tfc_tdf`,
:mod:`demixbench.models.msst.scnet`: no package implements them), which load MSST's reference
checkpoints strictly and reproduce MSST's outputs (``tests/test_msst_models.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import SUITE_STEMS
from ..device import OnDevice
from ..errors import SeparatorError
from ..models.msst.networks import ROFORMERS
from ..weights import MissingWeightsError, available, locate
from .base import Estimates, Separator

STEM_NAMES = {"instrumental": "accompaniment", "instrum": "accompaniment"}


def find_config(weights: Path) -> Path | None:
    for candidate in (weights.with_suffix(".yaml"), weights.with_suffix(".yml"),
                      weights.parent / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


class MSSTSeparator(OnDevice, Separator):
    """A checkpoint of MSST model type ``model_type`` (subclasses set it and ``name``)."""

    model_type: ClassVar[str] = ""
    published: ClassVar[bool] = False  # the weights manifest names a default checkpoint
    sources: tuple[str, ...] = ("vocals", "accompaniment")
    sample_rate = 44100
    channels = 2
    needs_weights = True

    def __init__(self, weights: str | None = None, config: str | None = None,
                 batch_size: int | None = None, num_overlap: int | None = None,
                 normalize: bool | None = None, instrumental: bool = True,
                 device: str = "cpu"):
        from ..models.msst.config import instruments, load_config, sample_rate

        ckpt, config_path = self._files(weights, config)
        self.config_data = load_config(config_path)
        inference = self.config_data.setdefault("inference", {})
        if batch_size is not None:
            inference["batch_size"] = int(batch_size)
        if num_overlap is not None:
            inference["num_overlap"] = int(num_overlap)
        self.normalize = bool(inference.get("normalize", False) if normalize is None
                              else normalize)
        self.instruments = instruments(self.config_data)
        self.targeted = bool(self.config_data.get("training", {}).get("target_instrument"))
        self.instrumental = bool(instrumental) and self.targeted
        names = [STEM_NAMES.get(n, n) for n in self.instruments]
        if self.instrumental and "accompaniment" not in names:
            names.append("accompaniment")
        unknown = [n for n in names if n not in SUITE_STEMS]
        if unknown or len(set(names)) != len(names):
            raise SeparatorError(f"{self.name}: the config's instruments {self.instruments} are "
                                 f"not distinct stems of the suite ({', '.join(SUITE_STEMS)})")
        self.sources = tuple(names)
        self.sample_rate = sample_rate(self.config_data)
        self.files = [ckpt, config_path]
        self.weights_digest()
        self._set_device(device)
        self.model = self._build(ckpt)

    def _files(self, weights: str | None, config: str | None) -> tuple[Path, Path]:
        if weights is None:
            if not self.published:
                raise MissingWeightsError(self._needs_weights())
            ckpt, config_path = locate(self.name)
            return ckpt, Path(config) if config else config_path
        ckpt = Path(weights).expanduser()
        if not ckpt.is_file():
            raise MissingWeightsError(f"{self.name}: no checkpoint at {ckpt}")
        found = Path(config).expanduser() if config else find_config(ckpt)
        if found is None:
            raise SeparatorError(f"{self.name}: no config for {ckpt}: pass the YAML that came "
                                 f"with it (--param {self.name}.config=CONFIG.yaml)")
        return ckpt, found

    def _needs_weights(self) -> str:
        return (f"{self.name} runs MSST-format checkpoints: pass --weights CKPT --param "
                f"{self.name}.config=CONFIG.yaml")

    def _build(self, ckpt: Path):
        from ..models.msst.networks import build, load_strict

        model = build(self.model_type, self.config_data)
        load_strict(model, ckpt, self.model_type)
        return model.to(self.device)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            return False, f"{cls.name} needs torch ({exc}): pip install 'demixbench[neural]'"
        if not cls.published:
            return False, (f"no published default: pass --weights CKPT --param "
                           f"{cls.name}.config=CONFIG.yaml")
        return available(cls.name)

    def params(self) -> dict[str, Any]:
        from ..models.msst.demix import chunking

        chunk, step, batch = chunking(self.config_data, self.model_type == "htdemucs")
        return {"model_type": self.model_type, "files": [p.name for p in self.files],
                "chunk": chunk, "step": step, "batch_size": batch, "normalize": self.normalize,
                "instrumental": self.instrumental,
                "zero_dc": bool(self.config_data.get("model", {}).get("zero_dc", True))
                if self.model_type in ROFORMERS else None}

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        from ..models.msst.demix import demix

        mix = np.asarray(mixture, dtype=np.float32)
        mean = std = None
        if self.normalize:  # MSST's inference.py: the mono mix's mean and std
            mono = mix.mean(axis=0)
            mean, std = float(mono.mean()), float(mono.std())
            mix = (mix - mean) / std if std > 0 else mix - mean
        est = demix(self.model, self.config_data, mix, self.device,
                    demucs_mode=self.model_type == "htdemucs", n_stems=len(self.instruments))
        if mean is not None:
            est = est * (std if std > 0 else 1.0) + mean
        out = {STEM_NAMES.get(n, n): est[i] for i, n in enumerate(self.instruments)}
        if self.instrumental and "accompaniment" not in out:
            out["accompaniment"] = mixture - out[STEM_NAMES.get(self.instruments[0],
                                                                  self.instruments[0])]
        return out


class BSRoformer(MSSTSeparator):
    name = "bs_roformer"
    packages = ("bs-roformer", "torch")
    model_type = "bs_roformer"
    published = True
    description = ("Band-Split RoFormer, MSST-format checkpoints on bs-roformer 0.3.10 "
                   "(default: viperx's ep_317 vocals model)")


class MelBandRoformer(MSSTSeparator):
    name = "mel_band_roformer"
    packages = ("bs-roformer", "torch")
    model_type = "mel_band_roformer"
    published = True
    description = ("Mel-Band RoFormer, MSST-format checkpoints on bs-roformer 0.3.10 "
                   "(default: viperx's ep_3005 vocals model)")


class MSSTHTDemucs(MSSTSeparator):
    name = "msst_htdemucs"
    packages = ("demucs", "torch")
    model_type = "htdemucs"
    sources = ("drums", "bass", "other", "vocals")
    description = "HT Demucs checkpoints trained with MSST, on demucs 4.1.0's HTDemucs"


class MDX23C(MSSTSeparator):
    name = "mdx23c"
    packages = ("torch",)
    model_type = "mdx23c"
    published = True
    sources = ("vocals", "other")  # the default checkpoint's (another's come from its config)
    description = ("MDX23C (KUIELab's TFC-TDF U-Net v3), MSST-format checkpoints on this "
                   "project's network, checked against MSST's output (default: MSST's "
                   "vocals / other model, v1.0.0)")


class SCNet(MSSTSeparator):
    name = "scnet"
    packages = ("torch",)
    model_type = "scnet"
    published = True
    sources = ("drums", "bass", "other", "vocals")
    description = ("SCNet (sparse compression network), MSST-format checkpoints on this "
                   "project's network, checked against MSST's output; inference.normalize "
                   "as MSST's inference.py applies it (default: MSST's SCNet Large, v1.0.8)")
