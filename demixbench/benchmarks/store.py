"""The results store: SQLite, one tidy row per (run, track, excerpt, separator, strategy, step,
target, metric).

A *unit* is one (dataset, track, excerpt, separator config, strategy config): all its rows and
its ``units`` record are written in one transaction, so a run killed at any point leaves either
all of a unit's rows or none, and a resumed run redoes exactly the missing units.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    command TEXT,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    machine TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    dataset TEXT NOT NULL,
    track TEXT NOT NULL,
    separator TEXT NOT NULL,
    finished REAL NOT NULL,
    sep_seconds REAL,
    sep_peak_rss_mb REAL,
    metric_seconds REAL,
    cached INTEGER NOT NULL,
    conversions TEXT NOT NULL,
    notices TEXT NOT NULL,
    PRIMARY KEY (run_id, unit)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    track TEXT NOT NULL,
    subset TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    separator TEXT NOT NULL,
    separator_hash TEXT NOT NULL,
    oracle INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    strategy_hash TEXT NOT NULL,
    step INTEGER NOT NULL,
    target TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    nan_reason TEXT,
    detail TEXT,
    sep_seconds REAL,
    sep_peak_rss_mb REAL,
    UNIQUE (run_id, dataset, track, excerpt, separator_hash, strategy_hash, step, target, metric)
);
CREATE INDEX IF NOT EXISTS results_run ON results (run_id);
"""

RESULT_COLUMNS = ("run_id", "dataset", "track", "subset", "excerpt", "separator", "separator_hash",
                  "oracle", "strategy", "strategy_hash", "step", "target", "metric", "value",
                  "nan_reason", "detail", "sep_seconds", "sep_peak_rss_mb")


@dataclass
class UnitRecord:
    unit: str
    dataset: str
    track: str
    separator: str
    sep_seconds: float | None
    sep_peak_rss_mb: float | None
    metric_seconds: float
    cached: bool
    conversions: list[str]
    notices: list[str]


class ResultsStore:
    """A SQLite results store at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a demixbench results store ({exc}); pass another "
                             "--store path") from None
        version = int(self._db.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer demixbench (schema {version}); "
                             "upgrade demixbench to read it")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------
    def begin_run(self, run_id: str, config: dict, versions: dict, machine: dict,
                  command: str = "") -> bool:
        """Register a run; returns True if it already existed (a resume)."""
        now = time.time()
        with self._tx():
            row = self._db.execute("SELECT run_id FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row:
                self._db.execute("UPDATE runs SET updated=?, status='running' WHERE run_id=?",
                                 (now, run_id))
                return True
            self._db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                             (run_id, now, now, "running", command, json.dumps(config),
                              json.dumps(versions), json.dumps(machine)))
        return False

    def finish_run(self, run_id: str, status: str = "complete") -> None:
        with self._tx():
            self._db.execute("UPDATE runs SET updated=?, status=? WHERE run_id=?",
                             (time.time(), status, run_id))

    def runs(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM runs ORDER BY created")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def latest_run(self) -> str | None:
        row = self._db.execute("SELECT run_id FROM runs ORDER BY updated DESC LIMIT 1").fetchone()
        return row[0] if row else None

    # -- units -------------------------------------------------------------------------------
    def done_units(self, run_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT unit FROM units WHERE run_id=?", (run_id,))}

    def write_unit(self, run_id: str, unit: UnitRecord, rows: Iterable[dict[str, Any]]) -> None:
        """Write a unit's rows and its record atomically."""
        rows = list(rows)
        with self._tx():
            self._db.executemany(
                f"INSERT INTO results ({','.join(RESULT_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(RESULT_COLUMNS))})",
                [tuple(_cell(r.get(c)) for c in RESULT_COLUMNS) for r in rows])
            self._db.execute(
                "INSERT INTO units VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, unit.unit, unit.dataset, unit.track, unit.separator, time.time(),
                 unit.sep_seconds, unit.sep_peak_rss_mb, unit.metric_seconds, int(unit.cached),
                 json.dumps(unit.conversions), json.dumps(unit.notices)))

    def unit_records(self, run_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM units WHERE run_id=? ORDER BY finished", (run_id,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    # -- rows --------------------------------------------------------------------------------
    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Result rows (all runs, or one), NaN values restored from SQL NULL."""
        sql = f"SELECT {','.join(RESULT_COLUMNS)} FROM results"
        args: tuple = ()
        if run_id:
            sql += " WHERE run_id=?"
            args = (run_id,)
        sql += " ORDER BY rowid"
        out = []
        for r in self._db.execute(sql, args):
            row = dict(zip(RESULT_COLUMNS, r))
            if row["value"] is None:
                row["value"] = math.nan
            out.append(row)
        return out

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def iter_json_lines(rows: Iterable[dict]) -> Iterator[str]:
    for r in rows:
        yield json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                          for k, v in r.items()})
