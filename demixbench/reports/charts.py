"""Vega-Lite specifications of the report's plots.

Why Vega-Lite: a report is one file that must open from ``file://`` with no network, so the
plotting library's JavaScript is inlined; the Vega-Lite bundle (vega, vega-lite, vega-embed,
from ``vl-convert-python``'s ``javascript_bundle()``, offline) is about 0.9 MB against plotly's
4.8 MB, and its declarative specs are plain JSON built here and checked in tests without a
browser. Specs name their data (``{"name": ...}``); the page supplies the values from the one
data object embedded in it, so no value is written twice.
"""

from __future__ import annotations

import json

BLIND = "#3b6ea8"
ORACLE = "#c0622d"
COLOR_ORACLE = {"field": "o", "type": "nominal", "title": "oracle",
                "scale": {"domain": [False, True], "range": [BLIND, ORACLE]},
                "legend": {"labelExpr": "datum.value ? 'oracle' : 'blind'", "orient": "top"}}


def _base(height: int | str | dict = "container", width: str | int | dict = "container") -> dict:
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "width": width,
            "height": height,
            "config": {"view": {"stroke": None}, "axis": {"labelLimit": 260}}}
    return spec


def _rows_height(step: int, order: list[str]) -> int:
    """A fixed height of ``step`` pixels a row: a width that fits its container and a
    discrete (step) height make Vega-Lite warn and drop the fit."""
    return step * max(1, len(order))


def distribution(target: str, metric: str, order: list[str], unit: str = "dB",
                 domain: list[float] | None = None, oracles: list[str] | None = None) -> dict:
    """Box plot plus one point per track, per variant, sorted by median; oracles coloured
    apart; hover shows track and value. ``domain``: the axis range (robust percentiles of the
    values: one −80 dB track must not squash every box); points beyond it are drawn at its
    edge as triangles, with their true value in the tooltip."""
    y = {"field": "v", "type": "nominal", "title": None, "sort": order,
         "axis": _oracle_axis(oracles or [])}
    scale = {"zero": False, **({"domain": domain, "clamp": True} if domain else {})}
    x = {"field": "y", "type": "quantitative", "title": f"{metric} ({unit})", "scale": scale}
    beyond = (f"datum.y < {domain[0]} || datum.y > {domain[1]}" if domain else "false")
    shape = ({"shape": {"field": "clipped", "type": "nominal", "title": None,
                        "scale": {"domain": ["within", "beyond the axis"],
                                  "range": ["circle", "triangle"]}}} if domain else {})
    return {**_base(height=_rows_height(22, order)), "data": {"name": "points"},
            "transform": [{"filter": {"and": [{"field": "t", "equal": target},
                                              {"field": "m", "equal": metric},
                                              {"field": "y", "valid": True}]}},
                          {"calculate": "random()", "as": "jitter"},
                          {"calculate": f"({beyond}) ? 'beyond the axis' : 'within'",
                           "as": "clipped"}],
            "layer": [
                {"mark": {"type": "boxplot", "extent": 1.5, "opacity": 0.35, "size": 14,
                          "outliers": False, "clip": True},
                 "encoding": {"y": y, "x": x, "color": COLOR_ORACLE}},
                {"mark": {"type": "point", "filled": True, "size": 28, "opacity": 0.85},
                 "encoding": {"y": y, "x": x, "color": COLOR_ORACLE, **shape,
                              "yOffset": {"field": "jitter", "type": "quantitative",
                                          "scale": {"domain": [-1.5, 2.5]}},
                              "tooltip": [{"field": "k", "title": "track"},
                                          {"field": "v", "title": "separator"},
                                          {"field": "y", "title": metric, "format": ".2f"}]}},
            ]}


def _oracle_axis(oracles: list[str]) -> dict:
    """An axis whose oracle labels say so and are coloured apart."""
    test = f"indexof({json.dumps(sorted(oracles))}, datum.value) >= 0"
    return {"labelExpr": f"{test} ? datum.value + ' (oracle)' : datum.value",
            "labelColor": {"condition": {"test": test, "value": ORACLE}, "value": "#222"}}


