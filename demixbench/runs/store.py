"""The results store: SQLite, one tidy row per (run, track, excerpt, separator, strategy, step,
target, metric).

A *unit* is one (dataset, track, excerpt, separator config, strategy config): all its rows and
its ``units`` record are written in one transaction, so a run killed at any point leaves either
all of a unit's rows or none, and a resumed run redoes exactly the missing units.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .owners import current_owner as _owner
from .owners import owner_alive as _owner_alive
from .owners import owners_of as _owners
from .provenance import RECORDED_ONLY
from .schema import MIGRATIONS, RESULT_COLUMNS, SCHEMA, SCHEMA_VERSION


@dataclass
class UnitRecord:
    unit: str
    dataset: str
    track: str
    separator: str
    sep_seconds: float | None
    sep_peak_delta_mb: float | None  # peak resident memory above the start of the separation
    metric_seconds: float
    cached: bool
    conversions: list[str]
    notices: list[str]
    subset: str = ""
    track_seconds: float | None = None  # the whole track's duration (the excerpt is in the rows)


_TABLES = {"meta", "runs", "units", "results"}


class ResultsStore:
    """A SQLite results store at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | Path, read_only: bool = False):
        """Open (or create) the store. ``read_only``: open an existing store for reading only
        (reports): nothing is created, migrated or written."""
        self.path = Path(path).expanduser()
        self.read_only = read_only
        if self.path.is_dir():
            raise StoreError(f"--store {self.path} is a folder; give a file path such as "
                             f"{self.path / 'results.sqlite'}")
        if read_only and not self.path.is_file():
            raise StoreError(f"no results store at {self.path}; run `demixbench run --store "
                             f"{self.path}` first or pass the right --store")
        if not read_only:
            self._check_writable()
        self._db = None
        try:
            if read_only:
                # with no write-ahead log beside it nobody is writing: open it immutable, which
                # creates no -wal/-shm files (a report writes nothing but its page)
                wal = self.path.with_name(self.path.name + "-wal")
                flags = "mode=ro" + ("" if wal.exists() else "&immutable=1")
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True,
                                           timeout=30, isolation_level=None)
            else:
                self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            for attempt in range(100):  # two processes opening one new store at once
                try:
                    self._check_or_create()
                    break
                except sqlite3.OperationalError as exc:  # journal-mode switch: no busy wait
                    if "locked" not in str(exc) or attempt == 99:
                        raise
                    time.sleep(0.05)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{self.path}: not a demixbench results store ({exc}); pass another "
                             "--store path") from None
        except BaseException:
            self.close()
            raise

    def _check_writable(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"--store {self.path}: cannot create its folder ({exc.strerror}); "
                             "pass a --store path you can write to") from None
        if self.path.exists() and not os.access(self.path, os.W_OK) or (
                not self.path.exists() and not os.access(self.path.parent, os.W_OK)):
            raise StoreError(f"--store {self.path}: not writable; pass a --store path you can "
                             "write to")

    def _check_or_create(self) -> None:
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if self.read_only and not tables:
            raise StoreError(f"{self.path}: an empty file, not a demixbench results store; pass "
                             "the --store a run wrote")
        if tables and not _TABLES <= tables:
            raise StoreError(f"{self.path}: an SQLite file that is not a demixbench results store "
                             f"(its tables: {', '.join(sorted(tables))}); it was left untouched: "
                             "pass another --store path")
        if tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer demixbench (schema {version}); "
                                 "upgrade demixbench to read it")
            if self.read_only and version in MIGRATIONS:
                # reading needs no migration: a column added later reads as missing
                self.schema_version = version
                return
            while version in MIGRATIONS:
                with self._tx():
                    for statement in MIGRATIONS[version]:
                        self._db.execute(statement)
                    version += 1
                    self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                                     (str(version),))
            if version < SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by an older demixbench (schema {version}, "
                                 f"this one writes {SCHEMA_VERSION}); its rows are keyed "
                                 "differently: pass a new --store path (the old file is kept)")
        self.schema_version = SCHEMA_VERSION
        if self.read_only:
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if not tables:  # created whole, in one transaction: another opener sees all or none
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not {r[0] for r in self._db.execute(
                        "SELECT name FROM sqlite_master WHERE type='table'")}:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                     (str(SCHEMA_VERSION),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------
    def begin_run(self, run_id: str, config: dict, versions: dict, machine: dict,
                  command: str = "", planned: int | None = None) -> bool:
        """Register a run; returns True if it already existed (a resume).

        A run is resumed only under the library versions it was started with: otherwise one
        run would hold rows of two versions, and :class:`StoreError` says to start a new run.
        demixbench's whole-source digest is recorded but not compared: the run id holds the
        code identity of everything that computes its rows (:mod:`demixbench.identity`), so an
        edit there is another run, and an edit elsewhere (reports, CLI) resumes.
        """
        now = time.time()
        with self._tx():
            row = self._db.execute("SELECT versions, status, owner FROM runs WHERE run_id=?",
                                   (run_id,)).fetchone()
            if row:
                before = json.loads(row[0])
                changed = {k: (before.get(k), versions.get(k)) for k in set(before) | set(versions)
                           if before.get(k) != versions.get(k) and k not in RECORDED_ONLY}
                if changed:
                    what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(changed.items()))
                    raise StoreError(f"run {run_id} was started under other versions ({what}); "
                                     "resuming it would mix results of two code versions in one "
                                     "run: start a new run with --new-run (or use another --store)")
                # every live process on the run owns it: one that dies leaves it to the others
                owners = [o for o in _owners(row[2]) if _owner_alive(o) and o != _owner()]
                self._db.execute("UPDATE runs SET updated=?, status='running', owner=?, "
                                 "planned=COALESCE(?, planned) WHERE run_id=?",
                                 (now, json.dumps([*owners, _owner()]), planned, run_id))
                return True
            self._db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                             (run_id, now, now, "running", command, json.dumps(config),
                              json.dumps(versions), json.dumps(machine), json.dumps([_owner()]),
                              "[]", planned))
        return False

    def run_status(self, run_id: str) -> tuple[str, bool] | None:
        """``(status, owner alive)`` of a run, or None if the store does not know it."""
        row = self._db.execute("SELECT status, owner FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        return row[0], any(_owner_alive(o) for o in _owners(row[1]))

    def finish_run(self, run_id: str, status: str = "complete",
                   notices: list[str] | None = None, succeeded: Iterable[str] = ()) -> None:
        """Close a run with its status and the run's notices (added to those of earlier
        sessions of the same run); the failure notices of units that have ``succeeded`` since
        are dropped."""
        cleared = tuple(f"unit {key} failed" for key in succeeded)
        with self._tx():
            row = self._db.execute("SELECT notices, owner, status FROM runs WHERE run_id=?",
                                   (run_id,)).fetchone()
            kept = json.loads(row[0]) if row and row[0] else []
            kept += [n for n in notices or [] if n not in kept]
            kept = [n for n in kept if not n.startswith(cleared)] if cleared else kept
            others = [o for o in _owners(row[1] if row else None)
                      if o != _owner() and _owner_alive(o)]
            if others:  # another process still works on the run: it says how it ends
                status = row[2]
            self._db.execute("UPDATE runs SET updated=?, status=?, notices=?, owner=? "
                             "WHERE run_id=?", (time.time(), status, json.dumps(kept),
                                                json.dumps(others), run_id))

    def mark_stale_runs(self) -> list[str]:
        """Runs left ``running`` by a process that no longer exists become ``crashed``."""
        stale = [r for r, owner in self._db.execute(
            "SELECT run_id, owner FROM runs WHERE status='running'")
            if not any(_owner_alive(o) for o in _owners(owner))]
        with self._tx():
            for r in stale:
                self._db.execute("UPDATE runs SET status='crashed' WHERE run_id=? AND "
                                 "status='running'", (r,))
        return stale

    def configs(self, run_ids: list[str] | None = None) -> dict[str, dict]:
        """Separator and strategy configurations by hash, from the runs' configurations."""
        out: dict[str, dict] = {}
        for run in self.runs():
            if run_ids and run["run_id"] not in run_ids:
                continue
            config = json.loads(run["config"])
            out.update(config.get("separator_configs", {}))
            out.update(config.get("strategy_configs", {}))
        return out

    def runs(self) -> list[dict[str, Any]]:
        """Every run, with its status as it is now (a ``running`` run whose processes all
        ended reads ``crashed``, also from a read-only store) and ``units_done`` of
        ``planned`` units."""
        cur = self._db.execute("SELECT * FROM runs ORDER BY created")
        names = [d[0] for d in cur.description]
        done = dict(self._db.execute("SELECT run_id, COUNT(*) FROM units GROUP BY run_id"))
        out = []
        for r in cur.fetchall():
            run = dict(zip(names, r))
            if run["status"] == "running" and not any(_owner_alive(o)
                                                      for o in _owners(run["owner"])):
                run["status"] = "crashed"
            run["units_done"] = done.get(run["run_id"], 0)
            out.append(run)
        return out

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["run_id"] == run_id), None)

    def latest_run(self) -> str | None:
        row = self._db.execute("SELECT run_id FROM runs ORDER BY updated DESC LIMIT 1").fetchone()
        return row[0] if row else None

    # -- units -------------------------------------------------------------------------------
    def done_units(self, run_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT unit FROM units WHERE run_id=?", (run_id,))}

    def write_unit(self, run_id: str, unit: UnitRecord, rows: Iterable[dict[str, Any]]) -> bool:
        """Write a unit's rows and its record atomically. Returns False (writing nothing) when
        the unit is already there, written meanwhile by another process on the same run."""
        rows = list(rows)
        with self._tx():
            if self._db.execute("SELECT 1 FROM units WHERE run_id=? AND unit=?",
                                (run_id, unit.unit)).fetchone():
                return False
            self._db.executemany(
                f"INSERT INTO results ({','.join(RESULT_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(RESULT_COLUMNS))})",
                [tuple(_cell(r.get(c)) for c in RESULT_COLUMNS) for r in rows])
            self._db.execute(
                "INSERT INTO units VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, unit.unit, unit.dataset, unit.subset, unit.track, unit.separator,
                 time.time(), unit.sep_seconds, unit.sep_peak_delta_mb, unit.metric_seconds,
                 int(unit.cached), json.dumps(unit.conversions), json.dumps(unit.notices),
                 unit.track_seconds))
        return True

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
        if self._db is None:
            raise StoreError(f"{self.path}: the store is closed")
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def finite_json(v: Any) -> Any:
    """``v`` with every non-finite float replaced by None, so that JSON stays strict."""
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_json(x) for x in v]
    if hasattr(v, "item") and not hasattr(v, "__len__"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(finite_json(v), allow_nan=False)
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v
