"""The ``rank`` command: Friedman test, mean ranks and post-hoc pairwise tests over the
separators of one or more runs (:mod:`demixbench.reports.ranking`)."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from ..specs import split_list
from .common import default_store


def cmd_rank(args: argparse.Namespace) -> int:
    from ..formats.tidy import finite_json
    from ..reports import ranking

    rankings = ranking.rank(args.store, args.run, args.metric, split_list(args.target),
                            args.posthoc)
    if args.format == "table":
        print(ranking.format_rankings(rankings))
    elif args.format == "json":
        json.dump(finite_json([r.as_dict() for r in rankings]), sys.stdout, indent=1,
                  allow_nan=False)
        print()
    else:
        rows = ranking.long_rows(rankings)
        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return 0


def register(sub) -> None:
    ra = sub.add_parser("rank", help="rank the separators of runs: Friedman, mean ranks, "
                                     "post-hoc pairwise tests (blind only; oracles as references)")
    ra.add_argument("--store", default=default_store())
    ra.add_argument("--run", action="append", metavar="ID",
                    help="run id; repeat to rank separators of several runs (default: the latest)")
    ra.add_argument("--metric", default="sdr", help="the metric ranked (default: sdr, i.e. cSDR)")
    ra.add_argument("--target", help="comma-separated targets (default: every target)")
    ra.add_argument("--posthoc", choices=("conover", "nemenyi"), default="conover",
                    help="post-hoc test after Friedman (default: conover); Wilcoxon with Holm is "
                         "always given too")
    ra.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ra.set_defaults(func=cmd_rank)
