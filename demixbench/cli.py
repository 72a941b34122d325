"""The ``demixbench`` command line. ``main(argv)`` returns the exit code; user errors are
printed on one line (no traceback) and exit with status 2."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
from pathlib import Path

from . import __version__
from .errors import DemixbenchError
from .reports.leaderboard import text_table

DEFAULT_STORE = Path(".demixbench") / "results.sqlite"


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _parse_gains(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise DemixbenchError(f"--gains {text!r}: expected stem=gain pairs, e.g. "
                                  "vocals=2,drums=1") from None
        if not sep:
            raise DemixbenchError(f"--gains {text!r}: expected stem=gain pairs")
        if not math.isfinite(out[k.strip()]) or out[k.strip()] < 0:
            raise DemixbenchError(f"--gains {text!r}: the gain of {k.strip()} must be a finite "
                                  "number >= 0")
    return out


def _parse_excerpt(value: float, metrics: list[str], win: float) -> float:
    from .metrics import METRICS

    if not math.isfinite(value) or value < 0:
        raise DemixbenchError(f"--excerpt {value}: give a finite number of seconds >= 0 (0 = the "
                              "whole track)")
    framed = [m for m in metrics if m in METRICS and METRICS[m].scope == "bss_group"]
    if 0 < value < win and framed:
        raise DemixbenchError(f"--excerpt {value:g}: shorter than one {win:g} s BSS Eval frame, "
                              f"so {', '.join(framed)} could not be scored; use --excerpt {win:g} "
                              "or more, or --metrics without them")
    return value


def _strategies(specs: list[str] | None, wiener: bool) -> list[str]:
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


def _parse_params(items: list[str] | None) -> dict[str, dict]:
    """``["hpss_repet.max_frames=50", ...]`` -> ``{"hpss_repet": {"max_frames": 50}}``.

    Values are read as JSON where they parse (numbers, true/false, lists), else as text."""
    out: dict[str, dict] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        name, dot, param = key.partition(".")
        if not (sep and dot and name and param):
            raise DemixbenchError(f"--param {item!r}: expected SEPARATOR.PARAMETER=VALUE, e.g. "
                                  "hpss_repet.max_frames=50")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out.setdefault(name, {})[param] = value
    return out


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items


# -- commands ---------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from .benchmarks.executors import DaskExecutor, parse_executor
    from .benchmarks.runner import DEFAULT_METRICS, RunConfig, Runner
    from .benchmarks.store import ResultsStore
    from .progress import RunProgress
    from .reports.leaderboard import format_leaderboard, leaderboard

    metrics = _split(args.metrics) or list(DEFAULT_METRICS)
    config = RunConfig(
        datasets=args.dataset or ["synthetic", "demo"],
        separators=_split(args.separators),
        metrics=metrics,
        excerpt=_parse_excerpt(args.excerpt, metrics, 1.0),
        excerpts_per_track=args.excerpts_per_track,
        new_run=args.new_run,
        gains=_parse_gains(args.gains),
        bsseval=args.bsseval,
        strategies=_strategies(args.strategy, args.wiener),
        params=_parse_params(args.param),
        weights=args.weights,
        allow_test_trained=args.allow_test_trained,
        cache_min_seconds=0.0 if args.keep_estimates else 0.5,
    )
    store_path = Path(args.store)
    cache_dir = None if args.no_cache else store_path.parent / "estimates"
    bar = RunProgress(quiet=args.quiet)
    kind, address = parse_executor(args.executor)
    executor = (DaskExecutor(address, args.workers, args.threads_per_worker) if kind == "dask"
                else None)
    with ResultsStore(store_path) as store, (executor or contextlib.nullcontext()):
        runner = Runner(config, store, cache_dir=cache_dir, progress=bar.message, units=bar,
                        executor=executor)
        for n in runner.notices:
            _err(f"notice: {n}")
        shown = set(runner.notices)
        try:
            summary = runner.run(command=" ".join(args.argv))
        finally:
            bar.close()
        for n in summary.notices:
            if n not in shown:
                _err(f"notice: {n}")
        rows = store.rows(summary.run_id)
        configs = store.configs([summary.run_id])
    print(format_leaderboard(leaderboard(rows, configs)))
    state = "resumed" if summary.resumed else "new"
    print(f"\nrun {summary.run_id} ({state}): {summary.units_run} of {summary.units_total} units "
          f"computed in {summary.seconds:.1f} s, {summary.units_done_before} already done")
    print(f"store: {store_path}  (demixbench results --store {store_path} --format table)")
    if summary.failed:
        _err(f"{len(summary.failed)} unit(s) failed (their messages are in the notices above); "
             "the others are stored: run the same command again to retry only those")
    if not args.no_report:
        from .reports.report import write_report

        try:
            path = write_report(store_path, args.report, [summary.run_id])
        except DemixbenchError as exc:  # the results are stored: say so, and how to retry
            _err(f"the report could not be written ({exc}); the results are in {store_path}: "
                 f"`demixbench report --store {store_path} --run {summary.run_id}`")
            return 2
        print(f"report: {path}")
    return 1 if summary.failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .reports import compare as cmp

    fail_on = cmp.parse_fail_on(args.fail_on)
    result = cmp.compare(args.store, args.run_a, args.store_b, args.run_b, _split(args.metric))
    print(cmp.format_table(result))
    if args.output:
        from .reports.html import write

        print(f"report: {write(cmp.render_html(result), args.output)}")
    failed = cmp.failures(result, fail_on)
    for r in failed:
        print(f"FAIL {r['separator']} {r['target']} {r['metric_label']}: median change "
              f"{r['median_diff']:+.2f} dB (95% CI [{r['ci_low']:.2f}, {r['ci_high']:.2f}]) is a "
              f"drop of more than {fail_on[r['metric']]:g} dB")
    return 1 if failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .reports import sessions

    if args.bench_command == "list":
        files = sessions.saved_files(args.storage)
        if not files:
            print(f"no saved benchmark in {args.storage} (pytest --demix-autosave saves one)")
            return 0
        rows = []
        for path in files:
            doc = sessions.load(path)
            commit = doc["commit_info"]
            rows.append([path.parent.name, path.name, doc["datetime"],
                         (commit["id"] or "-")[:10] + ("+dirty" if commit.get("dirty") else ""),
                         str(len(doc["tests"]))])
        print(text_table(["machine", "file", "saved", "commit", "tests"], rows, indent=""))
        return 0
    gates = [sessions.parse_gate(g) for g in args.fail or []]
    a = sessions.find(args.a, args.storage)
    b = sessions.find(args.b, args.storage)
    result = sessions.compare_sessions(sessions.load(a), sessions.load(b))
    print(f"before: {a}\nnow:    {b}")
    print(sessions.format_comparison(result))
    failed = sessions.gate_failures(result, gates)
    for g, r in failed:
        print("FAIL " + sessions.failure_message(g, r))
    return 1 if failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .benchmarks.external import evaluate
    from .benchmarks.store import ResultsStore
    from .progress import RunProgress
    from .reports.leaderboard import format_leaderboard, leaderboard

    metrics = _split(args.metrics) or None
    excerpt = _parse_excerpt(args.excerpt, metrics or ["sdr"], 1.0)
    bar = RunProgress(quiet=args.quiet)
    with ResultsStore(args.store) as store:
        try:
            summary = evaluate(args.estimates, args.references, args.name, store, metrics,
                               excerpt, progress=bar.message, units=bar)
        finally:
            bar.close()
        for n in summary.notices:
            _err(f"notice: {n}")
        rows = store.rows(summary.run_id)
        configs = store.configs([summary.run_id])
    print(format_leaderboard(leaderboard(rows, configs)))
    print(f"\nrun {summary.run_id}: {args.name} scored on {summary.units_total} tracks "
          f"({summary.units_done_before} already done)")
    print(f"store: {args.store}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .benchmarks.store import ResultsStore
    from .formats.museval_json import export_run

    with ResultsStore(args.store, read_only=True) as store:
        run_id = args.run or store.latest_run()
        if run_id is None:
            raise DemixbenchError(f"{args.store} holds no run yet")
        files = export_run(store, run_id, args.out)
    print(f"wrote {len(files)} museval JSON files of run {run_id} under {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .benchmarks.store import ResultsStore
    from .formats.museval_json import import_folder

    with ResultsStore(args.store) as store:
        run_id, n = import_folder(store, args.folder, args.name)
    print(f"imported {n} tracks of {args.name} as run {run_id} into {args.store}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reports.report import write_report

    audio = None
    if args.audio:
        audio = {"seconds": args.audio_seconds, "max_tracks": args.audio_tracks,
                 "cache_dir": Path(args.store).parent / "estimates"}
    path = write_report(args.store, args.output, args.run, args.title, audio)
    print(f"report: {path}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from .benchmarks.store import ResultsStore

    path = Path(args.store)
    if not path.is_file():
        raise DemixbenchError(f"no results store at {path}; run `demixbench run --store {path}` "
                              "first or pass the right --store")
    with ResultsStore(path) as store:
        run_id = None if args.all_runs else (args.run or store.latest_run())
        if run_id and run_id not in {r["run_id"] for r in store.runs()}:
            raise DemixbenchError(f"no run {run_id} in {path}; its runs: "
                                  f"{', '.join(r['run_id'] for r in store.runs())}")
        rows = store.rows(run_id)
    cols = ["run", "dataset", "track", "excerpt", "separator", "oracle", "strategy", "step",
            "target", "metric", "value", "nan_reason"]
    tidy = [{**{c: r.get(c) for c in cols if c != "run"}, "run": r["run_id"]} for r in rows]
    tidy = [{c: t[c] for c in cols} for t in tidy]
    if args.format == "parquet":
        from .formats.tidy_parquet import write_parquet

        if not args.out:
            raise DemixbenchError("--format parquet writes a file: give it with --out "
                                  "results.parquet")
        print(f"{len(tidy)} rows -> {write_parquet(tidy, cols, args.out)}")
        return 0
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        _write_results(tidy, cols, args.format, out)
    finally:
        if args.out:
            out.close()
    return 0


def _write_results(tidy: list[dict], cols: list[str], fmt: str, out) -> None:
    from .benchmarks.store import finite_json

    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for t in tidy:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in t.items()})
    elif fmt == "json":  # strict JSON: a non-finite value is null with its reason
        for t in tidy:
            v = t["value"]
            if isinstance(v, float) and math.isinf(v) and not t["nan_reason"]:
                t["nan_reason"] = f"{'+' if v > 0 else '-'}inf"
        json.dump(finite_json(tidy), out, indent=1, allow_nan=False)
        out.write("\n")
    else:
        widths = {c: max([len(c)] + [len(_fmt(t[c])) for t in tidy]) for c in cols}
        out.write("  ".join(c.ljust(widths[c]) for c in cols) + "\n")
        for t in tidy:
            out.write("  ".join(_fmt(t[c]).ljust(widths[c]) for c in cols) + "\n")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def cmd_list(args: argparse.Namespace) -> int:
    from .datasets import dataset_registry
    from .errors import PluginError
    from .metrics import METRICS
    from .separators import default_registry
    from .strategies import strategy_registry

    reg = default_registry()
    rows = []
    for name in reg.names():
        dist = reg.entry(name).distribution
        try:
            cls = reg.get(name)
        except PluginError as exc:
            rows.append([name, "?", "?", "?", "no", dist, str(exc)])
            continue
        ok, why = cls.availability()
        if not ok and "weights not found" in why:
            why = f"weights not in {_cache_text()}: `demixbench fetch {name}` or --weights PATH"
        desc = cls.description + ("" if ok else f" [{why}]")
        rows.append([name, ",".join(cls.sources), "yes" if cls.oracle else "no",
                     "yes" if cls.needs_weights else "no", "yes" if ok else "no", dist, desc])
    print("separators:")
    print(text_table(["name", "sources", "oracle", "weights", "available", "package", "description"],
                 rows))

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
    rows = []
    for name in mreg.names():
        try:
            m = mreg.get(name)
        except PluginError as exc:
            rows.append([name, "?", "?", "?", "?", mreg.entry(name).distribution, str(exc)])
            continue
        rows.append([m.name, m.unit, "higher" if m.higher_is_better else "lower", m.scope,
                     m.aggregate, mreg.entry(name).distribution, m.description])
    print(text_table(["name", "unit", "better", "scope", "tracks", "package", "description"], rows))

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


def _cache_text() -> str:
    from .weights import cache_dir

    return str(cache_dir())


def cmd_separate(args: argparse.Namespace) -> int:
    from .audio import load_audio, write_audio
    from .progress import RunProgress
    from .separators import default_registry, separate_adapted

    params = _parse_params(args.param).get(args.separator, {})
    if args.weights:
        params.setdefault("weights", args.weights)
    sep = default_registry().create(args.separator, **params)
    if sep.oracle:
        raise DemixbenchError(f"{sep.name} is an oracle: it needs the reference stems, which a "
                              "single file does not have; use `demixbench run` on a dataset")
    out = Path(args.output)
    files = [Path(f) for f in args.file]
    # one file: its stems in OUT; several: OUT/<file name>/, the layout `evaluate` reads
    folders = [out] if len(files) == 1 else [out / _track_name(f) for f in files]
    if len(set(folders)) < len(folders):
        raise DemixbenchError("two input files have the same name (without extension); their "
                              "estimates would land in one folder: rename one")
    for f, folder in zip(files, folders):
        _check_outputs(f, folder, [folder / f"{stem}.wav" for stem in sep.sources],
                       args.overwrite)
    bar = RunProgress(quiet=args.quiet or len(files) == 1)
    try:
        for i, (f, folder) in enumerate(zip(files, folders), start=1):
            bar.start(i, len(files), f"{sep.name} on {f.name}")
            audio, sr = load_audio(f)
            estimates, conversions = separate_adapted(sep, audio, sr)
            for c in conversions:
                bar.message(f"note: {f.name}: {c}")
            for stem, est in estimates.items():
                print(write_audio(folder / f"{stem}.wav", est, sr))
            bar.done()
    finally:
        bar.close()
    return 0


def _track_name(path: Path) -> str:
    name = path.name
    for suffix in (".stem.mp4", path.suffix):
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_outputs(source: Path, folder: Path, targets: list[Path], overwrite: bool) -> None:
    """Before any separation: the output folder is writable, no existing file is replaced
    unless asked, and the input is never one of the outputs."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemixbenchError(f"-o {folder}: cannot create the folder ({exc.strerror}); choose "
                              "a folder you can write to") from None
    if not os.access(folder, os.W_OK):
        raise DemixbenchError(f"-o {folder}: not writable; choose a folder you can write to")
    if source.exists() and any(t.exists() and t.resolve() == source.resolve() for t in targets):
        raise DemixbenchError(f"-o {folder}: writing the estimates there would overwrite the "
                              f"input {source}; choose another folder")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise DemixbenchError(f"-o {folder}: {', '.join(existing)} already exist; pass "
                              "--overwrite to replace them, or choose another folder")
    stems = [t.stem for t in targets]
    from .datasets.folder import STEM_EXTENSIONS

    clash = [f"{p.name}" for p in folder.glob("*") if p.stem in stems and p.suffix != ".wav"
             and p.suffix.lower() in STEM_EXTENSIONS]
    if clash:
        raise DemixbenchError(f"-o {folder}: holds {', '.join(clash)}, stem files of another "
                              "format; estimates written beside them would make two files for "
                              "one stem (a track folder's references); choose another folder")


