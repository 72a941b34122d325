"""``demixbench compare A B``: two runs, or two separators, paired track by track.

Each side is ``RUN`` or ``RUN:SEPARATOR`` (a run narrowed to one separator, by its label in
the run or its name; ``--strategy`` and ``--step`` choose the pipeline, default the plain
separator at step 0, a strategy's final step). Two runs are paired on (dataset, subset, track,
excerpt, separator, strategy, step, target, metric), where separator and strategy are the
names as labelled within each run; two separators on (dataset, subset, track, excerpt,
target, metric). Excerpt pieces of one song (``--excerpts-per-track``) are averaged per song
first: the song is the independent unit, and ``n`` counts songs. Sides whose mixtures differ
(per-stem gains, excerpt length or pieces) are refused: their numbers are not paired
measurements of one input. Per (separator, strategy, step, target, metric) the
table gives both medians, the median paired difference (B - A, oriented so that > 0 is better)
with its bootstrap 95 % CI, the Wilcoxon p and the Holm-corrected p over the table, the number
of pairs and a verdict (:mod:`demixbench.reports.stats`). Runs whose metric definitions differ
(BSS Eval window, uSDR's delta, ...) are refused: their numbers are not the same quantity.
The verdict follows the Holm-corrected p (and the CI), not the raw p.
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ReportError
from ..metrics import METRICS
from ..runs.rows import Variants, flat_config, load_rows, run_settings, select_runs
from ..runs.store import ResultsStore
from .leaderboard import metric_label, text_table
from .stats import compare_paired, holm_by_family, paired_cells

# "data": the track's content fingerprint where the run recorded one (a track of synthetic:2
# is the same song in synthetic:3), else the dataset's name (imports, excerpt pieces)
KEY = ["data", "subset", "song", "excerpt", "pipeline", "step", "target", "metric"]


@dataclass
class RunSide:
    store: Path
    run: dict
    rows: pd.DataFrame
    configs: dict
    separator: str | None = None  # narrowed to this separator (RUN:SEPARATOR)

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def config(self) -> dict:
        return json.loads(self.run["config"])


@dataclass
class Comparison:
    a: RunSide
    b: RunSide
    table: list[dict]
    diffs: list[dict]  # per track, for the strip plots
    config_changes: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def parse_side(text: str) -> tuple[str, str | None]:
    """``RUN`` or ``RUN:SEPARATOR`` -> (run id, separator or None)."""
    run, sep, name = text.partition(":")
    if not run or (sep and not name):
        raise ReportError(f"{text!r}: give RUN or RUN:SEPARATOR, e.g. 5e25af01c2d3:TAK2")
    return run, name or None


def _side(store_path: str | Path, spec: str, strategy: str | None = None,
          step: int | None = None) -> RunSide:
    run_id, separator = parse_side(spec)
    with ResultsStore(store_path, read_only=True) as store:
        run = select_runs(store, [run_id])[0]
        rows = load_rows(store, [run])
        configs = store.configs([run_id])
    variants = Variants(rows, configs)
    rows = rows.copy()
    rows["pipeline"] = [variants.pipeline(a, b) for a, b in zip(rows["separator_hash"],
                                                                 rows["strategy_hash"])]
    config = json.loads(run["config"])
    pieces = (config.get("excerpts_per_track") or 1) > 1
    rows["song"] = rows["track"].str.replace(r" #\d+$", "", regex=True) if pieces else rows["track"]
    prints = config.get("datasets") if isinstance(config.get("datasets"), dict) else {}

    def data(dataset: str, subset: str, track: str) -> str:
        by_track = prints.get(dataset) if isinstance(prints.get(dataset), dict) else {}
        return (None if pieces else by_track.get(f"{subset}/{track}")) or dataset

    rows["data"] = [data(d, s, t) for d, s, t in zip(rows["dataset"], rows["subset"],
                                                     rows["track"])]
    if separator is not None:
        rows = _narrow(rows, variants, separator, strategy, step, run_id)
    return RunSide(Path(store_path), run, rows, configs, separator)


def _narrow(rows: pd.DataFrame, variants: Variants, separator: str, strategy: str | None,
            step: int | None, run_id: str) -> pd.DataFrame:
    """The rows of one pipeline of a run: the separator by label (or name, when it has one
    configuration), the strategy (plain by default) and the step (the strategy's last)."""
    labels = {h: variants.sep_labels[h] for h in set(rows["separator_hash"])}
    hashes = [h for h, lab in labels.items() if lab == separator]
    if not hashes:
        hashes = [h for h in labels if (rows.loc[rows["separator_hash"] == h, "separator"]
                                        == separator).any()]
    if len(hashes) != 1:
        known = ", ".join(sorted(set(labels.values())))
        what = "no separator" if not hashes else "several configurations of"
        raise ReportError(f"run {run_id} has {what} {separator!r}; its separators: {known}")
    part = rows[rows["separator_hash"] == hashes[0]]
    wanted = strategy or "none"
    part = part[part["strategy"] == wanted]
    if part.empty:
        raise ReportError(f"run {run_id}: {separator} has no rows with strategy {wanted}")
    last = int(part["step"].max())
    chosen = last if step is None else int(step)
    if chosen not in set(part["step"]):
        raise ReportError(f"run {run_id}: {separator} {wanted} has steps 0..{last}, not {step}")
    return part[part["step"] == chosen]


def settings_problems(a: RunSide, b: RunSide) -> list[str]:
    """Why the two sides' mixtures differ (empty: the same input was separated)."""
    sa, sb = run_settings(a.run), run_settings(b.run)
    out = []
    for key, what in (("gains", "per-stem gains"), ("excerpt", "excerpt seconds"),
                      ("excerpts_per_track", "excerpts per track")):
        if sa.get(key) != sb.get(key):
            out.append(f"{what}: {sa.get(key)} in {a.run_id}, {sb.get(key)} in {b.run_id}")
    return out


def definition_problems(a: RunSide, b: RunSide, metrics: Sequence[str]) -> list[str]:
    """Why the two runs' numbers are not the same quantity (empty: comparable)."""
    ca, cb = a.config, b.config
    problems = []
    if ca.get("win", 1.0) != cb.get("win", 1.0):
        problems.append(f"BSS Eval window and hop: {ca.get('win', 1.0)} s in {a.run_id}, "
                        f"{cb.get('win', 1.0)} s in {b.run_id}")
    da, db = ca.get("metric_definitions") or {}, cb.get("metric_definitions") or {}
    for m in metrics:
        if m in da and m in db and da[m] != db[m]:
            changed = sorted(k for k in set(da[m]) | set(db[m]) if da[m].get(k) != db[m].get(k))
            problems.append(f"{metric_label(m)}: " + ", ".join(
                f"{k} {da[m].get(k)} in {a.run_id}, {db[m].get(k)} in {b.run_id}" for k in changed))
    return problems


def config_changes(a: RunSide, b: RunSide) -> dict[str, list[str]]:
    """Per separator name in both runs, the configuration keys that differ (A -> B)."""
    out: dict[str, list[str]] = {}
    names_a = dict(zip(a.rows["separator_hash"], a.rows["separator"]))
    names_b = dict(zip(b.rows["separator_hash"], b.rows["separator"]))
    for name in sorted(set(names_a.values()) & set(names_b.values())):
        ha = [h for h, n in names_a.items() if n == name]
        hb = [h for h, n in names_b.items() if n == name]
        if len(ha) != 1 or len(hb) != 1 or ha == hb:
            continue
        fa, fb = flat_config(a.configs.get(ha[0], {})), flat_config(b.configs.get(hb[0], {}))
        changes = [f"{k}: {fa.get(k, '(absent)')!r} -> {fb.get(k, '(absent)')!r}"
                   for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
        out[name] = changes or [f"configuration hash {ha[0]} -> {hb[0]}"]
    return out


def _metric_names(metrics: Sequence[str] | None) -> list[str]:
    names = list(metrics or ("sdr", "usdr", "si_sdr"))
    by_label = {metric_label(m).lower(): m for m in METRICS}
    out = []
    for m in names:
        key = m.strip().lower()
        name = key if key in METRICS else by_label.get(key)
        if name is None:
            raise ReportError(f"--metric {m}: unknown metric; choose from {', '.join(METRICS)}")
        out.append(name)
    return out


def compare(store_a: str | Path, side_a: str, store_b: str | Path | None, side_b: str,
            metrics: Sequence[str] | None = None, strategy: str | None = None,
            step: int | None = None) -> Comparison:
    metrics = _metric_names(metrics)
    a = _side(store_a, side_a, strategy, step)
    b = _side(store_b or store_a, side_b, strategy, step)
    if (a.separator is None) != (b.separator is None):
        raise ReportError("give RUN:SEPARATOR on both sides (two separators) or RUN on both "
                          "(two runs, separator by separator)")
    problems = definition_problems(a, b, metrics) + settings_problems(a, b)
    if problems:
        raise ReportError("the two sides measure different things, so they are not paired: "
                          + "; ".join(problems))
    notes = []
    for side in (a, b):
        if "metric_definitions" not in side.config and "import" not in side.config:
            notes.append(f"run {side.run_id} predates recorded metric definitions; its metrics "
                         "are taken to be defined as in this version")
    ds_a, ds_b = a.config.get("datasets", {}), b.config.get("datasets", {})
    if ds_a != ds_b and a.run_id != b.run_id:
        notes.append("the runs' datasets differ (" + ", ".join(sorted(ds_a)) + " vs "
                     + ", ".join(sorted(ds_b)) + ", or their tracks' contents): only tracks "
                     "scored in both, on the same excerpt, are paired")
    if a.rows["song"].ne(a.rows["track"]).any() or b.rows["song"].ne(b.rows["track"]).any():
        notes.append("excerpt pieces are averaged per song before pairing: n counts songs")
    ra = _per_song(a.rows[a.rows["metric"].isin(metrics)])
    rb = _per_song(b.rows[b.rows["metric"].isin(metrics)])
    two_separators = a.separator is not None
    if two_separators:
        label = f"{a.separator} → {b.separator}"
        ra, rb = ra.assign(pipeline=label, step=0), rb.assign(pipeline=label, step=0)
    merged = ra[KEY + ["value", "oracle"]].merge(rb[KEY + ["value", "oracle"]], on=KEY,
                                                 suffixes=("_a", "_b"))
    pipes_a, pipes_b = set(ra["pipeline"]), set(rb["pipeline"])
    table, diffs = [], []
    for (pipe, step_, target, metric), g in merged.groupby(["pipeline", "step", "target",
                                                            "metric"], sort=False):
        info = METRICS[metric] if metric in METRICS else None
        higher = info.higher_is_better if info else True
        r = compare_paired(g["value_a"].to_numpy(), g["value_b"].to_numpy(), higher)
        multi = not two_separators and (ra[(ra["pipeline"] == pipe)]["step"].max() > 0)
        label = pipe + (f" @{step_}" if multi else "")
        oracle = bool(g["oracle_a"].any() or g["oracle_b"].any())
        table.append({"separator": label, "target": target, "metric": metric,
                      "metric_label": metric_label(metric), "oracle": oracle, **r.as_dict()})
        sign = 1.0 if higher else -1.0
        for track, va, vb in zip(g["song"], g["value_a"], g["value_b"]):
            d = sign * (vb - va)
            if math.isfinite(d):
                diffs.append({"row": f"{label} · {target}", "metric": metric_label(metric),
                              "track": track, "d": round(float(d), 3), "verdict": r.verdict})
    if not table:
        raise ReportError(f"{side_a} and {side_b} share no (track, excerpt, separator, target) "
                          "to pair: compare runs of the same dataset, or name a separator on "
                          "each side (RUN:SEPARATOR)")
    holm_by_family(table)  # blind and oracle comparisons are separate families
    return Comparison(a, b, table, diffs, config_changes(a, b) if not two_separators else {},
                      notes, sorted(pipes_a - pipes_b) if not two_separators else [],
                      sorted(pipes_b - pipes_a) if not two_separators else [])


def _per_song(rows: pd.DataFrame) -> pd.DataFrame:
    """One value per song: the mean of its excerpt pieces (a whole track is its own song)."""
    if rows.empty or rows["song"].eq(rows["track"]).all():
        return rows
    keys = ["data", "dataset", "subset", "song", "pipeline", "step", "target", "metric",
            "separator", "oracle"]
    out = rows.groupby(keys, dropna=False, as_index=False)["value"].mean()
    return out.assign(excerpt="pieces", track=out["song"])


def _grouped_table(table: list[dict], width: int) -> list[str]:
    """The comparison rows under one heading line per separator, a row per target and metric;
    where that is wider than ``width``, under one heading per separator and target, a row per
    metric (80 columns, where a table with separator and target columns made ~115)."""
    headers = ["metric", "A", "B", "Δ", "95% CI", "p", "p Holm", "n", "verdict"]
    for by_target in (False, True):
        groups: dict[tuple[str, ...], list[list[str]]] = {}
        for r in table:
            key = (r["separator"], r["target"]) if by_target else (r["separator"],)
            groups.setdefault(key, []).append(
                ([] if by_target else [r["target"]])
                + [r["metric_label"], *paired_cells(r), r["verdict"]])
        body = text_table(headers if by_target else ["target", *headers],
                          [row for rows in groups.values() for row in rows],
                          indent="    ").splitlines()
        out, rows_left = [body[0]], iter(body[1:])
        for key, rows in groups.items():
            out.append("  " + "  ".join(key))
            out += [next(rows_left) for _ in rows]
        if max(map(len, out)) <= width:
            break
    return out


def format_table(c: Comparison, width: int | None = None) -> str:
    """The comparison as text, its table within ``width`` columns where it can be (default:
    the terminal's; 80 when the output is not a terminal)."""
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    lines = [f"A: run {c.a.run_id}{':' + c.a.separator if c.a.separator else ''} ({c.a.store})",
             f"B: run {c.b.run_id}{':' + c.b.separator if c.b.separator else ''} ({c.b.store})"]
    for name, changes in c.config_changes.items():
        lines.append(f"{name} changed: " + "; ".join(changes))
    for n in c.notes:
        lines.append(f"note: {n}")
    if c.only_a:
        lines.append("only in A (not compared): " + ", ".join(c.only_a))
    if c.only_b:
        lines.append("only in B (not compared): " + ", ".join(c.only_b))
    lines += [""] + _grouped_table(c.table, width)
    lines += ["", textwrap.fill(
        "A, B: medians over tracks; Δ: median over tracks of B - A (> 0: B better); 95% CI: "
        "bootstrap 95 % of that median; p: two-sided Wilcoxon signed-rank; p Holm: corrected "
        "over this table (blind and oracle rows are separate families); verdict: CI on one "
        "side of 0 and Holm p < 0.05 (the corrected p decides).", width=min(width, 100))]
    return "\n".join(lines)


def render_html(c: Comparison, title: str | None = None) -> str:
    from . import charts, html

    metrics = list(dict.fromkeys(r["metric_label"] for r in c.table))
    order = list(dict.fromkeys(d["row"] for d in c.diffs))
    data = {"table": c.table, "tables": {"diffs": c.diffs},
            "charts": {f"diff/{m}": {"spec": charts.paired_strip(m, order)} for m in metrics},
            "metrics": metrics, "targets": [], "frames": {"tracks": {}, "hop": 1.0}}
    return html.render("compare.html.j2", data=data, cmp=c, metrics=metrics,
                       title=title or f"demixbench compare {c.a.run_id} → {c.b.run_id}")
