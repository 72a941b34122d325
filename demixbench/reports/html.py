"""Writes report pages: one self-contained HTML file (styles, scripts, plots, data, audio inline)
that opens from ``file://`` with no network.

HTML is made by jinja2 with autoescaping on, so every name that comes from data or users
(tracks, separators, parameters, commands) is text, never markup; the data the plots read is
embedded with jinja2's ``tojson`` (which escapes ``<``, ``>``, ``&`` and ``'``), and a Content
Security Policy forbids any request the page could still try to make. Plots are Vega-Lite (see
``charts.py`` for why) with its JavaScript inlined from ``vl-convert-python``.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import jinja2

from ..errors import ReportError
from ..runs.store import finite_json

GENERATOR = "demixbench report"
# Vega compiles expressions with Function(): 'unsafe-eval' is needed; nothing may be fetched.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; media-src data: blob:")


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """vega + vega-lite + vega-embed as one script (built offline by vl-convert-python)."""
    try:
        import vl_convert
    except ImportError:  # a declared dependency; a broken install is the only way here
        raise ReportError("reports need vl-convert-python (pip install vl-convert-python); it "
                          "ships the Vega-Lite JavaScript that is inlined in the page") from None
    bundle = vl_convert.javascript_bundle()
    return bundle.replace("</script", "<\\/script")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("demixbench.reports", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    data = finite_json(context.pop("data"))
    return _env().get_template(template).render(data=data, vega=vega_bundle(), csp=CSP,
                                                generator=GENERATOR, **context)


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page this module wrote (so overwriting it loses nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}'.encode() in head


def write(html: str, path: str | Path) -> Path:
    """Write ``html`` to ``path`` atomically (a temporary file beside it, then a rename), never
    over a file that is not a demixbench report."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"-o {path}: a report is an .html file; give a path ending in .html")
    if path.is_dir():
        raise ReportError(f"-o {path} is a folder; give a file path such as {path / 'report.html'}")
    if path.exists() and not is_report(path):
        raise ReportError(f"-o {path} exists and is not a demixbench report; it was left "
                          "untouched: choose another -o path or remove it yourself")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ReportError(f"-o {path}: cannot write there ({exc.strerror}); choose another -o "
                          "path") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
