"""SiSEC 2018's own results as the reference: importing the eight submissions' museval JSON
reproduces museval's aggregates; `rank` gives the Friedman statistic and post-hoc p-values that
scipy and scikit-posthocs give on the published per-track table; `compare` of two submissions
gives scipy's Wilcoxon p on their per-track medians."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, cli

from demixbench.formats.museval_import import import_folder
from demixbench.runs.store import ResultsStore

SISEC = SHARED / "reference" / "sisec18"
pytestmark = pytest.mark.skipif(not (SISEC / "json").is_dir(),
                                reason="the SiSEC 2018 reference files are not beside the repository")
ORACLES = ("IBM1", "MWF")



@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    store = tmp_path_factory.mktemp("sisec") / "s.sqlite"
    with ResultsStore(store) as s:
        run_id, counts = import_folder(s, SISEC / "json", None, ORACLES)
    return store, run_id, counts


@pytest.fixture(scope="module")
def per_track():
    return pd.read_csv(SISEC / "sisec18-per-track.csv")


def test_importing_the_submissions_reproduces_museval_aggregates(imported):
    store, run_id, counts = imported
    assert counts == {m: 50 for m in ("2DFT", "HPLP", "IBM1", "MELO", "MWF", "REP2", "TAK2",
                                      "UHL1")}
    with ResultsStore(store, read_only=True) as s:
        rows = pd.DataFrame(s.rows(run_id))
    assert set(rows.loc[rows["oracle"] == 1, "separator"]) == set(ORACLES)
    mine = rows.groupby(["separator", "target", "metric"])["value"].median()
    ref = list(csv.DictReader(open(SISEC / "sisec18-aggregate.csv")))
    assert len(ref) == 112
    for r in ref:
        assert mine[(r["method"], r["target"], r["metric"].lower())] == pytest.approx(
            float(r["score"]), abs=1e-5), r


def test_rank_matches_scipy_and_scikit_posthocs_on_the_published_table(imported, per_track):
    import scikit_posthocs as sp
    from scipy.stats import friedmanchisquare

    store, run_id, _ = imported
    code, out, err = cli("rank", "--store", str(store), "--run", run_id, "--metric", "sdr",
                         "--target", "vocals", "--format", "json")
    assert code == 0, err
    (r,) = json.loads(out)
    table = per_track[(per_track["target"] == "vocals") & (per_track["metric"] == "SDR")
                      & (per_track["oracle"] == 0)].pivot(index="track", columns="method",
                                                          values="median_over_frames").dropna()
    assert r["n"] == len(table) == 50
    stat, p = friedmanchisquare(*[table[c].to_numpy() for c in table.columns])
    assert r["friedman_stat"] == pytest.approx(stat, rel=1e-9)
    assert r["friedman_p"] == pytest.approx(p, rel=1e-6)
    ranks = table.rank(axis=1, ascending=False).mean()
    assert {s["separator"]: s["mean_rank"] for s in r["separators"]} == pytest.approx(
        ranks.to_dict())
    conover = sp.posthoc_conover_friedman(table)
    for a in table.columns:
        for b in table.columns:
            assert r["posthoc_p"][a][b] == pytest.approx(conover.loc[a, b], rel=1e-6, abs=1e-300)
    assert set(r["references"]) == set(ORACLES)  # oracles beside the ranking, not in it
    assert [s["separator"] for s in r["separators"]][:2] == ["TAK2", "UHL1"]


def test_compare_two_submissions_gives_scipys_wilcoxon(imported, per_track):
    from scipy.stats import wilcoxon

    store, run_id, _ = imported
    code, out, err = cli("compare", f"{run_id}:TAK2", f"{run_id}:UHL1", "--store", str(store),
                         "--metric", "sdr", "--format", "json")
    assert code == 0, err
    rows = {r["target"]: r for r in json.loads(out)["rows"]}
    for target in ("vocals", "drums", "bass", "other", "accompaniment"):
        t = per_track[(per_track["target"] == target) & (per_track["metric"] == "SDR")].pivot(
            index="track", columns="method", values="median_over_frames")[["TAK2", "UHL1"]]
        t = t.dropna()
        d = t["UHL1"].to_numpy() - t["TAK2"].to_numpy()
        assert rows[target]["n"] == len(t)
        assert rows[target]["p"] == pytest.approx(wilcoxon(d).pvalue, rel=1e-9)
        assert rows[target]["median_diff"] == pytest.approx(np.median(d), abs=1e-5)
    assert rows["vocals"]["verdict"] == "worse"  # UHL1 below TAK2 on vocals, Holm p < 0.05


def test_import_errors_leave_no_run(tmp_path):
    bad = tmp_path / "bad" / "test"
    bad.mkdir(parents=True)
    (bad / "song.json").write_text(json.dumps({"targets": [
        {"name": "vocals", "frames": [1, 2, 3]}]}))
    store = tmp_path / "s.sqlite"
    code, _, err = cli("import", "museval", str(tmp_path / "bad"), "--name", "x",
                       "--store", str(store))
    assert code == 2 and "frame 0: expected a dict" in err
    (bad / "song.json").write_text(json.dumps({"targets": [
        {"name": "vocals", "frames": [{"time": None, "duration": 1, "metrics": {"SDR": 1}}]}]}))
    code, _, err = cli("import", "museval", str(tmp_path / "bad"), "--name", "x",
                       "--store", str(store))
    assert code == 2 and "'time' must be a number of seconds, got None" in err
    frame = {"time": 0, "duration": 1, "metrics": {"SDR": 1}}
    (bad / "song.json").write_text(json.dumps({"targets": [{"name": "vocals", "frames": [frame]},
                                                           {"name": "vocals", "frames": [frame]}]}))
    code, _, err = cli("import", "museval", str(tmp_path / "bad"), "--name", "x",
                       "--store", str(store))
    assert code == 2 and "target 'vocals' appears twice" in err
    code, _, err = cli("import", "museval", str(tmp_path / "bad"), "--name", "irm1",
                       "--store", str(store))
    assert code == 2 and "--name irm1 is an installed separator" in err
    code, _, err = cli("import", "museval", str(SISEC / "json"), "--name", "x",
                       "--store", str(store))
    assert code == 2 and "holds 8 methods (2DFT, HPLP" in err
    if store.exists():
        with ResultsStore(store, read_only=True) as s:
            assert s.runs() == []


def test_the_report_of_the_eight_submissions_renders_and_draws_the_ranking(imported, tmp_path):
    import shutil
    from pathlib import Path

    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="Playwright for Python is not installed")
    chromium = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "")
                     if p and Path(p).is_file()), None)
    if chromium is None:
        pytest.skip("no Chromium here (apt-get install -y chromium); .ci/run installs it")
    from demixbench.reports.report import write_report

    store, run_id, _ = imported
    page_file = write_report(store, tmp_path / "sisec.html", [run_id])
    assert page_file.stat().st_size < 5e6
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        seen = []
        page.on("console", lambda m: seen.append((m.type, m.text)))
        page.on("pageerror", lambda e: seen.append(("pageerror", str(e))))
        page.goto(page_file.as_uri())
        page.evaluate("window.demixbench.renderAll()")
        cd = page.locator("#ranking .cd-diagram svg")
        assert cd.count() == 2  # vocals and accompaniment: six blind submissions each
        charts = page.locator("#ranking [data-chart^='rank/']")
        assert charts.count() == 2
        for i in range(2):  # each significance heat map drawn
            assert charts.nth(i).locator("svg, canvas").count() >= 1
        text = page.locator("#ranking").inner_text()
        assert "TAK2" in text and "reference MWF (oracle)" in text
        browser.close()
    assert [m for m in seen if m[0] in ("error", "warning", "pageerror")] == []
