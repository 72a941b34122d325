"""python-audio-separator as an optional backend (extra ``audio-separator``): any UVR or MSST
model file a user already has in a local model folder (``--param audio_separator.model=FILE
--param audio_separator.model_dir=DIR``) becomes a separator, run by audio-separator's own
code (its MDX, MDXC/RoFormer, VR and Demucs paths) exactly as its users run it.

Nothing downloads: audio-separator looks a model up in UVR's model list
(``download_checks.json``) and fetches what the folder lacks; here a folder without that list,
or without the model's files, is a one-line error before audio-separator is asked (a folder it
filled once, online, has both). The mixture is written to a float WAV in a private temporary
folder, audio-separator writes each stem there, and the stems are read back; its peak
normalisation is disabled (``normalization_threshold=1``, no amplification) so the scores are
the model's. audio-separator's stem names are mapped onto the suite's (``Instrumental`` ->
``accompaniment``); stems with no suite name are left out and said so.

Its inference protocol is its own, not MSST's: on MSST's tiny bs_roformer reference checkpoint
its vocals differ from MSST's ``demix`` (and so from ``bs_roformer`` here); see the README.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import SUITE_STEMS
from ..errors import SeparatorError
from ..weights import MissingWeightsError
from .base import Estimates, Separator

NAMES = {"instrumental": "accompaniment", "no vocals": "accompaniment"}
DEFAULT_DIR = "/tmp/audio-separator-models/"  # audio-separator's own default


def _package():
    try:
        import audio_separator.separator as pkg
    except ImportError as exc:
        raise SeparatorError(f"audio_separator needs python-audio-separator ({exc}): pip "
                             "install 'demixbench[audio-separator]'") from None
    return pkg


def _stem_of(path: str) -> str:
    """``input_(Vocals)_model.wav`` -> ``vocals``."""
    inner = path.rsplit("/", 1)[-1].split("_(", 1)[-1].split(")_", 1)[0]
    return inner.strip().lower()


class AudioSeparator(Separator):
    name = "audio_separator"
    packages = ("audio-separator",)
    sources: tuple[str, ...] = ("vocals", "accompaniment")
    sample_rate = 44100
    channels = 2
    needs_weights = True
    default_run = False  # it runs the model file it is given: only when named
    description = ("a model file run by python-audio-separator from a local model folder "
                   "(UVR / MSST models; extra audio-separator)")

    def __init__(self, model: str | None = None, model_dir: str = DEFAULT_DIR):
        if not model:
            raise SeparatorError("audio_separator: name the model file: --param "
                                 "audio_separator.model=FILE [--param audio_separator."
                                 "model_dir=DIR]")
        folder = Path(model_dir).expanduser()
        listing = folder / "download_checks.json"
        if not listing.is_file():
            raise MissingWeightsError(
                f"audio_separator: {listing} is missing: audio-separator needs UVR's model list "
                "there (it downloads it, and this run downloads nothing); run audio-separator "
                f"once online with --model_file_dir {folder}, or copy the list there")
        path = folder / model
        if not path.is_file():
            raise MissingWeightsError(f"audio_separator: no model file {path}; download it "
                                      f"with audio-separator --download_model_only -m {model}")
        self.model, self.model_dir = model, str(folder)
        self.files = [path] + [p for p in (path.with_suffix(".yaml"),) if p.is_file()]
        self.weights_digest()
        self._work = tempfile.TemporaryDirectory(prefix="demixbench-audio-separator-")
        pkg = _package()
        self.runner = pkg.Separator(model_file_dir=str(folder), output_dir=self._work.name,
                                    output_format="WAV", log_level=logging.WARNING,
                                    normalization_threshold=1.0, amplification_threshold=0.0)
        try:
            self.runner.load_model(model_filename=model)
        except (ValueError, RuntimeError, OSError) as exc:
            raise SeparatorError(f"audio_separator: audio-separator could not load {model}: "
                                 f"{str(exc).splitlines()[0]}") from None
        self.dropped: list[str] = []
        probe = np.random.default_rng(0).standard_normal((2, 44100 * 2)).astype(np.float32) * 0.01
        self.sources = tuple(self._run(probe))  # the stems this model writes, in its order

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _package()
        except SeparatorError as exc:
            return False, str(exc)
        return False, "name a model file: --param audio_separator.model=FILE (and model_dir=DIR)"

    def params(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"model": self.model, "audio_separator": version("audio-separator"),
                "normalization_threshold": 1.0, "amplification_threshold": 0.0}

    def notes(self) -> list[str]:
        return [f"audio-separator stems with no suite name left out: {', '.join(self.dropped)}"
                ] if self.dropped else []

    def _run(self, mixture: np.ndarray) -> dict[str, np.ndarray]:
        import soundfile as sf

        work = Path(self._work.name)
        for old in work.glob("*.wav"):
            old.unlink()
        source = work / "input.wav"
        sf.write(source, np.ascontiguousarray(mixture.T), self.sample_rate, subtype="FLOAT")
        out, self.dropped = {}, []
        for written in self.runner.separate(str(source)):
            stem = _stem_of(str(written))
            stem = NAMES.get(stem, stem)
            if stem not in SUITE_STEMS or stem in out:
                self.dropped.append(stem)
                continue
            audio = sf.read(work / Path(written).name, dtype="float32", always_2d=True)[0].T
            out[stem] = audio
        if not out:
            raise SeparatorError(f"audio_separator: {self.model} wrote no stem the suite knows "
                                 f"(it wrote {', '.join(self.dropped) or 'nothing'})")
        return out

    def _separate(self, mixture, sample_rate, references) -> Estimates:
        out = self._run(mixture)
        n = mixture.shape[-1]
        return {s: np.pad(out[s], ((0, 0), (0, max(0, n - out[s].shape[-1]))))[:, :n]
                for s in self.sources}
