"""Reading result rows for reports, comparisons and exports: the one layer between the store
and everything downstream of it.

A *variant* is one (separator configuration, strategy configuration, step), keyed by the
configuration hashes and labelled by what differs between configurations of one name. Rows of
one key (dataset, subset, track, excerpt, configuration, step, target, metric) from two runs of
the same settings are one measurement and are kept once; runs whose settings differ (gains,
excerpt length, BSS Eval window or backend, metric definitions) are different measurements:
:func:`distinguish_settings` keeps both, labelled by what differs. pandas does the group-bys.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence

import pandas as pd

from .. import SUITE_STEMS
from ..errors import ReportError
from ..identity import stable_hash
from .store import ResultsStore

ROW_KEY = ["dataset", "subset", "track", "excerpt", "separator_hash", "strategy_hash", "step",
           "target", "metric"]
# run settings that change what a row measures (beside the configurations in its hashes)
SETTINGS = ("gains", "excerpt", "excerpts_per_track", "win", "bsseval", "metric_definitions")


def target_order(targets) -> list[str]:
    order = {t: i for i, t in enumerate(SUITE_STEMS)}
    return sorted(set(targets), key=lambda t: (order.get(t, 99), t))



def flat_config(config: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "/".join(_short(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def variant_labels(names: Mapping[str, str], configs: Mapping[str, Mapping]) -> dict[str, str]:
    """Label each hash by its name, plus what differs from the other hashes of that name."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for h, name in names.items():
        by_name[name].append(h)
    labels = {}
    for name, hashes in by_name.items():
        if len(hashes) == 1:
            labels[hashes[0]] = name
            continue
        flat = {h: flat_config(configs.get(h, {})) for h in hashes}
        keys = sorted({k for f in flat.values() for k in f})
        differ = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1
                  and k not in ("strategy", "name", "class")]
        for h in hashes:
            if all(h in configs for h in hashes) and differ:
                shown = ",".join(f"{k.rsplit('.', 1)[-1]}={_short(flat[h].get(k, '-'))}"
                                 for k in differ if not k.startswith("inner."))
                labels[h] = f"{name}[{shown}]" if shown else f"{name}#{h[:6]}"
            else:
                labels[h] = f"{name}#{h[:6]}"
    return labels


# -- reading ------------------------------------------------------------------------------------
def select_runs(store: ResultsStore, run_ids: Sequence[str] | None) -> list[dict]:
    """The runs a report covers (default: the latest), or a one-line error."""
    runs = store.runs()
    if not runs:
        raise ReportError(f"{store.path} holds no run yet; make one with `demixbench run --store "
                          f"{store.path}`")
    known = {r["run_id"]: r for r in runs}
    if not run_ids:
        latest = store.latest_run()
        return [known[latest]]
    unknown = [r for r in run_ids if r not in known]
    if unknown:
        shown = ", ".join(list(known)[-8:])
        raise ReportError(f"no run {', '.join(unknown)} in {store.path}; its runs: {shown}")
    return [known[r] for r in dict.fromkeys(run_ids)]


def load_rows(store: ResultsStore, runs: list[dict]) -> pd.DataFrame:
    frames = [pd.DataFrame(store.rows(r["run_id"])) for r in runs]
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame()
    if rows.empty:
        ids = ", ".join(r["run_id"] for r in runs)
        raise ReportError(f"run {ids} has no result rows yet (status: "
                          f"{', '.join(r['status'] for r in runs)}); finish it with the same "
                          "`demixbench run` command, then report")
    rows["value"] = rows["value"].astype(float)
    rows["oracle"] = rows["oracle"].astype(bool)
    rows["step"] = rows["step"].astype(int)
    settings = {r["run_id"]: run_settings(r) for r in runs}
    rows["settings"] = rows["run_id"].map(lambda r: stable_hash(settings[r], 8))
    # one value per key: two runs of one configuration and settings on one track are the same
    # measurement; other settings (gains, ...) are another one
    return rows.drop_duplicates([*ROW_KEY, "settings"], keep="last").reset_index(drop=True)


