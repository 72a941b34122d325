"""The estimate cache as a managed store: its own home, lossless compact entries, validation on
read (a wrong entry names its file and is recomputed), LRU pruning to a cap, and the
`demixbench cache` commands."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import cli

from demixbench.runs.cache import EstimateCache


def estimates(seed: int = 0, n: int = 44100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s: (rng.standard_normal((2, n)) * 0.1).astype(np.float32)
            for s in ("vocals", "accompaniment")}


def test_entries_round_trip_bit_for_bit_and_smaller_than_raw(tmp_path):
    cache = EstimateCache(tmp_path)
    t = np.arange(44100 * 2) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    est = {"vocals": np.stack([tone, tone]), "accompaniment": np.stack([tone * 0.5, tone])}
    cache.put("sep", "key", est, ["input: resampled"])
    hit = cache.get("sep", "key", ("vocals", "accompaniment"), (2, 88200))
    assert hit.conversions == ["input: resampled"]
    for k, v in est.items():
        assert hit.estimates[k].dtype == np.float32 and np.array_equal(hit.estimates[k], v)
    size = (tmp_path / "sep" / "key.npz").stat().st_size
    assert size < 0.8 * sum(v.nbytes for v in est.values())


@pytest.mark.parametrize("damage, why", [
    ("truncate", "not valid"),
    ("shape", r"has shape \(2, 44100\), expected \(2, 1000\)"),
    ("stems", r"stems \['accompaniment', 'vocals'\], expected \['drums'\]"),
])
def test_a_wrong_entry_names_its_file_and_is_recomputed(tmp_path, damage, why):
    cache = EstimateCache(tmp_path)
    cache.put("sep", "key", estimates())
    path = tmp_path / "sep" / "key.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
        args = (("vocals", "accompaniment"), (2, 44100))
    elif damage == "shape":
        args = (("vocals", "accompaniment"), (2, 1000))
    else:
        args = (("drums",), (2, 44100))
    assert cache.get("sep", "key", *args) is None
    (notice,) = cache.notices
    assert str(path) in notice and "computed again" in notice
    assert pytest.importorskip("re").search(why, notice), notice
    assert not path.exists()


def test_tampered_samples_fail_their_digest(tmp_path):
    cache = EstimateCache(tmp_path)
    cache.put("sep", "key", estimates())
    path = tmp_path / "sep" / "key.npz"
    with np.load(path) as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays["vocals"][0, 10] ^= 1  # one bit of one sample
    np.savez_compressed(path, **arrays)
    assert cache.get("sep", "key") is None and "SHA-256" in cache.notices[0]


def test_least_recently_used_entries_go_first_under_the_cap(tmp_path):
    cache = EstimateCache(tmp_path, max_bytes=10**12)
    for i in range(3):
        cache.put("sep", f"k{i}", estimates(i))
        time.sleep(0.01)
    one = (tmp_path / "sep" / "k0.npz").stat().st_size
    cache.get("sep", "k0")  # used again: now the most recent
    cache.max_bytes = int(2.5 * one)
    cache.put("sep", "k3", estimates(3))  # over the cap: k1 and k2 are the oldest uses
    left = sorted(p.stem for p in (tmp_path / "sep").glob("*.npz"))
    assert left == ["k0", "k3"]


@pytest.mark.slow
def test_cache_commands_and_the_run_default_home(tmp_path, monkeypatch):
    home = tmp_path / "cache-home"
    monkeypatch.setenv("DEMIXBENCH_ESTIMATE_CACHE", str(home))
    store = tmp_path / "runs" / "s.sqlite"
    code, _, err = cli("run", "--dataset", "synthetic:1", "--separators", "hpss_repet",
                       "--metrics", "usdr", "--excerpt", "2", "--keep-estimates", "--no-report",
                       "--quiet", "--store", str(store))
    assert code == 0, err
    assert not (store.parent / "estimates").exists()  # never beside the store
    code, out, _ = cli("cache", "info")
    assert code == 0 and f"estimate cache: {home}" in out
    assert "entries: 1 (1 separator configurations)" in out and "of a 4.00 GB cap" in out
    code, out, _ = cli("cache", "prune", "--max-gb", "0")
    assert code == 0 and out.startswith("removed 1 least recently used entries")
    cli("run", "--dataset", "synthetic:1", "--separators", "hpss_repet", "--metrics", "usdr",
        "--excerpt", "2", "--keep-estimates", "--no-report", "--quiet", "--new-run",
        "--store", str(tmp_path / "other.sqlite"))
    code, out, _ = cli("cache", "clear")
    assert code == 0 and out.startswith("removed 1 entries")
    assert "entries: 0" in cli("cache", "info")[1]
    code, _, err = cli("cache", "prune", "--max-gb", "lots")
    assert code == 2 and "--max-gb lots: give a number of gigabytes >= 0" in err
    assert os.environ["DEMIXBENCH_ESTIMATE_CACHE"] == str(home)
