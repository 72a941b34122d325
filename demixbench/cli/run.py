"""The ``run`` command: plan and execute a benchmark, print its leaderboard, write its report."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ..errors import DemixbenchError
from ..paths import estimate_cache_dir
from ..specs import check_workers, parse_executor, parse_gains, parse_params, split_list
from .common import DEFAULT_STORE, bsseval_backend, default_store, err, parse_excerpt


def strategies_with_wiener(specs: list[str] | None, wiener: bool) -> list[str]:
    """``--strategy`` specs, with ``--wiener`` adding the post-filtered twin of each."""
    specs = list(specs or [])
    if not wiener:
        return specs
    if not specs:
        return ["none", "wiener"]
    twins = []
    for spec in specs:
        name = spec.partition(":")[0]
        if name == "none":
            twins.append("wiener")
        elif name == "progressive":
            twins.append(spec + ",wiener=true" if ":" in spec else spec + ":wiener=true")
        elif name != "wiener":
            raise DemixbenchError(f"--wiener cannot be combined with --strategy {spec}; add "
                                  "--strategy wiener or use the strategy's own wiener option")
    return specs + [t for t in twins if t not in specs]


def cmd_run(args: argparse.Namespace) -> int:
    from ..progress import RunProgress
    from ..reports.leaderboard import columns_for, format_leaderboard, leaderboard
    from ..runs.executors import DaskExecutor
    from ..runs.rows import planned_tracks
    from ..runs.runner import DEFAULT_METRICS, RunConfig, Runner
    from ..runs.store import ResultsStore

    metrics = split_list(args.metrics) or list(DEFAULT_METRICS)
    config = RunConfig(
        datasets=args.dataset or ["synthetic", "demo"],
        separators=split_list(args.separators),
        metrics=metrics,
        excerpt=parse_excerpt(args.excerpt, metrics, 1.0),
        excerpts_per_track=args.excerpts_per_track,
        new_run=args.new_run,
        gains=parse_gains(args.gains),
        bsseval=args.bsseval,
        strategies=strategies_with_wiener(args.strategy, args.wiener),
        params=parse_params(args.param),
        weights=args.weights,
        allow_test_trained=args.allow_test_trained,
        cache_min_seconds=0.0 if args.keep_estimates else 0.5,
    )
    store_path = Path(args.store)
    cache_dir = None if args.no_cache else Path(args.cache_dir or estimate_cache_dir())
    bar = RunProgress(quiet=args.quiet)
    kind, address = parse_executor(args.executor)
    executor = (DaskExecutor(address, check_workers(args.workers), args.threads_per_worker) if kind == "dask"
                else None)
    with ResultsStore(store_path) as store, (executor or contextlib.nullcontext()):
        runner = Runner(config, store, cache_dir=cache_dir, progress=bar.message, units=bar,
                        executor=executor)
        for n in runner.notices:
            err(f"notice: {n}")
        shown = set(runner.notices)
        try:
            summary = runner.run(command=" ".join(args.argv))
        finally:
            bar.close()
        for n in summary.notices:
            if n not in shown:
                err(f"notice: {n}")
        rows = store.rows(summary.run_id)
        configs = store.configs([summary.run_id])
        planned = planned_tracks([store.run_record(summary.run_id)])
    print(format_leaderboard(leaderboard(rows, configs, columns_for(config.metrics),
                                         planned=planned)))
    state = "resumed" if summary.resumed else "new"
    print(f"\nrun {summary.run_id} ({state}): {summary.units_run} of {summary.units_total} units "
          f"computed in {summary.seconds:.1f} s, {summary.units_done_before} already done")
    print(f"store: {store_path}  (demixbench results --store {store_path} --format table)")
    if summary.failed:
        err(f"{len(summary.failed)} unit(s) failed (their messages are in the notices above); "
             "the others are stored: run the same command again to retry only those")
    if not args.no_report:
        from ..reports.report import write_report

        try:
            path = write_report(store_path, args.report, [summary.run_id])
        except DemixbenchError as exc:  # the results are stored: say so, and how to retry
            err(f"the report could not be written ({exc}); the results are in {store_path}: "
                 f"`demixbench report --store {store_path} --run {summary.run_id}`")
            return 2
        print(f"report: {path}")
    return 1 if summary.failed else 0


def register(sub) -> None:
    r = sub.add_parser("run", help="run a benchmark and print the leaderboard")
    r.add_argument("--dataset", action="append",
                   help="synthetic[:N] | demo | musdb:PATH[:SUBSET] | folder:PATH (repeatable; "
                        "default: synthetic and demo)")
    r.add_argument("--separators", help="comma-separated names (default: every available one)")
    r.add_argument("--metrics", help="comma-separated: sdr,isr,sir,sar,si_sdr,usdr (default: all)")
    r.add_argument("--excerpt", type=float, default=30.0,
                   help="excerpt length in seconds where all stems are active (0 = whole track)")
    r.add_argument("--excerpts-per-track", type=int, default=1, metavar="K",
                   help="cut each track into K non-overlapping excerpts (each chosen by the "
                        "excerpt protocol among the windows left), scored as tracks '<name> #i', "
                        "so statistics pair over excerpts")
    r.add_argument("--gains", help="per-stem gains in the rebuilt mixture, e.g. vocals=2")
    r.add_argument("--strategy", action="append",
                   help="wrap every separator in a strategy, e.g. progressive:target=vocals,"
                        "steps=5,schedule=linear (schedules: linear, constant, cosine, geometric, "
                        "list with betas=0.2/0.5/1), wiener:iterations=1, or none (the plain "
                        "separator); rows get one step each (repeatable)")
    r.add_argument("--wiener", action="store_true",
                   help="also run every separator (or strategy) followed by the multichannel Wiener "
                        "post-filter, so one run holds the with/without comparison")
    r.add_argument("--param", action="append", metavar="SEPARATOR.KEY=VALUE",
                   help="a separator's constructor parameter, e.g. hpss_repet.max_frames=50 or "
                        "nmf_supervised.dictionaries=dicts.npz (repeatable)")
    r.add_argument("--weights", metavar="PATH",
                   help="weight file or folder for the separators that need weights (else "
                        "$DEMIXBENCH_CACHE, default the torch hub checkpoint folder)")
    r.add_argument("--allow-test-trained", action="store_true",
                   help="score models trained on MUSDB18 test (mdx_extra) on that split anyway")
    r.add_argument("--bsseval", type=bsseval_backend, default="numpy",
                   metavar="numpy|torch[:DEVICE]|museval",
                   help="BSS Eval v4 implementation: this project's numpy one (default, fastest on "
                        "a CPU), the same on torch (torch = cuda when present, torch:cpu, "
                        "torch:cuda:N; for GPU workers) or museval's own")
    r.add_argument("--store", default=default_store(),
                   help=f"SQLite results store (default: {DEFAULT_STORE})")
    r.add_argument("--no-cache", action="store_true", help="do not cache estimates on disk")
    r.add_argument("--cache-dir", metavar="DIR",
                   help="estimate cache folder (default: $DEMIXBENCH_ESTIMATE_CACHE or "
                        "~/.cache/demixbench/estimates; `demixbench cache info`)")
    r.add_argument("--keep-estimates", action="store_true",
                   help="cache every estimate, however fast (default: those that took 0.5 s or "
                        "more); `demixbench report --audio` plays cached estimates")
    r.add_argument("--new-run", action="store_true",
                   help="start a new run even if this configuration was run under other library "
                        "or code versions (which a resume refuses)")
    r.add_argument("--quiet", action="store_true",
                   help="no progress (a bar on a terminal, one line per unit otherwise)")
    r.add_argument("--executor", default="local", metavar="local|dask|dask:ADDRESS",
                   help="where units run: this process (default), a Dask cluster on this "
                        "machine, or an existing Dask scheduler (pip install 'demixbench[dask]')")
    r.add_argument("--workers", type=int, help="Dask worker processes (default: cores / threads)")
    r.add_argument("--threads-per-worker", type=int, default=1,
                   help="BLAS and torch threads of each Dask worker (default 1)")
    r.add_argument("--no-report", action="store_true",
                   help="do not write the HTML report of the run (reports/<run id>.html)")
    r.add_argument("--report", metavar="PATH.html", help="where to write the run's HTML report")
    r.set_defaults(func=cmd_run)
