"""A deterministic synthetic multitrack generator (license-clean, written for this project).

Each track is a short song at 44.1 kHz stereo with the four MUSDB stems, built so that the
properties separators rely on hold by construction:

- ``drums``: kick (pitch-gliding sine), snare (band-passed noise + body tone) and hi-hats
  (high-passed noise) on a 16th-note grid: short, broadband, percussive events;
- ``bass``: a root/fifth bass line of harmonic tones (fundamentals 41-110 Hz) low-passed at
  ``BASS_CUTOFF_HZ``, so its energy lies below ~250 Hz;
- ``other``: piano-like decaying chords plus a soft sustained pad (harmonic, 130-1000 Hz
  fundamentals);
- ``vocals``: a pitched melody (131-523 Hz) sung by an additive glottal source with vibrato and
  portamento, each harmonic weighted by a vowel's formant envelope, in phrases separated by
  rests.

Every random choice comes from ``numpy.random.Generator(seed)``; the same (seed, index,
seconds) always gives the same samples.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

SAMPLE_RATE = 44100
GENERATOR_VERSION = 1  # bump whenever the samples for a given seed change (keys stored runs)
BASS_CUTOFF_HZ = 220.0

# Formant centre frequencies and bandwidths (Hz) of five vowels, sung by an adult voice.
_VOWELS = {
    "a": ((800, 80), (1150, 90), (2900, 120)),
    "e": ((400, 60), (1600, 80), (2700, 120)),
    "i": ((270, 60), (2140, 90), (2950, 100)),
    "o": ((450, 70), (800, 80), (2830, 100)),
    "u": ((325, 50), (700, 60), (2530, 170)),
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 5), (9, 5, 0, 7), (0, 9, 5, 7), (2, 7, 0, 0))


def _midi_hz(m: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(m) - 69.0) / 12.0)


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan, position in [-1 (left), 1 (right)]."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([np.cos(angle) * mono, np.sin(angle) * mono])


def _env(n: int, sr: int, attack: float, decay: float | None, release: float = 0.01) -> np.ndarray:
    t = np.arange(n) / sr
    e = np.minimum(1.0, t / max(attack, 1e-4))
    if decay is not None:
        e = e * np.exp(-t / decay)
    r = min(n, int(release * sr))
    if r > 0:
        e[-r:] *= np.linspace(1.0, 0.0, r)
    return e


def _add(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    end = min(buf.shape[-1], start + sig.shape[-1])
    if end > start:
        buf[..., start:end] += sig[..., : end - start]


class _Song:
    def __init__(self, rng: np.random.Generator, seconds: float, sr: int):
        self.rng, self.sr = rng, sr
        self.n = int(round(seconds * sr))
        self.tempo = rng.uniform(88.0, 132.0)
        self.beat = 60.0 / self.tempo
        self.key = int(rng.integers(0, 12))
        prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
        self.n_bars = int(np.ceil(seconds / (4 * self.beat))) + 1
        self.roots = [prog[i % len(prog)] for i in range(self.n_bars)]

    def chord(self, bar: int) -> list[int]:
        """Pitch classes (relative to C) of the bar's diatonic triad."""
        root = self.roots[bar]
        deg = _MAJOR.index(root) if root in _MAJOR else 0
        return [(self.key + _MAJOR[(deg + k) % 7]) % 12 for k in (0, 2, 4)]

    # -- drums -----------------------------------------------------------------------------
    def drums(self) -> np.ndarray:
        rng, sr = self.rng, self.sr
        out = np.zeros((2, self.n))
        sixteenth = self.beat / 4
        hp = butter(4, 7000, "highpass", fs=sr, output="sos")
        bp = butter(2, (900, 6000), "bandpass", fs=sr, output="sos")
        for step in range(int(self.n / sr / sixteenth) + 1):
            t0 = int(step * sixteenth * sr)
            pos = step % 16
            if pos in (0, 8) or (pos == 10 and rng.random() < 0.4):
                k = int(0.35 * sr)
                t = np.arange(k) / sr
                f = 50 + 110 * np.exp(-t / 0.03)
                sig = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.09)
                sig[: int(0.002 * sr)] += rng.standard_normal(int(0.002 * sr)) * 0.3
                _add(out, t0, _pan(0.9 * sig, 0.0))
            if pos in (4, 12):
                k = int(0.25 * sr)
                t = np.arange(k) / sr
                noise = sosfilt(bp, rng.standard_normal(k)) * np.exp(-t / 0.07)
                body = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
                _add(out, t0, _pan(0.7 * noise + 0.35 * body, -0.15))
            if pos % 2 == 0 or rng.random() < 0.25:
                k = int(0.12 * sr)
                t = np.arange(k) / sr
                decay = 0.09 if (pos % 8 == 6 and rng.random() < 0.5) else 0.025
                hat = sosfilt(hp, rng.standard_normal(k)) * np.exp(-t / decay)
                _add(out, t0, _pan(hat * rng.uniform(0.25, 0.45), 0.45))
        return out

    # -- bass ------------------------------------------------------------------------------
    def bass(self) -> np.ndarray:
        rng, sr = self.rng, self.sr
        out = np.zeros(self.n)
        eighth = self.beat / 2
        for bar in range(self.n_bars):
            root = 28 + (self.chord(bar)[0] - 4) % 12  # E1..D#2: 41-78 Hz
            for i in range(8):
                if rng.random() < 0.15:
                    continue
                note = root + (7 if i in (3, 7) and rng.random() < 0.5 else 0)
                t0 = int((bar * 4 * self.beat + i * eighth) * sr)
                k = int(eighth * sr * rng.uniform(0.7, 0.95))
                t = np.arange(k) / sr
                f0 = _midi_hz(note)
                tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6))
                _add(out, t0, tone * _env(k, sr, 0.005, 0.6, 0.02))
        sos = butter(8, BASS_CUTOFF_HZ, "lowpass", fs=sr, output="sos")
        return _pan(sosfilt(sos, out), 0.0)

    # -- other: piano-like chords and a pad ---------------------------------------------------
    def other(self) -> np.ndarray:
        rng, sr = self.rng, self.sr
        out = np.zeros((2, self.n))
        pad = np.zeros(self.n)
        bar_len = 4 * self.beat
        for bar in range(self.n_bars):
            pcs = self.chord(bar)
            notes = [48 + (pc - 0) % 12 + 12 * (j == 2) for j, pc in enumerate(pcs)]
            hits = (0, 2) if rng.random() < 0.6 else (0, 1.5, 3)
            for beat_pos in hits:
                t0 = int((bar * bar_len + beat_pos * self.beat) * sr)
                k = int(1.6 * sr)
                t = np.arange(k) / sr
                chord = np.zeros(k)
                for m in notes:
                    f0 = _midi_hz(m)
                    for h in range(1, 9):
                        fh = f0 * h * np.sqrt(1 + 4e-4 * h * h)  # slight piano inharmonicity
                        if fh < sr / 2 - 1000:
                            chord += np.sin(2 * np.pi * fh * t) * np.exp(-t * (1.5 + 0.8 * h)) / h
                _add(out, t0, _pan(0.3 * chord * _env(k, sr, 0.003, None, 0.05), -0.35))
            # pad: the chord an octave up, slow attack, sustained through the bar
            t0 = int(bar * bar_len * sr)
            k = int(bar_len * sr)
            t = np.arange(k) / sr
            tone = np.zeros(k)
            for m in notes:
                f0 = _midi_hz(m + 12)
                tone += sum(np.sin(2 * np.pi * h * f0 * t + h) / (h * h) for h in range(1, 4))
            _add(pad, t0, 0.08 * tone * _env(k, sr, 0.3, None, 0.3))
        return out + _pan(pad, 0.4)

    # -- vocals --------------------------------------------------------------------------------
    def vocals(self) -> np.ndarray:
        rng, sr = self.rng, self.sr
        f0 = np.zeros(self.n)
        amp = np.zeros(self.n)
        vowel_of = np.zeros(self.n, dtype=int)
        names = list(_VOWELS)
        t = 0.5 * self.beat * rng.integers(0, 4)
        prev = None
        while t < self.n / sr:
            phrase_end = t + self.beat * rng.integers(4, 9)
            while t < phrase_end and t < self.n / sr:
                bar = min(int(t / (4 * self.beat)), self.n_bars - 1)
                pcs = self.chord(bar)
                choices = [60 + (pc % 12) for pc in pcs] + [60 + (self.key + d) % 12 for d in _MAJOR]
                pick = float(rng.choice(choices))  # draw order matters: it fixes the songs
                note = pick + (12 if rng.random() < 0.2 else 0) - 12 * (rng.random() < 0.15)
                dur = self.beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
                a, b = int(t * sr), min(self.n, int((t + dur * 0.92) * sr))
                if b > a:
                    tt = np.arange(b - a) / sr
                    glide = 0.0 if prev is None else (prev - note) * np.exp(-tt / 0.04)
                    vib_depth = 0.35 * np.clip((tt - 0.15) / 0.3, 0, 1)  # delayed vibrato, semitones
                    vib = vib_depth * np.sin(2 * np.pi * rng.uniform(5.0, 6.2) * tt)
                    f0[a:b] = _midi_hz(note + glide + vib)
                    amp[a:b] = _env(b - a, sr, 0.04, None, 0.06) * rng.uniform(0.7, 1.0)
                    vowel_of[a:b] = int(rng.integers(len(names)))
                prev = note
                t += dur
            t += self.beat * rng.integers(2, 5)  # rest between phrases
            prev = None
        voice = np.zeros(self.n)
        voiced = amp > 0
        phase = 2 * np.pi * np.cumsum(np.where(voiced, f0, 0.0)) / sr
        vowel_params = np.array([[f for f, _ in _VOWELS[v]] + [bw for _, bw in _VOWELS[v]]
                                 for v in names])
        params = vowel_params[vowel_of]  # per-sample formants (n, 6)
        for h in range(1, 40):
            fh = h * f0
            ok = voiced & (fh < 7000)
            if not np.any(ok):
                break
            gain = np.zeros(self.n)
            env = 0.05 + sum(
                g / (1.0 + ((fh[ok] - params[ok, i]) / params[ok, 3 + i]) ** 2)
                for i, g in enumerate((1.0, 0.6, 0.25)))
            gain[ok] = env / h ** 0.7  # glottal roll-off
            voice += gain * np.sin(h * phase)
        breath = sosfilt(butter(2, (1500, 6000), "bandpass", fs=sr, output="sos"),
                         rng.standard_normal(self.n)) * 0.02
        return _pan((voice + breath) * amp, float(rng.uniform(-0.1, 0.1)))


