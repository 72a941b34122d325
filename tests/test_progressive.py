"""Progressive inference: the closed form of eq. 1, schedules, and the benchmark rows."""

from __future__ import annotations

import re

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.cli import main
from demixbench.errors import DemixbenchError
from demixbench.separators import Separator
from demixbench.strategies import ProgressiveSeparator, make_schedule, parse_strategy

SR = 44100


class StemOracle(Separator):
    """Test double: explains its input as a combination of the true stems (least squares)
    and returns each stem's part, so a perfect separator's output equals its input stems."""

    name = "stem_oracle"
    sources = STEMS
    sample_rate = None
    oracle = True

    def _separate(self, mixture, sample_rate, references):
        basis = np.stack([references[k].ravel() for k in STEMS], axis=1).astype(np.float64)
        coef, *_ = np.linalg.lstsq(basis, mixture.ravel().astype(np.float64), rcond=None)
        return {k: (c * references[k]).astype(np.float32) for k, c in zip(STEMS, coef)}


class LeakyVocals(Separator):
    """Test double: vocals = 0.6 x input, the other stems = 0.1 x input each."""

    name = "leaky"
    sources = STEMS
    sample_rate = None

    def _separate(self, mixture, sample_rate, references):
        return {k: (0.6 if k == "vocals" else 0.1) * mixture for k in STEMS}


@pytest.fixture(scope="module")
def stems():
    rng = np.random.default_rng(5)
    return {k: rng.standard_normal((2, 4000)).astype(np.float32) for k in STEMS}


def test_perfect_separator_gives_the_closed_form(stems):
    y = np.sum([stems[k] for k in STEMS], axis=0)
    acc = y - stems["vocals"]
    prog = ProgressiveSeparator(StemOracle(), target="vocals", steps=4, schedule="linear")
    steps = prog.trace(y, SR, references=stems)
    assert [s.index for s in steps] == [0, 1, 2, 3, 4]
    for n, step in enumerate(steps[1:], start=1):
        beta = n / 4
        np.testing.assert_allclose(step.mixture, (1 - beta) * acc + stems["vocals"], atol=1e-5)
        np.testing.assert_allclose(step.estimates["vocals"], stems["vocals"], atol=1e-5)
        assert step.info["beta"] == beta


def test_imperfect_separator_follows_the_recursion(stems):
    y = np.sum([stems[k] for k in STEMS], axis=0)
    betas = make_schedule("cosine", 3)
    steps = ProgressiveSeparator(LeakyVocals(), "vocals", 3, "cosine").trace(y, SR)
    x = 0.6 * y
    for n, beta in enumerate(betas, start=1):
        mix = (1 - beta) * y + beta * x
        x = 0.6 * mix
        np.testing.assert_allclose(steps[n].mixture, mix, rtol=1e-5)
        np.testing.assert_allclose(steps[n].estimates["vocals"], x, rtol=1e-5)
        # the other stems stay the one-shot estimates (documented choice)
        np.testing.assert_array_equal(steps[n].estimates["drums"], steps[0].estimates["drums"])
    np.testing.assert_array_equal(ProgressiveSeparator(LeakyVocals(), "vocals", 3, "cosine")
                                  .separate(y, SR)["vocals"], steps[-1].estimates["vocals"])


