"""The pytest plugin (entry point ``pytest11``): separation benchmarks as tests.

A test asks for the ``separation_benchmark`` fixture, calls it once with a separator, and
asserts on the returned :class:`~demixbench.runs.quality.SeparationResult`. Options, named
after pytest-benchmark's where the meaning is the same:

- ``--demix-autosave`` / ``--demix-save=NAME``: save the session under ``--demix-storage``
  (default ``.demixbench/benchmarks``) as ``<machine id>/NNNN_<commit>_<time>.json``;
- ``--demix-compare[=NUM|ID]``: pair this session with the latest (or a named) saved one;
- ``--demix-compare-fail=METRIC[:TARGET]:DB`` (repeatable): fail the session when a paired
  median drops by more than DB with its 95 % CI below zero, or when the gate cannot be
  evaluated (metric or target absent, too few pairs: :mod:`demixbench.reports.gates`); a
  failed gate counts in pytest's final line. With no saved session yet, ``--demix-compare``
  warns and compares nothing;
- ``--demix-json=PATH``, ``--demix-export=github[:PATH]``;
- ``--demix-store=PATH``: the results store the runs go to (default, as ``demixbench run``:
  ``.demixbench/results.sqlite``), so a rerun reads it and costs nothing.

Unused, the plugin adds its options and nothing else (demixbench itself is imported only when
the fixture is used). Under pytest-xdist each worker runs its tests and sends the results with
its reports; the controller alone saves, compares and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

_KEY = "demixbench_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("demixbench", "demixbench separation benchmarks")
    g.addoption("--demix-autosave", action="store_true",
                help="save this session's separation benchmarks (numbered, with the commit)")
    g.addoption("--demix-save", metavar="NAME", help="save this session under NAME")
    g.addoption("--demix-storage", metavar="DIR", default=".demixbench/benchmarks",
                help="folder of saved sessions (default: .demixbench/benchmarks)")
    g.addoption("--demix-compare", metavar="NUM|ID", nargs="?", const="latest",
                help="compare with the latest saved session, or the one numbered NUM / named ID")
    g.addoption("--demix-compare-fail", metavar="METRIC[:TARGET]:DB", action="append", default=[],
                help="fail when a paired median drops by more than DB dB and its bootstrap 95%% "
                     "CI lies below zero (repeatable), e.g. usdr:0.5 or sdr:vocals:1")
    g.addoption("--demix-json", metavar="PATH", help="write this session's results as JSON")
    g.addoption("--demix-export", metavar="github[:PATH]",
                help="write github-action-benchmark's customBiggerIsBetter JSON "
                     "(default PATH: demixbench-github.json)")
    g.addoption("--demix-store", metavar="PATH", default=".demixbench/results.sqlite",
                help="results store the benchmark runs use (default: .demixbench/results.sqlite)")


def pytest_configure(config: pytest.Config) -> None:
    gates = []
    if config.getoption("--demix-compare-fail", default=[]):
        from .errors import DemixbenchError
        from .reports.sessions import parse_gate

        try:
            gates = [parse_gate(g) for g in config.getoption("--demix-compare-fail")]
        except DemixbenchError as exc:
            raise pytest.UsageError(f"--demix-compare-fail {exc}") from None
        if config.getoption("--demix-compare") is None:
            raise pytest.UsageError("--demix-compare-fail needs --demix-compare (the session "
                                    "to compare with)")
    export = config.getoption("--demix-export", default=None)
    if export and export.partition(":")[0] != "github":
        raise pytest.UsageError(f"--demix-export {export}: the one format is github[:PATH]")
    config.pluginmanager.register(SessionBenchmarks(config, gates), "demixbench-session")


@pytest.fixture
def separation_benchmark(request: pytest.FixtureRequest):
    """Call once per test: ``separation_benchmark(separator, dataset="demo", metrics=None,
    excerpt=30.0, params=None, strategy=None, win=1.0)`` runs the separator (a registered name
    or a Separator instance) through the suite's runner and store and returns its
    SeparationResult."""
    calls = []

    def run(separator, dataset: str = "demo", metrics=None, excerpt: float = 30.0, params=None,
            strategy: str | None = None, win: float = 1.0, weights: str | None = None):
        from .errors import DemixbenchError
        from .runs.quality import measure

        if calls:
            raise pytest.UsageError("separation_benchmark is called once per test; parametrize "
                                    "the test to benchmark several separators")
        calls.append(separator)
        problem = None
        try:
            result = measure(separator, dataset=dataset, metrics=metrics, excerpt=excerpt,
                             params=params, strategy=strategy, win=win, weights=weights,
                             store=request.config.getoption("--demix-store"))
        except DemixbenchError as exc:
            problem = str(exc)
        if problem is not None:  # outside the except block: one line, no chained traceback
            pytest.fail(f"separation_benchmark: {problem}", pytrace=False)
        entry = {"nodeid": request.node.nodeid, **result.as_json()}
        # user_properties travel with the test report, also from xdist workers
        request.node.user_properties.append((_KEY, json.dumps(entry, allow_nan=False)))
        return result

    return run


class SessionBenchmarks:
    """The session's results (collected from test reports) and what is done with them at the
    end: save, compare, gate, print. Registered per pytest config."""

    def __init__(self, config: pytest.Config, gates: list):
        self.config = config
        self.gates = gates
        self.tests: dict[str, dict] = {}
        self.comparison = None
        self.saved: Path | None = None
        self.before: Path | None = None
        self.failures: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def option(self, name: str):
        return self.config.getoption(name)

    @property
    def controller(self) -> bool:  # not an xdist worker
        return not hasattr(self.config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Under xdist, the workers' reports reach the controller with their user_properties."""
        if report.when != "call":
            return
        for key, value in getattr(report, "user_properties", ()):
            if key == _KEY:
                entry = json.loads(value)
                self.tests[entry["nodeid"]] = entry

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.controller:
            return
        wants = [self.option(o) for o in ("--demix-autosave", "--demix-save", "--demix-compare",
                                          "--demix-json", "--demix-export")]
        if not any(w is not None and w is not False for w in wants):
            return
        from .errors import DemixbenchError
        from .reports import sessions

        tests = list(self.tests.values())
        storage = self.option("--demix-storage")
        document = sessions.session_document(tests, cwd=self.config.rootpath)
        if self.option("--demix-compare") is not None:
            try:
                self.before = sessions.find(self.option("--demix-compare"), storage,
                                            sessions.machine_id())
            except DemixbenchError as exc:
                if sessions.saved_files(storage):
                    self.errors.append(str(exc))  # a session was named that is not there
                else:  # nothing saved yet (a first run): say so, fail nothing
                    self.warnings.append(f"{exc}; nothing compared")
            else:
                try:
                    self.comparison = sessions.compare_sessions(sessions.load(self.before),
                                                                document)
                except DemixbenchError as exc:
                    self.errors.append(str(exc))
                else:
                    failed = sessions.gate_failures(self.comparison, self.gates)
                    self.failures = [sessions.failure_message(g, r) for g, r in failed]
                    # a gate that cannot be evaluated must not pass silently
                    self.failures += sessions.unevaluated_gates(self.comparison, self.gates)
                    if self.gates:
                        self.failures += [f"{n}: not compared: {why}"
                                          for n, why in self.comparison.refused.items()]
        if tests and (self.option("--demix-autosave") or self.option("--demix-save")):
            self.saved = sessions.save(document, storage, self.option("--demix-save"))
        if self.option("--demix-json"):
            Path(self.option("--demix-json")).write_text(
                json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
        if self.option("--demix-export"):
            path = self.option("--demix-export").partition(":")[2] or "demixbench-github.json"
            Path(path).write_text(json.dumps(sessions.github_export(tests), indent=1),
                                  encoding="utf-8")
        if self.failures or self.errors:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self._count_as_failed(session)

    def _count_as_failed(self, session: pytest.Session) -> None:
        """A failed gate is a failure in pytest's own summary, so the final line says
        "1 failed" (and the short summary lists why), not "N passed"."""
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        text = "\n".join([*self.failures, *self.errors])
        report = pytest.TestReport(nodeid="demixbench::--demix-compare-fail", location=(
            "demixbench", None, "--demix-compare-fail"), keywords={}, outcome="failed",
            longrepr=text, when="call")
        reporter.stats.setdefault("failed", []).append(report)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int,
                                config: pytest.Config) -> None:
        if not self.controller or not (self.tests or self.errors or self.warnings):
            return
        from .reports import sessions

        tr = terminalreporter
        tr.section("demixbench separation benchmarks")
        if self.tests:
            tr.write_line(sessions.format_session(list(self.tests.values())))
        if self.comparison is not None:
            tr.write_line("")
            tr.write_line(f"compared with {self.before}:")
            tr.write_line(sessions.format_comparison(self.comparison))
        for w in self.warnings:
            tr.write_line(f"demixbench: warning: {w}", yellow=True)
        for e in self.errors:
            tr.write_line(f"demixbench: {e}", red=True)
        for f in self.failures:
            tr.write_line(f"FAILED (--demix-compare-fail) {f}", red=True)
        if self.saved:
            tr.write_line(f"saved: {self.saved}")
