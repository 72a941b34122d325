"""museval's per-track JSON, out of and into the store.

Export (``demixbench export --format museval``): one file per (separator, subset, track) in
museval's schema (``targets[].name``, ``targets[].frames[].time/duration/metrics.{SDR,SIR,SAR,
ISR}``, ``museval_version``), laid out as museval's ``MethodStore.add_eval_dir`` reads a method
folder: ``OUT/<separator>/<subset>/<track>.json`` (subset ``test`` when the dataset has none).
Values are museval's own quantisation (5 decimals); a NaN frame is written as ``NaN``, as
museval writes it. Only targets scored framewise are exported (a target left out of its BSS
Eval group has no frame).

Import (``demixbench import museval DIR --name NAME``): every ``DIR/**/<track>.json`` (the
parent folder names the subset) becomes one unit of the separator ``NAME``, marked external,
with per-frame values kept and the per-track value the median of the frames, as museval
aggregates.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

from ..errors import DemixbenchError
from ..identity import file_sha256, stable_hash
from ..runs.store import ResultsStore, UnitRecord

METRICS = (("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("isr", "ISR"))
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+@=\[\],-]")


def _q(v: float | None) -> float:
    """museval's quantisation: 5 decimals; NaN (and inf, as museval does) as NaN."""
    if v is None or not math.isfinite(v):
        return math.nan
    return round(float(v), 5)


def museval_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("museval")
    except metadata.PackageNotFoundError:
        return "unknown"


def folder_name(label: str) -> str:
    """A variant label as a folder name (museval names a method by its folder)."""
    return _UNSAFE.sub("_", label).strip("._") or "separator"


def export_run(store: ResultsStore, run_id: str, out: str | Path) -> list[Path]:
    """Write the run's BSS Eval frames as museval JSON files; returns the files written."""
    from ..runs.rows import Variants, load_rows, select_runs

    run = select_runs(store, [run_id])[0]
    rows = load_rows(store, [run])
    rows = rows[rows["metric"].isin([m for m, _ in METRICS]) & rows["detail"].notna()]
    if rows.empty:
        raise DemixbenchError(f"run {run_id} has no BSS Eval rows to export (metrics sdr, sir, "
                              "sar, isr); run with those metrics")
    variants = Variants(rows, store.configs([run_id]))
    version = museval_version()
    grouped: dict[tuple, dict] = defaultdict(dict)
    hop = {}
    for r in rows.itertuples(index=False):
        detail = json.loads(r.detail)
        frames = detail.get("frame_values")
        if frames is None:
            continue
        key = (variants.label(r.separator_hash, r.strategy_hash, r.step), r.subset or "test",
               r.track)
        grouped[key].setdefault(r.target, {})[r.metric] = frames
        hop[key] = detail.get("hop_seconds") or json.loads(run["config"]).get("win", 1.0)
    if not grouped:
        raise DemixbenchError(f"run {run_id} holds no per-frame values (it was made before "
                              "demixbench kept them); run it again to export museval JSON")
    win = json.loads(run["config"]).get("win", 1.0)
    root = Path(out)
    written = []
    for (label, subset, track), targets in sorted(grouped.items()):
        doc = {"targets": [], "museval_version": version}
        for target, by_metric in targets.items():
            if not all(m in by_metric for m, _ in METRICS):
                continue  # museval always has all four
            n = len(by_metric["sdr"])
            doc["targets"].append({"name": target, "frames": [
                {"time": i * hop[(label, subset, track)], "duration": win,
                 "metrics": {name: _q(by_metric[m][i]) for m, name in METRICS}}
                for i in range(n)]})
        if not doc["targets"]:
            continue
        path = root / folder_name(label) / subset / f"{track}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, allow_nan=True), encoding="utf-8")
        written.append(path)
    return written


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemixbenchError(f"{path}: not museval JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("targets"), list):
        raise DemixbenchError(f"{path}: not museval JSON (no 'targets' list)")
    for t in doc["targets"]:
        if "name" not in t or not isinstance(t.get("frames"), list):
            raise DemixbenchError(f"{path}: a target without 'name' and 'frames'")
    return doc


def import_folder(store: ResultsStore, folder: str | Path, name: str) -> tuple[str, int]:
    """Store every museval JSON under ``folder`` as the external separator ``name``; returns
    ``(run id, tracks)``. Importing the same files again changes nothing."""
    import numpy as np

    root = Path(folder)
    files = sorted(root.rglob("*.json"))
    if not files:
        raise DemixbenchError(f"{root}: no museval JSON file (<subset>/<track>.json) under it")
    docs = {p: _read(p) for p in files}
    dataset = f"museval:{root.name}"
    # the identity of imported results is their content: two imports under one name are two
    # separators unless their files are the same
    sep_config = {"name": name, "external": True, "source": "museval JSON",
                  "files": {p.relative_to(root).as_posix(): file_sha256(p)[:24] for p in docs}}
    sep_hash = stable_hash(sep_config)
    run_config = {"import": "museval", "name": name, "datasets": {dataset: sep_config["files"]},
                  "separator_configs": {sep_hash: sep_config}, "strategy_configs": {},
                  "metrics": [m for m, _ in METRICS]}
    run_id = stable_hash(run_config, 12)
    store.begin_run(run_id, run_config, {"museval_json": "1"}, {}, f"import museval {root}")
    done = store.done_units(run_id)
    for path, doc in docs.items():
        subset = path.parent.name if path.parent != root else ""
        unit = f"{dataset}|{subset}|{path.stem}|{sep_hash}|none"
        if unit in done:
            continue
        rows = []
        seconds = 0.0
        for t in doc["targets"]:
            frames = t["frames"]
            if frames:
                last = frames[-1]
                seconds = max(seconds, float(last.get("time", 0)) + float(last.get("duration", 1)))
            for m, key in METRICS:
                values = [_float(f.get("metrics", {}).get(key)) for f in frames]
                finite = [v for v in values if not math.isnan(v)]
                value = float(np.median(finite)) if finite else math.nan
                rows.append({
                    "run_id": run_id, "dataset": dataset, "track": path.stem, "subset": subset,
                    "excerpt": "", "separator": name, "separator_hash": sep_hash, "oracle": 0,
                    "strategy": "none", "strategy_hash": "", "step": 0, "target": t["name"],
                    "metric": m, "value": value,
                    "nan_reason": None if finite else "no scorable frame",
                    "detail": {"frames": len(values), "valid_frames": len(finite),
                               "frame_values": [None if math.isnan(v) else v for v in values],
                               "hop_seconds": _hop(frames), "external": True},
                    "sep_seconds": None, "sep_peak_delta_mb": None})
        for r in rows:
            r["excerpt"] = f"0.00-{seconds:.2f}s"
        store.write_unit(run_id, UnitRecord(unit, dataset, path.stem, name, None, None, 0.0,
                                            False, [], [f"imported from {path}"], subset), rows)
    store.finish_run(run_id, "complete", [f"{name}: external results imported from museval "
                                          f"JSON in {root}"])
    return run_id, len(docs)


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _hop(frames: list) -> float:
    if len(frames) > 1:
        return float(frames[1].get("time", 1.0)) - float(frames[0].get("time", 0.0))
    return float(frames[0].get("duration", 1.0)) if frames else 1.0