def test_schedules():
    np.testing.assert_allclose(make_schedule("linear", 4), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(make_schedule("constant", 3, 0.3), [0.3, 0.3, 0.3])
    np.testing.assert_allclose(make_schedule("cosine", 2), [0.5, 1.0])
    np.testing.assert_allclose(make_schedule("geometric", 3), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(make_schedule("list", 2, values=[0.1, 0.9]), [0.1, 0.9])
    with pytest.raises(DemixbenchError, match="unknown schedule 'exp'"):
        make_schedule("exp", 3)
    with pytest.raises(DemixbenchError, match=r"every beta must lie in \[0, 1\]"):
        make_schedule("constant", 2, 1.5)
    with pytest.raises(DemixbenchError, match="schedule=list needs 3 values"):
        make_schedule("list", 3, values=[0.5])


def test_strategy_specs_and_errors():
    assert parse_strategy("progressive:target=drums,steps=2,schedule=list,betas=0.5/1") == (
        "progressive", {"target": "drums", "steps": 2, "schedule": "list", "betas": [0.5, 1.0]})
    with pytest.raises(DemixbenchError, match="unknown strategy 'diffuse'"):
        parse_strategy("diffuse:steps=2")
    with pytest.raises(DemixbenchError, match="progressive:steps=many: expected an integer"):
        parse_strategy("progressive:steps=many")
    with pytest.raises(DemixbenchError, match="has no stem 'piano'"):
        ProgressiveSeparator(LeakyVocals(), target="piano")
    assert parse_strategy("wiener:iterations=2,sum_to_mix=true") == (
        "wiener", {"iterations": 2, "sum_to_mix": True})
    assert parse_strategy("none") == ("none", {})


def test_progressive_wiener_refines_every_separation(stems):
    from demixbench.separators.wiener import wiener_postfilter

    y = np.sum([stems[k] for k in STEMS], axis=0)
    steps = ProgressiveSeparator(LeakyVocals(), "vocals", 2, wiener=True).trace(y, SR)
    plain = LeakyVocals().separate(y, SR)
    step0 = wiener_postfilter(y, plain)
    for k in STEMS:
        np.testing.assert_allclose(steps[0].estimates[k], step0[k], atol=1e-6)
    # step 1 separates the blend of y and the *refined* step-0 target, and refines again
    mix1 = ((1 - 0.5) * y + 0.5 * step0["vocals"]).astype(np.float32)
    np.testing.assert_allclose(steps[1].mixture, mix1, atol=1e-6)
    again = wiener_postfilter(mix1, LeakyVocals().separate(mix1, SR))
    np.testing.assert_allclose(steps[1].estimates["vocals"], again["vocals"], atol=1e-6)
    assert ProgressiveSeparator(LeakyVocals(), wiener=True).strategy_config()["wiener"] is True


def test_cli_rows_per_step_and_step0_equals_plain_run(tmp_path, capsys):
    from demixbench.runs.store import ResultsStore

    common = ["run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators", "irm2",
              "--metrics", "si_sdr,usdr", "--quiet"]
    assert main([*common, "--store", str(tmp_path / "plain.sqlite")]) == 0
    code = main([*common, "--strategy", "progressive:target=vocals,steps=3,schedule=geometric",
                 "--store", str(tmp_path / "prog.sqlite")])
    out = capsys.readouterr().out
    assert code == 0 and re.search(r"^irm2 \(oracle\)\s+progressive @3\s+drums", out, re.M), out
    with ResultsStore(tmp_path / "plain.sqlite") as s:
        plain = {(r["target"], r["metric"]): r["value"] for r in s.rows()}
    with ResultsStore(tmp_path / "prog.sqlite") as s:
        rows = s.rows()
        import json

        configs = json.loads(s.runs()[0]["config"])["strategy_configs"]
    assert {r["strategy"] for r in rows} == {"progressive"}
    assert configs[rows[0]["strategy_hash"]]["schedule"] == "geometric"  # rows -> their config
    assert sorted({r["step"] for r in rows}) == [0, 1, 2, 3]
    step0 = {(r["target"], r["metric"]): r["value"] for r in rows if r["step"] == 0}
    assert step0 == pytest.approx(plain)
    final = {(r["target"], r["metric"]): r["value"] for r in rows if r["step"] == 3}
    assert final[("drums", "usdr")] == step0[("drums", "usdr")]  # non-targets stay step 0's
    assert final[("vocals", "usdr")] != step0[("vocals", "usdr")]


def test_oracle_gain_mixtures_and_rows(stems, tmp_path, capsys):
    from demixbench.runs.store import ResultsStore
    from demixbench.separators.baselines import MixtureSeparator
    from demixbench.strategies import OracleGain

    y = np.sum([stems[k] for k in STEMS], axis=0)
    steps = OracleGain(MixtureSeparator(), "vocals", [1, 2, 4]).trace(y, SR, references=stems)
    for step, gain in zip(steps, [1, 2, 4]):
        np.testing.assert_allclose(step.mixture, y + (gain - 1) * stems["vocals"], atol=1e-5)
        np.testing.assert_allclose(step.references["vocals"], gain * stems["vocals"], atol=1e-6)
        assert step.info == {"gain": gain}
    with pytest.raises(DemixbenchError, match="gains must be positive and start at 1"):
        OracleGain(MixtureSeparator(), gains=[2, 3])

    code = main(["run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators", "mix",
                 "--metrics", "si_sdr", "--strategy", "oracle-gain:target=vocals,gains=1/2/4",
                 "--store", str(tmp_path / "g.sqlite"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and re.search(r"^mix \(oracle\)\s+oracle-gain @2\s+drums", out, re.M), out
    with ResultsStore(tmp_path / "g.sqlite") as s:
        rows = s.rows()
    assert {r["oracle"] for r in rows} == {1}  # the experiment uses the references
    si = {(r["step"], r["target"]): r["value"] for r in rows}
    # the lemma: the target rises and the others fall as the target's gain rises
    assert si[(0, "vocals")] < si[(1, "vocals")] < si[(2, "vocals")]
    assert si[(0, "drums")] > si[(1, "drums")] > si[(2, "drums")]


@pytest.mark.parametrize("mode", ["oracle", "blind"])
def test_adaptive_beta_never_gets_worse(short_track, mode):
    from demixbench.separators import default_registry

    n = 2 * SR
    refs = {k: v[:, :n] for k, v in short_track.items()}
    y = np.sum([refs[k] for k in STEMS], axis=0)
    inner = default_registry().create("irm1")
    prog = ProgressiveSeparator(inner, "vocals", steps=3, adaptive=mode, candidates=3)
    assert prog.oracle  # irm1 is an oracle anyway; adaptive=oracle would make any inner one
    steps = prog.trace(y, SR, references=refs)
    crit = [s.info["criterion"] for s in steps[1:]]
    assert crit == sorted(crit)  # the previous estimate is always a candidate
    for s in steps[1:]:
        assert s.info["beta"] is None or s.info["beta"] in (1 / 3, 2 / 3, 1.0)
    if mode == "oracle":
        from demixbench.metrics import si_sdr

        scores = [float(np.mean(si_sdr(refs["vocals"], s.estimates["vocals"]))) for s in steps]
        assert scores == sorted(scores) or np.allclose(scores, sorted(scores))
    with pytest.raises(DemixbenchError, match="adaptive must be oracle or blind"):
        ProgressiveSeparator(inner, adaptive="greedy")


def test_adaptive_oracle_marks_blind_separator_rows_as_oracle(tmp_path, capsys):
    from demixbench.runs.store import ResultsStore

    code = main(["run", "--dataset", "synthetic:1", "--excerpt", "2", "--separators", "mix",
                 "--metrics", "si_sdr", "--strategy",
                 "progressive:target=vocals,steps=2,adaptive=oracle,candidates=2",
                 "--store", str(tmp_path / "a.sqlite"), "--quiet"])
    assert code == 0
    capsys.readouterr()
    with ResultsStore(tmp_path / "a.sqlite") as s:
        assert {r["oracle"] for r in s.rows()} == {1}