def cmd_fit(args: argparse.Namespace) -> int:
    from .datasets import open_dataset
    from .progress import RunProgress
    from .separators import default_registry

    params = _parse_params(args.param).get(args.separator, {})
    cls = default_registry().get(args.separator)
    if not hasattr(cls, "untrained"):
        raise DemixbenchError(f"{args.separator} learns nothing from data; separators that do: "
                              "nmf_supervised")
    try:
        sep = cls.untrained(**params)
    except (TypeError, ValueError) as exc:
        raise DemixbenchError(f"{args.separator}: bad parameters {params}: {exc}") from None
    tracks = [t for spec in args.dataset for t in open_dataset(spec)]
    _err(f"fitting {args.separator} on {len(tracks)} tracks from {', '.join(args.dataset)}")
    bar = RunProgress(quiet=args.quiet)
    try:
        import inspect

        takes_progress = "progress" in inspect.signature(sep.fit).parameters  # plugins may not
        sep.fit(tracks, **({"progress": bar} if takes_progress else {}))
    finally:
        bar.close()
    path = sep.save(args.out)
    print(f"{path} (content sha256 {sep.config()['params'].get('dictionaries_sha256')})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .progress import TrainProgress
    from .training.loop import Trainer, TrainOptions

    config = {}
    for item in args.config or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DemixbenchError(f"--config {item!r}: expected KEY=VALUE, e.g. channels=16")
        config[key.strip()] = value.strip()
    options = TrainOptions(
        model=args.model, datasets=args.dataset, valid=args.valid or [], out=args.out,
        steps=args.steps, minutes=args.minutes, batch=args.batch, segment=args.segment,
        lr=args.lr, seed=args.seed, device=args.device, resume=args.resume, config=config,
        epoch_steps=args.epoch_steps, valid_seconds=args.valid_seconds, half=args.half,
        threads=args.threads, loss=args.loss, snapshots=args.snapshot or [])
    trainer = Trainer(options, TrainProgress(quiet=args.quiet))
    for note in trainer.notes:
        _err(f"note: {note}")
    params = sum(p.numel() for p in trainer.model.parameters())
    _err(f"training {args.model} ({params / 1e6:.2f} M parameters) on {trainer.device}, "
         f"{trainer.threads} threads, from step {trainer.step}")
    result = trainer.run()
    from .models.card import write_model_card

    write_model_card(result["out"])
    best = result["best"]
    print(f"{result['out']}: best at step {best['step']} (validation uSDR "
          f"{best['valid_usdr']:.2f} dB, SI-SDR {best['valid_si_sdr']:.2f} dB); stopped after "
          f"{result['stopped'] if result['stopped'] else 'the budget'} at step {result['step']}, "
          f"{result['minutes']:.1f} min; log {result['log']}, model card "
          f"{Path(result['out']).with_suffix('.md')}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .weights import fetch, manifest

    for name in args.names:
        mw = manifest(name)
        for path in fetch(name, args.dest, progress=_err):
            print(path)
        if not mw.files:
            _err(f"{name}: nothing to download")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .datasets import synthetic_dataset, write_dataset

    for subset, n in (("train", args.train), ("test", args.tracks)):
        if n:
            write_dataset(synthetic_dataset(n, subset, args.seconds), args.output)
    print(f"wrote a synthetic dataset in MUSDB layout to {args.output}")
    return 0


# -- parser -----------------------------------------------------------------------------------
def _bsseval_backend(value: str) -> str:
    if value in ("numpy", "museval", "torch") or value.startswith(("torch:cpu", "torch:cuda")):
        return value
    raise argparse.ArgumentTypeError(f"unknown BSS Eval backend {value!r}: use numpy, museval, "
                                     "torch, torch:cpu or torch:cuda[:N]")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demixbench", description="Benchmark music source separators.")
    p.add_argument("--version", action="version", version=f"demixbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

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
    r.add_argument("--bsseval", type=_bsseval_backend, default="numpy",
                   metavar="numpy|torch[:DEVICE]|museval",
                   help="BSS Eval v4 implementation: this project's numpy one (default, fastest on "
                        "a CPU), the same on torch (torch = cuda when present, torch:cpu, "
                        "torch:cuda:N; for GPU workers) or museval's own")
    r.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)),
                   help=f"SQLite results store (default: {DEFAULT_STORE})")
    r.add_argument("--no-cache", action="store_true", help="do not cache estimates on disk")
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

    rp = sub.add_parser("report", help="write the HTML report of runs in a store (nothing is re-run)")
    rp.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)))
    rp.add_argument("--run", action="append", metavar="ID",
                    help="run id; repeat for several runs in one report (default: the latest)")
    rp.add_argument("-o", "--output", metavar="PATH.html",
                    help="output file (default: reports/<run id>.html)")
    rp.add_argument("--title", help="page title")
    rp.add_argument("--audio", action="store_true",
                    help="embed audio players and mel spectrograms (estimates from the cache)")
    rp.add_argument("--audio-seconds", type=float, default=10.0,
                    help="length of the audio window per track (default 10)")
    rp.add_argument("--audio-tracks", type=int, metavar="N",
                    help="audio for the first N tracks only (default: every track)")
    rp.set_defaults(func=cmd_report)

    co = sub.add_parser("compare", help="compare two runs track by track (paired statistics)")
    co.add_argument("run_a", metavar="RUN_A")
    co.add_argument("run_b", metavar="RUN_B")
    co.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)),
                    help="store of RUN_A (and of RUN_B unless --store-b)")
    co.add_argument("--store-b", help="store of RUN_B, when it is another file")
    co.add_argument("--metric", default="sdr,usdr,si_sdr",
                    help="comma-separated metrics (default: sdr,usdr,si_sdr)")
    co.add_argument("--fail-on", metavar="METRIC:DB[,METRIC:DB]",
                    help="exit with status 1 when, for any separator and target, the median paired "
                         "difference drops by more than DB and its 95%% CI lies below zero")
    co.add_argument("-o", "--output", metavar="PATH.html", help="also write the comparison as HTML")
    co.set_defaults(func=cmd_compare)

    be = sub.add_parser("bench", help="saved pytest benchmark sessions (pytest --demix-autosave)")
    be_sub = be.add_subparsers(dest="bench_command", required=True)
    bl = be_sub.add_parser("list", help="list saved sessions")
    bc = be_sub.add_parser("compare", help="pair two saved sessions test by test")
    bc.add_argument("a", metavar="A", help="the earlier session: path, number or name part")
    bc.add_argument("b", metavar="B", help="the later session")
    bc.add_argument("--fail", action="append", metavar="METRIC[:TARGET]:DB",
                    help="exit 1 when a paired median drops by more than DB dB with its 95%% CI "
                         "below zero (repeatable)")
    for x in (bl, bc):
        x.add_argument("--storage", default=".demixbench/benchmarks",
                       help="folder of saved sessions (default: .demixbench/benchmarks)")
    be.set_defaults(func=cmd_bench)

    ev = sub.add_parser("evaluate", help="score a folder of estimates made by any tool")
    ev.add_argument("estimates", help="folder: <track>/<target>.wav or <subset>/<track>/<target>.wav")
    ev.add_argument("--references", required=True,
                    help="the dataset holding the references, e.g. musdb:PATH or demo")
    ev.add_argument("--name", required=True, help="the separator name the estimates get")
    ev.add_argument("--metrics", help="comma-separated (default: all)")
    ev.add_argument("--excerpt", type=float, default=0.0,
                    help="seconds scored per track, cut as `run` cuts them (default 0: whole tracks)")
    ev.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)))
    ev.add_argument("--quiet", action="store_true", help="no progress")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export", help="write a run's BSS Eval frames in museval's JSON layout")
    ex.add_argument("--format", choices=("museval",), required=True)
    ex.add_argument("--out", required=True, help="folder: OUT/<separator>/<subset>/<track>.json")
    ex.add_argument("--run", help="run id (default: the latest run)")
    ex.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)))
    ex.set_defaults(func=cmd_export)

    im = sub.add_parser("import", help="store results made elsewhere (museval JSON folders)")
    im.add_argument("format", choices=("museval",))
    im.add_argument("folder", help="folder of <subset>/<track>.json files")
    im.add_argument("--name", required=True, help="the separator name the results get")
    im.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)))
    im.set_defaults(func=cmd_import)

    s = sub.add_parser("results", help="print the tidy result rows of a store")
    s.add_argument("--store", default=os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE)))
    s.add_argument("--format", choices=("csv", "json", "table", "parquet"), default="table",
                   help="parquet needs pyarrow (pip install 'demixbench[parquet]') and --out")
    s.add_argument("-o", "--out", metavar="PATH", help="write to PATH instead of the terminal")
    s.add_argument("--run", help="run id (default: the latest run)")
    s.add_argument("--all-runs", action="store_true", help="rows of every run")
    s.set_defaults(func=cmd_results)

    li = sub.add_parser("list", help="list separators and metrics")
    li.set_defaults(func=cmd_list)

    se = sub.add_parser("separate", help="separate audio files, one file per stem")
    se.add_argument("file", nargs="+",
                    help="audio file(s); with several, each file's stems go to OUTPUT/<name>/")
    se.add_argument("-s", "--separator", required=True)
    se.add_argument("-o", "--output", required=True)
    se.add_argument("--param", action="append", metavar="SEPARATOR.KEY=VALUE",
                    help="a constructor parameter of the separator (repeatable)")
    se.add_argument("--weights", metavar="PATH", help="weight file or folder for the separator")
    se.add_argument("--overwrite", action="store_true",
                    help="replace estimate files that already exist in the output folder")
    se.add_argument("--quiet", action="store_true", help="no progress")
    se.set_defaults(func=cmd_separate)

    fi = sub.add_parser("fit", help="fit a learning separator (nmf_supervised) and save what it learned")
    fi.add_argument("separator")
    fi.add_argument("--dataset", action="append", required=True,
                    help="training data, e.g. synthetic:8:train or musdb:PATH:train (repeatable)")
    fi.add_argument("--out", required=True, help="file to write (.npz)")
    fi.add_argument("--quiet", action="store_true", help="no progress")
    fi.add_argument("--param", action="append", metavar="SEPARATOR.KEY=VALUE",
                    help="a constructor parameter, e.g. nmf_supervised.n_components=32")
    fi.set_defaults(func=cmd_fit)

    tr = sub.add_parser("train", help="train unet, demucs_lite or convtasnet on a dataset")
    tr.add_argument("model", help="unet | demucs_lite | convtasnet")
    tr.add_argument("--dataset", action="append", required=True,
                    help="training data, e.g. synthetic:8:train or folder:PATH (repeatable)")
    tr.add_argument("--valid", action="append",
                    help="validation data (repeatable; default: the last 15%% of every "
                         "training track, never drawn for training)")
    tr.add_argument("--out", required=True, help="best checkpoint (.pt); OUT.csv is the log, "
                                                 "OUT.state the state --resume reads")
    tr.add_argument("--steps", type=int, help="stop after N steps")
    tr.add_argument("--minutes", type=float, help="stop after M minutes")
    tr.add_argument("--batch", type=int, default=4)
    tr.add_argument("--segment", type=float, default=3.0, help="seconds per training example")
    tr.add_argument("--lr", type=float, default=3e-4)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps")
    tr.add_argument("--threads", type=int, help="torch threads (default: every core)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT.state")
    tr.add_argument("--config", action="append", metavar="KEY=VALUE",
                    help="architecture setting, e.g. channels=16 (repeatable)")
    tr.add_argument("--epoch-steps", type=int, default=100, help="steps between validations")
    tr.add_argument("--valid-seconds", type=float, default=10.0,
                    help="length of each validation excerpt")
    tr.add_argument("--half", action="store_true", help="store the checkpoint in float16")
    tr.add_argument("--loss", default="seed", choices=("seed", "l1"),
                    help="seed: 0.85 L1 + 0.15 multi-resolution STFT (the seed report's); l1: "
                         "waveform L1 only")
    tr.add_argument("--snapshot", type=int, action="append", metavar="STEP",
                    help="also keep the model of the validation at STEP as OUT.stepSTEP.pt "
                         "(an early checkpoint; a multiple of --epoch-steps; repeatable)")
    tr.add_argument("--quiet", action="store_true", help="no progress")
    tr.set_defaults(func=cmd_train)

    fe = sub.add_parser("fetch", help="download a model's published weights into the cache "
                                       "(the only command that uses the network)")
    fe.add_argument("names", nargs="+", help="e.g. htdemucs mdx_extra")
    fe.add_argument("--dest", help="folder (default: $DEMIXBENCH_CACHE or the torch hub cache)")
    fe.set_defaults(func=cmd_fetch)

    sy = sub.add_parser("synth", help="write the synthetic dataset to disk in MUSDB layout")
    sy.add_argument("output")
    sy.add_argument("--tracks", type=int, default=3, help="test tracks")
    sy.add_argument("--train", type=int, default=0, help="train tracks")
    sy.add_argument("--seconds", type=float, default=8.0)
    sy.set_defaults(func=cmd_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except DemixbenchError as exc:
        _err(f"demixbench: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("demixbench: interrupted; finished units are saved: run the same command again to "
             "resume")
        return 130
    except BrokenPipeError:  # output piped into head: end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
