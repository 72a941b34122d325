"""Reports and comparisons without a browser: the statistics against scipy, the data each
section shows, the page's escaping and self-containment, and the CLI's errors."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sqlite3

import numpy as np
import pytest
import scipy.stats
from conftest import HOSTILE_TRACKS

from demixbench.cli import main
from demixbench.errors import DemixbenchError, ReportError
from demixbench.reports import html, model, stats
from demixbench.reports.compare import compare, format_table
from demixbench.reports.gates import evaluate, fails, parse_list
from demixbench.reports.report import make_report
from demixbench.runs.runner import RunConfig, Runner
from demixbench.runs.store import ResultsStore


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# -- statistics -----------------------------------------------------------------------------------
def test_bootstrap_ci_is_scipys_percentile_bootstrap_of_the_median():
    d = np.random.default_rng(3).normal(0.4, 1.0, 12)
    low, high = stats.bootstrap_median_ci(d)
    ref = scipy.stats.bootstrap((d,), np.median, confidence_level=0.95, n_resamples=2000,
                                method="percentile", vectorized=True,
                                rng=np.random.default_rng(stats.SEED)).confidence_interval
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert low < np.median(d) < high
    assert stats.bootstrap_median_ci([1.0]) == (pytest.approx(math.nan, nan_ok=True),) * 2
    assert stats.bootstrap_median_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_wilcoxon_p_is_scipys_and_six_tracks_cannot_go_below_one_32nd():
    d = np.array([0.3, -0.1, 0.8, 1.2, 0.25, 0.6, -0.05, 0.9])
    assert stats.wilcoxon_p(d) == pytest.approx(scipy.stats.wilcoxon(d).pvalue, abs=1e-12)
    assert stats.wilcoxon_p(np.arange(1.0, 7.0)) == pytest.approx(1 / 32)
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert math.isnan(stats.wilcoxon_p([]))


def test_holm_correction_by_hand_and_nan_is_not_a_test():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    got = stats.holm([0.01, math.nan, 0.02])
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)


def test_paired_comparison_drops_nan_pairs_orients_by_direction_and_needs_evidence():
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, math.nan]
    b = [2.0, 3.1, 4.2, 5.3, 6.4, 7.5, 9.0]
    r = stats.compare_paired(a, b)
    assert r.n == 6 and r.median_diff == pytest.approx(1.25) and r.verdict == "better"
    assert r.p == pytest.approx(1 / 32)
    lower = stats.compare_paired(a, b, higher_is_better=False)
    assert lower.median_diff == pytest.approx(-1.25) and lower.verdict == "worse"
    # four tracks that all moved: the interval excludes 0, but p >= 1/8 is no evidence
    few = stats.compare_paired([1, 2, 3, 4], [2, 3, 4, 5])
    assert few.ci_low > 0 and few.verdict == "no evidence"
    with pytest.raises(ValueError, match="differ in length"):
        stats.compare_paired([1.0], [1.0, 2.0])


# -- report data ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_data(report_run):
    store, run_id = report_run
    with ResultsStore(store, read_only=True) as s:
        return model.build(s, [run_id])


def test_leaderboard_has_every_separator_and_target_with_oracles_apart(report_data):
    lb = report_data["leaderboard"]
    assert {r["separator"] for r in lb["blind"]} == {"mix"}
    assert {r["separator"] for r in lb["oracle"]} == {"irm1", "mix"}
    assert {r["strategy"] for r in lb["oracle"] if r["separator"] == "mix"} == {"oracle-gain"}
    assert {r["target"] for r in lb["blind"]} == {"vocals", "drums", "bass", "other",
                                                  "accompaniment"}
    plain = [r for r in lb["blind"] if r["strategy"] == "none"]
    assert all(r["tracks"] == 2 for r in plain)
    # oracle-gain on mix is an oracle experiment: its rows are in the oracle block
    assert any(r["strategy"] == "oracle-gain" for r in lb["oracle"])
    assert not any(r["strategy"] == "oracle-gain" for r in lb["blind"])
    cols = [c["label"] for c in lb["columns"]]
    assert cols[:3] == ["cSDR", "uSDR", "SI-SDR"] and {"SIR", "SAR", "ISR"} <= set(cols)


def test_leaderboard_numbers_are_the_stored_rows_aggregated(report_run, report_data):
    store, run_id = report_run
    with ResultsStore(store, read_only=True) as s:
        rows = [r for r in s.rows(run_id) if r["separator"] == "irm1" and r["strategy"] == "none"
                and r["target"] == "vocals"]
    want = {m: [r["value"] for r in rows if r["metric"] == m] for m in ("sdr", "usdr")}
    entry = next(r for r in report_data["leaderboard"]["oracle"]
                 if r["separator"] == "irm1" and r["strategy"] == "none" and r["target"] == "vocals")
    assert entry["cSDR"] == pytest.approx(np.median(want["sdr"]), abs=1e-3)
    assert entry["uSDR"] == pytest.approx(np.mean(want["usdr"]), abs=1e-3)


def test_per_frame_data_marks_nan_and_quiet_frames(report_data):
    tracks = report_data["frames"]["tracks"]
    key = next(k for k in tracks if k.endswith("/" + HOSTILE_TRACKS[1]))
    vocals = tracks[key]["vocals"]
    assert all(len(s["y"]) == 3 and s["y"][0] is None for s in vocals)  # silent first second
    drums = tracks[key]["drums"]
    assert all(s["q"] == [2] for s in drums)  # quieter than -60 dBFS in the last second


def test_strategy_curves_pair_steps_with_step_zero(report_data):
    curves = [c for c in report_data["strategies"] if c["strategy"] == "progressive"]
    # progressive:target=vocals keeps step 0's other stems: only the vocals curve is a test
    assert {c["target"] for c in curves} == {"vocals"}
    for c in curves:
        zero = c["steps"][0]
        assert zero["step"] == 0 and zero["median"] == 0.0 and zero["p"] == 1.0
        assert [s["step"] for s in c["steps"]] == [0, 1, 2]
        assert sum(s["best"] for s in c["steps"]) == 1


def test_strength_table_reads_the_step_curves_and_corrects_over_every_step(report_data):
    curves = {(c["pipeline"], c["target"], c["metric"]): c for c in report_data["strategies"]
              if c["strategy"] == "progressive" and not c["oracle"]}  # oracles: not a rung
    table = report_data["strength"]
    assert {(r["pipeline"], r["target"], r["metric"]) for r in table} == set(curves)
    for r in table:
        steps = {s["step"]: s for s in curves[(r["pipeline"], r["target"], r["metric"])]["steps"]}
        assert r["one_shot"] == steps[0]["value"] and r["final_step"] == 2
        later = [s for s in steps.values() if s["step"] > 0]
        assert r["gain_best"] == max(s["median"] for s in later)
        assert r["gain_worst"] == min(s["median"] for s in later) <= r["gain_final"]
        assert r["gain_final"] == steps[2]["median"] and r["lo_final"] <= r["gain_final"]
        assert r["p_holm_best"] >= r["p_best"] and r["p_holm_final"] >= r["p_final"]
    holm = [s["p_holm"] for c in report_data["strategies"] for s in c["steps"] if s["step"]]
    assert holm and all(p is None or 0 <= p <= 1 for p in holm)


def test_oracle_gain_and_wiener_sections(report_data):
    og = report_data["oracle_gain"]
    assert {r["gain"] for r in og} == {1.0, 2.0}
    boosted = [r for r in og if r["boosted"]]
    assert {r["target"] for r in boosted} == {"vocals"}
    irm_vocals = sorted((r["gain"], r["y"]) for r in boosted if r["pipeline"].startswith("irm1"))
    assert irm_vocals[1][1] > irm_vocals[0][1]  # louder target, better separated
    wiener = report_data["wiener"]
    assert {w["separator"] for w in wiener} == {"mix", "irm1"}
    assert all(w["n"] == 2 and "p_holm" in w for w in wiener)


def test_reference_panel_is_separate_and_names_the_test_set(report_data):
    ref = report_data["reference"]
    assert all(r["test_set"].startswith("MUSDB18") for r in ref["rows"])
    assert any(r["system"].startswith("HT Demucs") for r in ref["rows"])
    assert {r["system"] for r in ref["run"]} == {"mix", "irm1"}
    assert "cSDR" not in {r.get("metric") for r in ref["run"]}  # run rows carry no metric mix-up


# -- the page -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(report_run):
    store, run_id = report_run
    with ResultsStore(store, read_only=True) as s:
        return make_report(s, [run_id])


def test_page_is_self_contained(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert len(page) < 3_000_000


def test_hostile_names_are_escaped(page):
    for name in HOSTILE_TRACKS:
        assert name not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                     re.S).group(1)
    assert "<" not in data  # tojson escapes every '<' in the embedded data
    tracks = {p["k"].rsplit("/", 1)[1] for p in json.loads(data)["tables"]["points"]}
    assert set(HOSTILE_TRACKS) <= tracks


def test_write_refuses_a_file_that_is_not_a_report_and_replaces_a_report(tmp_path):
    other = tmp_path / "notes.html"
    other.write_text("<p>my notes</p>")
    with pytest.raises(ReportError, match="not a demixbench report; it was left untouched"):
        html.write("<html></html>", other)
    assert other.read_text() == "<p>my notes</p>"
    with pytest.raises(ReportError, match="ending in .html"):
        html.write("x", tmp_path / "report.txt")
    page = f'<meta name="generator" content="{html.GENERATOR}">'
    out = html.write(page, tmp_path / "r.html")
    html.write(page + "again", out)
    assert out.read_text().endswith("again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "r.html"]


# -- CLI ------------------------------------------------------------------------------------------
def test_report_command_writes_only_its_file(report_run, tmp_path):
    store, run_id = report_run
    before = sorted(p.name for p in store.parent.rglob("*"))
    out = tmp_path / "out" / "page.html"
    code, stdout, _ = run_cli("report", "--store", str(store), "--run", run_id, "-o", str(out),
                              "--title", "<b>bold</b> title")
    assert code == 0 and stdout.strip() == f"report: {out}"
    assert sorted(p.name for p in store.parent.rglob("*")) == before
    assert [p.name for p in out.parent.iterdir()] == ["page.html"]
    assert "<title>&lt;b&gt;bold&lt;/b&gt; title</title>" in out.read_text()


def test_report_errors_are_one_line(report_run, tmp_path):
    store, _ = report_run
    code, _, err = run_cli("report", "--store", str(store), "--run", "feedbeef0000")
    assert code == 2 and "no run feedbeef0000" in err and "its runs:" in err
    assert err.count("\n") == 1
    code, _, err = run_cli("report", "--store", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no results store" in err
    empty = tmp_path / "empty.sqlite"
    ResultsStore(empty).close()
    code, _, err = run_cli("report", "--store", str(empty))
    assert code == 2 and "holds no run yet" in err
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                     "INSERT INTO meta VALUES ('schema_version', '1');"
                     "CREATE TABLE runs (run_id TEXT); CREATE TABLE units (run_id TEXT);"
                     "CREATE TABLE results (run_id TEXT);")
    db.close()
    code, _, err = run_cli("report", "--store", str(old))
    assert code == 2 and "older demixbench (schema 1" in err and err.count("\n") == 1


@pytest.mark.slow
def test_schema_2_store_is_migrated_in_place_and_keeps_its_rows(tmp_path, report_run):
    store, run_id = report_run
    copy = tmp_path / "v2.sqlite"
    src = sqlite3.connect(store)
    src.execute("VACUUM INTO ?", (str(copy),))
    src.close()
    db = sqlite3.connect(copy)  # take it back to schema 2: the columns 3 and 4 added
    db.execute("ALTER TABLE runs DROP COLUMN planned")
    db.execute("ALTER TABLE runs DROP COLUMN notices")
    db.execute("ALTER TABLE units DROP COLUMN track_seconds")
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    db.close()
    with ResultsStore(copy, read_only=True) as s:  # a report reads it as it is
        assert model.build(s, [run_id])["leaderboard"]["blind"]
    with ResultsStore(copy) as s:
        assert s.schema_version == 4 and len(s.rows(run_id)) > 0
        s.finish_run(run_id, "complete", ["kept"])
        assert json.loads(s.runs()[0]["notices"]) == ["kept"]


# -- compare --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs of irm1 on three synthetic tracks, the second with a coarse STFT (n_fft=64)."""
    root = tmp_path_factory.mktemp("compare")
    store = root / "results.sqlite"
    ids = []
    for params in ({}, {"irm1": {"n_fft": 64}}):
        config = RunConfig(datasets=["synthetic:3"], separators=["irm1"], excerpt=3.0,
                           metrics=["sdr", "usdr", "si_sdr"], params=params)
        with ResultsStore(store) as s:
            ids.append(Runner(config, s).run().run_id)
    return store, ids


