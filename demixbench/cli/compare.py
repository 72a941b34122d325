"""The ``compare`` and ``bench`` commands: paired comparisons of runs and of saved pytest sessions."""

from __future__ import annotations

import argparse

from ..reports.leaderboard import text_table
from ..specs import split_list
from .common import default_store


def cmd_compare(args: argparse.Namespace) -> int:
    from ..reports import compare as cmp

    fail_on = cmp.parse_fail_on(args.fail_on)
    result = cmp.compare(args.store, args.run_a, args.store_b, args.run_b, split_list(args.metric))
    print(cmp.format_table(result))
    if args.output:
        from ..reports.html import write

        print(f"report: {write(cmp.render_html(result), args.output)}")
    failed = cmp.failures(result, fail_on)
    for r in failed:
        print(f"FAIL {r['separator']} {r['target']} {r['metric_label']}: median change "
              f"{r['median_diff']:+.2f} dB (95% CI [{r['ci_low']:.2f}, {r['ci_high']:.2f}]) is a "
              f"drop of more than {fail_on[r['metric']]:g} dB")
    return 1 if failed else 0


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
    co = sub.add_parser("compare", help="compare two runs track by track (paired statistics)")
    co.add_argument("run_a", metavar="RUN_A")
    co.add_argument("run_b", metavar="RUN_B")
    co.add_argument("--store", default=default_store(),
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
