"""Report size, generation time and load time in Chromium.

    python benchmarks/report_size_speed.py [--store .demixbench/results.sqlite] [--run ID]
                                           [--tracks 50 --separators 20 --steps 3]

1. The report of a run in an existing store (default: the latest run of the default store,
   i.e. what `demixbench run` made): HTML size and generation time, in a fresh process so the
   Vega bundle is built as a user's first report builds it.
2. A synthetic store of TRACKS tracks x SEPARATORS separators (a quarter of them oracles), each
   run with a STEPS-step strategy, 5 targets, the 6 built-in metrics, 30 BSS Eval frames per
   value: store size, rows, generation time and size of its report.
3. Both pages opened in headless Chromium (Debian's package, through Playwright): time to the
   load event, and time until every plot of the page has rendered.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from demixbench.runs.store import ResultsStore, UnitRecord

TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")
METRICS = ("sdr", "isr", "sir", "sar", "si_sdr", "usdr")


def synthetic_store(path: Path, tracks: int, separators: int, steps: int, seed: int = 0) -> str:
    """Write a store with plausible values (separator skill + track difficulty + noise)."""
    rng = np.random.default_rng(seed)
    run_id = "synthetic0000"
    skill = rng.normal(4.0, 2.5, separators)
    hard = rng.normal(0.0, 1.5, tracks)
    sep_configs = {f"{i:016x}": {"name": f"sep{i:02d}", "params": {"k": i}} for i in range(separators)}
    strat = {"feedbeeffeedbeef": {"strategy": "progressive", "steps": steps - 1}}
    config = {"datasets": {"synthetic:big": {}}, "excerpt": 30.0, "win": 1.0, "gains": {},
              "separator_configs": sep_configs, "strategy_configs": strat,
              "metric_definitions": {}}
    with ResultsStore(path) as store:
        store.begin_run(run_id, config, {"demixbench": "bench"}, {"cpus": 2}, "benchmark")
        for t in range(tracks):
            for i, (h, c) in enumerate(sep_configs.items()):
                rows = []
                for step in range(steps):
                    for target in TARGETS:
                        frames = skill[i] + hard[t] + 0.3 * step + rng.normal(0, 2.0, 30)
                        frames[rng.random(30) < 0.1] = np.nan
                        detail = {"frames": 30, "valid_frames": int(np.sum(~np.isnan(frames))),
                                  "quiet_frames": 1, "quiet_frame_index": [3], "group": list(TARGETS[:4]),
                                  "hop_seconds": 1.0,
                                  "frame_values": [None if np.isnan(x) else round(float(x), 4)
                                                   for x in frames]}
                        for m in METRICS:
                            v = float(np.nanmedian(frames)) + (0 if m == "sdr" else rng.normal(0, 1))
                            rows.append({"run_id": run_id, "dataset": "synthetic:big",
                                         "track": f"track-{t:03d}", "subset": "test",
                                         "excerpt": "0.00-30.00s", "separator": c["name"],
                                         "separator_hash": h, "oracle": int(i % 4 == 0),
                                         "strategy": "progressive", "strategy_hash": "feedbeeffeedbeef",
                                         "step": step, "target": target, "metric": m, "value": v,
                                         "nan_reason": None,
                                         "detail": detail if m in METRICS[:4] else None,
                                         "sep_seconds": 3.0 + i, "sep_peak_delta_mb": 100.0 + i})
                store.write_unit(run_id, UnitRecord(f"u{t}-{i}", "synthetic:big", f"track-{t:03d}",
                                                    c["name"], 3.0 + i, 100.0 + i, 1.0, False, [], [],
                                                    "test", 240.0), rows)
        store.finish_run(run_id, "complete", [])
    return run_id


def timed_report(store: Path, run_id: str, out: Path) -> float:
    """Generate in a fresh process (as `demixbench report` does); wall seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "demixbench.cli", "report", "--store", str(store), "--run",
                    run_id, "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def browser_times(page_path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        loaded = time.perf_counter() - t0
        first = page.evaluate("document.querySelectorAll('[data-chart][data-rendered]').length")
        page.evaluate("window.demixbench.renderAll()")
        rendered = time.perf_counter() - t0
        n = page.evaluate("document.querySelectorAll('[data-chart] canvas').length")
        b.close()
    return {"load_s": round(loaded, 2), "plots_at_load": first, "all_plots_s": round(rendered, 2),
            "plots": n, "page_errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=".demixbench/results.sqlite")
    ap.add_argument("--run")
    ap.add_argument("--tracks", type=int, default=50)
    ap.add_argument("--separators", type=int, default=20)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = Path(args.store)
        if store.is_file():
            with ResultsStore(store, read_only=True) as s:
                run_id = args.run or s.latest_run()
            page = tmp / "default.html"
            seconds = timed_report(store, run_id, page)
            out["store_run"] = {"run": run_id, "report_mb": round(page.stat().st_size / 1e6, 2),
                                "generate_s": round(seconds, 2), **browser_times(page)}
        big = tmp / "big.sqlite"
        t0 = time.perf_counter()
        run_id = synthetic_store(big, args.tracks, args.separators, args.steps)
        with ResultsStore(big, read_only=True) as s:
            rows = len(s.rows(run_id))
        page = tmp / "big.html"
        seconds = timed_report(big, run_id, page)
        out["synthetic"] = {"tracks": args.tracks, "separators": args.separators,
                            "steps": args.steps, "rows": rows,
                            "store_mb": round(big.stat().st_size / 1e6, 1),
                            "write_store_s": round(time.perf_counter() - t0 - seconds, 1),
                            "report_mb": round(page.stat().st_size / 1e6, 2),
                            "generate_s": round(seconds, 2), **browser_times(page)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
