"""Report pages in a real browser: headless Chromium (Debian's package, which ``.ci/run``
installs) driven by Playwright for Python. Skipped, with the reason, where either is missing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import HOSTILE_TRACKS

from demixbench.reports.report import write_report

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright for Python is not installed")
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "")
                 if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install -y "
                                "chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def report_file(report_run, tmp_path_factory):
    store, run_id = report_run
    out = tmp_path_factory.mktemp("page") / "report.html"
    return write_report(store, out, [run_id], audio_options={
        "seconds": 2.0, "cache_dir": store.parent / "estimates"})


@pytest.fixture(scope="module")
def opened(browser, report_file):
    """The page loaded and every plot rendered, with what happened on the way."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["console"].append(("pageerror", str(e))))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(report_file.as_uri())
    page.evaluate("window.demixbench.renderAll()")
    yield page, seen
    page.close()


def test_no_console_error_and_no_request_but_the_page(opened, report_file):
    page, seen = opened
    assert [m for m in seen["console"] if m[0] in ("error", "pageerror")] == []
    assert seen["requests"] == [report_file.as_uri()]


def test_every_plot_renders(opened):
    page, _ = opened
    charts = page.locator("[data-chart]")
    n = charts.count()
    # per target: 3 distributions + 1 heatmap (5 targets), frames, the step panels and the
    # strength figure of each of the 6 metrics, oracle gain, quality vs cost (one blind
    # separator: no ranking)
    assert n == 5 * 4 + 1 + 6 + 6 + 1 + 1
    assert page.locator("[data-chart][data-rendered='1']").count() == n
    assert page.locator("[data-chart] canvas").count() == n


def test_separators_and_targets_in_leaderboard_and_plot_data(opened):
    page, _ = opened
    blind = page.locator("#leaderboard-blind tbody tr")
    oracle = page.locator("#leaderboard-oracle tbody tr")
    cells = lambda rows, i: {rows.nth(k).locator("td").nth(i).inner_text().split()[0]  # noqa: E731
                             for k in range(rows.count())}
    assert cells(blind, 0) == {"mix"} and cells(oracle, 0) == {"irm1", "mix"}
    targets = {"vocals", "drums", "bass", "other", "accompaniment"}
    assert cells(blind, 3) == targets and cells(oracle, 3) == targets
    # the data inside the rendered views, not only the page's JSON
    for t in targets:
        got = page.evaluate(f"window.demixbench.views['dist/{t}/cSDR'].data('points')"
                            f".filter(d => d.t === '{t}' && d.m === 'cSDR').map(d => d.v)")
        assert {"mix", "irm1"} <= set(got)
        assert len(got) == 2 * len(set(got))  # one point per track and separator


def test_hostile_track_names_are_text(opened):
    page, seen = opened
    assert seen["dialogs"] == []
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script").count() == 3  # data, Vega bundle, the page's own
    options = page.locator("#frames-track option").all_inner_texts()
    for name in HOSTILE_TRACKS:
        assert any(o.endswith("/" + name) for o in options)
        assert page.get_by_text(name, exact=False).count() >= 1


def test_sorting_a_leaderboard_column(opened):
    page, _ = opened
    table = page.locator("#leaderboard-blind")
    header = table.locator("thead th", has_text="cSDR")
    col = [h.strip() for h in table.locator("thead th").all_inner_texts()].index("cSDR")

    def column() -> list[float]:
        texts = table.locator(f"tbody tr td:nth-child({col + 1})").all_inner_texts()
        return [float(t) for t in texts if t != "n/a"]

    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert column() == sorted(column()) and len(column()) > 5
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert column() == sorted(column(), reverse=True)


def test_frame_view_switches_track_and_marks_nan_frames(opened):
    page, _ = opened
    quiet = next(o for o in page.locator("#frames-track option").all_inner_texts()
                 if o.endswith("/" + HOSTILE_TRACKS[1]))
    page.select_option("#frames-track", quiet)
    page.select_option("#frames-target", "vocals")
    page.wait_for_function("document.getElementById('frames-chart').dataset.rendered === '1'")
    summary = page.locator("#frames-summary").inner_text()
    n_series = page.evaluate("window.demixbench.data.frames.tracks[document.getElementById("
                             "'frames-track').value].vocals.length")
    assert re.match(rf"{n_series} separators, [1-9][0-9]* NaN frames", summary)


