"""The results store's SQLite schema, its version and the migrations from older versions."""

SCHEMA_VERSION = 4  # 2: subset in the unit key, run owners, separation memory as a delta;
# 3: run notices (skipped separators, warnings) and track durations, for reports;
# 4: the units a run planned (so a crashed run says "3 of 6"); owners as a JSON list
MIGRATIONS = {  # from version -> statements bringing it to version + 1 (no row is rewritten)
    2: ("ALTER TABLE runs ADD COLUMN notices TEXT",
        "ALTER TABLE units ADD COLUMN track_seconds REAL"),
    3: ("ALTER TABLE runs ADD COLUMN planned INTEGER",),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    command TEXT,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    machine TEXT NOT NULL,
    owner TEXT,
    notices TEXT,
    planned INTEGER
);
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    dataset TEXT NOT NULL,
    subset TEXT NOT NULL,
    track TEXT NOT NULL,
    separator TEXT NOT NULL,
    finished REAL NOT NULL,
    sep_seconds REAL,
    sep_peak_delta_mb REAL,
    metric_seconds REAL,
    cached INTEGER NOT NULL,
    conversions TEXT NOT NULL,
    notices TEXT NOT NULL,
    track_seconds REAL,
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
    sep_peak_delta_mb REAL,
    UNIQUE (run_id, dataset, subset, track, excerpt, separator_hash, strategy_hash, step, target,
            metric)
);
CREATE INDEX IF NOT EXISTS results_run ON results (run_id);
"""

RESULT_COLUMNS = ("run_id", "dataset", "track", "subset", "excerpt", "separator", "separator_hash",
                  "oracle", "strategy", "strategy_hash", "step", "target", "metric", "value",
                  "nan_reason", "detail", "sep_seconds", "sep_peak_delta_mb")
