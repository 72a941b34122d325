"""The strength-ladder study: does progressive inference help weaker separators more?

    python benchmarks/strength_ladder.py [--out strength-ladder] [--excerpts-per-track 6]
                                         [--excerpt 4] [--synthetic 6] [--steps 5]
                                         [--executor dask]

The seed paper found a small, then declining, gain for HDemucs and conjectured that weaker models
gain more. This runs a ladder of blind separators of different strength — the classic
``hpss_repet``, ``hpss_nmf`` and ``nmf_supervised``, the models trained here (``unet`` also at
an early checkpoint, ``benchmarks/data/early/unet.pt``, the model of its step-50 validation),
Spleeter — with the ideal ratio mask as upper bound,
each wrapped in progressive inference on every target with the linear schedule
(N = ``--steps``), and on ``--refine-targets`` (vocals) also the same with the Wiener switch on
and the blind adaptive β (those cost as much again per target: on a 2-core CPU the default
study is about an hour). It runs once on the two demo songs
whole (``cc0-eval``, which no model here trains on) cut into ``--excerpts-per-track``
non-overlapping excerpts each, and once on the synthetic test split; the tables pair songs (a
song's excerpts are averaged first: they are not independent), so on cc0-eval n = 2 and no
test can reach p < 0.5. Every run goes through ``demixbench run`` (same store, resumable: the same command
again computes only what is missing). The tables and the HTML report of each dataset cover every
complete run of the store on that dataset cut the same way, so the ladder may be run in parts
(``--separators`` subsets, in parallel processes) or grown later; the report's "Does
progressive inference help weaker separators more?" section draws one-shot quality against
gain.

Written to ``--out``: ``study.sqlite`` (the rows), ``<dataset>.html`` (the reports) and
``ladder.md`` (the tables printed at the end: per separator and target, step 0, the best, final
and worst step's paired gain with CI and Holm-corrected Wilcoxon p, and Spearman's ρ between
one-shot quality and gain over the blind separators, one point per separator, with its exact
permutation p).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from demixbench import STEMS
from demixbench.cli import main as demixbench
from demixbench.reports.ladder import ladder_curves, markdown, strength_correlation
from demixbench.reports.report import write_report
from demixbench.runs.rows import load_rows, song_ids, track_ids
from demixbench.runs.store import ResultsStore

HERE = Path(__file__).resolve().parent
EARLY = HERE / "data" / "early"
CC0_EVAL = HERE.parent.parent / "shared" / "data" / "cc0-eval"
# the waveform models' early checkpoints are left out: trained for minutes on a CPU, demucs_lite
# and convtasnet did not move from their starting point, an equal share of the mixture
# (validation within 0.03 dB of it at steps 25, 50 and 75), so early and final are one rung
CLASSIC = ["hpss_repet", "hpss_nmf", "nmf_supervised"]
LADDER = [*CLASSIC, "unet@early", "unet", "demucs_lite", "convtasnet", "spleeter_2stems"]
ORACLES = ["irm1"]


def strategies(targets, refine_targets, steps: int, adaptive_steps: int,
               candidates: int) -> list[str]:
    """Linear progressive inference on every target; its Wiener-switched twin and the blind
    adaptive β on ``refine_targets`` (each costs as much again: Wiener EM after every step,
    two separations per candidate β)."""
    out = ["none", "wiener"]
    for t in targets:
        linear = f"progressive:target={t},steps={steps},schedule=linear"
        out.append(linear)
        if t in refine_targets:
            out.append(linear + ",wiener=true")
            if adaptive_steps:
                out.append(f"progressive:target={t},steps={adaptive_steps},adaptive=blind,"
                           f"candidates={candidates}")
    return out


def early_params(separators) -> list[str]:
    """``--param unet@early.weights=benchmarks/data/early/unet.pt`` for each early model."""
    out = []
    for name in separators:
        base, _, label = name.partition("@")
        if label == "early":
            path = EARLY / f"{base}.pt"
            if not path.is_file():
                sys.exit(f"strength_ladder: no early checkpoint at {path}; train one with "
                         f"`demixbench train {base} ... --snapshot 50` and copy OUT.step50.pt")
            out += ["--param", f"{name}.weights={path}"]
    return out


def study_runs(store: ResultsStore, spec: str, excerpt: float, per_track: int) -> list[dict]:
    """Every complete run of the store on ``spec`` cut the same way: the study's rows may come
    from several runs (the ladder run in parts, or a separator added later); a key measured in
    two runs counts once."""
    out = []
    for r in store.runs():
        config = json.loads(r["config"])
        if (r["status"] == "complete" and list(config.get("datasets", {})) == [spec]
                and config.get("excerpt") == excerpt
                and config.get("excerpts_per_track", 1) == per_track):
            out.append(r)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="strength-ladder", help="folder for the store, reports and "
                                                            "tables")
    p.add_argument("--separators", default=",".join(LADDER + ORACLES))
    p.add_argument("--targets", default=",".join(STEMS), help="linear progressive targets")
    p.add_argument("--refine-targets", default="vocals",
                   help="targets that also get the Wiener switch and the blind adaptive beta")
    p.add_argument("--metrics", default="usdr,si_sdr")
    p.add_argument("--excerpt", type=float, default=4.0, help="seconds per excerpt")
    p.add_argument("--excerpts-per-track", type=int, default=6,
                   help="non-overlapping excerpts of each cc0-eval song")
    p.add_argument("--synthetic", type=int, default=6, help="synthetic test songs (0: none)")
    p.add_argument("--cc0-eval", default=str(CC0_EVAL), help="the cc0-eval folder ('' : none)")
    p.add_argument("--steps", type=int, default=5, help="linear schedule steps")
    p.add_argument("--adaptive-steps", type=int, default=3, help="blind adaptive steps (0: none)")
    p.add_argument("--candidates", type=int, default=2, help="β candidates per adaptive step")
    p.add_argument("--executor", default="local", help="local | dask | dask:ADDRESS")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: tables and reports from the runs already in the store")
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "study.sqlite"
    separators = [s for s in args.separators.split(",") if s]
    targets = [t for t in args.targets.split(",") if t]
    metrics = [m for m in args.metrics.split(",") if m]
    common = ["--separators", ",".join(separators), *early_params(separators),
              *(x for s in strategies(targets, args.refine_targets.split(","), args.steps,
                                      args.adaptive_steps, args.candidates)
                for x in ("--strategy", s)),
              "--executor", args.executor,
              "--metrics", ",".join(metrics), "--excerpt", f"{args.excerpt:g}",
              "--store", str(store_path)]
    datasets = []
    if args.cc0_eval:
        datasets.append(("cc0-eval", f"folder:{args.cc0_eval}", args.excerpts_per_track))
    if args.synthetic:
        datasets.append(("synthetic", f"synthetic:{args.synthetic}", 1))
    tables = []
    for name, spec, per_track in datasets:
        t0 = time.perf_counter()
        code = demixbench(["run", "--dataset", spec, "--excerpts-per-track", str(per_track),
                           *common, "--no-report"]) if not args.tables_only else 0
        if code != 0:
            print(f"strength_ladder: the {name} run exited {code}; run the same command again to "
                  "compute what is missing", file=sys.stderr)
            return code
        with ResultsStore(store_path, read_only=True) as store:
            runs = study_runs(store, spec, args.excerpt, per_track)
            if not runs:
                print(f"strength_ladder: no complete {name} run in {store_path}", file=sys.stderr)
                return 2
            rows = load_rows(store, runs)
            configs = store.configs([r["run_id"] for r in runs])
        ids = [r["run_id"] for r in runs]
        write_report(store_path, out / f"{name}.html", ids,
                     title=f"Strength ladder on {name}")
        curves = ladder_curves(rows, configs, metrics)
        tracks, songs = track_ids(rows).nunique(), song_ids(rows).nunique()
        cut = (f"{songs} songs cut into {tracks} excerpts" if tracks > songs
               else f"{songs} songs, one excerpt each")
        took = "" if args.tables_only else f"; {time.perf_counter() - t0:.0f} s"
        title = (f"{name}: {cut} of {args.excerpt:g} s (tests pair the {songs} songs), run(s) "
                 f"{', '.join(ids)}{took}")
        tables.append(markdown(curves, strength_correlation(curves), title))
        print("\n" + tables[-1])
    (out / "ladder.md").write_text("\n".join(tables))
    reports = ", ".join(str(out / f"{name}.html") for name, *_ in datasets)
    print(f"tables: {out / 'ladder.md'}; reports: {reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
