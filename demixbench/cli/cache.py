"""The ``cache`` command: where the estimate cache is, how big, and pruning or clearing it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import DemixbenchError
from ..paths import estimate_cache_dir


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"


def _gigabytes(text: str) -> int:
    try:
        gb = float(text)
    except ValueError:
        gb = math.nan
    if not math.isfinite(gb) or gb < 0:
        raise DemixbenchError(f"--max-gb {text}: give a number of gigabytes >= 0, e.g. 2")
    return int(gb * 1e9)


def cmd_cache(args: argparse.Namespace) -> int:
    from ..runs.cache import EstimateCache

    cache = EstimateCache(Path(args.cache_dir or estimate_cache_dir()))
    if args.cache_command == "info":
        info = cache.info()
        print(f"estimate cache: {info['root']}")
        print(f"entries: {info['entries']} ({info['separators']} separator configurations), "
              f"{_size(info['bytes'])} of a {_size(info['max_bytes'])} cap "
              "($DEMIXBENCH_CACHE_MAX_GB)")
        return 0
    if args.cache_command == "prune":
        cap = _gigabytes(args.max_gb) if args.max_gb is not None else None
        removed, freed = cache.prune(cap, sync=True)
        print(f"removed {removed} least recently used entries ({_size(freed)}); "
              f"{_size(cache.info()['bytes'])} left in {cache.root}")
        return 0
    removed, freed = cache.clear()
    print(f"removed {removed} entries ({_size(freed)}) from {cache.root}")
    return 0


def register(sub) -> None:
    ca = sub.add_parser("cache", help="the estimate cache: info, prune (least recently used "
                                      "first), clear")
    ca_sub = ca.add_subparsers(dest="cache_command", required=True)
    ci = ca_sub.add_parser("info", help="where it is, entries, size and cap")
    cp = ca_sub.add_parser("prune", help="remove least recently used entries down to the cap")
    cp.add_argument("--max-gb", metavar="GB", help="prune down to GB instead of the cap")
    cc = ca_sub.add_parser("clear", help="remove every entry")
    for x in (ci, cp, cc):
        x.add_argument("--cache-dir", metavar="DIR",
                       help="the cache folder (default: $DEMIXBENCH_ESTIMATE_CACHE or "
                            "~/.cache/demixbench/estimates)")
    ca.set_defaults(func=cmd_cache)
