"""The report's audio section (``demixbench report --audio``): per track, a short window of the
mixture, each reference and each separator's estimate, compressed and embedded, with mel
spectrograms of reference and estimates.

Nothing is separated here: the mixture and references are read from the dataset and cut as the
run cut them (the excerpt is chosen again by the same rule and checked against the stored
label), and estimates are read from the estimate cache that ``demixbench run`` fills. A cell
whose estimate is not cached says so (and how to keep every estimate: ``demixbench run
--keep-estimates``). Audio is Ogg Vorbis written by soundfile (libsndfile), which every
browser plays; spectrograms are matplotlib PNGs of librosa mel spectrograms, the libraries made
for each job. Each track's players and images sit in an inert ``<template>`` that the page
attaches when the track is opened, so a report of 50 tracks loads without decoding them all.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..datasets import choose_excerpt, cut_and_mix, open_dataset
from ..errors import DemixbenchError
from ..metrics.scoring import with_accompaniment
from ..runs.cache import EstimateCache, input_key
from ..runs.rows import load_rows, target_order
from ..runs.store import ResultsStore

VORBIS_LEVEL = 1.0  # libsndfile compression level: about 64 kbit/s for stereo music at 44.1 kHz
NOT_CACHED = "not cached"


def encode_ogg(x: np.ndarray, sample_rate: int) -> str:
    """``(channels, samples)`` float audio as an Ogg Vorbis data URI."""
    import soundfile as sf

    buf = io.BytesIO()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    y = x / peak if peak > 1.0 else x  # an estimate may exceed full scale: avoid clipping
    sf.write(buf, np.ascontiguousarray(y.T), sample_rate, format="OGG", subtype="VORBIS",
             compression_level=VORBIS_LEVEL)
    return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def mel_png(rows: Sequence[tuple[str, np.ndarray]], sample_rate: int, title: str) -> str:
    """Mel spectrograms (dB, one shared colour range) of ``rows`` stacked, as a PNG data URI."""
    import librosa
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    mels = []
    for _, x in rows:
        mono = np.mean(x, axis=0)
        m = librosa.feature.melspectrogram(y=mono, sr=sample_rate, n_fft=2048, hop_length=512,
                                           n_mels=80)
        mels.append(librosa.power_to_db(m, ref=1.0, top_db=None))
    top = max(float(np.max(m)) for m in mels)
    fig, axes = plt.subplots(len(rows), 1, figsize=(6.0, 0.8 * len(rows) + 0.4), dpi=72,
                             sharex=True, squeeze=False)
    for ax, (label, _), m in zip(axes[:, 0], rows, mels):
        ax.imshow(m, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                  extent=(0, m.shape[1] * 512 / sample_rate, 0, m.shape[0]))
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("seconds", fontsize=8)
    axes[-1, 0].tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    # a 64-colour palette keeps the colormap's look at about a quarter of the bytes
    from PIL import Image

    small = io.BytesIO()
    Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(64).save(small, "PNG",
                                                                           optimize=True)
    return "data:image/png;base64," + base64.b64encode(small.getvalue()).decode("ascii")


def _stem_map(name: str) -> Mapping[str, str]:
    from ..separators import default_registry

    try:
        return getattr(default_registry().get(name), "stem_map", {}) or {}
    except DemixbenchError:
        return {}


def _size_text(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def audio_section(store: ResultsStore, run_ids: Sequence[str], seconds: float = 10.0,
                  cache_dir=None, max_tracks: int | None = None) -> dict:
    """The audio section's data: per track, data URIs of every clip and spectrogram."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise DemixbenchError(f"--audio-seconds {seconds}: give a positive number of seconds")
    runs = [r for r in store.runs() if r["run_id"] in run_ids]
    rows = load_rows(store, runs)
    configs = [json.loads(r["config"]) for r in runs]
    excerpt_len = configs[0].get("excerpt", 30.0)
    gains = configs[0].get("gains") or {}
    cache = EstimateCache(cache_dir) if cache_dir else None
    plain = rows[rows["strategy_hash"] == ""]
    seps = plain.drop_duplicates("separator_hash")[["separator_hash", "separator", "oracle"]]
    seps = seps.sort_values(["oracle", "separator"])
    tracks = rows.drop_duplicates(["dataset", "subset", "track"])[["dataset", "subset", "track",
                                                                   "excerpt"]]
    notes: list[str] = []
    out = []
    datasets: dict[str, object] = {}
    for dataset_name, subset, track_name, label in tracks.itertuples(index=False):
        if max_tracks is not None and len(out) >= max_tracks:
            notes.append(f"audio of the first {max_tracks} tracks only (--audio-tracks)")
            break
        try:
            if dataset_name not in datasets:
                datasets[dataset_name] = open_dataset(dataset_name)
            dataset = datasets[dataset_name]
            track = next(t for t in dataset.tracks if t.name == track_name and t.subset == subset)
            stems, sr = track.load()
        except (DemixbenchError, StopIteration) as exc:
            notes.append(f"{dataset_name}/{track_name}: audio left out, the track cannot be read "
                         f"here ({exc or 'not in the dataset any more'})")
            continue
        excerpt = choose_excerpt(stems, sr, excerpt_len)
        if excerpt.label != label:
            notes.append(f"{dataset_name}/{track_name}: audio left out, the excerpt chosen now "
                         f"({excerpt.label}) is not the scored one ({label}): the track changed")
            continue
        refs, mixture = cut_and_mix(stems, excerpt, gains)
        keys = {False: input_key(mixture, sr), True: input_key(mixture, sr, refs)}
        window = choose_excerpt(refs, sr, min(seconds, mixture.shape[-1] / sr))
        cut = slice(window.start, window.stop)
        targets = target_order(rows[(rows["dataset"] == dataset_name) & (rows["subset"] == subset)
                                     & (rows["track"] == track_name)]["target"])
        refs_all = with_accompaniment(refs)
        size = 0
        mix_src = encode_ogg(mixture[:, cut], sr)
        size += len(mix_src)
        ref_cells = []
        for t in targets:
            src = encode_ogg(refs_all[t][:, cut], sr) if t in refs_all else None
            size += len(src or "")
            ref_cells.append({"src": src, "missing": "no reference"})
        table = [{"label": "reference", "cells": ref_cells}]
        spectro_rows: dict[str, list] = {t: [("reference", refs_all[t][:, cut])]
                                         for t in targets if t in refs_all}
        for sh, name, oracle in seps.itertuples(index=False):
            hit = cache.get(sh, keys[bool(oracle)]) if cache else None
            if hit is None:
                table.append({"label": name, "cells": [{"src": None, "missing": NOT_CACHED}
                                                       for _ in targets]})
                continue
            smap = _stem_map(name)
            est = with_accompaniment({smap.get(k, k): v for k, v in hit.estimates.items()})
            cells = []
            for t in targets:
                if t in est:
                    src = encode_ogg(est[t][:, cut], sr)
                    size += len(src)
                    cells.append({"src": src, "missing": ""})
                    if t in spectro_rows:
                        spectro_rows[t].append((name, est[t][:, cut]))
                else:
                    cells.append({"src": None, "missing": "no such stem"})
            table.append({"label": name + (" (oracle)" if oracle else ""), "cells": cells})
        images = []
        for t, stack in spectro_rows.items():
            src = mel_png(stack, sr, f"{track_name}: {t}")
            size += len(src)
            images.append({"target": t, "src": src})
        out.append({"track": f"{dataset_name}/{track_name}", "targets": targets,
                    "window": f"{(excerpt.start + window.start) / sr:.1f}–"
                              f"{(excerpt.start + window.stop) / sr:.1f} s of the track",
                    "mixture": mix_src, "rows": table, "spectrograms": images, "bytes": size,
                    "size_text": _size_text(size)})
    uncached = sum(c["src"] is None and c["missing"] == NOT_CACHED
                   for tr in out for r in tr["rows"] for c in r["cells"])
    note = (f"{len(out)} tracks; a window of up to {seconds:g} s per track, chosen where the "
            "most stems are active. Ogg Vorbis about 64 kbit/s; estimates from the estimate "
            "cache of the run (strategies' steps are not cached).")
    if uncached:
        note += (f" {uncached} cells are not cached: the run kept only separations that took "
                 "0.5 s or more; `demixbench run --keep-estimates` keeps every one.")
    total = sum(tr["bytes"] for tr in out)
    note += f" Audio and images: {_size_text(total)} in all."
    return {"tracks": out, "note": note, "notes": notes}
