"""Shared fixtures: short synthetic tracks and helpers. Nothing here touches the network or
writes outside pytest's temporary folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.audio import write_audio
from demixbench.datasets.synthetic import synthesize_track

SR = 44100
SHARED = Path(__file__).resolve().parents[2] / "shared"


def cli(*argv: str) -> tuple[int, str, str]:
    """``demixbench ARGV`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from demixbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session", autouse=True)
def reports_outside_the_repository(tmp_path_factory):
    """`demixbench run` writes its report under $DEMIXBENCH_REPORTS and its estimates under
    $DEMIXBENCH_ESTIMATE_CACHE: keep the tests' reports out of the working tree and their
    estimates out of the user's cache (subprocesses inherit the variables)."""
    import os

    names = ("DEMIXBENCH_REPORTS", "DEMIXBENCH_ESTIMATE_CACHE")
    old = {n: os.environ.get(n) for n in names}
    os.environ["DEMIXBENCH_REPORTS"] = str(tmp_path_factory.mktemp("reports"))
    os.environ["DEMIXBENCH_ESTIMATE_CACHE"] = str(tmp_path_factory.mktemp("estimates"))
    yield
    for n, value in old.items():
        if value is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = value


@pytest.fixture(scope="session")
def short_track() -> dict[str, np.ndarray]:
    """A 3 s synthetic track (four stereo stems at 44.1 kHz)."""
    return synthesize_track(seed=7, seconds=3.0)


@pytest.fixture
def musdb_folder(tmp_path, short_track) -> Path:
    """A MUSDB-layout folder with one test track written from ``short_track``."""
    folder = tmp_path / "musdb" / "test" / "song"
    for k in STEMS:
        write_audio(folder / f"{k}.wav", short_track[k], SR)
    return tmp_path / "musdb"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


HOSTILE_TRACKS = ("<img src=x onerror=alert(1)>", "<script>alert(1)")


def write_report_dataset(root: Path) -> Path:
    """A MUSDB-layout folder of two 3 s tracks named to inject markup; the second has vocals
    silent for its first second (NaN BSS Eval frames) and drums below -60 dBFS in its last
    second (quiet frames)."""
    for i, name in enumerate(HOSTILE_TRACKS):
        stems = synthesize_track(seed=30 + i, seconds=3.0)
        if i == 1:
            stems["vocals"][:, :SR] = 0.0
            stems["drums"][:, 2 * SR:] *= 1e-4
        for k in STEMS:
            write_audio(root / "test" / name / f"{k}.wav", stems[k], SR)
    return root


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """One benchmark run made through the CLI for the report tests: a blind (mix) and an
    oracle (irm1) separator, progressive, oracle-gain and Wiener strategies, every estimate
    cached. Returns ``(store path, run id)``."""
    import contextlib
    import io

    from demixbench.cli import main
    from demixbench.runs.store import ResultsStore

    root = tmp_path_factory.mktemp("report-run")
    data = write_report_dataset(root / "musdb")
    store = root / "store" / "results.sqlite"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", "--dataset", f"musdb:{data}", "--separators", "mix,irm1",
                     "--excerpt", "3", "--strategy", "none", "--strategy", "progressive:steps=2",
                     "--strategy", "oracle-gain:gains=1/2", "--strategy", "wiener",
                     "--keep-estimates", "--cache-dir", str(store.parent / "estimates"),
                     "--store", str(store), "--no-report", "--quiet"])
    assert code == 0, out.getvalue()
    with ResultsStore(store, read_only=True) as s:
        run_id = s.latest_run()
    return store, run_id
