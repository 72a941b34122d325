"""``demixbench rank``: many separators ranked against each other, per target and metric, with
the statistics SiSEC 2018's analysis publishes.

Separators are ranked as they are (rows without a strategy: a strategy's steps are compared
with the plain separator by the report's step curves and ``compare --strategy``). For each
(target, metric): a songs × separators table of per-song values (excerpt pieces of a
song averaged first: the song is the independent unit), restricted to the songs every ranked
separator scored (Friedman needs complete blocks; ``n`` says how many). Then

- the Friedman test over the separators (``scipy.stats.friedmanchisquare``, k >= 3);
- mean ranks (rank 1 = best in a song, the metric's direction respected; ties share ranks);
- pairwise post-hoc p-values: Conover's test after Friedman (default) or Nemenyi's, and the
  Wilcoxon signed-rank test with Holm's correction, both from **scikit-posthocs**, the
  maintained library of these tests (its Friedman post-hocs take exactly this blocks ×
  groups table; autorank wraps the same tests with fewer choices of post-hoc);
- the critical-difference diagram (scikit-posthocs' ``critical_difference_diagram``).

Only blind separators are ranked and tested together; oracles (ideal masks, oracle
strategies) are listed beside them as references with their medians, never in the family.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ReportError
from ..metrics import METRICS
from ..runs.rows import Variants, distinguish_settings, load_rows, select_runs, target_order
from ..runs.store import ResultsStore
from .leaderboard import metric_label

POSTHOCS = ("conover", "nemenyi")


@dataclass
class Ranking:
    target: str
    metric: str
    n: int  # songs every ranked separator scored
    separators: list[str]
    mean_ranks: dict[str, float]
    medians: dict[str, float]
    friedman_stat: float
    friedman_p: float
    posthoc: str
    posthoc_p: pd.DataFrame  # separators x separators
    wilcoxon_holm_p: pd.DataFrame
    references: dict[str, float] = field(default_factory=dict)  # oracle medians
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        def matrix(m: pd.DataFrame) -> dict:
            return {a: {b: _num(m.loc[a, b]) for b in m.columns} for a in m.index}

        return {"target": self.target, "metric": self.metric, "n": self.n,
                "friedman_stat": _num(self.friedman_stat), "friedman_p": _num(self.friedman_p),
                "separators": [{"separator": s, "mean_rank": _num(self.mean_ranks[s]),
                                "median": _num(self.medians[s])} for s in self.separators],
                "references": {k: _num(v) for k, v in self.references.items()},
                "posthoc": self.posthoc, "posthoc_p": matrix(self.posthoc_p),
                "wilcoxon_holm_p": matrix(self.wilcoxon_holm_p), "notes": self.notes}


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def song_table(rows: pd.DataFrame, target: str, metric: str) -> pd.DataFrame:
    """songs x pipelines of per-song values (pieces averaged per song), NaN where missing."""
    part = rows[(rows["target"] == target) & (rows["metric"] == metric)]
    song = part["track"].str.replace(r" #\d+$", "", regex=True)
    key = part["dataset"] + "/" + part["subset"].fillna("") + "/" + song
    return part.assign(song=key).pivot_table(index="song", columns="pipeline", values="value",
                                             aggfunc="mean")


def rank_table(table: pd.DataFrame, higher_is_better: bool = True,
               posthoc: str = "conover") -> dict:
    """Friedman, mean ranks and post-hoc p-values of a complete songs x separators table."""

    if posthoc not in POSTHOCS:
        raise ReportError(f"--posthoc {posthoc}: choose one of {', '.join(POSTHOCS)}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # all-tied blocks (separators that give the same values) make 0/0: NaN p, said so
        warnings.simplefilter("ignore", RuntimeWarning)
        return _rank_table(table, higher_is_better, posthoc)


def _rank_table(table: pd.DataFrame, higher_is_better: bool, posthoc: str) -> dict:
    import scikit_posthocs as sp
    from scipy.stats import friedmanchisquare

    k = table.shape[1]
    stat, p = (friedmanchisquare(*[table[c].to_numpy() for c in table.columns])
               if k >= 3 else (math.nan, math.nan))
    ranks = table.rank(axis=1, ascending=not higher_is_better).mean()
    post = (sp.posthoc_conover_friedman(table) if posthoc == "conover"
            else sp.posthoc_nemenyi_friedman(table))
    long = table.reset_index().melt(id_vars=table.index.name or "index", var_name="separator",
                                    value_name="value")
    wil = sp.posthoc_wilcoxon(long, val_col="value", group_col="separator", p_adjust="holm",
                              sort=False)
    return {"friedman": (float(stat), float(p)), "mean_ranks": ranks.to_dict(),
            "posthoc": post.loc[table.columns, table.columns],
            "wilcoxon": wil.loc[table.columns, table.columns]}


def rank(store_path: str, run_ids: Sequence[str] | None = None, metric: str = "sdr",
         targets: Sequence[str] | None = None, posthoc: str = "conover") -> Rankings:
    """The rankings of the runs' separators (see the module doc), one per target."""
    with ResultsStore(store_path, read_only=True) as store:
        runs = select_runs(store, run_ids)
        rows = load_rows(store, runs)
        configs = store.configs([r["run_id"] for r in runs])
    rows, configs = distinguish_settings(rows, runs, configs)
    return rank_rows(rows, Variants(rows, configs), metric, targets, posthoc)