# Every stem gets an independent white noise floor this far below its RMS, like a real
# recording's. Without it a stem is exactly band-limited (the low-passed bass has next to no
# energy above 1 kHz), which makes BSS Eval's 512-tap projection numerically singular: museval
# then returns meaningless ISR/SIR/SAR (SIR around -50 dB for a near-perfect estimate).
NOISE_FLOOR_DB = -60.0

_LEVELS_DBFS = {"drums": -20.0, "bass": -22.0, "other": -24.0, "vocals": -20.0}


def synthesize_track(seed: int, seconds: float = 8.0, sample_rate: int = SAMPLE_RATE
                     ) -> dict[str, np.ndarray]:
    """Render one synthetic song: ``{stem: (2, samples) float32}`` for the four MUSDB stems.

    Stem levels are set to fixed RMS targets and the whole song is scaled down together if
    the sum would clip, so the mixture (the plain sum) stays within [-1, 1].
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    song = _Song(np.random.default_rng(seed), seconds, sample_rate)
    stems = {"drums": song.drums(), "bass": song.bass(), "other": song.other(),
             "vocals": song.vocals()}
    noise = np.random.default_rng([seed, 1])
    for name, x in stems.items():
        rms = np.sqrt(np.mean(x**2))
        if rms > 0:
            x = x + noise.standard_normal(x.shape) * rms * 10 ** (NOISE_FLOOR_DB / 20)
            stems[name] = x * (10 ** (_LEVELS_DBFS[name] / 20) / np.sqrt(np.mean(x**2)))
    peak = np.max(np.abs(sum(stems.values())))
    scale = 0.95 / peak if peak > 0.95 else 1.0
    return {k: (v * scale).astype(np.float32) for k, v in stems.items()}
