"""The notebook API over the CLI's code: demixbench.run and demixbench.open_results."""

from __future__ import annotations

import pytest

import demixbench
from demixbench.errors import DemixbenchError


def test_run_returns_results_a_rerun_resumes_and_open_results_reads_them(tmp_path):
    store = tmp_path / "s.sqlite"
    r = demixbench.run(datasets="synthetic:2", separators=["mix", "irm1"], metrics=["usdr"],
                       excerpt=2, store=store, params={"irm1": {"n_fft": "1024"}})
    df = r.df
    assert {"track", "target", "metric", "score", "separator", "oracle", "run"} <= set(df)
    assert len(df) == 2 * 2 * 5 and set(df["metric"]) == {"usdr"}
    assert df.loc[df["separator"] == "irm1", "oracle"].all()
    again = demixbench.run(datasets="synthetic:2", separators=["mix", "irm1"], metrics=["usdr"],
                           excerpt=2, store=store, params={"irm1": {"n_fft": 1024}})
    assert again.run_ids == r.run_ids  # typed or text parameters: one identity
    board = r.leaderboard()
    assert set(board["separator"]) == {"mix", "irm1"} and (board["tracks"] == 2).all()
    opened = demixbench.open_results(store)
    assert opened.run_ids == r.run_ids and opened.df.equals(df)
    cmp = opened.compare("mix", "irm1", metrics=["usdr"])
    assert set(cmp["target"]) == {"drums", "bass", "other", "vocals", "accompaniment"}
    assert (cmp["median_diff"] > 0).all() and (cmp["n"] == 2).all()
    page = opened.report(tmp_path / "r.html")
    assert page.is_file() and page.stat().st_size > 10_000
    with pytest.raises(DemixbenchError, match="no run nope"):
        demixbench.open_results(store, run="nope")
