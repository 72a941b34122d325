"""The ``report`` command: the HTML report of stored runs (nothing is re-run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import estimate_cache_dir
from .common import default_store


def cmd_report(args: argparse.Namespace) -> int:
    from ..reports.report import write_report

    audio = None
    if args.audio:
        audio = {"seconds": args.audio_seconds, "max_tracks": args.audio_tracks,
                 "cache_dir": Path(args.cache_dir or estimate_cache_dir())}
    path = write_report(args.store, args.output, args.run, args.title, audio)
    print(f"report: {path}")
    return 0


def register(sub) -> None:
    rp = sub.add_parser("report", help="write the HTML report of runs in a store (nothing is re-run)")
    rp.add_argument("--store", default=default_store())
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
    rp.add_argument("--cache-dir", metavar="DIR",
                    help="estimate cache the audio is read from (default: the run's default)")
    rp.set_defaults(func=cmd_report)
