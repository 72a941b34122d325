"""The ``results`` command: the tidy rows of a store as a table, CSV, JSON or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DemixbenchError
from ..formats.tidy import write_rows
from .common import default_store, err


def cmd_results(args: argparse.Namespace) -> int:
    from ..runs.store import ResultsStore

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
        for run in store.runs():  # a partial run says so (on stderr: stdout stays data)
            if (run_id is None or run["run_id"] == run_id) and run["status"] != "complete":
                done = (f": {run['units_done']} of {run['planned']} units done"
                        if run.get("planned") else "")
                err(f"note: run {run['run_id']} is {run['status']}{done}; its rows are partial "
                    "(run the same command again to finish it)")
    cols = ["run", "dataset", "track", "excerpt", "separator", "oracle", "strategy", "step",
            "target", "metric", "value", "nan_reason"]
    tidy = [{**{c: r.get(c) for c in cols if c != "run"}, "run": r["run_id"]} for r in rows]
    tidy = [{c: t[c] for c in cols} for t in tidy]
    if args.format == "parquet":
        from ..formats.tidy_parquet import write_parquet

        if not args.out:
            raise DemixbenchError("--format parquet writes a file: give it with --out "
                                  "results.parquet")
        print(f"{len(tidy)} rows -> {write_parquet(tidy, cols, args.out)}")
        return 0
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        write_rows(tidy, cols, args.format, out)
    finally:
        if args.out:
            out.close()
    return 0


def register(sub) -> None:
    s = sub.add_parser("results", help="print the tidy result rows of a store")
    s.add_argument("--store", default=default_store())
    s.add_argument("--format", choices=("csv", "json", "table", "parquet"), default="table",
                   help="parquet needs pyarrow (pip install 'demixbench[parquet]') and --out")
    s.add_argument("-o", "--out", metavar="PATH", help="write to PATH instead of the terminal")
    s.add_argument("--run", help="run id (default: the latest run)")
    s.add_argument("--all-runs", action="store_true", help="rows of every run")
    s.set_defaults(func=cmd_results)
