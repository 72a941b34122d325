"""Shared by the benchmark suites (``pytest benchmarks/``; not part of the default test run).

Quality goes through demixbench's ``separation_benchmark`` fixture, speed through
pytest-benchmark's ``benchmark`` fixture. Each suite also collects its tables (the ones the
scripts beside them print) with the ``tables`` fixture; they are printed after the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_addoption(parser):
    g = parser.getgroup("demixbench suites")
    g.addoption("--bench-tracks", type=int, default=8,
                help="synthetic tracks in the quality suites (default 8; plus the 2 demo songs)")
    g.addoption("--bench-seconds", type=float, default=30.0,
                help="excerpt length of the speed benchmarks (default 30 s)")
    g.addoption("--torchaudio-src", metavar="PATH",
                help="torchaudio's models/_hdemucs.py for the equivalence test")


class Tables:
    """Titled text blocks printed in the terminal summary, in the order they were added."""

    def __init__(self):
        self.blocks: dict[str, list[str]] = {}

    def add(self, title: str, line: str) -> None:
        self.blocks.setdefault(title, []).append(line)


_TABLES = Tables()


@pytest.fixture(scope="session")
def tables() -> Tables:
    return _TABLES


@pytest.fixture(scope="session")
def bench_tracks(request) -> int:
    return request.config.getoption("--bench-tracks")


@pytest.fixture(scope="session")
def bench_seconds(request) -> float:
    return request.config.getoption("--bench-seconds")


def pytest_terminal_summary(terminalreporter):
    for title, lines in _TABLES.blocks.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
