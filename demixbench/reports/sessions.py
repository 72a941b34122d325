"""Saved benchmark sessions (the pytest plugin's ``--demix-autosave`` files) and their paired
comparison; ``demixbench bench list|compare`` reads the same files outside pytest.

A file is ``<storage>/<machine id>/NNNN_<commit>_<timestamp>.json``, numbered per machine as
pytest-benchmark numbers its own. It holds machine and commit information, demixbench's and
the libraries' versions, and one entry per test (node id, separator configuration and hash,
dataset fingerprint, metric definitions, per-track values, aggregates, timing).

Two sessions are compared test by test (node id) and value by value (track, target, metric,
step): per (test, step, target, metric) the median paired difference with its bootstrap 95 %
CI, the Wilcoxon p and the Holm-corrected p over the comparison
(:mod:`demixbench.reports.stats`, shared with ``demixbench compare``). A test whose metric
definitions, BSS Eval window or dataset fingerprint differ between the two is refused, with the
reason; a different machine only warns. A gate ``METRIC[:TARGET]:DB`` fails when the median
drops by more than DB and its CI lies entirely below zero.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DemixbenchError
from ..metrics import METRICS
from ..specs import Gate
from .leaderboard import metric_label, text_table
from .stats import compare_paired, fill_holm, fmt, paired_cells

FORMAT = 1
DEFAULT_STORAGE = Path(".demixbench") / "benchmarks"
_FILE = re.compile(r"^(?P<num>\d{4})_(?P<rest>.+)\.json$")


# -- what a session is --------------------------------------------------------------------------
def machine_id() -> str:
    """``<system>-<implementation>-<python major.minor>-<bits>``, as pytest-benchmark names
    its machine folders."""
    bits = platform.architecture()[0]
    return (f"{platform.system()}-{platform.python_implementation()}-"
            f"{'.'.join(platform.python_version_tuple()[:2])}-{bits}")


def machine_info() -> dict:
    import os

    return {"node": platform.node(), "processor": platform.processor() or platform.machine(),
            "machine": platform.machine(), "system": platform.system(),
            "release": platform.release(), "python": platform.python_version(),
            "cpus": os.cpu_count()}


def commit_info(cwd: str | Path = ".") -> dict:
    """Git commit id, dirty flag, branch and commit time of ``cwd`` (``{"id": None, ...}``
    outside a repository)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return {"id": None, "dirty": False, "branch": None, "time": None}
    return {"id": sha, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "time": git("log", "-1", "--format=%cI")}


def versions() -> dict:
    from ..runs.provenance import versions as run_versions

    return run_versions()


def session_document(tests: Iterable[dict], cwd: str | Path = ".") -> dict:
    return {"demixbench_benchmark": FORMAT, "machine_id": machine_id(),
            "machine_info": machine_info(), "commit_info": commit_info(cwd),
            "datetime": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), "tests": sorted(tests, key=lambda t: t["nodeid"])}


# -- files --------------------------------------------------------------------------------------
def saved_files(storage: str | Path = DEFAULT_STORAGE, machine: str | None = None) -> list[Path]:
    """Saved sessions, oldest first (``machine``: only that machine's folder)."""
    root = Path(storage)
    folders = [root / machine] if machine else sorted(p for p in root.glob("*") if p.is_dir())
    files = [p for f in folders if f.is_dir() for p in f.iterdir() if _FILE.match(p.name)]
    return sorted(files, key=lambda p: (p.parent.name, p.name))


def save(document: dict, storage: str | Path = DEFAULT_STORAGE, name: str | None = None) -> Path:
    """Write ``document`` as the machine's next numbered file (``name`` replaces the
    commit/time part)."""
    folder = Path(storage) / document["machine_id"]
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(_FILE.match(p.name)["num"]) for p in folder.iterdir() if _FILE.match(p.name)]
    sha = document["commit_info"]["id"]
    commit = sha[:8] if sha else "unversioned"
    if document["commit_info"].get("dirty"):
        commit += "_uncommitted-changes"
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", name) if name else f"{commit}_{stamp}"
    path = folder / f"{max(numbers, default=0) + 1:04d}_{label}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemixbenchError(f"{path}: not a readable demixbench benchmark file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("demixbench_benchmark") != FORMAT:
        raise DemixbenchError(f"{path}: not a demixbench benchmark file (format "
                              f"{doc.get('demixbench_benchmark') if isinstance(doc, dict) else '?'}"
                              f", this version reads {FORMAT})")
    return doc