def test_compare_flags_the_changed_parameter_and_the_drop(two_runs):
    store, (a, b) = two_runs
    c = compare(store, a, None, b)
    assert c.config_changes["irm1"] == ["params.n_fft: 2048 -> 64"]
    vocals = next(r for r in c.table if r["target"] == "vocals" and r["metric"] == "sdr")
    assert vocals["n"] == 3 and vocals["median_diff"] < -0.5 and vocals["ci_high"] < 0
    assert fails(evaluate(c.table, parse_list("sdr:0.5")))
    assert not fails(evaluate(c.table, parse_list("sdr:100")))
    assert all(not math.isnan(r["p_holm"]) and r["p_holm"] >= r["p"] for r in c.table)


def test_compare_cli_exit_status_follows_fail_on(two_runs, tmp_path, monkeypatch):
    store, (a, b) = two_runs
    monkeypatch.setenv("COLUMNS", "80")  # (as when piped, whatever terminal runs the tests)
    out = tmp_path / "cmp.html"
    code, stdout, err = run_cli("compare", a, b, "--store", str(store), "--fail-on", "sdr:0.5",
                                "-o", str(out))
    assert code == 1 and "FAIL irm1 vocals cSDR" in err
    assert "irm1 changed: params.n_fft: 2048 -> 64" in stdout
    # the table fits 80 columns: one heading per separator and target, its metrics below
    assert max(len(line) for line in stdout.splitlines()) <= 80, stdout
    lines = stdout.splitlines()
    at = lines.index("  irm1  vocals")
    assert sorted(line.split()[0] for line in lines[at + 1:at + 4]) == ["SI-SDR", "cSDR", "uSDR"]
    assert re.match(r"^    cSDR\s+-?\d+\.\d\d\s+-?\d+\.\d\d\s+-\d+\.\d\d\s+\[", lines[at + 1])
    # where a target column fits, one heading for the separator and a row per target and metric
    wide = format_table(compare(store, a, None, b), width=120).splitlines()
    at = wide.index("  irm1")
    assert wide[at - 1].split()[:3] == ["target", "metric", "A"]
    assert all(re.match(r"^    (drums|bass|other|vocals|accompaniment)\s+(cSDR|uSDR|SI-SDR)\s", x)
               for x in wide[at + 1:at + 16]) and not wide[at + 16].strip()
    assert html.is_report(out) and "compare-table" in out.read_text()
    code, stdout, err = run_cli("compare", a, b, "--store", str(store), "--fail-on", "sdr:100")
    assert code == 0 and "FAIL" not in stdout + err
    code, _, err = run_cli("compare", a, b, "--store", str(store), "--fail-on", "sdr")
    assert code == 2 and "expected METRIC[:TARGET]:DB" in err
    code, _, err = run_cli("compare", a, b, "--store", str(store), "--metric", "loudness")
    assert code == 2 and "--metric loudness: unknown metric" in err


def test_compare_refuses_other_metric_definitions_and_says_when_datasets_differ(two_runs):
    store, (a, _) = two_runs
    with ResultsStore(store) as s:
        other_win = Runner(RunConfig(datasets=["synthetic:3"], separators=["irm1"], excerpt=3.0,
                                     metrics=["sdr"], win=0.5), s).run().run_id
        other_data = Runner(RunConfig(datasets=["synthetic:2"], separators=["irm1"], excerpt=3.0,
                                      metrics=["sdr"]), s).run().run_id
    with pytest.raises(ReportError, match=r"measure different things.*window and hop: 1.0 s in"):
        compare(store, a, None, other_win, ["sdr"])
    c = compare(store, a, None, other_data, ["sdr"])
    assert any("datasets differ" in n for n in c.notes)
    assert {r["n"] for r in c.table} == {2}


def test_fail_on_parsing():
    assert [(g.metric, g.db) for g in parse_list("sdr:0.5,uSDR:1")] == [("sdr", 0.5), ("usdr", 1.0)]
    with pytest.raises(DemixbenchError, match="DB >= 0"):
        parse_list("sdr:-1")
