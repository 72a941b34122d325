"""museval JSON out of and into the store: museval's own loader reads the export and finds
demixbench's aggregates; the import round-trips."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest

from demixbench.errors import DemixbenchError
from demixbench.formats.museval_import import import_folder
from demixbench.formats.museval_json import export_run
from demixbench.runs.store import ResultsStore

sys.modules.setdefault("musdb", types.ModuleType("musdb"))  # museval's __init__ imports it
aggregate = pytest.importorskip("museval.aggregate")

BSS = ("sdr", "sir", "sar", "isr")


@pytest.fixture(scope="module")
def exported(report_run, tmp_path_factory):
    store, run_id = report_run
    out = tmp_path_factory.mktemp("museval")
    with ResultsStore(store, read_only=True) as s:
        files = export_run(s, run_id, out)
        rows = s.rows(run_id)
    return out, files, rows


@pytest.mark.slow
def test_museval_loads_the_export_and_finds_the_same_aggregates(exported):
    out, files, rows = exported
    assert (out / "irm1" / "test").is_dir() and len(files) > 0
    doc = json.loads((out / "irm1" / "test" / files[0].name).read_text())
    assert set(doc) == {"targets", "museval_version"}
    frame = doc["targets"][0]["frames"][0]
    assert set(frame) == {"time", "duration", "metrics"}
    assert set(frame["metrics"]) == {"SDR", "SIR", "SAR", "ISR"}
    methods = aggregate.MethodStore()
    methods.add_eval_dir(out / "irm1")
    methods.add_eval_dir(out / "mix")
    got = methods.agg_frames_tracks_scores()
    for sep in ("irm1", "mix"):
        plain = [r for r in rows if r["separator"] == sep and r["strategy"] == "none"]
        for target in ("vocals", "drums", "bass", "other", "accompaniment"):
            for m in BSS:
                ours = [r["value"] for r in plain if r["target"] == target and r["metric"] == m]
                want = float(np.nanmedian(ours))
                theirs = float(got.loc[(sep, target, m.upper())])
                assert theirs == pytest.approx(want, abs=2e-5), (sep, target, m)


def test_a_nan_frame_stays_nan_in_the_export(exported):
    out, files, _ = exported
    docs = [json.loads(p.read_text()) for p in (out / "irm1" / "test").glob("*.json")]
    vocals = [t for d in docs for t in d["targets"] if t["name"] == "vocals"]
    assert any(math.isnan(f["metrics"]["SDR"]) for t in vocals for f in t["frames"])


def test_import_round_trips(exported, tmp_path):
    out, _, rows = exported
    with ResultsStore(tmp_path / "r.sqlite") as s:
        run_id, n = import_folder(s, out / "irm1", "irm1-imported")
        again, _ = import_folder(s, out / "irm1", "irm1-imported")
        imported = s.rows(run_id)
        assert again == run_id and len(s.rows(run_id)) == len(imported)  # nothing added twice
        config = s.configs([run_id])
    assert n == {"irm1-imported": 2} and any(c.get("external") for c in config.values())
    original = {(r["track"], r["target"], r["metric"]): r["value"] for r in rows
                if r["separator"] == "irm1" and r["strategy"] == "none" and r["metric"] in BSS}
    back = {(r["track"], r["target"], r["metric"]): r["value"] for r in imported}
    assert set(back) <= set(original) and len(back) == 2 * 5 * 4
    for k, v in back.items():
        if math.isnan(original[k]):
            assert math.isnan(v)
        else:
            assert v == pytest.approx(original[k], abs=1e-5)


def test_import_refuses_what_is_not_museval_json(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "song.json").write_text('{"results": []}')
    with ResultsStore(tmp_path / "r.sqlite") as s, pytest.raises(
            DemixbenchError, match=r"song.json: not museval JSON \(no 'targets' list\)"):
        import_folder(s, tmp_path, "x")
    with ResultsStore(tmp_path / "r.sqlite") as s, pytest.raises(
            DemixbenchError, match="no such folder of museval JSON files"):
        import_folder(s, tmp_path / "test" / "nothing", "x")


def test_two_imports_under_one_name_are_two_separators(exported, tmp_path):
    """The identity of imported results is their files' content: a report over two imports
    under one --name keeps both, instead of merging them into one separator."""
    import shutil

    from demixbench.reports.model import build

    out, _, _ = exported
    other = tmp_path / "other"
    shutil.copytree(out / "irm1", other)
    first = next(other.rglob("*.json"))
    doc = json.loads(first.read_text())
    doc["targets"][0]["frames"][0]["metrics"]["SDR"] = 99.0  # one value changed
    first.write_text(json.dumps(doc))
    with ResultsStore(tmp_path / "r.sqlite") as s:
        a, _ = import_folder(s, out / "irm1", "method")
        b, _ = import_folder(s, other, "method")
        hashes = {r["separator_hash"] for run in (a, b) for r in s.rows(run)}
        assert a != b and len(hashes) == 2
        data = build(s, [a, b])
    assert len(data["variants"]) == 2 and all(v.startswith("method") for v in data["variants"])


def test_export_refuses_a_full_folder_a_file_and_a_run_without_all_four_metrics(report_run,
                                                                                 tmp_path):
    import contextlib
    import io

    from demixbench.cli import main

    store, run_id = report_run

    def cli(*argv):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            return main(list(argv)), err.getvalue()

    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.json").write_text("{}")
    base = ["export", "--format", "museval", "--store", str(store), "--run", run_id]
    code, err = cli(*base, "--out", str(full))
    assert code == 2 and "is not empty; its JSON files would be replaced: pass --overwrite" in err
    assert (full / "mine.json").read_text() == "{}"
    assert cli(*base, "--out", str(full), "--overwrite")[0] == 0
    (tmp_path / "file").write_text("")
    code, err = cli(*base, "--out", str(tmp_path / "file"))
    assert code == 2 and "is a file; give a folder" in err
    partial = tmp_path / "p.sqlite"
    code, _ = cli("run", "--dataset", "synthetic:1", "--separators", "mix", "--excerpt", "2",
                  "--metrics", "sdr,usdr", "--no-report", "--quiet", "--store", str(partial))
    assert code == 0
    code, err = cli("export", "--format", "museval", "--store", str(partial), "--out",
                    str(tmp_path / "new"))
    assert code == 2 and "has no sir, sar, isr rows" in err and not (tmp_path / "new").exists()
