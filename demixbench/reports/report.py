"""``demixbench report``: the HTML page of one or more runs, from the store alone (plus the
estimate cache and the dataset for ``--audio``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..runs.store import ResultsStore
from . import charts, html, model


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts)) if ts else "?"


def chart_specs(data: dict) -> dict[str, dict]:
    """Every plot of the page by id (the ``data-chart`` attribute of its element)."""
    out: dict[str, dict] = {}
    for t in data["targets"]:
        order = data["order"].get(t, data["variants"])
        oracles = data["oracle_variants"]
        for m in data["metrics_shown"]:
            out[f"dist/{t}/{m}"] = {"spec": charts.distribution(
                t, m, order, domain=data["dist_domain"].get(f"{t}/{m}"), oracles=oracles)}
        if t in data["heat_domain"]:
            out[f"heat/{t}"] = {"spec": charts.heatmap(t, "cSDR", order, data["heat_domain"][t],
                                                       oracles)}
    if data["frames"]["tracks"]:
        out["frames"] = {"spec": charts.frames(data["frames"]["metric"]), "datasets": True}
    for m in data["strategy_metrics"]:
        out[f"steps/{m}"] = {"spec": charts.strategy_steps(m)}
    for m in dict.fromkeys(r["metric"] for r in data["strength"]):
        out[f"strength/{m}"] = {"spec": charts.strength(m)}
    if data["oracle_gain"]:
        out["oracle_gain"] = {"spec": charts.oracle_gain()}
    for r in data["ranking"]:
        out[f"rank/{r['target']}"] = {"spec": charts.significance(
            r["target"], [s["separator"] for s in r["separators"]], r["posthoc"])}
    if data["quality_cost"]:
        out["quality_cost"] = {"spec": charts.quality_cost(data["quality_cost"][0]["metric"])}
    return out


def make_report(store: ResultsStore, run_ids: Sequence[str] | None = None,
                title: str | None = None, audio: dict | None = None) -> str:
    """The page's HTML. ``audio``: what :func:`demixbench.reports.audio.audio_section` made."""
    data = model.build(store, run_ids, title)
    for r in data["header"]["runs"]:
        r["created_text"], r["updated_text"] = _when(r["created"]), _when(r["updated"])
    data["strategy_metrics"] = list(dict.fromkeys(s["metric"] for s in data["strategies"]))
    data["strength_metrics"] = list(dict.fromkeys(r["metric"] for r in data["strength"]))
    data["tables"] = {
        "points": data.pop("points"),
        "steps": [{"panel": s["panel"], "metric": s["metric"], **st}
                  for s in data["strategies"] for st in s["steps"]],
        "oracle_gain": data["oracle_gain"],
        "strength": [{"pipeline": r["pipeline"], "target": r["target"], "metric": r["metric"],
                      "one_shot": r["one_shot"], "which": f"{which} step",
                      "step": r[f"{which}_step"], "gain": r[f"gain_{which}"],
                      "lo": r[f"lo_{which}"], "hi": r[f"hi_{which}"],
                      "p_holm": r[f"p_holm_{which}"]}
                     for r in data["strength"] for which in ("best", "final")],
        "quality_cost": data["quality_cost"],
        "ranking_p": [{"t": r["target"], "a": a, "b": b, "p": p, "band": charts.p_band(p)}
                      for r in data["ranking"] for a, row in r["posthoc_p"].items()
                      for b, p in row.items() if a != b],
    }
    data["charts"] = chart_specs(data)
    return html.render("report.html.j2", data=data, title=data["title"], audio=audio,
                       generated=_when(time.time()), version=__version__)


def write_report(store_path: str | Path, out: str | Path | None, run_ids: Sequence[str] | None,
                 title: str | None = None, audio_options: dict | None = None) -> Path:
    """Make the report of ``run_ids`` (default: the latest run) and write it to ``out``
    (default: ``reports/<run id>.html``, or under ``$DEMIXBENCH_REPORTS``)."""
    with ResultsStore(store_path, read_only=True) as store:
        runs = model.select_runs(store, run_ids)
        ids = [r["run_id"] for r in runs]
        audio = None
        if audio_options is not None:
            from .audio import audio_section

            audio = audio_section(store, ids, **audio_options)
        page = make_report(store, ids, title, audio)
    folder = Path(os.environ.get("DEMIXBENCH_REPORTS") or "reports")
    target = Path(out) if out else folder / f"{'+'.join(ids)}.html"
    return html.write(page, target)