def heatmap(target: str, metric: str, order: list[str], domain: list[float],
            oracles: list[str] | None = None) -> dict:
    """Separator x track, colour clipped to the 10th-90th percentile of the target's values;
    oracles labelled, cells resting on few valid frames marked with a flag."""
    x = {"field": "k", "type": "nominal", "title": "track",
         "axis": {"labelAngle": -40, "labelLimit": 140}}
    y = {"field": "v", "type": "nominal", "title": None, "sort": order,
         "axis": _oracle_axis(oracles or [])}
    return {**_base(height=_rows_height(18, order)), "data": {"name": "points"},
            "transform": [{"filter": {"and": [{"field": "t", "equal": target},
                                              {"field": "m", "equal": metric}]}}],
            "layer": [
                {"mark": {"type": "rect"},
                 "encoding": {
                     "x": x, "y": y,
                     "color": {"field": "y", "type": "quantitative", "title": f"{metric} (dB)",
                               "scale": {"domain": domain, "clamp": True, "scheme": "viridis"}},
                     "tooltip": [{"field": "k", "title": "track"},
                                 {"field": "v", "title": "separator"},
                                 {"field": "y", "title": metric, "format": ".2f"},
                                 {"field": "f", "title": "few valid frames"}]}},
                {"transform": [{"filter": "datum.f === 1"}],
                 "mark": {"type": "text", "text": "⚑", "color": "white", "fontSize": 11},
                 "encoding": {"x": x, "y": y}},
            ]}


def frames(metric: str) -> dict:
    """SDR over time for one track and target; NaN frames as red ticks on the axis, quiet
    frames (reference below -60 dBFS) as grey bands. The page fills ``frames``, ``nan`` and
    ``quiet`` for the chosen track."""
    return {**_base(height=260), "layer": [
        {"data": {"name": "quiet"}, "mark": {"type": "rect", "color": "#bbb", "opacity": 0.35},
         "encoding": {"x": {"field": "t0", "type": "quantitative"},
                      "x2": {"field": "t1"},
                      "tooltip": [{"field": "t0", "title": "quiet frame from (s)"}]}},
        {"data": {"name": "frames"},
         "mark": {"type": "line", "point": True, "invalid": "break-paths-show-domains"},
         "encoding": {"x": {"field": "t", "type": "quantitative", "title": "time in excerpt (s)"},
                      "y": {"field": "y", "type": "quantitative", "title": f"{metric} (dB)",
                            "scale": {"zero": False}},
                      # 20 colours times 8 point shapes: 40 separators stay apart; oracles dashed
                      "color": {"field": "v", "type": "nominal", "title": "separator",
                                "scale": {"scheme": "tableau20"}},
                      "shape": {"field": "v", "type": "nominal", "legend": None},
                      "strokeDash": {"field": "o", "type": "nominal", "title": "oracle",
                                     "scale": {"domain": [False, True],
                                               "range": [[1, 0], [5, 3]]},
                                     "legend": {"labelExpr":
                                                "datum.value ? 'oracle' : 'blind'"}},
                      "tooltip": [{"field": "v", "title": "separator"},
                                  {"field": "t", "title": "frame start (s)"},
                                  {"field": "y", "title": metric, "format": ".2f"}]}},
        {"data": {"name": "nan"}, "mark": {"type": "tick", "color": "#d62728", "thickness": 2},
         "encoding": {"x": {"field": "t", "type": "quantitative"},
                      "y": {"value": 255},
                      "opacity": {"condition": {"test": "datum.ghost", "value": 0},
                                  "value": 1},
                      "tooltip": [{"field": "v", "title": "NaN frame of"},
                                  {"field": "t", "title": "frame start (s)"}]}},
    ]}


