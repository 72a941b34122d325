"""What the report draws follows what the run holds: no empty sections, every computed metric
in the step panels, repeated notices as one line with a count."""

from __future__ import annotations

import contextlib
import io

from demixbench.cli import main
from demixbench.reports.model import build, collapse
from demixbench.runs.store import ResultsStore


def test_a_run_without_csdr_draws_no_track_heat_map_and_steps_show_every_metric(tmp_path):
    store = str(tmp_path / "s.sqlite")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", "--dataset", "synthetic:2", "--separators", "irm1", "--excerpt", "2",
                     "--metrics", "usdr,si_sdr", "--strategy", "progressive:steps=1",
                     "--no-report", "--quiet", "--store", store])
    assert code == 0
    with ResultsStore(store, read_only=True) as s:
        data = build(s)
    assert data["heat_domain"] == {}
    assert {c["metric"] for c in data["strategies"]} == {"uSDR", "SI-SDR"}
    page = tmp_path / "r.html"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", "--store", store, "-o", str(page)]) == 0
    html = page.read_text()
    assert 'id="heatmaps"' not in html and 'href="#heatmaps"' not in html


def test_repeated_notices_collapse_with_a_count():
    notes = [f"imported from /data/json/TAK2/test/song {i}.json" for i in range(50)]
    notes += ["synthetic:2/a: bass is silent in the excerpt 0.00-2.00s", "another notice"]
    assert collapse(notes) == [
        "imported from /data/json/TAK2/test/song 0.json (and 49 more like it)",
        "synthetic:2/a: bass is silent in the excerpt 0.00-2.00s", "another notice"]
