"""mir_eval's bss_eval_sources as the mireval_* metrics: the MATLAB toolbox's numbers (mir_eval's
own test vectors), what mir_eval gives on the stems' mono downmix when scored through a run, and
never the permutation mir_eval would search for by default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import cli

from demixbench.metrics import METRICS
from demixbench.metrics.mireval import bss_eval_sources
from demixbench.metrics.scoring import score_track

mir_eval = pytest.importorskip("mir_eval.separation", reason="extra mireval is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:mir_eval")
VECTORS = Path(__file__).parent / "data" / "mir_eval-separation"


@pytest.mark.parametrize("case", ["01", "02"])
def test_matlab_toolbox_values(case):
    expected = json.loads((VECTORS / f"output{case}.json").read_text())["Sources"]
    if expected["Source permutation"] != sorted(expected["Source permutation"]):
        pytest.skip("a case whose best permutation is not the identity")
    refs = np.stack([sf.read(p)[0] for p in sorted((VECTORS / f"ref{case}").glob("*.wav"))])
    ests = np.stack([sf.read(p)[0] for p in sorted((VECTORS / f"est{case}").glob("*.wav"))])
    got = bss_eval_sources(refs[..., None], ests[..., None], 44100, win=0, hop=0)
    for name, key in (("mireval_sdr", "Source to Distortion"), ("mireval_sir",
                      "Source to Interference"), ("mireval_sar", "Source to Artifact")):
        np.testing.assert_allclose(got[name][:, 0], expected[key], rtol=1e-3, atol=1e-3)


def test_scored_track_is_mir_eval_on_the_mono_downmix():
    rng = np.random.default_rng(0)
    stems = ("drums", "bass", "other", "vocals")
    refs = {k: rng.standard_normal((2, 66150)) * 0.1 for k in stems}
    ests = {k: (refs[k] + 0.3 * refs[stems[(i + 1) % 4]]
                + rng.standard_normal((2, 66150)) * 0.02).astype(np.float32)
            for i, k in enumerate(stems)}
    rows = {(s.target, s.metric): s.value for s in
            score_track(refs, ests, ["mireval_sdr", "mireval_sir", "mireval_sar"], 44100)}
    def mir(names, r, e):  # mir_eval itself on the mono downmix of one group
        mono = lambda d: np.stack([d[k].astype(np.float64).mean(axis=0) for k in names])  # noqa: E731
        return dict(zip(names, zip(*mir_eval.bss_eval_sources(mono(r), mono(e),
                                                              compute_permutation=False)[:3])))

    # museval's grouping, as for cSDR: drums, bass and other among the four stems; vocals
    # against the accompaniment (the sum of the others)
    expected = mir(stems, refs, ests)
    acc = lambda d: {"vocals": d["vocals"], "accompaniment": sum(d[k] for k in stems[:3])}  # noqa: E731
    expected.update(mir(("vocals", "accompaniment"), acc(refs), acc(ests)))
    for k, (sdr, sir, sar) in expected.items():
        assert rows[(k, "mireval_sdr")] == pytest.approx(sdr, abs=1e-6), k
        assert rows[(k, "mireval_sir")] == pytest.approx(sir, abs=1e-6), k
        assert rows[(k, "mireval_sar")] == pytest.approx(sar, abs=1e-6), k
    assert METRICS["mireval_sdr"].parameters["compute_permutation"] is False


def test_through_the_cli(tmp_path):
    code, out, err = cli("run", "--dataset", "synthetic:1", "--separators", "mix", "--excerpt",
                         "2", "--metrics", "sdr,mireval_sdr", "--no-report", "--quiet",
                         "--store", str(tmp_path / "s.sqlite"))
    assert code == 0, err
    assert out.splitlines()[0].split()[3:5] == ["cSDR", "mireval_sdr"]


def test_a_metric_whose_package_is_missing_stops_the_run_before_it_separates(monkeypatch,
                                                                              tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mir_eval" else real(name, *a))
    code, out, err = cli("run", "--dataset", "synthetic:1", "--separators", "mix", "--metrics",
                         "usdr,mireval_sdr", "--no-report", "--store", str(tmp_path / "s.sqlite"))
    assert code != 0
    assert "mireval_sdr needs mir_eval: pip install 'demixbench[mireval]'" in err
    assert "[1/1]" not in err  # nothing separated
    import sqlite3

    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # and no run left behind
        assert db.execute("select count(*) from runs").fetchone()[0] == 0
