"""museval's per-track JSON, out of and into the store.

Export (``demixbench export --format museval``): one file per (separator, subset, track) in
museval's schema (``targets[].name``, ``targets[].frames[].time/duration/metrics.{SDR,SIR,SAR,
ISR}``, ``museval_version``), laid out as museval's ``MethodStore.add_eval_dir`` reads a method
folder: ``OUT/<separator>/<subset>/<track>.json`` (subset ``test`` when the dataset has none).
Values are museval's own quantisation (5 decimals); a NaN frame is written as ``NaN``, as
museval writes it. Only targets scored framewise are exported (a target left out of its BSS
Eval group has no frame).

Import: :mod:`demixbench.formats.museval_import`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path

from ..errors import DemixbenchError
from ..runs.store import ResultsStore

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


def export_run(store: ResultsStore, run_id: str, out: str | Path,
               overwrite: bool = False) -> list[Path]:
    """Write the run's BSS Eval frames as museval JSON files; returns the files written.
    Everything is checked and made in memory first: a folder that holds files (unless
    ``overwrite``), one that cannot be written, or a run without all four BSS Eval metrics is
    a one-line error with nothing written."""
    from ..runs.rows import Variants, load_rows, select_runs

    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DemixbenchError(f"--out {root} is a file; give a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise DemixbenchError(f"--out {root} is not empty; its JSON files would be replaced: "
                              "pass --overwrite, or choose an empty or new folder")
    run = select_runs(store, [run_id])[0]
    rows = load_rows(store, [run])
    present = set(rows["metric"])
    missing = [m for m, _ in METRICS if m not in present]
    if missing:
        raise DemixbenchError(f"run {run_id} has no {', '.join(missing)} rows: museval JSON holds "
                              "SDR, SIR, SAR and ISR per frame; run with --metrics "
                              "sdr,sir,sar,isr (the default) to export it")
    rows = rows[rows["metric"].isin([m for m, _ in METRICS]) & rows["detail"].notna()]
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
    docs = {}
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
        if doc["targets"]:
            docs[root / folder_name(label) / subset / f"{track}.json"] = doc
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".demixbench-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemixbenchError(f"--out {root}: cannot write there ({exc.strerror or exc}); "
                              "choose a folder you can write to") from None
    for path, doc in docs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, allow_nan=True), encoding="utf-8")
    return list(docs)
