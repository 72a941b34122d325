"""Plugins: a separator from another distribution is found through the entry-point group, and a
plugin that fails to load gives one error line naming it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from demixbench.errors import PluginError
from demixbench.separators import SeparatorEntry, SeparatorRegistry

HERE = Path(__file__).parent


def _env(extra_path: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return env


def _cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "demixbench.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """pip-install tests/plugin_example into a private target folder (no network)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(HERE / "plugin_example")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


@pytest.mark.slow
def test_installed_plugin_is_listed_and_runs(installed_plugin, tmp_path):
    env = _env(installed_plugin)
    listing = _cli(["list"], env, tmp_path)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    # all four kinds, each with the package it comes from
    assert re.search(r"^  example_split\s+vocals,accompaniment\s.*demixbench-example-plugin", out, re.M)
    assert re.search(r"^  example-consistency\s+demixbench-example-plugin", out, re.M)
    assert re.search(r"^  example_snr\s+dB\s+higher\s+signal\s+mean\s+demixbench-example-plugin",
                     out, re.M)
    assert re.search(r"^  example-tones\s+demixbench-example-plugin", out, re.M)
    assert re.search(r"^  irm2\s.*\sdemixbench\s", out, re.M)  # built-ins through the same groups

    store = tmp_path / "r.sqlite"
    run = _cli(["run", "--dataset", "example-tones:2", "--excerpt", "2", "--separators",
                "example_split,irm1", "--metrics", "usdr,example_snr", "--strategy", "none",
                "--strategy", "example-consistency:share=0.5", "--store", str(store), "--quiet"],
               env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert re.search(r"^example_split\s+example-consistency @1\s+vocals", run.stdout, re.M)
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT dataset, separator, strategy, step, target, metric, value "
                          "FROM results WHERE metric='example_snr'").fetchall()
    assert {r[0] for r in rows} == {"example-tones:2"}
    assert {(r[1], r[2], r[3]) for r in rows} >= {("example_split", "example-consistency", 1),
                                                   ("irm1", "none", 0)}
    assert all(isinstance(r[6], float) for r in rows)


def _broken_distribution(root: Path, target: str) -> Path:
    info = root / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[demixbench.separators]\nbroken = {target}\n")
    return root


def test_plugin_that_fails_to_import_is_one_line_error(tmp_path):
    site = _broken_distribution(tmp_path / "site", "no_such_module_xyz:Separator")
    env = _env(site)
    run = _cli(["run", "--dataset", "synthetic:1", "--separators", "broken", "--store",
                str(tmp_path / "r.sqlite")], env, tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "separator plugin 'broken'" in lines[0]
    assert "broken-plugin" in lines[0] and "uninstall" in lines[0]
    assert "Traceback" not in run.stderr

    listing = _cli(["list"], env, tmp_path)  # the others still list; the broken one says why
    assert listing.returncode == 0
    assert "irm2" in listing.stdout and "No module named 'no_such_module_xyz'" in listing.stdout


def test_registry_rejects_non_separator_and_duplicate_names():
    reg = SeparatorRegistry([SeparatorEntry("odd", "json:dumps", "odd-dist")])
    with pytest.raises(PluginError, match=r"plugin 'odd' .* is not a demixbench Separator subclass"):
        reg.get("odd")
    with pytest.raises(PluginError, match=r"name 'x' is declared twice: by 'a' .* and by 'b'"):
        SeparatorRegistry([SeparatorEntry("x", "m:A", "a"), SeparatorEntry("x", "m:B", "b")])
