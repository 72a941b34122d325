"""The ``Separator`` contract every separator, plugin and strategy follows.

A separator takes its hyper-parameters in the constructor and the audio in :meth:`separate`; it
holds no per-input state. :meth:`Separator.separate` validates the input and the output around
the subclass's :meth:`Separator._separate`, so a plugin that breaks the contract fails with a
message naming it instead of corrupting results downstream.

Shape: mixture ``(channels, samples)`` float32 -> ``{source: (channels, samples) float32}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import __version__
from ..audio import adapt_channels, check_audio, fit_length, resample
from ..errors import SampleRateError, SeparatorError
from ..identity import code_identity, stable_hash

Estimates = dict[str, np.ndarray]


MAX_N_FFT = 1 << 16  # 1.5 s at 44.1 kHz; a larger frame only costs memory (n_fft=1e9: 24 GB)


def check_range(owner: str, name: str, value: Any, low: float, high: float,
                integer: bool = False) -> None:
    """Refuse a parameter outside ``[low, high]`` (bounds that keep memory and time sane)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if ok and integer and int(value) != value:
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        raise SeparatorError(f"{owner}: {name} must be {kind} in [{low:g}, {high:g}], got {value!r}")


def check_stft(owner: str, n_fft: Any, hop: Any | None = None) -> None:
    check_range(owner, "n_fft", n_fft, 16, MAX_N_FFT, integer=True)
    if hop is not None:
        check_range(owner, "hop", hop, 1, n_fft, integer=True)


class Separator(ABC):
    """Abstract music source separator.

    Class attributes a subclass sets:

    - ``name``: registry name (``"irm2"``);
    - ``sources``: the stems :meth:`separate` returns, in order;
    - ``sample_rate``: the rate the model works at, or ``None`` for any rate;
    - ``channels``: the channel count it needs, or ``None`` for any;
    - ``oracle``: ``True`` if it needs the reference stems (ideal masks). Oracle results are
      marked as such in every result row and never ranked with blind ones;
    - ``needs_weights``: ``True`` if it loads trained weights from disk;
    - ``stem_map``: ``{source: suite stem}`` for sources not named as the suite's stems
      (:data:`demixbench.SUITE_STEMS`), e.g. ``{"voice": "vocals"}``. Registration refuses a
      source that is neither a suite stem nor mapped onto one.
    """

    name: ClassVar[str] = ""
    sources: tuple[str, ...] = ()
    sample_rate: int | None = 44100
    channels: int | None = None
    oracle: ClassVar[bool] = False
    needs_weights: ClassVar[bool] = False
    description: ClassVar[str] = ""
    # False for test-only models (random weights): left out when a run names no separators
    default_run: ClassVar[bool] = True
    stem_map: ClassVar[dict[str, str]] = {}
    # the packages (distribution names) whose code computes the estimates, which `demixbench
    # list` shows with their installed versions (numpy and scipy go unnamed)
    packages: ClassVar[tuple[str, ...]] = ()
    # the implementation's version. The code's own digest is part of config() already, so an
    # edit never needs a bump; a version marks a change of meaning for readers of the rows
    version: ClassVar[str] = "1"

    # -- what a subclass implements ------------------------------------------------------
    @abstractmethod
    def _separate(self, mixture: np.ndarray, sample_rate: int,
                  references: Mapping[str, np.ndarray] | None) -> Estimates:
        """Return one estimate per name in ``sources`` (input already validated)."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters that change the output; part of :meth:`config`."""
        return {}

    @classmethod
    def worker_resources(cls, params: dict[str, Any]) -> dict[str, float]:
        """Dask worker resources one unit built with ``params`` needs, e.g. ``{"GPU": 1}`` so
        that only a GPU worker (``dask worker ADDRESS --resources GPU=1``) takes it. None by
        default."""
        return {}

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """Whether this separator can run on this machine, and if not, why and how to fix it."""
        return True, ""

    # -- the contract ----------------------------------------------------------------------
    def separate(self, mixture: np.ndarray, sample_rate: int, *,
                 references: Mapping[str, np.ndarray] | None = None) -> Estimates:
        """Separate ``mixture`` (``(channels, samples)``, float32) into ``sources``.

        ``references`` (stem -> ``(channels, samples)``) is required by oracle separators and
        ignored by the others. Returns ``{source: (channels, samples) float32}`` of the
        mixture's shape. Raises :class:`SampleRateError` when ``sample_rate`` differs from
        :attr:`sample_rate` (use :func:`separate_adapted` to resample explicitly).
        """
        mixture = check_audio(mixture, what=f"{self.name}: mixture")
        if self.sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise SampleRateError(
                f"{self.name} works at {self.sample_rate} Hz but got {sample_rate} Hz audio; "
                "resample it first (demixbench.separators.separate_adapted does so and records it)")
        if self.channels is not None and mixture.shape[0] != self.channels:
            raise SeparatorError(
                f"{self.name} needs {self.channels}-channel audio but got {mixture.shape[0]}; "
                "adapt it first (demixbench.separators.separate_adapted does so and records it)")
        if self.oracle:
            if references is None:
                raise SeparatorError(f"{self.name} is an oracle: it needs the reference stems "
                                     "(references={stem: audio})")
            references = {k: check_audio(v, what=f"{self.name}: reference {k}")
                          for k, v in references.items()}
            for k, v in references.items():
                if v.shape != mixture.shape:
                    raise SeparatorError(f"{self.name}: reference {k} has shape {v.shape}, "
                                         f"the mixture {mixture.shape}; they must match")
        estimates = self._separate(mixture, int(sample_rate), references if self.oracle else None)
        return self._check_output(estimates, mixture.shape)

    def _check_output(self, estimates: Mapping[str, np.ndarray], shape: tuple[int, int]) -> Estimates:
        if not isinstance(estimates, Mapping):
            raise SeparatorError(f"{self.name}: separate() must return a dict, "
                                 f"got {type(estimates).__name__}")
        if set(estimates) != set(self.sources):
            raise SeparatorError(f"{self.name}: returned stems {sorted(estimates)} but declares "
                                 f"sources {sorted(self.sources)}")
        out: Estimates = {}
        for src in self.sources:
            est = np.asarray(estimates[src])
            if est.shape != shape:
                raise SeparatorError(f"{self.name}: estimate {src!r} has shape {est.shape}, "
                                     f"expected the mixture's {shape}")
            if not np.all(np.isfinite(est)):
                raise SeparatorError(f"{self.name}: estimate {src!r} contains NaN or Inf")
            out[src] = np.ascontiguousarray(est, dtype=np.float32)
        return out

    def notes(self) -> list[str]:
        """What this instance changed from what it was asked (e.g. a device fallback); the
        runner records them with the unit's conversions."""
        return []

    def weight_files(self) -> list[Path]:
        """The files this instance loaded its weights from (``self.files`` by convention)."""
        return [Path(p) for p in getattr(self, "files", None) or []]

    def weights_digest(self) -> list[dict[str, str]]:
        """File name and SHA-256 of every weights file loaded, read once per instance (the
        files an instance loaded do not change under it)."""
        from ..weights import file_sha256

        files = self.weight_files()
        cached = getattr(self, "_weights_digest", None)
        if cached is None or cached[0] != files:
            cached = (files, [{"file": p.name, "sha256": file_sha256(p)} for p in files])
            self._weights_digest = cached
        return cached[1]

    def config(self) -> dict[str, Any]:
        """Everything that changes the output; its hash keys the estimate cache and result rows.

        It holds the class's implementation ``version``, the identity of the code that defines
        it (:func:`demixbench.identity.code_identity`: a digest of its module's source closure
        and the versions of the libraries it imports) and the SHA-256 of every weights file,
        so an edited line, an upgrade or a swapped file is a new configuration.
        """
        cls = type(self)
        return {
            "name": self.name,
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "version": cls.version,
            "code": code_identity(cls),
            "demixbench": __version__,
            "sources": list(self.sources),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "oracle": self.oracle,
            "params": self.params(),
            "weights": self.weights_digest(),
        }

    def config_hash(self) -> str:
        return stable_hash(self.config())

    def fit(self, tracks) -> Separator:
        """Learn from training tracks. Separators that learn nothing raise."""
        raise SeparatorError(f"{self.name} does not learn from data; it has no fit()")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"