def find(spec: str | None, storage: str | Path = DEFAULT_STORAGE,
         machine: str | None = None) -> Path:
    """A saved file by path, by number (``"3"`` or ``"0003"``), by a part of its name (commit
    or --demix-save name), or the latest (``None`` / ``"latest"``)."""
    if spec and Path(spec).is_file():
        return Path(spec)
    files = saved_files(storage, machine) or saved_files(storage)
    if not files:
        raise DemixbenchError(f"no saved benchmark in {storage}; save one first with "
                              "pytest --demix-autosave")
    if spec in (None, "", "latest"):
        return files[-1]
    if spec.isdigit():
        hits = [p for p in files if int(_FILE.match(p.name)["num"]) == int(spec)]
    else:
        hits = [p for p in files if spec in p.name]
    if not hits:
        raise DemixbenchError(f"no saved benchmark matches {spec!r} in {storage}; saved: "
                              + ", ".join(p.name for p in files[-6:]))
    return hits[-1]


# -- comparison ---------------------------------------------------------------------------------
def parse_gate(text: str) -> Gate:
    """``METRIC[:TARGET]:DB``, e.g. ``usdr:0.5`` or ``sdr:vocals:1`` (:mod:`.gates`)."""
    from .gates import parse

    return parse(text)


@dataclass
class SessionComparison:
    rows: list[dict]
    refused: dict[str, str] = field(default_factory=dict)  # nodeid -> why
    warnings: list[str] = field(default_factory=list)
    only_before: list[str] = field(default_factory=list)
    only_now: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)  # nodeid -> what the test now runs


def _why_not_comparable(before: dict, now: dict) -> str | None:
    if before.get("win") != now.get("win"):
        return f"BSS Eval window {before.get('win')} s before, {now.get('win')} s now"
    if before.get("dataset_fingerprint") != now.get("dataset_fingerprint"):
        return (f"dataset {before.get('dataset')} ({before.get('dataset_fingerprint')}) before, "
                f"{now.get('dataset')} ({now.get('dataset_fingerprint')}) now: other tracks or "
                "excerpts")
    if before.get("excerpt") != now.get("excerpt"):
        return f"excerpt {before.get('excerpt')} s before, {now.get('excerpt')} s now"
    da, db = before.get("metric_definitions") or {}, now.get("metric_definitions") or {}
    for m in sorted(set(da) & set(db)):
        if da[m] != db[m]:
            keys = sorted(k for k in set(da[m]) | set(db[m]) if da[m].get(k) != db[m].get(k))
            return f"{metric_label(m)} is defined otherwise ({', '.join(keys)} differ)"
    return None


def compare_sessions(before: Mapping, now: Mapping) -> SessionComparison:
    """Pair two session documents (``before`` is the saved one)."""
    tests_b = {t["nodeid"]: t for t in before["tests"]}
    tests_n = {t["nodeid"]: t for t in now["tests"]}
    out = SessionComparison([])
    if before.get("machine_id") != now.get("machine_id") or (
            before.get("machine_info", {}).get("node") != now.get("machine_info", {}).get("node")):
        out.warnings.append(f"the saved session ran on another machine "
                            f"({before.get('machine_info', {}).get('node')}, "
                            f"{before.get('machine_id')}): quality is paired anyway, timing "
                            "is not comparable")
    out.only_before = sorted(set(tests_b) - set(tests_n))
    out.only_now = sorted(set(tests_n) - set(tests_b))
    for nodeid in sorted(set(tests_b) & set(tests_n)):
        b, n = tests_b[nodeid], tests_n[nodeid]
        if b.get("separator_hash") != n.get("separator_hash"):
            out.changed[nodeid] = _config_change(b, n)
        why = _why_not_comparable(b, n)
        if why:
            out.refused[nodeid] = why
            continue
        key = lambda v: (v.get("subset", ""), v["track"], v["step"], v["target"], v["metric"])  # noqa: E731
        vb = {key(v): v["value"] for v in b["values"]}
        groups: dict[tuple, list[tuple[float, float]]] = {}
        for v in n["values"]:
            k = key(v)
            if k in vb:
                groups.setdefault((k[2], k[3], k[4]), []).append(
                    (_num(vb[k]), _num(v["value"])))
        for (step, target, metric), pairs in groups.items():
            higher = METRICS[metric].higher_is_better if metric in METRICS else True
            r = compare_paired([p[0] for p in pairs], [p[1] for p in pairs], higher)
            out.rows.append({"test": nodeid, "step": step, "target": target, "metric": metric,
                             "stepped": len({s for s, _, _ in groups}) > 1, **r.as_dict()})
    fill_holm(out.rows)
    return out


def _config_change(before: dict, now: dict) -> str:
    from ..runs.rows import flat_config

    if before.get("separator") != now.get("separator"):
        return f"separator {before.get('separator')} -> {now.get('separator')}"
    fa, fb = flat_config(before.get("separator_config") or {}), flat_config(now.get("separator_config") or {})
    diff = [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]
    return f"{now.get('separator')} " + ("; ".join(diff) or "configuration changed")


