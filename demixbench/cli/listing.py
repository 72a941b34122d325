"""The ``list`` command: every separator, strategy, metric and dataset with the distribution
that registers it ("package") and the packages its results are computed with ("runs on", with
the installed versions)."""

from __future__ import annotations

import argparse
from importlib import metadata

from ..reports.leaderboard import text_table
from .common import cache_text


def runs_on(distributions) -> str:
    """``"bs-roformer 0.3.10, torch 2.13.0+cpu"``; ``"openunmix (not installed)"`` for an
    absent one."""
    out = []
    for name in distributions:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _distributions(modules, provided: dict[str, list[str]]) -> list[str]:
    """The distributions that provide importable ``modules`` (``provided``:
    ``metadata.packages_distributions()``; the module's name where none is installed)."""
    return list(dict.fromkeys(d for m in modules for d in provided.get(m, [m])))


def cmd_list(args: argparse.Namespace) -> int:
    from ..datasets import dataset_registry
    from ..errors import PluginError
    from ..metrics import METRICS
    from ..separators import default_registry
    from ..strategies import strategy_registry

    reg = default_registry()
    rows = []
    for name in reg.names():
        dist = reg.entry(name).distribution
        try:
            cls = reg.get(name)
        except PluginError as exc:
            rows.append([name, "?", "?", "?", "no", dist, "?", str(exc)])
            continue
        ok, why = cls.availability()
        if not ok and "weights not found" in why:
            why = f"weights not in {cache_text()}: `demixbench fetch {name}` or --weights PATH"
        desc = cls.description + ("" if ok else f" [{why}]")
        rows.append([name, ",".join(cls.sources), "yes" if cls.oracle else "no",
                     "yes" if cls.needs_weights else "no", "yes" if ok else "no", dist,
                     runs_on(cls.packages), desc])
    print("separators:")
    print(text_table(["name", "sources", "oracle", "weights", "available", "package", "runs on",
                      "description"], rows))

    print("\nstrategies:")
    sreg = strategy_registry()
    rows = []
    for name in sreg.names():
        try:
            doc = sreg.get(name).description
        except PluginError as exc:
            doc = str(exc)
        rows.append([name, sreg.entry(name).distribution, doc])
    print(text_table(["name", "package", "description"], rows))

    print("\nmetrics:")
    mreg = METRICS.registry()
    provided = metadata.packages_distributions()  # (reads every installed distribution: once)
    rows = []
    for name in mreg.names():
        try:
            m = mreg.get(name)
        except PluginError as exc:
            rows.append([name, "?", "?", "?", "?", mreg.entry(name).distribution, "?",
                         str(exc)])
            continue
        rows.append([m.name, m.unit, "higher" if m.higher_is_better else "lower", m.scope,
                     m.aggregate, mreg.entry(name).distribution,
                     runs_on(_distributions(m.requires, provided) + list(m.packages)), m.description])
    print(text_table(["name", "unit", "better", "scope", "tracks", "package", "runs on",
                      "description"], rows))

    print("\ndatasets (--dataset PREFIX[:...]):")
    dreg = dataset_registry()
    rows = []
    for name in dreg.names():
        try:
            doc = (dreg.get(name).__doc__ or "").strip().splitlines()[0]
        except PluginError as exc:
            doc = str(exc)
        rows.append([name, dreg.entry(name).distribution, doc])
    print(text_table(["prefix", "package", "description"], rows))
    return 0


def register(sub) -> None:
    li = sub.add_parser("list", help="list separators and metrics")
    li.set_defaults(func=cmd_list)
