"""The store writes a unit's rows atomically and restores NaN values."""

from __future__ import annotations

import math
import sqlite3

import pytest

from demixbench.errors import StoreError
from demixbench.runs.store import ResultsStore, UnitRecord


def _unit(name="u1"):
    return UnitRecord(name, "d", "t", "s", 1.0, 10.0, 0.5, False, [], [])


def _row(metric, value):
    return {"run_id": "r", "dataset": "d", "track": "t", "subset": "test", "excerpt": "0-1s",
            "separator": "s", "separator_hash": "h", "oracle": 0, "strategy": "none",
            "strategy_hash": "", "step": 0, "target": "vocals", "metric": metric, "value": value}


def test_unit_is_all_or_nothing(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.begin_run("r", {}, {}, {})
        # the second row duplicates the first one's key: the whole unit must roll back
        with pytest.raises(sqlite3.IntegrityError):
            store.write_unit("r", _unit(), [_row("sdr", 1.0), _row("sdr", 2.0)])
        assert store.rows("r") == [] and store.done_units("r") == set()
        store.write_unit("r", _unit(), [_row("sdr", 1.0), _row("si_sdr", math.nan)])
        rows = store.rows("r")
        assert [r["metric"] for r in rows] == ["sdr", "si_sdr"]
        assert math.isnan(rows[1]["value"])
        assert store.done_units("r") == {"u1"}
        assert store.begin_run("r", {}, {}, {}) is True  # known run: a resume


def test_not_a_store(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a demixbench results store"):
        ResultsStore(bad)