def strategy_steps(metric: str, columns: int = 3) -> dict:
    """Per (pipeline, target) panel: median paired difference to step 0 per step with its
    bootstrap 95 % CI; the best step drawn as a star."""
    x = {"field": "step", "type": "ordinal", "title": "step"}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json",
            "data": {"name": "steps"},
            "transform": [{"filter": {"field": "metric", "equal": metric}}],
            "facet": {"field": "panel", "type": "nominal", "title": None,
                      "header": {"labelLimit": 320}},
            "columns": columns,
            "spec": {"width": 220, "height": 150, "layer": [
                {"mark": {"type": "rule", "color": "#999", "strokeDash": [3, 3]},
                 "encoding": {"y": {"datum": 0}}},
                {"mark": {"type": "errorbar", "ticks": True},
                 "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative",
                                            "title": f"Δ {metric} vs step 0 (dB)"},
                              "y2": {"field": "hi"}}},
                {"mark": {"type": "line", "point": True},
                 "encoding": {"x": x, "y": {"field": "median", "type": "quantitative"},
                              "tooltip": [{"field": "step"}, {"field": "median", "format": ".2f"},
                                          {"field": "lo", "title": "CI low", "format": ".2f"},
                                          {"field": "hi", "title": "CI high", "format": ".2f"},
                                          {"field": "p", "title": "Wilcoxon p", "format": ".3f"},
                                          {"field": "n", "title": "tracks"}]}},
                {"transform": [{"filter": "datum.best"}],
                 "mark": {"type": "point", "shape": "diamond", "size": 160, "filled": True,
                          "color": "#d62728"},
                 "encoding": {"x": x, "y": {"field": "median", "type": "quantitative"},
                              "tooltip": [{"field": "step", "title": "best step"},
                                          {"field": "median", "format": ".2f"}]}},
            ]},
            "resolve": {"scale": {"y": "independent"}}}


def strength(metric: str) -> dict:
    """The figure the seed paper could not draw: per (separator pipeline, target), one-shot
    quality (x) against the progressive gain (y) at the best and at the final step, with the
    gain's bootstrap 95 % CI."""
    x = {"field": "one_shot", "type": "quantitative", "scale": {"zero": False},
         "title": f"one-shot {metric} (median over tracks, dB)"}
    y = {"field": "gain", "type": "quantitative",
         "title": f"progressive gain in {metric} (median paired Δ, dB)"}
    color = {"field": "which", "type": "nominal", "title": None,
             "scale": {"domain": ["best step", "final step"], "range": ["#2a9d4b", "#d62728"]}}
    return {**_base(height=340), "data": {"name": "strength"},
            "transform": [{"filter": {"field": "metric", "equal": metric}}],
            "layer": [
                {"mark": {"type": "rule", "color": "#999", "strokeDash": [3, 3]},
                 "encoding": {"y": {"datum": 0}}},
                {"mark": {"type": "rule", "opacity": 0.6},
                 "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative"},
                              "y2": {"field": "hi"}, "color": color}},
                {"mark": {"type": "point", "filled": True, "size": 70},
                 "encoding": {"x": x, "y": y, "color": color,
                              "shape": {"field": "target", "type": "nominal"},
                              "tooltip": [{"field": "pipeline"}, {"field": "target"},
                                          {"field": "which"}, {"field": "step"},
                                          {"field": "one_shot", "format": ".2f"},
                                          {"field": "gain", "format": ".2f"},
                                          {"field": "lo", "title": "CI low", "format": ".2f"},
                                          {"field": "hi", "title": "CI high", "format": ".2f"},
                                          {"field": "p_holm", "title": "p (Holm)",
                                           "format": ".3f"}]}},
            ]}


def oracle_gain() -> dict:
    """The seed paper's Fig. 2: per pipeline, each stem's median cSDR against the gain of the
    boosted target (solid) and the other stems (dashed)."""
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json",
            "data": {"name": "oracle_gain"},
            "facet": {"field": "pipeline", "type": "nominal", "title": None},
            "columns": 3,
            "spec": {"width": 260, "height": 180,
                     "mark": {"type": "line", "point": True},
                     "encoding": {
                         "x": {"field": "gain", "type": "quantitative", "title": "target gain",
                               "scale": {"zero": False}},
                         "y": {"field": "y", "type": "quantitative", "title": "median cSDR (dB)",
                               "scale": {"zero": False}},
                         "color": {"field": "target", "type": "nominal", "title": "stem"},
                         "strokeDash": {"field": "boosted", "type": "nominal",
                                        "title": "boosted target",
                                        "scale": {"domain": [True, False],
                                                  "range": [[1, 0], [4, 3]]}},
                         "tooltip": [{"field": "target"}, {"field": "gain"},
                                     {"field": "y", "title": "median cSDR", "format": ".2f"}]}}}


