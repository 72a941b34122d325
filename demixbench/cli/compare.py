"""The ``compare`` and ``bench`` commands: paired comparisons of runs and of saved pytest sessions."""

from __future__ import annotations

import argparse

from ..reports.leaderboard import text_table
from ..specs import split_list
from .common import default_store

TABLE_COLUMNS = ["separator", "target", "metric", "oracle", "n", "median_a", "median_b",
                 "median_diff", "ci_low", "ci_high", "p", "p_holm", "verdict"]


def cmd_compare(args: argparse.Namespace) -> int:
    import csv
    import json
    import sys

    from ..formats.tidy import finite_json
    from ..reports import compare as cmp
    from ..reports import gates as gate_rules

    gates = gate_rules.parse_list(args.fail_on)
    result = cmp.compare(args.store, args.a, args.store_b, args.b, split_list(args.metric),
                         args.strategy, args.step)
    if args.format == "table":
        print(cmp.format_table(result))
    elif args.format == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=TABLE_COLUMNS, extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        w.writerows(result.table)
    else:
        json.dump({"a": args.a, "b": args.b, "notes": result.notes,
                   "rows": finite_json([{k: r[k] for k in TABLE_COLUMNS} for r in result.table])},
                  sys.stdout, indent=1, allow_nan=False)
        print()
    if args.output:
        from ..reports.html import write

        print(f"report: {write(cmp.render_html(result), args.output)}", file=sys.stderr)
    outcomes = gate_rules.evaluate(result.table, gates)
    allow = args.gate_unevaluated == "warn"
    for o in outcomes:
        for r in o.failed:
            print(f"FAIL {r['separator']} {r['target']} {r['metric_label']}: median change "
                  f"{r['median_diff']:+.2f} dB (95% CI [{r['ci_low']:.2f}, {r['ci_high']:.2f}], "
                  f"n={r['n']}) is a drop of more than {o.gate.db:g} dB "
                  f"(--fail-on {gate_rules.label(o.gate)})", file=sys.stderr)
        if o.unevaluated:
            print(f"{'warning' if allow else 'FAIL'}: --fail-on {gate_rules.label(o.gate)} "
                  f"could not be evaluated: {o.unevaluated}", file=sys.stderr)
    return 1 if gate_rules.fails(outcomes, allow) else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..reports import sessions

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


def register(sub) -> None:
    co = sub.add_parser("compare", help="compare two runs, or two separators, track by track "
                                         "(paired statistics)")
    co.add_argument("a", metavar="A", help="RUN, or RUN:SEPARATOR (one separator of a run)")
    co.add_argument("b", metavar="B", help="RUN, or RUN:SEPARATOR (as A)")
    co.add_argument("--store", default=default_store(),
                    help="store of A (and of B unless --store-b)")
    co.add_argument("--store-b", help="store of B, when it is another file")
    co.add_argument("--strategy", help="with RUN:SEPARATOR: the strategy whose rows are compared "
                                       "(default: the plain separator)")
    co.add_argument("--step", type=int, help="with RUN:SEPARATOR: the strategy's step (default: "
                                             "its last)")
    co.add_argument("--format", choices=("table", "csv", "json"), default="table",
                    help="the comparison as a text table (default), CSV or JSON on stdout")
    co.add_argument("--metric", default="sdr,usdr,si_sdr",
                    help="comma-separated metrics (default: sdr,usdr,si_sdr)")
    co.add_argument("--fail-on", metavar="METRIC[:TARGET]:DB[,...]",
                    help="exit with status 1 when, for any separator and target, the median paired "
                         "difference drops by more than DB and its 95%% CI lies below zero, or "
                         "when the gate cannot be evaluated (metric absent, too few pairs)")
    co.add_argument("--gate-unevaluated", choices=("fail", "warn"), default="fail",
                    help="a gate that cannot be evaluated fails (default) or only warns")
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
