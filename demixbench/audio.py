"""Audio I/O and the explicit conversions the suite may apply (resampling, channel adaptation).

Every conversion returns a human-readable record of what it did, so that results can say how the
audio a separator saw differs from the audio on disk. Nothing here converts silently.

Shape: audio is ``(channels, samples)`` float32 throughout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AudioError
from .interrupts import reraise_if_interrupted

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")


def check_audio(audio: np.ndarray, what: str = "audio", from_file: bool = False) -> np.ndarray:
    """Validate one signal and return it as float32 ``(channels, samples)``.

    Raises :class:`AudioError` on a wrong number of dimensions, an empty signal, or any
    NaN/Inf sample (which would otherwise turn every metric into NaN far downstream).
    """
    if not isinstance(audio, np.ndarray):
        raise AudioError(f"{what}: expected a numpy array shaped (channels, samples), "
                         f"got {type(audio).__name__}")
    if audio.ndim != 2:
        raise AudioError(f"{what}: expected shape (channels, samples), got {audio.shape}; "
                         "use audio[None, :] for a mono 1-D signal")
    if audio.shape[1] == 0:
        raise AudioError(f"{what}: the signal is empty (shape {audio.shape})")
    if audio.shape[0] > audio.shape[1] and from_file:
        raise AudioError(f"{what}: only {audio.shape[1]} sample(s) long ({audio.shape[0]} "
                         "channels); the file is too short to separate or score")
    if audio.shape[0] > audio.shape[1]:
        raise AudioError(f"{what}: shape {audio.shape} has more channels than samples; "
                         "audio must be (channels, samples), transpose it with audio.T")
    if not np.all(np.isfinite(audio)):
        bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
        raise AudioError(f"{what}: {bad} sample(s) are NaN or Inf; fix or re-export the audio "
                         "(a separator or metric cannot score non-finite samples)")
    return np.ascontiguousarray(audio, dtype=np.float32)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file (wav, flac, mp3, ...) with soundfile.

    Returns ``(audio, sample_rate)`` with audio float32 ``(channels, samples)``. Unreadable
    files and non-finite samples raise :class:`AudioError` naming the file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{_shown(path)}: no such audio file")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise AudioError(f"{_shown(path)}: the path has bytes that are not valid UTF-8, which "
                         "the audio library cannot open; rename the file or folder") from None
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        reraise_if_interrupted(exc)
        raise AudioError(f"{path}: cannot read audio ({exc}); convert it to WAV or FLAC "
                         "(e.g. ffmpeg -i in.xxx out.wav)") from None
    short = wav_shortfall(path)
    if short:
        raise AudioError(f"{path}: the file ends {short} bytes before its WAV header says its "
                         "samples do (a truncated copy or download?); copy or export it again")
    return check_audio(data.T, what=str(path), from_file=True), int(sr)


def wav_shortfall(path: Path) -> int:
    """Bytes a RIFF/WAVE file's ``data`` chunk declares beyond the end of the file (0: whole,
    or not a WAV). libsndfile reads such a file as far as it goes, without a word: a truncated
    download would be scored as a shorter (zero-padded) estimate."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                if length in (0, 0xFFFFFFFF):  # written as a stream: no length to check
                    return 0
                return max(0, pos + 8 + length - size)
            pos += 8 + length + (length & 1)
    return 0


def _shown(path: Path) -> str:
    """A path printable whatever bytes its name holds."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write ``(channels, samples)`` audio; the format follows the extension (wav, flac)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if path.suffix.lower() == ".wav" else None
    sf.write(str(path), np.asarray(audio, dtype=np.float32).T, sample_rate, subtype=subtype)
    return path


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> tuple[np.ndarray, list[str]]:
    """Resample with soxr (VHQ). Returns the audio and the record of the conversion
    (empty when the rates already agree)."""
    if sr_from == sr_to:
        return audio, []
    import soxr

    out = soxr.resample(audio.T, sr_from, sr_to, quality="VHQ").T
    return np.ascontiguousarray(out, dtype=np.float32), [f"resampled {sr_from} Hz -> {sr_to} Hz (soxr VHQ)"]


def adapt_channels(audio: np.ndarray, channels: int | None) -> tuple[np.ndarray, list[str]]:
    """Bring audio to ``channels`` channels: mono is duplicated, a down-mix averages channels.

    ``channels=None`` means any count is accepted and nothing changes. Other combinations
    (e.g. 3 -> 2) raise :class:`AudioError`, because there is no unambiguous mapping.
    """
    have = audio.shape[0]
    if channels is None or have == channels:
        return audio, []
    if have == 1:
        return np.repeat(audio, channels, axis=0), [f"duplicated mono to {channels} channels"]
    if channels == 1:
        return audio.mean(axis=0, keepdims=True), [f"averaged {have} channels to mono"]
    raise AudioError(f"cannot adapt {have}-channel audio to {channels} channels; "
                     "down-mix it to mono or stereo first")


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut the last axis to ``length`` samples."""
    n = audio.shape[-1]
    if n == length:
        return audio
    if n > length:
        return audio[..., :length]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - n)]
    return np.pad(audio, pad)