def test_audio_players_have_playable_sources(opened):
    page, _ = opened
    tracks = page.locator("details.audio-track")
    assert tracks.count() == 2
    for i in range(tracks.count()):
        if not tracks.nth(i).evaluate("d => d.open"):
            tracks.nth(i).locator("summary").click()
    # the players are attached by the details' toggle event, which follows the click
    page.wait_for_function("document.querySelectorAll('details.audio-track > template')"
                           ".length === 0")
    audio = page.locator("details.audio-track audio")
    # per track: the mixture, 5 references, 5 targets of each of mix and irm1
    assert audio.count() == 2 * (1 + 5 + 5 + 5)
    srcs = audio.evaluate_all("els => els.map(a => a.getAttribute('src').slice(0, 22))")
    assert set(srcs) == {"data:audio/ogg;base64,"}
    assert page.evaluate("document.createElement('audio').canPlayType('audio/ogg; codecs=vorbis')")
    duration = audio.first.evaluate(
        "a => new Promise((ok, no) => { a.addEventListener('loadedmetadata', () => ok(a.duration));"
        " a.addEventListener('error', () => no('media error ' + a.error.code)); a.load(); })")
    assert duration == pytest.approx(2.0, abs=0.1)
    assert page.locator("details.audio-track img.spec").count() == 2 * 5


def test_the_page_leaderboard_shows_the_terminal_digits_cell_by_cell(opened, report_run):
    """Rounded once: the page printed 3-decimal values rounded again (4.7046 -> 4.705 -> 4.71)
    where the terminal printed 4.70."""
    from demixbench.reports.leaderboard import leaderboard
    from demixbench.runs.rows import planned_tracks
    from demixbench.runs.store import ResultsStore

    page, _ = opened
    store, run_id = report_run
    with ResultsStore(store, read_only=True) as s:
        entries = leaderboard(s.rows(run_id), s.configs([run_id]),
                              planned=planned_tracks([s.run_record(run_id)]))
    terminal = {}
    for e in entries:
        key = (e["separator"], e["strategy"], str(e["step"]) if e["multi_step"] else "",
               e["target"])
        terminal[key] = {label: f"{e[label]:.2f}" for label in ("cSDR", "uSDR", "SI-SDR")
                         if label in e and e[label] == e[label]}
    heads = page.locator("#leaderboard-blind thead th").all_inner_texts()
    checked = 0
    for block in ("blind", "oracle"):
        rows = page.locator(f"#leaderboard-{block} tbody tr")
        for k in range(rows.count()):
            cells = rows.nth(k).locator("td").all_inner_texts()
            sep = cells[0].replace(" oracle", "").strip()
            key = (sep, cells[1], cells[2], cells[3])
            for label, text in terminal[key].items():
                assert cells[heads.index(label)] == text, (key, label)
                checked += 1
    assert checked == sum(len(v) for v in terminal.values()) > 50


def test_oracles_are_marked_and_few_frame_tracks_flagged(report_run, tmp_path):
    """Oracle rows read "(oracle)" on the heat map and distribution axes (their spec says so),
    a value resting on fewer than a third of its frames is flagged in the data the heat map
    and the leaderboard draw, and an outlier does not set the distribution's axis."""
    from demixbench.reports import charts
    from demixbench.reports.model import build, few_frames
    from demixbench.runs.store import ResultsStore

    store, run_id = report_run
    with ResultsStore(store, read_only=True) as s:
        data = build(s, [run_id])
    spec = charts.heatmap("vocals", "cSDR", data["variants"], [0, 1], data["oracle_variants"])
    label = spec["layer"][0]["encoding"]["y"]["axis"]["labelExpr"]
    assert "(oracle)" in label and "irm1" in label
    import pandas as pd

    rows = pd.DataFrame({"detail": ['{"frames": 15, "valid_frames": 3}',
                                    '{"frames": 15, "valid_frames": 14}', None]})
    assert few_frames(rows) == [True, False, False]
    dist = charts.distribution("vocals", "cSDR", ["a"], domain=[-5.0, 20.0])
    assert dist["layer"][0]["encoding"]["x"]["scale"] == {"zero": False, "domain": [-5.0, 20.0],
                                                          "clamp": True}