def quality_cost(metric: str) -> dict:
    """Quality against real-time factor, one point per separator pipeline."""
    x = {"field": "rtf", "type": "quantitative", "title": "real-time factor (log scale)",
         "scale": {"type": "log"}}
    y = {"field": "y", "type": "quantitative", "title": f"mean over targets of {metric} (dB)",
         "scale": {"zero": False}}
    return {**_base(height=320), "data": {"name": "quality_cost"}, "layer": [
        {"mark": {"type": "point", "filled": True, "size": 90},
         "encoding": {"x": x, "y": y, "color": COLOR_ORACLE | {"field": "oracle"},
                      "tooltip": [{"field": "pipeline"}, {"field": "rtf", "format": ".4f"},
                                  {"field": "y", "title": metric, "format": ".2f"}]}},
        {"mark": {"type": "text", "align": "left", "dx": 7, "fontSize": 10},
         "encoding": {"x": x, "y": y, "text": {"field": "pipeline"}}},
    ]}


def paired_strip(metric: str, order: list[str]) -> dict:
    """``demixbench compare``: per (separator, target), each track's paired difference."""
    return {**_base(height=_rows_height(22, order)), "data": {"name": "diffs"},
            "transform": [{"filter": {"field": "metric", "equal": metric}},
                          {"calculate": "random()", "as": "jitter"}],
            "layer": [
                {"mark": {"type": "rule", "color": "#999", "strokeDash": [3, 3]},
                 "encoding": {"x": {"datum": 0}}},
                {"mark": {"type": "circle", "size": 34, "opacity": 0.8},
                 "encoding": {
                     "y": {"field": "row", "type": "nominal", "title": None, "sort": order},
                     "yOffset": {"field": "jitter", "type": "quantitative",
                                 "scale": {"domain": [-1.5, 2.5]}},
                     "x": {"field": "d", "type": "quantitative",
                           "title": f"{metric}: run B − run A (dB, oriented: > 0 is better)"},
                     "color": {"field": "verdict", "type": "nominal",
                               "scale": {"domain": ["better", "worse", "no evidence"],
                                         "range": ["#2a9d4b", "#d62728", "#888"]}},
                     "tooltip": [{"field": "track"}, {"field": "row", "title": "separator · target"},
                                 {"field": "d", "title": "difference", "format": ".2f"}]}},
            ]}


P_BANDS = ("p < 0.001", "p < 0.01", "p < 0.05", "not significant")


def p_band(p: float | None) -> str:
    """The significance band of a post-hoc p (scikit-posthocs' sign_plot bands)."""
    if p is None:
        return P_BANDS[3]
    return next((b for b, cut in zip(P_BANDS, (0.001, 0.01, 0.05)) if p < cut), P_BANDS[3])


def significance(target: str, order: list[str], test: str) -> dict:
    """Pairwise post-hoc significance of one ranking: separator x separator cells coloured by
    the band of their p (SiSEC 2018's heat map), sorted by mean rank."""
    axis = {"type": "nominal", "sort": order, "title": None}
    return {**_base(height={"step": 20}, width={"step": 20}), "data": {"name": "ranking_p"},
            "transform": [{"filter": {"field": "t", "equal": target}}],
            "mark": {"type": "rect"},
            "encoding": {
                "x": {"field": "b", **axis, "axis": {"labelAngle": -40}},
                "y": {"field": "a", **axis},
                "color": {"field": "band", "type": "ordinal", "title": f"{test} p",
                          "scale": {"domain": list(P_BANDS),
                                    "range": ["#1a5e3a", "#3f9b5c", "#a6d7a0", "#e6e6e6"]}},
                "tooltip": [{"field": "a", "title": "separator"}, {"field": "b", "title": "vs"},
                            {"field": "p", "title": "p", "format": ".2g"}]}}