def _num(v) -> float:
    return math.nan if v is None else float(v)


def gate_failures(comparison: SessionComparison, gates: Sequence[Gate]) -> list[tuple[Gate, dict]]:
    """(gate, row) for every row a gate fails on (the rule of :mod:`.gates`)."""
    from .gates import evaluate

    return [(o.gate, r) for o in evaluate(comparison.rows, gates) for r in o.failed]


def unevaluated_gates(comparison: SessionComparison, gates: Sequence[Gate]) -> list[str]:
    """Why each gate that could not be judged could not (a gate that cannot be evaluated
    must not pass)."""
    from .gates import evaluate, label

    return [f"--demix-compare-fail={label(o.gate)} could not be evaluated: {o.unevaluated}"
            for o in evaluate(comparison.rows, gates) if o.unevaluated]


def failure_message(gate: Gate, r: dict) -> str:
    from .gates import label as gate_label

    step = f" step {r['step']}" if r.get("stepped") else ""
    return (f"{r['test']}{step}: {r['target']} {metric_label(r['metric'])} dropped by "
            f"{-r['median_diff']:.2f} dB (median of {r['n']} paired tracks, 95% CI "
            f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}], Wilcoxon p={r['p']:.3g}, Holm "
            f"p={r['p_holm']:.3g}), more than the {gate.db:g} dB allowed by {gate_label(gate)}")


# -- text -------------------------------------------------------------------------------------------
def _f(v, digits: int = 2) -> str:
    return fmt(v if v is None else float(v), digits)


def format_session(tests: Sequence[dict]) -> str:
    """Per test and target, the aggregates of every metric (last step of a strategy)."""
    metrics = list(dict.fromkeys(a["metric"] for t in tests for a in t["aggregates"]))
    headers = ["test", "target", *[metric_label(m) for m in metrics], "tracks", "RTF"]
    rows = []
    for t in tests:
        last = max((a["step"] for a in t["aggregates"]), default=0)
        aggs = {(a["target"], a["metric"]): a for a in t["aggregates"] if a["step"] == last}
        for target in dict.fromkeys(a["target"] for a in t["aggregates"]):
            got = [aggs.get((target, m)) for m in metrics]
            first = next((a for a in got if a), None)
            rows.append([t["nodeid"] + (f" @{last}" if last else ""), target,
                         *[_f(a["value"]) if a else "" for a in got],
                         f"{first['n']}/{first['tracks']}" if first else "",
                         _f(t["timing"].get("rtf"), 3)])
    return text_table(headers, rows, indent="")


def format_comparison(c: SessionComparison) -> str:
    headers = ["test", "target", "metric", "before", "now", "Δ median", "95% CI", "p", "p Holm",
               "n", ""]
    rows = []
    for r in c.rows:
        mark = {"better": "better", "worse": "WORSE"}.get(r["verdict"], "")
        rows.append([r["test"] + (f" @{r['step']}" if r["stepped"] else ""), r["target"],
                     metric_label(r["metric"]), *paired_cells(r), mark])
    lines = [text_table(headers, rows, indent="")] if rows else ["no paired values"]
    for nodeid, what in c.changed.items():
        lines.append(f"changed: {nodeid}: {what}")
    for nodeid, why in c.refused.items():
        lines.append(f"not compared: {nodeid}: {why}")
    for w in c.warnings:
        lines.append(f"warning: {w}")
    if c.only_before:
        lines.append("only in the saved session: " + ", ".join(c.only_before))
    if c.only_now:
        lines.append("new in this session: " + ", ".join(c.only_now))
    return "\n".join(lines)


def github_export(tests: Sequence[dict]) -> list[dict]:
    """github-action-benchmark's ``customBiggerIsBetter`` entries: one per test, target and
    metric (last step), in dB."""
    out = []
    for t in tests:
        last = max((a["step"] for a in t["aggregates"]), default=0)
        for a in t["aggregates"]:
            if a["step"] == last and a["value"] is not None and math.isfinite(a["value"]):
                info = METRICS[a["metric"]] if a["metric"] in METRICS else None
                if info is not None and not info.higher_is_better:
                    continue  # the format has one direction per file
                out.append({"name": f"{t['nodeid']} {a['target']} {metric_label(a['metric'])}",
                            "unit": info.unit if info else "",
                            "value": round(a["value"], 4),
                            "extra": f"{a['n']}/{a['tracks']} tracks; {t['separator']} on "
                                     f"{t['dataset']}"})
    return out
