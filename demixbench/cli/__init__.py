"""The ``demixbench`` command line: one module per command (each adds its own sub-parser with
``register``), the grammars of option values in :mod:`demixbench.specs`. ``main(argv)``
returns the exit code; user errors are printed on one line (no traceback) and exit with
status 2. Ctrl-C is one line and status 130, whatever exception it surfaced as (see
:mod:`demixbench.interrupts`)."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__, interrupts
from ..errors import DemixbenchError
from . import cache, compare, listing, rank, report, results, run, scores, separate, train
from .common import err

COMMANDS = (run, report, compare, rank, scores, results, listing, separate, train, cache)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demixbench", description="Benchmark music source separators.")
    p.add_argument("--version", action="version", version=f"demixbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    interrupts.install()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _interrupted()
    except DemixbenchError as exc:
        if interrupts.interrupted():
            return _interrupted()
        err(f"demixbench: error: {exc}")
        return 2
    except BrokenPipeError:  # output piped into head: end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception:
        if interrupts.interrupted():  # Ctrl-C that C code raised as another exception
            return _interrupted()
        raise


def _interrupted() -> int:
    err("demixbench: interrupted; finished units are saved: run the same command again to "
        "resume")
    return 130

