"""What every command shares: the default store, one-line messages on stderr, the excerpt and
BSS Eval backend checks."""

from __future__ import annotations

import argparse
import math
import os
import sys

from ..errors import DemixbenchError
from ..paths import DEFAULT_STORE


def default_store() -> str:
    return os.environ.get("DEMIXBENCH_STORE", str(DEFAULT_STORE))


def err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_excerpt(value: float, metrics: list[str], win: float) -> float:
    from ..metrics import METRICS

    if not math.isfinite(value) or value < 0:
        raise DemixbenchError(f"--excerpt {value}: give a finite number of seconds >= 0 (0 = the "
                              "whole track)")
    framed = [m for m in metrics if m in METRICS and METRICS[m].scope == "bss_group"]
    if 0 < value < win and framed:
        raise DemixbenchError(f"--excerpt {value:g}: shorter than one {win:g} s BSS Eval frame, "
                              f"so {', '.join(framed)} could not be scored; use --excerpt {win:g} "
                              "or more, or --metrics without them")
    return value


def bsseval_backend(value: str) -> str:
    if value in ("numpy", "museval", "torch") or value.startswith(("torch:cpu", "torch:cuda")):
        return value
    raise argparse.ArgumentTypeError(f"unknown BSS Eval backend {value!r}: use numpy, museval, "
                                     "torch, torch:cpu or torch:cuda[:N]")


def cache_text() -> str:
    from ..weights import cache_dir

    return str(cache_dir())
