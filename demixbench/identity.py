"""What makes two results the same: defined once, used by every consumer.

A result is identified by the code and data that made it. This module computes the pieces,
and the run engine, the estimate cache, the store, reports, comparisons, saved pytest
sessions and the museval import all derive their keys from them:

- **code**: :func:`code_identity` of a class or function is a digest of the source that
  defines it. The defining module's source is read and its imports are followed through the
  same top-level package and through demixbench itself (parsed with :mod:`ast`, so imports
  inside functions count too), so a changed line anywhere in that closure — a user's
  separator in their own test file, or a built-in's helper — is a new identity, with no
  ``version`` bump needed. The versions of the installed distributions the closure imports
  (numpy, torch, demucs, ...) are part of it, read with :mod:`importlib.metadata`. Modules
  are read once per process (memo keyed by path, size and modification time);
- **data**: :func:`file_fingerprint` is a file's path relative to its dataset root, its size
  and the SHA-256 of its content. Content, not modification time: a copied or freshly cloned
  dataset keeps its identity, an edited one changes it. Digests are memoised by (path, size,
  mtime) in the process and on disk (``file-digests.jsonl`` in :func:`demixbench.paths.cache_home`), so a
  dataset is read through once per machine;
- **units** (:func:`unit_key`): dataset, subset, track, separator configuration and strategy
  configuration; the run's settings (gains, excerpt length and pieces per song, BSS Eval
  window, hop and backend, metric definitions and code, the engine's code, every track's
  fingerprint) are in the run's identity (:func:`stable_hash` of the run configuration).

The estimate cache key is the separator configuration hash (code identity included) plus a
digest of the input audio itself, so two runs share an estimate exactly when the same code
saw the same samples.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict ordering."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# -- files ---------------------------------------------------------------------------------------
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_DISK_MEMO: dict[str, str] | None = None
MEMO_COMPACT_AT = 20000  # entries; beyond, those of files that no longer exist are dropped


def _memo_path() -> Path:
    from .paths import cache_home

    return cache_home() / "file-digests.jsonl"


def _disk_memo() -> dict[str, str]:
    """Digests of earlier processes (``file-digests.jsonl``: one JSON line per file, appended),
    so a large dataset is hashed once per machine, not once per run."""
    global _DISK_MEMO
    if _DISK_MEMO is None:
        _DISK_MEMO = {}
        try:
            with open(_memo_path(), encoding="utf-8") as f:
                for line in f:
                    try:
                        k, v = json.loads(line)
                        _DISK_MEMO[k] = v
                    except (ValueError, TypeError):
                        continue  # a line cut by a crash: ignored
        except OSError:
            pass
        if len(_DISK_MEMO) > MEMO_COMPACT_AT:  # forget files that are gone (temporary data)
            _DISK_MEMO = {k: v for k, v in _DISK_MEMO.items() if Path(json.loads(k)[0]).exists()}
            try:
                tmp = _memo_path().with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text("".join(json.dumps([k, v]) + "\n" for k, v in _DISK_MEMO.items()),
                               encoding="utf-8")
                os.replace(tmp, _memo_path())
            except OSError:
                pass
    return _DISK_MEMO


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, memoised by (resolved path, size, mtime) in this process
    and, for files over 1 MB, on disk."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _FILE_DIGESTS:
        return _FILE_DIGESTS[key]
    text_key = json.dumps(key)
    big = st.st_size > 1 << 20
    digest = _disk_memo().get(text_key) if big else None
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
        digest = h.hexdigest()
        if big:
            try:
                _memo_path().parent.mkdir(parents=True, exist_ok=True)
                with open(_memo_path(), "a", encoding="utf-8") as f:
                    f.write(json.dumps([text_key, digest]) + "\n")
                _disk_memo()[text_key] = digest
            except OSError:
                pass  # a memo that cannot be written costs time, never identity
    _FILE_DIGESTS[key] = digest
    return digest


def file_fingerprint(path: str | Path, root: str | Path | None = None) -> str:
    """``relative/path:size:sha256`` of a file read by a dataset (see the module doc)."""
    p = Path(path)
    rel = p.relative_to(root).as_posix() if root is not None else p.name
    return f"{rel}:{p.stat().st_size}:{file_sha256(p)[:24]}"


# -- code ----------------------------------------------------------------------------------------
def _module_file(name: str) -> Path | None:
    mod = sys.modules.get(name)
    origin = getattr(mod, "__file__", None) if mod is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    return Path(origin)


@lru_cache(maxsize=4096)
def _parse_imports(path: str, size: int, mtime: int) -> tuple[bytes, tuple[tuple[str, str, int], ...]]:
    """(source bytes, imports as (module, name, level)) of one file."""
    data = Path(path).read_bytes()
    found: list[tuple[str, str, int]] = []
    try:
        tree = ast.parse(data)
    except SyntaxError:
        return data, ()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((a.name, "", 0) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.extend((node.module or "", a.name, node.level) for a in node.names)
    return data, tuple(found)


def _resolve(module: str, name: str, level: int, package: str) -> list[str]:
    """Absolute module names an import may refer to (``from .x import y``: ``pkg.x.y`` if
    that is a module, and ``pkg.x``)."""
    if level:
        parts = package.split(".")
        if level - 1 > len(parts):
            return []
        base = ".".join(parts[: len(parts) - (level - 1)])
        module = f"{base}.{module}" if module else base
    return [f"{module}.{name}", module] if name and name != "*" else [module]


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _version(top: str) -> dict[str, str]:
    out = {}
    for dist in _distributions().get(top, []):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


_CLOSURES: dict[tuple[str, ...], dict[str, Any]] = {}


def module_identity(module: str, extra_source: bytes = b"") -> dict[str, Any]:
    """``{"source": digest, "libraries": {distribution: version}}`` of ``module`` and the
    modules it imports within its own top-level package and within demixbench."""
    key = (module, hashlib.sha256(extra_source).hexdigest())
    cached = _CLOSURES.get(key)
    if cached is not None and all(_unchanged(f) for f in cached["_files"]):
        return {k: v for k, v in cached.items() if not k.startswith("_")}
    own = module.split(".")[0]
    followed = {own, "demixbench"}
    h = hashlib.sha256(extra_source)
    libraries: dict[str, str] = {}
    seen: set[str] = set()
    files: list[tuple[str, int, int]] = []
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        st = path.stat()
        files.append((str(path), st.st_size, st.st_mtime_ns))
        data, imports = _parse_imports(str(path), st.st_size, st.st_mtime_ns)
        h.update(name.encode() + b"\0" + data + b"\0")
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for mod, attr, level in imports:
            for target in _resolve(mod, attr, level, package):
                top = target.split(".")[0]
                if top in followed:
                    if _module_file(target) is not None:
                        todo.append(target)
                        break
                elif top and top not in sys.stdlib_module_names:
                    libraries.update(_version(top))
                    break
    out = {"source": h.hexdigest()[:16], "libraries": dict(sorted(libraries.items()))}
    _CLOSURES[key] = {**out, "_files": files}
    return out


def _unchanged(entry: tuple[str, int, int]) -> bool:
    try:
        st = Path(entry[0]).stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == entry[1:]


def code_identity(obj: Any) -> dict[str, Any]:
    """The code identity of a class or function (see the module doc): its qualified name, the
    digest of the source closure of its module, and the libraries that closure imports. A
    class defined where no source file exists (``python -c``) is digested from
    :func:`inspect.getsource` when that works, else from its bytecode."""
    module = getattr(obj, "__module__", None) or "__main__"
    qualname = getattr(obj, "__qualname__", repr(obj))
    if _module_file(module) is not None and module != "__main__":
        ident = module_identity(module)
    else:
        try:
            extra = inspect.getsource(obj).encode()
        except (OSError, TypeError):
            extra = _bytecode(obj)
        ident = module_identity("demixbench", extra)
    return {"object": f"{module}.{qualname}", **ident}


def _bytecode(obj: Any) -> bytes:
    funcs = [obj] if callable(obj) and not isinstance(obj, type) else list(vars(obj).values())
    out = b""
    for f in funcs:
        code = getattr(f, "__code__", None)
        if code is not None:
            out += code.co_code + repr(code.co_consts).encode()
    return out


def engine_identity() -> dict[str, Any]:
    """Code identity of the run engine (excerpt choice, mixing, scoring, the store's rows):
    part of every run's identity, so an edit of it is a new run, while an edit of reports or
    the command line is not."""
    return module_identity("demixbench.runs.compute")


# -- units ---------------------------------------------------------------------------------------
def unit_key(dataset: str, subset: str, track: str, separator_hash: str,
             strategy_hash: str | None) -> str:
    """The key of one unit (track x separator configuration x strategy configuration) within a
    run; the run's id holds everything else that changes the result (the excerpt windows are a
    deterministic function of the track's content and the run's settings)."""
    return f"{dataset}|{subset}|{track}|{separator_hash}|{strategy_hash or 'none'}"
