"""The ``evaluate``, ``export`` and ``import`` commands: results made by other tools, in and out."""

from __future__ import annotations

import argparse

from ..errors import DemixbenchError
from ..specs import split_list
from .common import default_store, err, parse_excerpt


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..progress import RunProgress
    from ..reports.leaderboard import format_leaderboard, leaderboard
    from ..runs.external import evaluate
    from ..runs.store import ResultsStore

    metrics = split_list(args.metrics) or None
    excerpt = parse_excerpt(args.excerpt, metrics or ["sdr"], 1.0)
    bar = RunProgress(quiet=args.quiet)
    with ResultsStore(args.store) as store:
        try:
            summary = evaluate(args.estimates, args.references, args.name, store, metrics,
                               excerpt, progress=bar.message, units=bar)
        finally:
            bar.close()
        for n in summary.notices:
            err(f"notice: {n}")
        rows = store.rows(summary.run_id)
        configs = store.configs([summary.run_id])
    print(format_leaderboard(leaderboard(rows, configs)))
    print(f"\nrun {summary.run_id}: {args.name} scored on {summary.units_total} tracks "
          f"({summary.units_done_before} already done)")
    print(f"store: {args.store}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..formats.museval_json import export_run
    from ..runs.store import ResultsStore

    with ResultsStore(args.store, read_only=True) as store:
        run_id = args.run or store.latest_run()
        if run_id is None:
            raise DemixbenchError(f"{args.store} holds no run yet")
        files = export_run(store, run_id, args.out, args.overwrite)
    print(f"wrote {len(files)} museval JSON files of run {run_id} under {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..formats.museval_import import import_folder
    from ..runs.store import ResultsStore
    from ..separators import default_registry
    from ..specs import split_list

    if args.name is not None and args.name in default_registry():
        raise DemixbenchError(f"--name {args.name} is an installed separator; give the imported "
                              f"results a name of their own (e.g. {args.name}-museval)")
    oracle = tuple(split_list(args.oracle) or ())
    with ResultsStore(args.store) as store:
        run_id, counts = import_folder(store, args.folder, args.name, oracle)
    for method, n in counts.items():
        print(f"imported {n} tracks of {method}{' (oracle)' if method in oracle else ''}")
    print(f"run {run_id} in {args.store}")
    return 0


def register(sub) -> None:
    ev = sub.add_parser("evaluate", help="score a folder of estimates made by any tool")
    ev.add_argument("estimates", help="folder: <track>/<target>.wav or <subset>/<track>/<target>.wav")
    ev.add_argument("--references", required=True,
                    help="the dataset holding the references, e.g. musdb:PATH or demo")
    ev.add_argument("--name", required=True, help="the separator name the estimates get")
    ev.add_argument("--metrics", help="comma-separated (default: all)")
    ev.add_argument("--excerpt", type=float, default=0.0,
                    help="seconds scored per track, cut as `run` cuts them (default 0: whole tracks)")
    ev.add_argument("--store", default=default_store())
    ev.add_argument("--quiet", action="store_true", help="no progress")
    ev.set_defaults(func=cmd_evaluate)


    ex = sub.add_parser("export", help="write a run's BSS Eval frames in museval's JSON layout")
    ex.add_argument("--format", choices=("museval",), required=True)
    ex.add_argument("--out", required=True, help="folder: OUT/<separator>/<subset>/<track>.json")
    ex.add_argument("--run", help="run id (default: the latest run)")
    ex.add_argument("--overwrite", action="store_true",
                    help="write into a folder that already holds files (replacing them)")
    ex.add_argument("--store", default=default_store())
    ex.set_defaults(func=cmd_export)


    im = sub.add_parser("import", help="store results made elsewhere (museval JSON folders)")
    im.add_argument("format", choices=("museval",))
    im.add_argument("folder", help="one method's folder of <subset>/<track>.json files, or a "
                                   "folder of method folders (SiSEC's layout: one separator each)")
    im.add_argument("--name", help="the separator name of one method's results (a folder of "
                                   "methods names each by its folder)")
    im.add_argument("--oracle", metavar="METHOD[,METHOD]",
                    help="methods that used the references (IBM1, MWF, ...): oracle rows, "
                         "never in the blind family (with --name: that name)")
    im.add_argument("--store", default=default_store())
    im.set_defaults(func=cmd_import)
