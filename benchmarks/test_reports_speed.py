"""Report size and speed (``report_size_speed.py`` prints the same): a synthetic store of 50
tracks x 20 separators x 3 steps, its report's generation time and size, and its load time in
Chromium.

    pytest benchmarks/test_reports_speed.py
"""

from __future__ import annotations

import shutil

import pytest
import report_size_speed as rss


def test_large_store_report(tmp_path, tables):
    if not shutil.which("chromium") and not __import__("os").path.exists("/usr/bin/chromium"):
        pytest.skip("no Chromium (apt-get install -y chromium)")
    store = tmp_path / "big.sqlite"
    run_id = rss.synthetic_store(store, 50, 20, 3)
    page = tmp_path / "big.html"
    seconds = rss.timed_report(store, run_id, page)
    browser = rss.browser_times(page)
    tables.add("report of 50 tracks x 20 separators x 3 steps",
               f"{page.stat().st_size / 1e6:.2f} MB generated in {seconds:.1f} s; load "
               f"{browser['load_s']} s, every plot drawn after {browser['all_plots_s']} s")
    assert seconds <= 30 and browser["load_s"] <= 3 and not browser["page_errors"]