def suite_stems(separator: Separator, estimates: Mapping[str, np.ndarray]) -> Estimates:
    """Estimates renamed to the suite's stem names through the separator's ``stem_map``."""
    stem_map = getattr(separator, "stem_map", {}) or {}
    return {stem_map.get(k, k): v for k, v in estimates.items()}


def adapt_inputs(separator: Separator, mixture: np.ndarray, sample_rate: int,
                 references: Mapping[str, np.ndarray] | None = None):
    """Bring the mixture (and, for oracles, the references) to the separator's rate and
    channel count. Returns ``(mixture, references, work_rate, conversions)``."""
    mixture = check_audio(mixture, what="mixture")
    work_sr = separator.sample_rate or sample_rate
    log: list[str] = []

    def to_model(x: np.ndarray, record: bool) -> np.ndarray:
        x, a = adapt_channels(x, separator.channels)
        x, b = resample(x, sample_rate, work_sr)
        if record:
            log.extend(f"input: {m}" for m in a + b)
        return x

    model_mix = to_model(mixture, record=True)
    model_refs = None
    if separator.oracle and references is not None:
        model_refs = {k: to_model(check_audio(v, what=f"reference {k}"), record=False)
                      for k, v in references.items()}
    return model_mix, model_refs, work_sr, log


def restore_outputs(estimates: Mapping[str, np.ndarray], work_sr: int, sample_rate: int,
                    shape: tuple[int, int]) -> tuple[Estimates, list[str]]:
    """Bring estimates back to the input's rate, channel count and length ``shape``."""
    n_ch, n = shape
    out: Estimates = {}
    log: list[str] = []
    for i, (src, est) in enumerate(estimates.items()):
        est, b = resample(est, work_sr, sample_rate)
        est, a = adapt_channels(est, n_ch)
        if i == 0:  # every stem goes through the same conversions: record them once
            log.extend(f"output: {m}" for m in b + a)
            if est.shape[1] != n:
                log.append(f"output: fitted from {est.shape[1]} to {n} samples")
        out[src] = fit_length(est, n)
    return out, log


def separate_adapted(separator: Separator, mixture: np.ndarray, sample_rate: int, *,
                     references: Mapping[str, np.ndarray] | None = None
                     ) -> tuple[Estimates, list[str]]:
    """Run ``separator`` on audio at any rate and channel count.

    The mixture (and references, for oracles) are resampled and channel-adapted to what the
    separator needs; the estimates are brought back to the input's rate, channels and length.
    Returns ``(estimates, conversions)``: ``conversions`` lists every change made, in order.
    """
    model_mix, model_refs, work_sr, log = adapt_inputs(separator, mixture, sample_rate, references)
    estimates = separator.separate(model_mix, work_sr, references=model_refs)
    out, back = restore_outputs(estimates, work_sr, sample_rate, mixture.shape)
    return out, log + back + [f"separator: {n}" for n in separator.notes()]