def rank_rows(rows: pd.DataFrame, variants: Variants, metric: str = "sdr",
              targets: Sequence[str] | None = None, posthoc: str = "conover",
              strict: bool = True) -> Rankings:
    """Rankings from rows already read (the report's); ``strict=False`` skips a target that
    cannot be ranked instead of refusing."""
    if metric not in METRICS:
        raise ReportError(f"--metric {metric}: unknown metric; choose from {', '.join(METRICS)}")
    rows = rows[rows["strategy_hash"] == ""].copy()  # separators, as they are (no strategy)
    rows["pipeline"] = [variants.pipeline(a, b) for a, b in zip(rows["separator_hash"],
                                                                 rows["strategy_hash"])]
    higher = METRICS[metric].higher_is_better
    out = Rankings()
    present = target_order(rows.loc[rows["metric"] == metric, "target"])
    for target in targets or present:
        if target not in present:
            raise ReportError(f"--target {target}: no {metric} rows for it; targets: "
                              f"{', '.join(present)}")
        table = song_table(rows, target, metric)
        oracle = set(rows.loc[rows["oracle"], "pipeline"])
        blind = table[[c for c in table.columns if c not in oracle]]
        refs = {c: float(table[c].median()) for c in table.columns if c in oracle}
        notes = []
        complete = blind.dropna(axis=0, how="any")
        dropped = len(blind) - len(complete)
        if dropped:
            notes.append(f"{dropped} song(s) left out: not scored by every ranked separator")
        if blind.shape[1] < 2:
            continue
        if len(complete) < 2:
            why = (f"{target} {metric}: only {len(complete)} song(s) scored by every blind "
                   "separator; rank needs two or more")
            if strict and targets:  # asked for by name: say why not
                raise ReportError(why)
            out.skipped.append(why)
            continue
        if complete.shape[1] < 3:
            notes.append("two separators: Friedman needs three or more; the p is Wilcoxon's")
        res = rank_table(complete, higher, posthoc)
        order = sorted(complete.columns, key=lambda c: res["mean_ranks"][c])
        test, matrix = ((posthoc, res["posthoc"]) if complete.shape[1] >= 3
                        else ("wilcoxon", res["wilcoxon"]))  # no Friedman post-hoc for two
        out.append(Ranking(target, metric, len(complete), order, res["mean_ranks"],
                           {c: float(complete[c].median()) for c in order}, *res["friedman"],
                           test, matrix.loc[order, order], res["wilcoxon"].loc[order, order],
                           refs, notes))
    if not out and strict:
        raise ReportError("nothing to rank: a ranking needs two or more blind separators that "
                          "share two or more songs" + "".join(f"; {w}" for w in out.skipped))
    return out


