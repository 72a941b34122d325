"""One identity for every result: a result belongs to the code and data that made it.

A user's separator edited in their own test file (no version bump) is new estimates and new
rows: the regression gate sees the change; ``demixbench run`` recomputes; dataset files are
identified by content, not modification time; labels and settings keep results apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from demixbench.identity import code_identity, file_fingerprint, stable_hash, unit_key

pytest_plugins = ["pytester"]

USER_TEST = '''
import numpy as np

from demixbench.separators import Separator


class QuietMix(Separator):
    name = "quiet_mix"
    sources = ("vocals", "accompaniment")
    sample_rate = None

    def _separate(self, mixture, sample_rate, references):
        return {"vocals": mixture * np.float32(SCALE), "accompaniment": mixture * np.float32(0.5)}


def test_quiet_mix(separation_benchmark):
    result = separation_benchmark(QuietMix(), dataset="synthetic:2", metrics=["usdr"], excerpt=2)
    assert result.tracks
'''


def test_an_edited_user_separator_fails_the_gate_without_a_version_bump(pytester, tmp_path):
    store = tmp_path / "results.sqlite"
    pytester.makepyfile(test_user=USER_TEST.replace("SCALE", "0.25"))
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--demix-store={store}",
                                          "--demix-autosave")
    first.assert_outcomes(passed=1)
    pytester.makepyfile(test_user=USER_TEST.replace("SCALE", "0.01"))  # same class, same version
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--demix-store={store}",
                                           "--demix-compare", "--demix-compare-fail=usdr:0.5")
    assert second.ret != 0, second.stdout.str()
    second.stdout.fnmatch_lines(["*FAILED (--demix-compare-fail)*test_quiet_mix*vocals*"])


PLUGIN = '''
import numpy as np

from demixbench.separators import Separator


class Half(Separator):
    name = "half"
    sources = ("vocals", "accompaniment")
    sample_rate = None

    def _separate(self, mixture, sample_rate, references):
        return {"vocals": mixture * np.float32(SCALE), "accompaniment": mixture * np.float32(0.5)}
'''


def _install_plugin(site: Path, scale: str) -> None:
    """A user's separator as an installed distribution (its dist-info on PYTHONPATH)."""
    site.mkdir(exist_ok=True)
    (site / "user_half.py").write_text(PLUGIN.replace("SCALE", scale))
    info = site / "user_half-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: user-half\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[demixbench.separators]\nhalf = user_half:Half\n")


def _run_half(tmp_path: Path, site: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-m", "demixbench.cli", "run", "--dataset",
                          "synthetic:1", "--separators", "half", "--metrics", "usdr",
                          "--excerpt", "2", "--keep-estimates", "--quiet", "--no-report",
                          "--store", str(tmp_path / "s.sqlite")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = subprocess.run([sys.executable, "-m", "demixbench.cli", "results", "--store",
                           str(tmp_path / "s.sqlite"), "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=600)
    return {"stdout": out.stdout, "rows": json.loads(rows.stdout)}


@pytest.mark.slow
def test_demixbench_run_recomputes_after_an_edit_of_a_plugin(tmp_path):
    site = tmp_path / "site"
    _install_plugin(site, "0.25")
    first = _run_half(tmp_path, site)
    assert "(new): 1 of 1 units computed" in first["stdout"]
    again = _run_half(tmp_path, site)  # same code: resumed, nothing computed
    assert "(resumed): 0 of 1 units computed" in again["stdout"]
    _install_plugin(site, "0.01")  # one line changed, no version bump
    edited = _run_half(tmp_path, site)
    assert "(new): 1 of 1 units computed" in edited["stdout"], edited["stdout"]
    vocals = {r["run"]: r["value"] for r in edited["rows"] if r["target"] == "vocals"}
    assert len(vocals) == 1
    before = [r["value"] for r in first["rows"] if r["target"] == "vocals"][0]
    assert list(vocals.values())[0] < before - 1  # the estimate was computed again


def test_code_identity_follows_the_module_and_its_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("GAIN = 0.5\n")
    (pkg / "sep.py").write_text(textwrap.dedent("""
        import numpy as np
        from .helpers import GAIN

        class S:
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    sep = importlib.import_module("userpkg.sep")
    before = code_identity(sep.S)
    assert before["object"] == "userpkg.sep.S"
    assert before["libraries"]["numpy"] == np.__version__
    assert code_identity(sep.S) == before  # stable while nothing changes
    (pkg / "helpers.py").write_text("GAIN = 0.25\n")  # an imported helper of the same package
    os.utime(pkg / "helpers.py", ns=(1, 1))
    assert code_identity(sep.S)["source"] != before["source"]


def test_dataset_files_are_identified_by_content_not_time(tmp_path):
    a = tmp_path / "a" / "song"
    a.mkdir(parents=True)
    (a / "vocals.wav").write_bytes(b"RIFF" + bytes(100))
    before = file_fingerprint(a / "vocals.wav", tmp_path / "a")
    assert before.startswith("song/vocals.wav:104:")
    os.utime(a / "vocals.wav", ns=(10**18, 10**18))  # touched, or copied: same content
    assert file_fingerprint(a / "vocals.wav", tmp_path / "a") == before
    (a / "vocals.wav").write_bytes(b"RIFF" + bytes(99) + b"\x01")  # same size, other content
    assert file_fingerprint(a / "vocals.wav", tmp_path / "a") != before


def test_unit_keys_and_hashes_are_stable():
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    assert unit_key("synthetic", "test", "song", "abc", None) == "synthetic|test|song|abc|none"
