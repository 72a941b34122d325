"""The Demucs family through the ``demucs`` package (4.1.0; it runs without torchaudio).

Models are built from the published files that :mod:`demixbench.weights` locates and
verifies; demucs's own downloader (which may fetch from the network) is never called. Inference
is demucs's ``apply_model`` with its chunking (``segment``, ``overlap``), random-shift
averaging (``shifts``; seeded here, so runs repeat) and ``split``.

The seeds' protocol, ``normalize=True`` (the default, as demucs's own ``separate`` does):
subtract the mean of the channel-averaged mixture, divide by its standard deviation, and undo
both on the output.

``demucs_unittest`` is demucs's small test architecture (an HDemucs with 4 channels) with
random weights drawn from a fixed seed: it needs no download and is the model the tests use.
Its scores mean nothing.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import numpy as np

from .. import STEMS
from ..device import OnDevice
from ..errors import SeparatorError
from ..weights import DEMUCS_NAMES, WeightsError, available, load_torch, locate, manifest
from .base import Estimates, Separator


def _import_demucs():
    try:
        import demucs.apply
        import demucs.states  # noqa: F401
    except ImportError as exc:
        raise SeparatorError(f"the Demucs separators need the demucs package ({exc}); "
                             "pip install demucs==4.1.0") from None
    return demucs


def _demucs_available() -> tuple[bool, str]:
    try:
        _import_demucs()
    except SeparatorError as exc:
        return False, str(exc)
    return True, ""


class DemucsSeparator(OnDevice, Separator):
    """A Demucs model or bag of models by name (subclasses set ``name`` and ``sources``)."""

    sources: tuple[str, ...] = STEMS
    sample_rate = 44100
    channels = 2
    needs_weights = True
    packages = ("demucs", "torch")
    trained_on_musdb_test: ClassVar[bool] = False
    description = "Demucs"

    def __init__(self, weights: str | None = None, segment: float | None = None,
                 overlap: float = 0.25, shifts: int = 0, split: bool = True, device: str = "cpu",
                 normalize: bool = True, seed: int = 0, verify_checksum: bool = True):
        if not 0 <= overlap < 1:
            raise SeparatorError(f"{self.name}: overlap must lie in [0, 1), got {overlap}")
        if shifts < 0:
            raise SeparatorError(f"{self.name}: shifts must be >= 0, got {shifts}")
        if segment is not None and segment <= 0:
            raise SeparatorError(f"{self.name}: segment must be positive seconds, got {segment}")
        self.weights, self.segment, self.overlap = weights, segment, float(overlap)
        self.shifts, self.split, self.normalize = int(shifts), bool(split), bool(normalize)
        self.seed = int(seed)
        # False: load a checkpoint in the published format that is not the published file (one
        # you fine-tuned); its SHA-256 is still part of config(), so results say which file
        self.verify_checksum = bool(verify_checksum)
        self._set_device(device)
        self.requested_device = device
        self.files = self._locate()
        self.model = self._build()
        self.weights_digest()  # the SHA-256 of the files as loaded is part of config()

    # -- weights -----------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        ok, why = _demucs_available()
        return available(cls.name) if ok else (ok, why)

    def _locate(self):
        return locate(type(self).name, self.weights, check=self.verify_checksum)

    def _build(self):
        _import_demucs()
        from demucs.apply import BagOfModels
        from demucs.states import load_model

        models = []
        for path in self.files:
            pkg = load_torch(path, demucs_classes=True)
            if not isinstance(pkg, dict) or "klass" not in pkg:
                raise WeightsError(f"{path} is not a demucs model package (klass/args/kwargs/"
                                   "state); pass a file published for this model")
            if isinstance(pkg.get("state"), dict) and pkg["state"].get("__quantized"):
                try:
                    import diffq  # noqa: F401
                except ImportError:
                    raise WeightsError(f"{self.name} is a quantized model: pip install diffq "
                                       "to load it") from None
            models.append(load_model(pkg))
        extra = manifest(type(self).name).extra
        bag = BagOfModels(models, extra.get("weights"), extra.get("segment"))
        return bag.eval()

    def params(self) -> dict[str, Any]:
        return {"model": type(self).name, "files": [p.name for p in self.files],
                "segment": self.segment, "overlap": self.overlap, "shifts": self.shifts,
                "split": self.split, "normalize": self.normalize, "seed": self.seed}

    # -- inference ---------------------------------------------------------------------------
    def _separate(self, mixture, sample_rate, references) -> Estimates:
        import torch
        from demucs.apply import apply_model

        x = torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32))
        mean = std = None
        if self.normalize:
            ref = x.mean(0)
            mean, std = ref.mean(), ref.std()
            if not torch.isfinite(std) or std < 1e-8:  # digital silence: nothing to scale
                mean, std = torch.tensor(0.0), torch.tensor(1.0)
            x = (x - mean) / std
        random.seed(self.seed)  # apply_model draws its shifts from Python's random
        kwargs = {"shifts": self.shifts, "split": self.split, "overlap": self.overlap,
                  "device": self.device, "progress": False}
        if self.segment is not None:
            kwargs["segment"] = self.segment
        with torch.no_grad():
            out = apply_model(self.model, x[None], **kwargs)[0]
        out = out.cpu()
        if self.normalize:
            out = out * std + mean
        model_sources = list(self.model.sources)
        return {s: out[model_sources.index(s)].numpy() for s in self.sources}


class DemucsUnittest(DemucsSeparator):
    name = "demucs_unittest"
    needs_weights = False
    default_run = False
    description = ("demucs's small HDemucs test architecture with seeded random weights (offline; "
                   "for tests, scores mean nothing)")

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return _demucs_available()

    def _locate(self):
        return []

    def _build(self):
        import torch
        from demucs.apply import BagOfModels
        from demucs.pretrained import demucs_unittest

        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            model = demucs_unittest()
        finally:
            torch.random.set_rng_state(state)
        return BagOfModels([model]).eval()


def _named(name: str, description: str, sources=STEMS, test_trained: bool = False) -> type:
    return type(name.title().replace("_", ""), (DemucsSeparator,),
                {"name": name, "description": description, "sources": sources,
                 "trained_on_musdb_test": test_trained, "__module__": __name__})


HDemucsMMI = _named("hdemucs_mmi", "Hybrid Demucs v3, trained on MUSDB18-HQ + 800 extra songs")
HTDemucs = _named("htdemucs", "Hybrid Transformer Demucs v4 (default demucs model)")
HTDemucsFT = _named("htdemucs_ft", "HT Demucs v4, fine-tuned per source (bag of 4)")
HTDemucs6S = _named("htdemucs_6s", "HT Demucs v4 with guitar and piano (6 sources; experimental)",
                    sources=("drums", "bass", "other", "vocals", "guitar", "piano"))
MDX = _named("mdx", "Demucs MDX 2021 track A bag, trained on MUSDB18-HQ train")
MDXQ = _named("mdx_q", "quantized mdx (needs diffq)")
MDXExtra = _named("mdx_extra", "Demucs MDX 2021 track B bag; trained on MUSDB18 train AND test",
                  test_trained=True)
MDXExtraQ = _named("mdx_extra_q", "quantized mdx_extra (needs diffq); trained on MUSDB18 test too",
                   test_trained=True)

assert {c.name for c in (HDemucsMMI, HTDemucs, HTDemucsFT, HTDemucs6S, MDX, MDXQ, MDXExtra,
                         MDXExtraQ)} == set(DEMUCS_NAMES)


# -- torchaudio's HDEMUCS_HIGH_MUSDB_PLUS, without torchaudio ---------------------------------
_TORCHAUDIO_PREFIXES = {"freq_encoder.": "encoder.", "freq_decoder.": "decoder.",
                        "time_encoder.": "tencoder.", "time_decoder.": "tdecoder."}


def torchaudio_hdemucs_state(state: dict, model) -> dict:
    """Rename a torchaudio ``HDemucs`` state dict to demucs's ``HDemucs`` module names.

    The two are the same network: torchaudio ported demucs v3's hybrid model and renamed its
    branches (``freq_encoder`` = ``encoder``, ``time_encoder`` = ``tencoder``, ...). The one
    difference in parameters is a GroupNorm that torchaudio builds in the time branch's
    "empty" merge layer and never uses in ``forward``; it is dropped here, and nothing else
    is. Verified by ``benchmarks/hdemucs_torchaudio_equivalence.py``: identical outputs
    (max |difference| 0.0) with random weights on 3 s and 7 s inputs.
    """
    out = {}
    for key, value in state.items():
        for old, new in _TORCHAUDIO_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    own = model.state_dict()
    for key in [k for k in out if k not in own]:
        parts = key.split(".")
        layer = getattr(model, parts[0])[int(parts[1])] if parts[0] == "tencoder" else None
        if layer is not None and getattr(layer, "empty", False) and parts[2] == "norm1":
            del out[key]  # torchaudio's unused norm in the empty merge layer
    return out


class HDemucsHighMusdbPlus(DemucsSeparator):
    """The seed paper's model: torchaudio's ``HDEMUCS_HIGH_MUSDB_PLUS`` (Hybrid Demucs, nfft
    4096, depth 6, trained on MUSDB18-HQ plus extra data), loaded from the user's copy of
    ``hdemucs_high_trained.pt`` into demucs's equivalent ``HDemucs`` (no torchaudio needed)."""

    name = "hdemucs_high_musdb_plus"
    description = ("torchaudio's HDEMUCS_HIGH_MUSDB_PLUS (the seed paper's model) in demucs's "
                   "HDemucs, from the user's hdemucs_high_trained.pt")

    def _build(self):
        _import_demucs()
        from demucs.apply import BagOfModels
        from demucs.hdemucs import HDemucs

        (path,) = self.files
        state = load_torch(path)
        if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
            raise WeightsError(f"{path} is not a state dict (torchaudio's hdemucs_high_trained.pt "
                               "is one)")
        model = HDemucs(list(STEMS), nfft=4096, depth=6)
        mapped = torchaudio_hdemucs_state(state, model)
        try:
            model.load_state_dict(mapped, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path} does not fit torchaudio's hdemucs_high(nfft=4096, depth=6) "
                               f"({str(exc).splitlines()[0]} ...); is it hdemucs_high_trained.pt?") from None
        return BagOfModels([model]).eval()