class Rankings(list):
    """The rankings made, and why any target was left out (``skipped``)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.skipped: list[str] = []


def report_section(rows: pd.DataFrame, variants: Variants) -> list[dict]:
    """The report's ranking: every target where three or more blind pipelines share two or
    more songs, on cSDR (else uSDR), with its critical-difference diagram."""
    metric = next((m for m in ("sdr", "usdr", "si_sdr") if m in set(rows["metric"])), None)
    if metric is None:
        return []
    out = []
    for r in rank_rows(rows, variants, metric, strict=False):
        if len(r.separators) < 3:
            continue
        out.append({**r.as_dict(), "label": metric_label(metric), "cd_svg": cd_diagram_svg(r)})
    return out


def format_rankings(rankings: Sequence[Ranking]) -> str:
    from .leaderboard import text_table
    from .stats import fmt

    lines = []
    for r in rankings:
        lines.append(f"{r.target} · {metric_label(r.metric)}: {r.n} songs, "
                     f"{len(r.separators)} blind separators; Friedman chi2 = "
                     f"{fmt(r.friedman_stat)}, p = {_p(r.friedman_p)}")
        head = ["rank", "separator", "mean rank", "median", f"not different ({r.posthoc} p >= 0.05)"]
        rows = []
        for i, s in enumerate(r.separators):
            same = [str(j + 1) for j, o in enumerate(r.separators)
                    if o != s and not r.posthoc_p.loc[s, o] < 0.05]
            rows.append([str(i + 1), s, fmt(r.mean_ranks[s]), fmt(r.medians[s]),
                         ", ".join(f"#{k}" for k in same) or "-"])
        lines.append(text_table(head, rows, indent="  "))
        for name, med in r.references.items():
            lines.append(f"  reference (oracle, not ranked): {name} median {fmt(med)}")
        lines += [f"  note: {n}" for n in r.notes]
        lines.append("")
    lines += [f"not ranked: {w}" for w in getattr(rankings, "skipped", [])]
    lines.append("mean rank: 1 = best in a song; not different: the ranks whose post-hoc p\n"
                 "(after Friedman, scikit-posthocs) is 0.05 or more; every p, and Wilcoxon-Holm's,\n"
                 "is in --format json or csv.")
    return "\n".join(lines)


def _p(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.2g}" if v < 0.001 else f"{v:.3f}"


def long_rows(rankings: Sequence[Ranking]) -> list[dict]:
    """One row per (target, metric, separator, other separator): for CSV."""
    out = []
    for r in rankings:
        for s in r.separators:
            for o in r.separators:
                out.append({"target": r.target, "metric": r.metric, "n": r.n,
                            "friedman_stat": _num(r.friedman_stat),
                            "friedman_p": _num(r.friedman_p), "separator": s,
                            "mean_rank": _num(r.mean_ranks[s]), "median": _num(r.medians[s]),
                            "other": o, f"{r.posthoc}_p": _num(r.posthoc_p.loc[s, o]),
                            "wilcoxon_holm_p": _num(r.wilcoxon_holm_p.loc[s, o])})
    return out


def cd_diagram_svg(r: Ranking) -> str:
    """The critical-difference diagram of one ranking (scikit-posthocs, matplotlib) as SVG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.32 * len(r.separators)))
    sp.critical_difference_diagram(pd.Series(r.mean_ranks)[r.separators], r.posthoc_p, ax=ax)
    ax.set_title(f"{r.target} · {metric_label(r.metric)} (n = {r.n}, {r.posthoc})", fontsize=9)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()

