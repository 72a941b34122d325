"""museval's per-track JSON into the store (``demixbench import museval DIR``).

``DIR`` is one method's folder (``DIR/<subset>/<track>.json``, the layout museval's
``MethodStore.add_eval_dir`` reads; the parent folder names the subset), imported as the
separator ``--name``; or a folder of method folders (``DIR/<METHOD>/<subset>/<track>.json``,
as SiSEC 2018's submissions are laid out), each imported as its own separator named by its
folder, all in one run. ``--oracle A,B`` marks methods that used the references (SiSEC's IBM,
IRM, MWF, MIX): their rows are oracle rows, never ranked or tested with the blind ones.

Every file is checked before anything is written: a target needs ``name`` and a list of
``frames``, each frame a dict with numeric ``time`` and ``duration`` and ``metrics`` of numbers
(NaN allowed, as museval writes it); a target named twice in one file is refused. Per track and
metric the value is the median over finite frames (museval's aggregation); the frames are kept.
The separator's identity is the content of its files (SHA-256), so two imports of different
files under one name are two separators. Tracks are keyed by subset and name under the dataset
``museval``, so imports of one test set pair track by track.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import DemixbenchError
from ..identity import file_sha256, stable_hash
from ..runs.store import ResultsStore, UnitRecord

METRICS = (("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("isr", "ISR"))
DATASET = "museval"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or v is None


def read_track(path: Path) -> dict:
    """One museval JSON file, checked (a one-line error naming the file and the problem)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemixbenchError(f"{path}: not museval JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("targets"), list):
        raise DemixbenchError(f"{path}: not museval JSON (no 'targets' list)")
    seen = set()
    for t in doc["targets"]:
        if not isinstance(t, dict) or "name" not in t or not isinstance(t.get("frames"), list):
            raise DemixbenchError(f"{path}: a target without 'name' and a list of 'frames'")
        if t["name"] in seen:
            raise DemixbenchError(f"{path}: target {t['name']!r} appears twice; keep one")
        seen.add(t["name"])
        for i, f in enumerate(t["frames"]):
            where = f"{path}: target {t['name']!r}, frame {i}"
            if not isinstance(f, dict) or not isinstance(f.get("metrics"), dict):
                raise DemixbenchError(f"{where}: expected a dict with 'time', 'duration' and "
                                      f"'metrics', got {type(f).__name__} {str(f)[:40]}")
            for key in ("time", "duration"):
                if not isinstance(f.get(key), (int, float)) or isinstance(f.get(key), bool) \
                        or not math.isfinite(f[key]):
                    raise DemixbenchError(f"{where}: '{key}' must be a number of seconds, got "
                                          f"{f.get(key)!r}")
            bad = {k: v for k, v in f["metrics"].items() if not _number(v)}
            if bad:
                raise DemixbenchError(f"{where}: metric values must be numbers, got {bad}")
    return doc


def _methods(root: Path, name: str | None) -> dict[str, Path]:
    """Method name -> folder: ``root`` itself (files at ``root/<subset>/*.json``), or each
    of its method folders (``root/<METHOD>/<subset>/*.json``)."""
    if not root.is_dir():
        raise DemixbenchError(f"{root}: no such folder of museval JSON files")
    if any(root.glob("*.json")) or any(root.glob("*/*.json")):
        if name is None:
            raise DemixbenchError(f"{root} is one method's folder: name it with --name NAME")
        return {name: root}
    nested = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("*/*.json"))}
    if not nested:
        raise DemixbenchError(f"{root}: no museval JSON file (<subset>/<track>.json) under it")
    if name is not None and len(nested) > 1:
        raise DemixbenchError(f"{root} holds {len(nested)} methods ({', '.join(nested)}); each is "
                              "imported under its folder's name: drop --name, or import one "
                              "method's folder with --name")
    if name is not None:
        return {name: next(iter(nested.values()))}
    return nested


def import_folder(store: ResultsStore, folder: str | Path, name: str | None = None,
                  oracle: tuple[str, ...] = ()) -> tuple[str, dict[str, int]]:
    """Import ``folder`` (see the module doc); returns ``(run id, {method: tracks})``.
    Importing the same files again changes nothing."""
    root = Path(folder)
    methods = _methods(root, name)
    unknown = sorted(set(oracle) - set(methods))
    if unknown:
        raise DemixbenchError(f"--oracle {', '.join(unknown)}: no such method in {root} "
                              f"(methods: {', '.join(methods)})")
    docs: dict[str, dict[Path, dict]] = {}
    for method, base in methods.items():
        files = sorted(base.rglob("*.json"))
        docs[method] = {p: read_track(p) for p in files}  # everything checked before writing
    configs, hashes = {}, {}
    for method, base in methods.items():
        config = {"name": method, "external": True, "source": "museval JSON",
                  "oracle": method in oracle,
                  "files": {p.relative_to(base).as_posix(): file_sha256(p)[:24]
                            for p in docs[method]}}
        hashes[method] = stable_hash(config)
        configs[hashes[method]] = config
    run_config = {"import": "museval", "datasets": {DATASET: {}}, "separator_configs": configs,
                  "strategy_configs": {}, "metrics": [m for m, _ in METRICS],
                  "methods": sorted(methods)}
    run_id = stable_hash(run_config, 12)
    store.begin_run(run_id, run_config, {"museval_json": "1"}, {}, f"import museval {root}",
                    planned=sum(len(d) for d in docs.values()))
    done = store.done_units(run_id)
    for method, base in methods.items():
        for path, doc in docs[method].items():
            subset = path.parent.name if path.parent != base else ""
            unit = f"{DATASET}|{subset}|{path.stem}|{hashes[method]}|none"
            if unit in done:
                continue
            rows = _rows(run_id, doc, path.stem, subset, method, hashes[method], method in oracle)
            store.write_unit(run_id, UnitRecord(unit, DATASET, path.stem, method, None, None, 0.0,
                                                False, [], [f"imported from {path}"], subset), rows)
    store.finish_run(run_id, "complete", [f"{', '.join(methods)}: external results imported "
                                          f"from museval JSON in {root}"])
    return run_id, {m: len(d) for m, d in docs.items()}


def _rows(run_id: str, doc: dict, track: str, subset: str, method: str, sep_hash: str,
          oracle: bool) -> list[dict]:
    rows = []
    seconds = 0.0
    for t in doc["targets"]:
        frames = t["frames"]
        if frames:
            seconds = max(seconds, float(frames[-1]["time"]) + float(frames[-1]["duration"]))
        for m, key in METRICS:
            values = [_float(f["metrics"].get(key)) for f in frames]
            finite = [v for v in values if not math.isnan(v)]
            rows.append({
                "run_id": run_id, "dataset": DATASET, "track": track, "subset": subset,
                "excerpt": "", "separator": method, "separator_hash": sep_hash,
                "oracle": int(oracle), "strategy": "none", "strategy_hash": "", "step": 0,
                "target": t["name"], "metric": m,
                "value": float(np.median(finite)) if finite else math.nan,
                "nan_reason": None if finite else "no scorable frame",
                "detail": {"frames": len(values), "valid_frames": len(finite),
                           "frame_values": [None if math.isnan(v) else v for v in values],
                           "hop_seconds": _hop(frames), "external": True},
                "sep_seconds": None, "sep_peak_delta_mb": None})
    for r in rows:
        r["excerpt"] = f"0.00-{seconds:.2f}s"
    return rows


def _float(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _hop(frames: list) -> float:
    if len(frames) > 1:
        return float(frames[1]["time"]) - float(frames[0]["time"])
    return float(frames[0]["duration"]) if frames else 1.0