def run_settings(run: Mapping) -> dict:
    """The settings of a run (a store's run record) that change what its rows measure."""
    config = json.loads(run["config"]) if isinstance(run["config"], str) else run["config"]
    out = {k: config.get(k) for k in SETTINGS}
    out["gains"] = ",".join(f"{k}={v:g}" for k, v in sorted((out["gains"] or {}).items())) or "none"
    return out


def distinguish_settings(rows: pd.DataFrame, runs: list[dict],
                         configs: dict) -> tuple[pd.DataFrame, dict]:
    """When the rows come from runs of different settings, give each (configuration, settings)
    its own key, ``<hash>~<settings>``, and a configuration that holds the settings, so every
    group-by keeps the measurements apart and the labels say what differs (``mix[gains=
    vocals=2]``). Rows of one setting are returned as they are."""
    if rows.empty or rows["settings"].nunique() <= 1:
        return rows, configs
    by_hash = {stable_hash(st, 8): st for st in map(run_settings, runs)}
    rows = rows.copy()
    new_keys = rows["separator_hash"] + "~" + rows["settings"]
    configs = dict(configs)
    for key, base, setting in zip(new_keys, rows["separator_hash"], rows["settings"]):
        if key not in configs:
            configs[key] = {**configs.get(base, {}), "run": by_hash[setting]}
    rows["separator_hash"] = new_keys
    return rows, configs



class Variants:
    """Labels and keys of the variants in the rows."""

    def __init__(self, rows: pd.DataFrame, configs: dict):
        sep_names = dict(zip(rows["separator_hash"], rows["separator"]))
        strat = rows[rows["strategy_hash"] != ""]
        strat_names = dict(zip(strat["strategy_hash"], strat["strategy"]))
        self.sep_labels = variant_labels(sep_names, configs)
        self.strat_labels = variant_labels(strat_names, configs)
        steps = rows.groupby(["separator_hash", "strategy_hash"])["step"].max()
        self.multi_step = {k for k, v in steps.items() if v > 0}

    def label(self, sep_hash: str, strat_hash: str, step: int) -> str:
        text = self.sep_labels[sep_hash]
        if strat_hash:
            text += " + " + self.strat_labels[strat_hash]
            if (sep_hash, strat_hash) in self.multi_step:
                text += f" @{step}"
        return text

    def pipeline(self, sep_hash: str, strat_hash: str) -> str:
        return self.sep_labels[sep_hash] + (" + " + self.strat_labels[strat_hash]
                                            if strat_hash else "")


def with_variant(rows: pd.DataFrame, variants: Variants) -> pd.DataFrame:
    """``rows`` with a ``variant`` label and a ``track_id`` (dataset/subset/track: train and
    test tracks of one name are two tracks)."""
    keys = rows[["separator_hash", "strategy_hash", "step"]].drop_duplicates()
    labels = {(a, b, int(c)): variants.label(a, b, int(c)) for a, b, c in keys.itertuples(index=False)}
    rows = rows.copy()
    rows["variant"] = [labels[k] for k in zip(rows["separator_hash"], rows["strategy_hash"],
                                              rows["step"])]
    rows["track_id"] = track_ids(rows)
    return rows




def track_ids(rows: pd.DataFrame) -> pd.Series:
    """``dataset/track``, or ``dataset/subset/track`` where the subset is named."""
    if "subset" not in rows:
        return rows["dataset"] + "/" + rows["track"]
    subset = rows["subset"].fillna("")
    return rows["dataset"] + "/" + subset.where(subset == "", subset + "/") + rows["track"]


def planned_tracks(runs: list[dict]) -> dict[str, int]:
    """Tracks each run planned for every one of its variants (its datasets' tracks), so a
    variant that stopped short reads "3/6", not "3/3"."""
    out = {}
    for r in runs:
        config = json.loads(r["config"]) if isinstance(r["config"], str) else r["config"]
        datasets = config.get("datasets")
        if isinstance(datasets, dict) and all(isinstance(v, dict) for v in datasets.values()):
            out[r["run_id"]] = sum(len(v) for v in datasets.values())
    return out


def song_ids(rows: pd.DataFrame) -> pd.Series:
    """:func:`track_ids` of the songs: an excerpt piece ``<song> #i`` belongs to its song."""
    return track_ids(rows).str.replace(r" #\d+$", "", regex=True)
